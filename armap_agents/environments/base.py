"""The environment protocol every environment implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from armap_agents.errors import ConfigError
from armap_agents.types import Evaluation, Observation, StepResult, Trajectory, Triplet

__all__ = ["Environment", "EnvFactory", "ExpertHook", "Relabeler", "expert_action", "select_tasks"]


@runtime_checkable
class Environment(Protocol):
    """A task environment an agent acts in.

    * ``reset(task_id)`` starts an episode and returns the instruction and first observation;
      a task id the environment does not have raises ``KeyError`` (``armap plan`` reports it);
    * ``step(action)`` never raises on bad actions: an illegal or unparsable action returns
      ``StepResult(valid=False)`` with an observation that says why, the state unchanged;
    * ``valid_actions()`` lists the legal actions now, or ``None`` when the environment cannot
      enumerate them;
    * ``evaluate()`` is the environment's own verdict, exposed for metrics only: planners must
      never read it.

    Optional class attributes: ``defaults`` (an
    :class:`~armap_agents.environments.defaults.EnvironmentDefaults`: the horizon, the reward
    model's window, quickstart sizes), ``reward_view`` (a
    :class:`~armap_agents.reward_view.TrajectoryView`), ``prompt_guide`` and ``relabeler``.
    """

    name: str

    def task_ids(self, split: str) -> list[str]: ...

    def reset(self, task_id: str) -> Observation: ...

    def step(self, action: str) -> StepResult: ...

    def valid_actions(self) -> list[str] | None: ...

    def evaluate(self) -> Evaluation: ...

    def close(self) -> None: ...


@runtime_checkable
class ExpertHook(Protocol):
    """An environment that knows what an expert would do next (optional).

    ``expert_action()`` returns the action an expert takes *from the current state* (after
    any detour the episode took), or ``None`` when it has none (e.g. the episode is over or
    the task cannot be won from here). It may read what only the environment knows (a
    solver, the gold plan, the target product): it serves the benchmark stand-in
    :class:`~armap_agents.policies.ExpertPolicy`, never a planner, and must not change the
    episode's state.
    """

    def expert_action(self) -> str | None: ...


def require_expert_hook(env: Environment) -> None:
    """Raise ``ConfigError`` unless ``env`` has an :class:`ExpertHook` ``expert_action``."""
    if not callable(getattr(env, "expert_action", None)):
        raise ConfigError(
            f"environment {getattr(env, 'name', type(env).__name__)!r} has no expert_action() "
            "hook, which an expert:EPSILON policy needs (see ExpertHook)"
        )


def expert_action(env: Environment) -> str | None:
    """``env``'s :class:`ExpertHook` answer now (``ConfigError`` when it has no hook)."""
    require_expert_hook(env)
    return env.expert_action()  # type: ignore[attr-defined]


EnvFactory = Callable[[], Environment]
"""A zero-argument callable returning a fresh environment (one per concurrent episode)."""


@runtime_checkable
class Relabeler(Protocol):
    """An environment's programmatic hindsight synthesizer.

    Given all explored trajectories of one task, return ``(intent, positive, negative)``
    triplets whose labels the environment can verify without an LLM.
    """

    def relabel(self, trajectories: list[Trajectory], seed: int) -> list[Triplet]: ...


def select_tasks(task_ids: list[str], patterns: list[str] | None) -> list[str]:
    """The ids matching any pattern, in order: a pattern matches an id equal to it, or a
    ``/``-separated part of the id equal to it or starting with it plus ``-``. So ``boil``
    selects ScienceWorld's ``boil/0``, ``boil/1`` ...; ``pick_and_place_simple`` selects ALFWorld's
    ``train/pick_and_place_simple-Book-None-Desk-310/trial_...``; ``905`` Game of 24's ``905``.
    ``None`` keeps every id."""
    if not patterns:
        return list(task_ids)

    def matches(task_id: str, pattern: str) -> bool:
        if task_id == pattern:
            return True
        return any(part == pattern or part.startswith(pattern + "-") for part in task_id.split("/"))

    return [t for t in task_ids if any(matches(t, p) for p in patterns)]
