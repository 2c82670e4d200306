"""Programmatic hindsight for WebShop: every purchase defines a goal it fulfils.

For each explored trajectory that bought product ``P`` with options ``O`` (found by replaying
its actions in the catalog), :class:`WebShopRelabeler` writes the *hindsight goal*: up to
``max_attributes`` of ``P``'s attributes, the option values in ``O`` and a price limit from
WebShop's $10 ladder above ``P``'s price, rendered as a WebShop-style instruction ("i am
looking for a <P's kind> that is <attributes>, in <options>, and price lower than <N> dollars").
The trajectory scores 1 against it under WebShop's reward (checked). Negatives, each verified
to score below 1 against that goal with the same reward function:

* ``other-purchase``: another explored trajectory that bought something else (another product,
  or ``P`` with other options);
* ``no-purchase``: one that never bought anything (used when there are too few of the above);
* ``other-option`` (with ``option_swaps``): the positive replayed with one option click changed
  to another value of the same option, buying ``P`` with the wrong option.

and, for each of these pairs (``prefixes``), up to ``prefix_pairs_per_pair`` ``prefix`` pairs:
the first ``k`` steps of the positive against the first ``k`` of the negative, from the step
where they part ways on (:func:`~armap_agents.environments.outcome.prefix_depths`: the first
divergence, or a quarter, half or three quarters of the shorter one), for planners that score
unfinished trajectories. The label is the outcome's (the positive went on to buy what the goal
asks for, the negative did not), an assumption: the negative may have been on the right page
and gone wrong later.

Positive and negatives are rewritten to read the hindsight goal: the intent, and the
instruction shown at the top of every page; ``info["hindsight_goal"]`` records the goal
(attributes, options, price limit, target asin) the labels were computed against.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from armap_agents.environments.outcome import prefix_triplets
from armap_agents.environments.webshop.catalog import Goal, Product
from armap_agents.environments.webshop.env import WebShopEnv
from armap_agents.environments.webshop.generator import pick_price_limit, render_instruction
from armap_agents.environments.webshop.reward import score_purchase
from armap_agents.types import Step, Trajectory, Triplet

__all__ = ["WebShopRelabeler", "hindsight_goal"]

_CLICK_RE = re.compile(r"^\s*click\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


def hindsight_goal(
    product: Product, options: dict[str, str], rng: random.Random, *, max_attributes: int = 3
) -> Goal:
    """A goal that buying ``product`` with ``options`` fulfils (score 1), in WebShop's words."""
    attributes = list(product.attributes)
    picked = rng.sample(attributes, min(len(attributes), rng.randint(1, max(1, max_attributes))))
    price_upper = pick_price_limit(product.price, rng)
    noun = product.query or " ".join(product.title.lower().split()[-3:])
    instruction = render_instruction(noun, picked, options, price_upper, rng)
    return Goal(
        asin=product.asin,
        instruction=instruction,
        attributes=tuple(picked),
        options=tuple(options.values()),
        price_upper=price_upper,
        name=product.title,
        query=product.query,
        product_category=product.product_category,
        category=product.category,
    )


@dataclass(frozen=True, slots=True)
class _Outcome:
    trajectory: Trajectory
    instruction: str
    purchase: tuple[Product, dict[str, str]] | None


class WebShopRelabeler:
    """Hindsight triplets for WebShop, labelled by WebShop's reward (see the module docstring).

    Give it the environment the trajectories were explored in; without one, it builds an
    environment from the same options (``data_dir``, ``num_products``, ``catalog_seed``,
    ``cache_dir``, ``observation_mode``), so the same options give the same catalog.
    """

    def __init__(
        self,
        env: WebShopEnv | None = None,
        *,
        data_dir: str | None = None,
        num_products: int | None = None,
        catalog_seed: int = 0,
        cache_dir: str | None = None,
        observation_mode: str = "text",
        negatives_per_positive: int = 2,
        option_swaps: bool = True,
        max_attributes: int = 3,
        prefixes: bool = True,
        prefix_pairs_per_pair: int = 1,
    ) -> None:
        self._env = env or WebShopEnv(
            data_dir=data_dir,
            num_products=num_products,
            catalog_seed=catalog_seed,
            cache_dir=cache_dir,
            observation_mode=observation_mode,
        )
        self.negatives_per_positive = negatives_per_positive
        self.option_swaps = option_swaps
        self.max_attributes = max_attributes
        self.prefixes = prefixes
        self.prefix_pairs_per_pair = prefix_pairs_per_pair

    def _replay(self, task_id: str, actions: list[str]) -> tuple[WebShopEnv, list[Step]] | None:
        """Replay ``actions``; None if the task is unknown or an action is invalid."""
        env = self._env.clone()
        try:
            env.reset(task_id)
        except KeyError:
            return None
        steps = []
        for action in actions:
            result = env.step(action)
            if not result.valid:
                return None
            steps.append(Step(action=action, observation=result.observation))
        return env, steps

    def _outcome(self, trajectory: Trajectory) -> _Outcome | None:
        if trajectory.failed or not trajectory.steps:
            return None
        valid = [s.action for s in trajectory.steps if s.valid]
        replayed = self._replay(trajectory.task_id, valid)
        if replayed is None:
            return None
        env, _ = replayed
        return _Outcome(trajectory, env.goal(trajectory.task_id).instruction, env.purchase)

    def relabel(self, trajectories: list[Trajectory], seed: int) -> list[Triplet]:
        rng = random.Random(seed)
        outcomes = [o for o in map(self._outcome, trajectories) if o is not None]
        triplets: list[Triplet] = []
        for positive in outcomes:
            if positive.purchase is None:
                continue
            product, options = positive.purchase
            goal = hindsight_goal(product, options, rng, max_attributes=self.max_attributes)
            if not score_purchase(product, options, goal).success:  # pragma: no cover
                continue
            intent = goal.instruction
            audit = {
                "attributes": list(goal.attributes),
                "options": list(goal.options),
                "price_upper": goal.price_upper,
                "asin": goal.asin,
            }
            pos = _rewrite(positive.trajectory, positive.instruction, intent, audit)
            bought_else, never = [], []
            for other in outcomes:
                if other is positive:
                    continue
                if other.purchase is None:
                    never.append(other)
                elif score_purchase(other.purchase[0], other.purchase[1], goal).score < 1.0:
                    bought_else.append(other)
            rng.shuffle(bought_else)
            rng.shuffle(never)
            chosen = [(o, "other-purchase") for o in bought_else[: self.negatives_per_positive]]
            room = self.negatives_per_positive - len(chosen)
            chosen += [(o, "no-purchase") for o in never[: max(room, 0)]]
            negatives = [
                (_rewrite(other.trajectory, other.instruction, intent, audit), source)
                for other, source in chosen
            ]
            if self.option_swaps and options:
                swapped = self._option_swap(positive, goal, rng)
                if swapped is not None:
                    negatives.append(
                        (_rewrite(swapped, positive.instruction, intent, audit), "other-option")
                    )
            for negative, source in negatives:
                triplets.append(_triplet(intent, pos, negative, source))
                if self.prefixes:
                    triplets += prefix_triplets(
                        intent, pos, negative, rng, limit=self.prefix_pairs_per_pair
                    )
        return triplets

    def _option_swap(self, outcome: _Outcome, goal: Goal, rng: random.Random) -> Trajectory | None:
        """The positive with its last click on one option replaced by another value of that
        option, replayed; None when no such change lowers the score."""
        assert outcome.purchase is not None
        product, options = outcome.purchase
        actions = [s.action for s in outcome.trajectory.steps if s.valid]
        kinds = list(options)
        rng.shuffle(kinds)
        for kind in kinds:
            value = options[kind]
            index = max(
                (
                    i
                    for i, a in enumerate(actions)
                    if (m := _CLICK_RE.match(a)) and " ".join(m.group(1).split()).lower() == value
                ),
                default=None,
            )
            if index is None:
                continue
            alternatives = [v for v in product.options.get(kind, ()) if v != value]
            rng.shuffle(alternatives)
            for alternative in alternatives:
                wrong = {**options, kind: alternative}
                if score_purchase(product, wrong, goal).score >= 1.0:
                    continue
                changed = [*actions[:index], f"click[{alternative}]", *actions[index + 1 :]]
                replayed = self._replay(outcome.trajectory.task_id, changed)
                if replayed is None or replayed[0].purchase is None:
                    continue
                env, steps = replayed
                return outcome.trajectory.model_copy(
                    update={
                        "steps": steps,
                        "episode_id": outcome.trajectory.episode_id + "~option",
                        "done": True,
                        "evaluation": None,
                    }
                )
        return None


def _rewrite(trajectory: Trajectory, old: str, new: str, goal: dict[str, Any]) -> Trajectory:
    """The trajectory with ``new`` as its intent and in place of ``old`` on every page; its
    ``info["hindsight_goal"]`` records the goal the label was computed against (the reward
    model never reads ``info``)."""
    return trajectory.model_copy(
        update={
            "intent": new,
            "info": {**trajectory.info, "hindsight_goal": goal},
            "initial_observation": trajectory.initial_observation.replace(old, new),
            "steps": [
                s.model_copy(update={"observation": s.observation.replace(old, new)})
                for s in trajectory.steps
            ],
            "evaluation": None,
        }
    )


def _triplet(intent: str, positive: Trajectory, negative: Trajectory, source: str) -> Triplet:
    return Triplet(
        intent=intent, positive=positive, negative=negative, task_id=positive.task_id, source=source
    )
