"""The environment protocol every environment implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from armap_agents.types import Evaluation, Observation, StepResult, Trajectory, Triplet

__all__ = ["Environment", "EnvFactory", "Relabeler", "select_tasks"]


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
    """

    name: str

    def task_ids(self, split: str) -> list[str]: ...

    def reset(self, task_id: str) -> Observation: ...

    def step(self, action: str) -> StepResult: ...

    def valid_actions(self) -> list[str] | None: ...

    def evaluate(self) -> Evaluation: ...

    def close(self) -> None: ...


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
