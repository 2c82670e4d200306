"""The environment protocol every environment implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from armap_agents.types import Evaluation, Observation, StepResult, Trajectory, Triplet

__all__ = ["Environment", "EnvFactory", "Relabeler"]


@runtime_checkable
class Environment(Protocol):
    """A task environment an agent acts in.

    * ``reset(task_id)`` starts an episode and returns the instruction and first observation;
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
