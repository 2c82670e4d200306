"""What an environment declares about itself: its horizon, the reward model's window, and the
sizes of a quickstart run on it.

Every command uses an environment's declarations unless told otherwise, so a world whose tasks
take 14 moves says so once::

    class Maze:
        name = "maze"
        defaults = EnvironmentDefaults(max_steps=14)
        ...

and ``armap explore``, ``plan``, ``evaluate`` and ``quickstart`` play 14 steps without a
``--max-steps``. An environment that declares nothing gets :class:`EnvironmentDefaults`'s
values (``environment_defaults`` reads the ``defaults`` attribute of an environment class, of
an instance, or of the class a factory makes).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from armap_agents.config import StrictConfig
from armap_agents.errors import ConfigError

__all__ = [
    "DEFAULT_PLANNERS",
    "EnvironmentDefaults",
    "QuickstartPlan",
    "QuickstartSizes",
    "environment_defaults",
    "horizon",
]

DEFAULT_PLANNERS = ("best_of_n", "reflexion", "mcts")
"""The planners a quickstart evaluates (the order of ``armap_agents.planners.PLANNERS``; a
test checks the two agree: this module sits below the planner registry)."""


class QuickstartPlan(StrictConfig):
    """The sizes of one quickstart run (:func:`armap_agents.pipeline.run_pipeline`); every
    other setting is its config's default."""

    train_tasks: int | None
    """Train tasks explored (None: the whole split)."""
    episodes: int = Field(ge=1)
    """Episodes explored on each train task."""
    max_train: int | None
    """Training triplets used at most (None: all)."""
    epochs: int = Field(ge=1)
    """Passes of the reward model's training over its triplets."""
    test_tasks: int | None
    """Test tasks evaluated (None: the whole split)."""
    n: int = Field(ge=1)
    """Best-of-N's N (the other planners get its budget)."""
    max_steps: int | None = Field(None, ge=1)
    """Steps per episode (None: the environment's horizon, ``EnvironmentDefaults.max_steps``)."""
    max_length: int | None = Field(None, ge=16)
    """The reward model's window in tokens (None: the environment's ``max_length``)."""
    families: tuple[str, ...] | None = None
    """Task families the tasks are spread over, round-robin (None: the splits in order)."""
    planners: tuple[str, ...] = DEFAULT_PLANNERS
    """The planners evaluated beside Sampling, Greedy and the oracle."""


def _generic_sizes() -> QuickstartSizes:
    """Sizes for an environment we know nothing about: small enough for a slow one."""
    return QuickstartSizes(
        full=QuickstartPlan(
            train_tasks=200, episodes=4, max_train=2000, epochs=2, test_tasks=20, n=8
        ),
        tiny=QuickstartPlan(
            train_tasks=20, episodes=4, max_train=300, epochs=2, test_tasks=3, n=4, max_steps=10
        ),
        llm_full=QuickstartPlan(
            train_tasks=10, episodes=1, max_train=None, epochs=2, test_tasks=5, n=4
        ),
        llm_tiny=QuickstartPlan(
            train_tasks=3, episodes=1, max_train=None, epochs=2, test_tasks=2, n=2, max_steps=10
        ),
    )


class QuickstartSizes(StrictConfig):
    """A quickstart's sizes: ``full`` and ``tiny``, with the random policy and with a chat
    model (``llm_*``: every step is an LLM call, so much smaller runs)."""

    full: QuickstartPlan
    tiny: QuickstartPlan
    llm_full: QuickstartPlan
    llm_tiny: QuickstartPlan
    families: tuple[str, ...] | None = None
    """Task families every plan spreads its tasks over (a plan's own ``families`` wins)."""

    def plan(self, size: str, *, llm: bool) -> QuickstartPlan:
        """The plan of ``size`` (``full`` or ``tiny``), with a chat model when ``llm``: the
        sizes' ``families`` unless the plan has its own, and with a chat model Best-of-N only
        unless the plan names its planners."""
        if size not in ("full", "tiny"):
            raise ConfigError(f"unknown quickstart size {size!r}: use 'full' or 'tiny'")
        plan: QuickstartPlan = getattr(self, f"llm_{size}" if llm else size)
        update: dict[str, Any] = {}
        if plan.families is None and self.families is not None:
            update["families"] = self.families
        if llm and "planners" not in plan.model_fields_set:
            update["planners"] = ("best_of_n",)
        return plan.model_copy(update=update)


class EnvironmentDefaults(StrictConfig):
    """An environment's own defaults (its ``defaults`` class attribute); each command uses
    them unless an option overrides them."""

    max_steps: int = Field(20, ge=1)
    """The episode horizon: steps (valid or not) before an episode is cut."""
    max_length: int = Field(512, ge=16)
    """The reward model's window in tokens (``armap train --max-length``). Declared, it is
    every training's default; not declared, each training takes the window that fits its data
    (:func:`~armap_agents.reward.window.data_window`: 95% of the texts whole, at most 128
    tokens), and 512 stands where no data is at hand (an export of data alone)."""
    quickstart: QuickstartSizes = Field(default_factory=_generic_sizes)
    """The sizes of ``armap quickstart`` on this environment."""


def environment_defaults(source: Any) -> EnvironmentDefaults:
    """The defaults ``source`` declares: an environment class or instance, or a callable
    making one (a ``functools.partial`` of a class is looked through); its ``defaults``
    attribute, else :class:`EnvironmentDefaults`' own. A ``defaults`` that is not an
    :class:`EnvironmentDefaults` (or a dict of its fields) is a :class:`ConfigError`."""
    for candidate in (source, getattr(source, "func", None)):
        declared = getattr(candidate, "defaults", None)
        if declared is None:
            continue
        if isinstance(declared, EnvironmentDefaults):
            return declared
        if isinstance(declared, dict):
            return EnvironmentDefaults.model_validate(declared)
        raise ConfigError(
            f"{getattr(candidate, '__name__', type(candidate).__name__)!r}.defaults is a "
            f"{type(declared).__name__}: make it an EnvironmentDefaults"
        )
    return EnvironmentDefaults()


def horizon(env: Any, max_steps: int | None = None) -> int:
    """``max_steps`` if given, else the horizon ``env`` declares (see
    :func:`environment_defaults`)."""
    return max_steps if max_steps is not None else environment_defaults(env).max_steps
