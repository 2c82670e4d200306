"""Where episodes run: the seam under the graphs' episode nodes.

The exploration graph's ``run_episode`` node and Best-of-N's ``rollout`` node describe an
episode as an :class:`EpisodeJob` and hand it to an :class:`EpisodeExecutor`, which plays it
and returns its :class:`~armap_agents.types.Trajectory`. The graph (fan-out with ``Send``,
bounded by ``max_concurrency``; what is recorded and where) is the same whatever runs the
episode:

* :class:`LocalExecutor` (the default): in this process, in the graph's worker thread, with an
  environment from the graph's factory (an :class:`~armap_agents.environments.pool.EnvPool`
  keeps costly ones warm);
* :class:`~armap_agents.ray_executor.RayExecutor` (extra ``[ray]``): in Ray actors, each
  holding a warm environment and the policy, on one machine or a cluster.

An executor is called from several graph threads at once and must be thread-safe. Its
``run`` follows :func:`~armap_agents.rollout.run_episode`'s contract: a failed episode comes
back with its ``error`` set; a spent usage budget raises
:class:`~armap_agents.errors.BudgetExceeded`. An executor may also have ``callbacks``:
LangChain callbacks for the LLM requests the driver makes itself (an evaluation adds them to
its graphs' config; the Ray executor's count those requests in the cluster's budget).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from armap_agents.environments.base import EnvFactory
from armap_agents.policies import Policy
from armap_agents.rollout import run_episode
from armap_agents.types import Trajectory

__all__ = ["EpisodeExecutor", "EpisodeJob", "LocalExecutor", "play"]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to play: the arguments of :func:`~armap_agents.rollout.run_episode`
    besides the environment and the policy (plain data: it travels to remote workers)."""

    task_id: str
    seed: int
    max_steps: int | None = None
    """Steps at most (None: the environment's horizon)."""
    greedy: bool = False
    episode_id: str = ""
    prefix: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def play(job: EpisodeJob, env_factory: EnvFactory, policy: Policy) -> Trajectory:
    """Play ``job`` with ``policy`` in an environment borrowed from ``env_factory``."""
    with closing(env_factory()) as env:
        return run_episode(
            env,
            policy,
            job.task_id,
            seed=job.seed,
            max_steps=job.max_steps,
            greedy=job.greedy,
            episode_id=job.episode_id,
            prefix=job.prefix,
            notes=job.notes,
        )


@runtime_checkable
class EpisodeExecutor(Protocol):
    """Plays episodes for a graph; thread-safe (see the module's docstring)."""

    def run(self, job: EpisodeJob) -> Trajectory:
        """Play ``job`` and return its trajectory (``error`` set when the episode failed)."""
        ...


class LocalExecutor:
    """Episodes in this process, in the calling thread: ``policy`` in an environment of
    ``env_factory`` per episode (what the graphs do without an executor)."""

    def __init__(self, policy: Policy, env_factory: EnvFactory) -> None:
        self.policy = policy
        self.env_factory = env_factory

    def run(self, job: EpisodeJob) -> Trajectory:
        return play(job, self.env_factory, self.policy)
