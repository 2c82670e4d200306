"""Count what a planner makes an environment do: the episodes it executes and their steps.

Planners differ in how often they act on the world, not only in how often they call the
policy: Best-of-N plays N episodes, MCTS and beam search replay prefixes from ``reset()``, live
reranking plays one. Where actions cannot be undone (a purchase, an e-mail), that count is
what a method costs. :class:`EpisodeCounter` is an
:data:`~armap_agents.environments.base.EnvFactory` that wraps another and counts, over every
environment it hands out: ``episodes``, resets followed by at least one step (a reset that
only reads the task's instruction is not an episode), and ``steps``, every ``step()`` call.
:func:`~armap_agents.evaluation.evaluate_planners` records both per method and task.
"""

from __future__ import annotations

import threading
from typing import Any

from armap_agents.environments.base import EnvFactory, Environment
from armap_agents.types import Observation, StepResult

__all__ = ["EpisodeCounter"]


class _Counted:
    """An environment whose ``reset``/``step`` are counted; everything else is the
    environment's own."""

    def __init__(self, env: Environment, counter: EpisodeCounter) -> None:
        self._env = env
        self._counter = counter
        self._fresh = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_env"], name)

    def reset(self, task_id: str) -> Observation:
        observation = self._env.reset(task_id)
        self._fresh = True
        return observation

    def step(self, action: str) -> StepResult:
        self._counter._add(new_episode=self._fresh)
        self._fresh = False
        return self._env.step(action)


class EpisodeCounter:
    """An environment factory that counts the episodes and steps of the environments it
    builds (thread-safe).

    Example::

        counter = EpisodeCounter(Game24Env)
        graph = build_planner("mcts", policy, counter, model)
        graph.invoke({"task_id": "923"})
        print(counter.episodes, counter.steps)  # replays from reset() included
    """

    def __init__(self, factory: EnvFactory) -> None:
        self.factory = factory
        self.episodes = 0
        """Resets followed by at least one step, over every environment built so far."""
        self.steps = 0
        """``step()`` calls, over every environment built so far."""
        self._lock = threading.Lock()

    def __call__(self) -> Environment:
        return _Counted(self.factory(), self)

    def _add(self, *, new_episode: bool) -> None:
        with self._lock:
            self.steps += 1
            self.episodes += new_episode
