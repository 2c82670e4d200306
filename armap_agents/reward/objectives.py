"""Custom objectives that every planner adds to the learned reward.

The value a planner maximises is ``reward_model_score + sum(weight_i * objective_i(trajectory))``.
An objective is any callable ``Trajectory -> float`` (higher is better); weights set the
trade-off against the reward model's score. Two are shipped:

* :func:`fewer_steps`: minus the number of steps (prefer short solutions);
* :func:`numeric_attribute`: a number the environment reported for the trajectory (e.g. a
  price), read from ``trajectory.info``; negate it with ``sign=-1`` to prefer lower values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from armap_agents.types import Trajectory

__all__ = [
    "Objective",
    "WeightedObjective",
    "action_values",
    "combined_value",
    "fewer_steps",
    "numeric_attribute",
]

Objective = Callable[[Trajectory], float]


@dataclass(frozen=True)
class WeightedObjective:
    """An objective and its weight in the planner's value."""

    fn: Objective
    weight: float = 1.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or getattr(self.fn, "__name__", "objective")


def fewer_steps(trajectory: Trajectory) -> float:
    """``-len(steps)``: with a positive weight, shorter trajectories are worth more."""
    return -float(len(trajectory.steps))


def numeric_attribute(
    key: str, *, sign: float = 1.0, default: float = 0.0, only_if: str | None = None
) -> Objective:
    """An objective reading the number ``trajectory.info[key]`` (or ``info["env"][key]``,
    where :func:`~armap_agents.rollout.run_episode` keeps what the environment reported on the
    last step). ``sign=-1`` prefers lower values, e.g. ``numeric_attribute("price", sign=-1)``.
    A missing or non-numeric value counts as ``default``, and so does any value when
    ``only_if`` names a flag the environment did not report as true: WebShop's price paid is
    ``numeric_attribute("price", sign=-1, default=1000, only_if="purchased")`` (a viewed but
    unbought product is not cheap, it is no purchase)."""

    def objective(trajectory: Trajectory) -> float:
        reported = trajectory.info.get("env", {})
        if only_if is not None and not (trajectory.info.get(only_if) or reported.get(only_if)):
            return sign * default
        value = trajectory.info.get(key, reported.get(key, default))
        try:
            return sign * float(value)
        except (TypeError, ValueError):
            return sign * default

    objective.__name__ = f"{'-' if sign < 0 else ''}{key}"
    return objective


def combined_value(
    score: float, trajectory: Trajectory, objectives: Sequence[WeightedObjective] = ()
) -> float:
    """The planner's value: the reward-model score plus the weighted objectives."""
    return score + sum(o.weight * o.fn(trajectory) for o in objectives)


def action_values(
    scores: Sequence[float],
    candidates: Sequence[Trajectory],
    log_priors: Sequence[float],
    objectives: Sequence[WeightedObjective] = (),
    prior_weight: float = 1.0,
) -> list[float]:
    """The values of candidates a policy proposed by sampling: each candidate's
    :func:`combined_value` plus ``prior_weight`` times its log prior, the log of the share of
    the samples that proposed it (for a path, the sum over its steps).

    This is the mode of the policy re-weighted by ``exp(value)`` (the optimum of reward minus
    the KL divergence from the policy, with a Bradley-Terry critic's score in its own log-odds
    units): an action the policy proposes often keeps that weight where the critic cannot tell
    actions apart before their effect is seen, and the critic overrules it where it can.
    ``prior_weight=0`` ranks by the critic alone. Used by live reranking, beam search and the
    reward-guided node."""
    return [
        combined_value(score, candidate, objectives) + prior_weight * log_prior
        for score, candidate, log_prior in zip(scores, candidates, log_priors, strict=True)
    ]
