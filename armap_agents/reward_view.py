"""What the reward model reads of a trajectory: every action, and observations that fit.

Trajectories are often far longer than a reward model's window (a WebShop episode renders to
~1,600 MiniLM tokens, each page repeating the instruction), and what decides success is spread
over the whole episode: the item clicked early, the options chosen, the purchase at the end.
Cutting the oldest tokens (what a tokenizer does) keeps the end and drops the rest.

A :class:`TrajectoryView` keeps **every action** and fits the observations into a character
budget instead: each observation is first rewritten by the environment's rules (boilerplate
removed, e.g. the instruction WebShop repeats on every page), then all observations are
clipped to one common length, the largest that fits (the final observation may take a few
times more: it shows where the episode ended). Clipping keeps an observation's head, where
environments say what just happened.

The view is plain data (JSON), saved in the reward model's ``armap_reward.json``: training,
scoring, the TRL export and the HTTP service all render with it. The default view changes
nothing (:func:`~armap_agents.types.render_trajectory`'s text), which is how models saved
before views existed still score as they did. An environment proposes its view with a
``reward_view`` class attribute (see :func:`environment_view`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from armap_agents.config import StrictConfig
from armap_agents.errors import ConfigError
from armap_agents.types import Step, Trajectory, render_trajectory

__all__ = [
    "CHARS_PER_TOKEN",
    "FINAL_SHARE",
    "MIN_SHOWN_CHARS",
    "TrajectoryView",
    "environment_view",
    "parse_rendered",
    "window_budget",
]

FINAL_SHARE = 0.25
"""The share of a window's character budget that the final observation always keeps (see
``TrajectoryView.final_share``)."""

MIN_SHOWN_CHARS = 24
"""Under a budget with ``elide``, an observation that would keep fewer characters than this
(and is longer) is left out, label and all: a stub such as ``You w…`` tells the model nothing
and its ``Observation:`` label costs tokens the end state needs."""

CHARS_PER_TOKEN = 3.2
"""Characters per subword token assumed when a window in tokens becomes a budget in
characters (MiniLM on WebShop's rewritten pages: 3.4; English prose: ~4; numbers: fewer).
What still overflows is cut by the tokenizer, oldest first."""

_ELLIPSIS = " …"
_OBSERVATION = "Observation: "
_ACTION = "Action: "
_LABEL = len(_OBSERVATION) + 1  # with its line break


class TrajectoryView(StrictConfig):
    """How a trajectory becomes the reward model's text (see the module docstring).

    With the defaults (no budget, no rewrites) the text is exactly
    :func:`~armap_agents.types.render_trajectory`'s.
    """

    max_chars: int | None = Field(None, ge=64)
    """Budget of the whole trajectory text in characters (the intent is not counted); the
    observations share what the actions leave. None: see ``fit_window``."""
    fit_window: bool = True
    """With no ``max_chars``, the reward model sets it from its window
    (:func:`window_budget`); False (and nothing else set): the text of
    :func:`~armap_agents.types.render_trajectory`, cut by the tokenizer when too long."""
    max_observation_chars: int | None = Field(None, ge=8)
    """Cap of each observation but the final one (after rewriting); None: no cap."""
    max_final_observation_chars: int | None = Field(None, ge=8)
    """Cap of the final observation; None: no cap."""
    final_weight: int = Field(4, ge=1)
    """Under a budget, the final observation may be this many times longer than the others."""
    final_share: float | None = Field(None, ge=0.0, le=1.0)
    """Under a budget, the final observation (the end state, which usually decides success)
    keeps at least this share of ``max_chars`` (as far as it is that long), however little the
    actions leave the other observations; were the text still too long, the tokenizer cuts the
    oldest tokens, not the end. :meth:`for_window` sets it (:data:`FINAL_SHARE`) for new models;
    None (models saved before 2026-12-07): no floor, the end state can be clipped away."""
    elide: bool | None = None
    """Under a budget, observations that would be clipped to less than :data:`MIN_SHOWN_CHARS`
    (and empty ones) are left out with their ``Observation:`` label, and the characters the
    shown ones leave go to the final observation (up to its length): on a 14-step episode in a
    128-token window the labels alone took two thirds of the budget and the end state was cut
    to its first 76 characters. :meth:`for_window` sets it for new models; None or False
    (models saved before 2026-12-08): every observation keeps its label, shown or not."""
    max_action_chars: int | None = Field(None, ge=8)
    """Cap of each action (actions are kept, but a runaway LLM reply is not an action);
    None: no cap."""
    rewrite: tuple[tuple[str, str], ...] = ()
    """``(pattern, replacement)`` regular-expression substitutions applied in order to every
    observation: an environment's boilerplate out, its separators shortened. Patterns come
    from the code of an environment or an operator, never from a client."""

    @field_validator("rewrite")
    @classmethod
    def _compiles(cls, rules: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for pattern, _ in rules:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"rewrite pattern {pattern!r} does not compile: {exc}") from None
        return rules

    @property
    def is_identity(self) -> bool:
        """True when the view renders exactly :func:`render_trajectory`'s text."""
        return (
            self.max_chars is None
            and not self.fit_window
            and self.max_observation_chars is None
            and self.max_final_observation_chars is None
            and self.max_action_chars is None
            and not self.rewrite
        )

    @classmethod
    def identity(cls) -> TrajectoryView:
        """The view of reward models saved before views existed: the text of
        :func:`~armap_agents.types.render_trajectory`, unchanged."""
        return cls(fit_window=False)

    def for_window(self, max_length: int) -> TrajectoryView:
        """This view with its budget set for a window of ``max_length`` tokens (when it has
        none and ``fit_window``); what a reward model stores."""
        if self.max_chars is not None or not self.fit_window:
            return self
        return self.model_copy(update={"max_chars": window_budget(max_length)}).for_new_model()

    def for_new_model(self) -> TrajectoryView:
        """This view with the budget rules of a newly trained model (the end state's floor,
        :data:`FINAL_SHARE`, and ``elide``) where it left them unset; views saved with a model
        keep what they recorded."""
        update: dict[str, Any] = {}
        if self.final_share is None:
            update["final_share"] = FINAL_SHARE
        if self.elide is None:
            update["elide"] = True
        return self.model_copy(update=update)

    # -- rendering -------------------------------------------------------------------------
    def observation(self, text: str) -> str:
        """One observation after the rewrite rules (not clipped)."""
        for pattern, replacement in self.rewrite:  # `re` keeps the compiled patterns
            text = re.sub(pattern, replacement, text)
        return text.strip() if self.rewrite else text

    def render(self, trajectory: Trajectory) -> str:
        """The reward model's text of ``trajectory`` (without the intent)."""
        if self.is_identity:
            return render_trajectory(trajectory)
        observations = [self.observation(trajectory.initial_observation)]
        observations += [self.observation(s.observation) for s in trajectory.steps]
        actions = [
            _clip(s.action, _cap(len(s.action), self.max_action_chars)) for s in trajectory.steps
        ]
        # an action still awaiting its observation (a live planner scores it before acting):
        # the state it is taken from is the end state that keeps the final observation's room
        pending = bool(trajectory.steps) and not observations[-1]
        shown = observations[:-1] if pending else observations
        caps = [_cap(len(o), self.max_observation_chars) for o in shown[:-1]]
        caps.append(_cap(len(shown[-1]), self.max_final_observation_chars))
        if self.max_chars is not None:  # (fit_window without a window: no budget)
            room = self.max_chars - sum(len(_ACTION) + len(a) + 1 for a in actions)
            floor = int((self.final_share or 0.0) * self.max_chars)
            if self.elide:
                caps = _fit_elided(caps, room, self.final_weight, floor)
            else:
                room -= len(observations) * _LABEL
                caps = _fit(caps, room, self.final_weight, floor)
        if pending:
            caps.append(0)
        lines = [_OBSERVATION + _clip(observations[0], caps[0])]
        for action, observation, cap in zip(actions, observations[1:], caps[1:], strict=True):
            lines.append(_ACTION + action)
            lines.append(_OBSERVATION + _clip(observation, cap))
        if self.elide:  # what is left out leaves no label either
            lines = [line for line in lines if line != _OBSERVATION]
        return "\n".join(lines)

    def render_text(self, text: str) -> str:
        """A trajectory already rendered by :func:`render_trajectory` (e.g. sent to the reward
        service as a string), re-rendered through this view; text in another form is kept."""
        if self.is_identity:
            return text
        trajectory = parse_rendered(text)
        return text if trajectory is None else self.render(trajectory)


def window_budget(max_length: int) -> int:
    """Characters of trajectory text that fit a window of ``max_length`` tokens beside an
    intent (a quarter of the window, at most 64 tokens, is kept for it)."""
    reserve = min(64, max_length // 4)
    return max(64, int(CHARS_PER_TOKEN * (max_length - reserve)))


def _cap(length: int, cap: int | None) -> int:
    return length if cap is None else min(length, cap)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut), the head kept."""
    if len(text) <= limit:
        return text
    if limit <= len(_ELLIPSIS):  # no room to say that it was cut
        return text[:limit]
    return text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def _fit(caps: list[int], budget: int, final_weight: int, final_floor: int = 0) -> list[int]:
    """The observations' lengths under ``budget``: one level ``c`` for all (the final one up to
    ``final_weight * c``, and at least ``final_floor``), the largest whose total fits; lengths
    under the level are kept. When even level 0 does not fit, the others get nothing and the
    final one its floor."""
    if sum(caps) <= budget:
        return caps
    floor = min(caps[-1], final_floor)

    def allot(level: int) -> list[int]:
        out = [min(cap, level) for cap in caps[:-1]]
        return [*out, max(floor, min(caps[-1], final_weight * level))]

    low, high = 0, max(caps)
    while low < high:  # the largest level whose total fits
        mid = (low + high + 1) // 2
        if sum(allot(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return allot(low)


def _fit_elided(caps: list[int], budget: int, final_weight: int, final_floor: int) -> list[int]:
    """Like :func:`_fit`, with each shown observation paying its label and observations that
    would keep fewer than :data:`MIN_SHOWN_CHARS` characters left out (0); the final one is
    always shown and takes what the others leave, up to its length."""

    def others(level: int) -> list[int]:
        kept = [(min(cap, level), cap) for cap in caps[:-1]]
        return [k if k == cap or k >= MIN_SHOWN_CHARS else 0 for k, cap in kept]

    def cost(lengths: list[int]) -> int:
        return sum(n + _LABEL for n in lengths if n)

    def final(level: int) -> int:
        return max(min(caps[-1], final_floor), min(caps[-1], final_weight * level))

    low, high = 0, max(caps)
    while low < high:  # the largest level whose total fits
        mid = (low + high + 1) // 2
        if cost(others(mid)) + _LABEL + final(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    shown = others(low)
    left = budget - cost(shown) - _LABEL
    return [*shown, max(final(low), min(caps[-1], left))]


def parse_rendered(text: str) -> Trajectory | None:
    """A trajectory back from :func:`~armap_agents.types.render_trajectory`'s text (lines
    ``Observation: ...`` and ``Action: ...``, observations may span lines), or None when
    ``text`` is not in that form. The task fields are left empty."""
    if not text.startswith(_OBSERVATION):
        return None
    parts = re.split(r"\n(?=Action: )|\n(?=Observation: )", text)
    if len(parts) % 2 == 0:
        return None
    observations, actions = parts[0::2], parts[1::2]
    if not all(o.startswith(_OBSERVATION) for o in observations) or not all(
        a.startswith(_ACTION) and "\n" not in a for a in actions
    ):
        return None
    steps = [
        Step(action=a[len(_ACTION) :], observation=o[len(_OBSERVATION) :])
        for a, o in zip(actions, observations[1:], strict=True)
    ]
    return Trajectory(
        task_id="",
        intent="",
        initial_observation=observations[0][len(_OBSERVATION) :],
        steps=steps,
    )


def environment_view(constructor: Any) -> TrajectoryView:
    """The view an environment class proposes (its ``reward_view`` attribute), else the
    default view."""
    view = getattr(constructor, "reward_view", None)
    if view is None:
        return TrajectoryView()
    if isinstance(view, TrajectoryView):
        return view
    if isinstance(view, dict):
        return TrajectoryView.model_validate(view)
    raise ConfigError(
        f"{getattr(constructor, '__name__', constructor)!r}.reward_view is a "
        f"{type(view).__name__}: make it a TrajectoryView"
    )


def token_lengths(tokenizer: Any, intents: Sequence[str], texts: Sequence[str]) -> list[int]:
    """How many tokens each ``(intent, text)`` pair takes untruncated (for reports)."""
    encoded = tokenizer(list(intents), list(texts), truncation=False, return_token_type_ids=False)
    return [len(ids) for ids in encoded["input_ids"]]
