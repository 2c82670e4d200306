"""The exploration graph: many episodes of a policy, fanned out with ``Send``, saved as JSONL.

::

    START -> plan --Send(episode) x pending--> run_episode -> END

``plan`` lists the episodes the config asks for and drops those already in the output file,
so re-running the same command resumes where a crash (or Ctrl-C) stopped it; each finished
trajectory is appended and fsynced before the worker returns, so a crash loses at most the
episodes in flight. A failed episode (the environment crashed beyond repair, the policy
raised ...) is not written as a trajectory, so a rerun tries it again; its id and error are
appended to ``<output>.failures.jsonl`` (:func:`failures_path`). A spent LLM budget is no
episode's failure: :class:`~armap_agents.errors.BudgetExceeded` stops the run, the finished
episodes stay saved and a rerun with a larger budget does the rest. At most the config's
``max_concurrency`` episodes run at once (and no more than LangGraph's ``max_concurrency`` run
config key allows).

Where an episode runs is the ``executor``'s business (:mod:`armap_agents.executors`): in this
process by default, or on Ray workers (:class:`~armap_agents.ray_executor.RayExecutor`); either
way the trajectories come back here and only this process appends them, so durability and
resume do not depend on the executor.

Progress is streamed as custom events (``stream_mode="custom"``); :func:`explore` renders
them as a progress bar.

The output file records what made it in a manifest beside it, ``<output>.meta.json``: the
``provenance`` the caller gives (the CLI: the environment, its options, the policy) with the
config's ``max_steps`` and ``seed``. Resuming with other values is refused (a
:class:`~armap_agents.errors.CheckpointError` naming both), never mixed in; the choice of
tasks, the episodes per task and the concurrency may change. A file that is not a JSONL file of
trajectories is refused (:class:`~armap_agents.errors.ConfigError`) and left unchanged.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._jsonl import AppenderPool, check_jsonl, iter_jsonl
from armap_agents._progress import run_with_progress
from armap_agents._provenance import record_manifest
from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory, select_tasks
from armap_agents.environments.defaults import horizon
from armap_agents.errors import ConfigError
from armap_agents.executors import EpisodeExecutor, EpisodeJob, LocalExecutor
from armap_agents.policies import Policy
from armap_agents.types import Trajectory

__all__ = ["ExploreConfig", "ExploreResult", "build_explore_graph", "explore", "failures_path"]


class ExploreConfig(StrictConfig):
    """Which episodes to run: ``episodes_per_task`` seeded episodes on each task of ``split``."""

    split: str = "train"
    """Which tasks: train, test ..."""
    episodes_per_task: int = Field(4, ge=1)
    """Episodes on each task."""
    max_tasks: int | None = Field(None, ge=1)
    """Use only the first ``max_tasks`` tasks of the split, in the environment's order
    (None: all)."""
    task_ids: list[str] | None = None
    """Explicit task ids; overrides ``split``, ``tasks`` and ``max_tasks``."""
    tasks: list[str] | None = None
    """Keep only the split's tasks matching these names (see :func:`select_tasks`), e.g.
    ``["boil"]`` for ScienceWorld; applied before ``max_tasks``."""
    max_steps: int | None = Field(None, ge=1)
    """Steps per episode at most (None: the environment's horizon, its
    ``EnvironmentDefaults.max_steps``)."""
    seed: int = 0
    """Random seed of the run."""
    max_concurrency: int = Field(4, ge=1)
    """Episodes run at once."""


class _Episode(TypedDict):
    task_id: str
    index: int
    output_path: str
    max_steps: int


class ExploreState(TypedDict, total=False):
    output_path: str
    pending: list[_Episode]
    already_done: int
    finished: Annotated[int, operator.add]
    failed: Annotated[int, operator.add]
    successes: Annotated[int, operator.add]


class ExploreResult(BaseModel):
    """What one run of the graph did."""

    output_path: str
    already_done: int
    finished: int
    failed: int
    successes: int


def failures_path(output_path: str | Path) -> Path:
    """Where an exploration logs its failed episodes (id, task, error), one JSON per line."""
    path = Path(output_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".failures.jsonl")


def episode_id(task_id: str, index: int) -> str:
    """The stable identity of an episode, used to resume."""
    return f"{task_id}#{index}"


def trajectory_defines(
    config: ExploreConfig,
    provenance: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """What makes an exploration's trajectories, as its output's manifest records them:
    ``provenance`` (e.g. ``{"env": "game24", "env_options": {}, "policy": "random"}``) with
    ``config``'s ``seed`` and ``max_steps`` (``max_steps``: the horizon the episodes use, when
    the config leaves it to the environment)."""
    steps = config.max_steps if config.max_steps is not None else max_steps
    return {**(provenance or {}), "max_steps": steps, "seed": config.seed}


def build_explore_graph(
    policy: Policy | None,
    env_factory: EnvFactory,
    config: ExploreConfig | None = None,
    *,
    provenance: Mapping[str, Any] | None = None,
    executor: EpisodeExecutor | None = None,
):
    """A compiled exploration graph. Invoke it with ``{"output_path": "trajectories.jsonl"}``.

    ``provenance``: what made the trajectories besides ``config`` (JSON values naming the
    environment, its options, the policy), recorded in the output's manifest and compared
    when a run resumes (see the module's docstring). ``executor``: where the episodes run
    (default: :class:`~armap_agents.executors.LocalExecutor` of ``policy`` in environments of
    ``env_factory``; ``policy`` may then be None, as the executor has its own);
    ``env_factory`` also lists the split's tasks."""
    config = config or ExploreConfig()
    if executor is None:
        if policy is None:
            raise ConfigError("build_explore_graph needs a policy, or an executor that has one")
        executor = LocalExecutor(policy, env_factory)
    settings = config.model_dump(exclude={"max_steps", "seed"})
    appenders = AppenderPool()
    # LangGraph's pool gets a slot more than max_concurrency (see _progress.run_with_progress),
    # so the episodes themselves are bounded here: at most max_concurrency run at once
    slots = threading.BoundedSemaphore(config.max_concurrency)

    def plan(state: ExploreState) -> dict[str, Any]:
        path = state["output_path"]
        check_jsonl(path, Trajectory)  # a file that is not ours is refused before anything
        with closing(env_factory()) as env:
            steps = horizon(env, config.max_steps)
            tasks = (
                list(config.task_ids)
                if config.task_ids is not None
                else select_tasks(env.task_ids(config.split), config.tasks)
            )
        if not tasks:
            raise ConfigError(f"no task of split {config.split!r} matches {config.tasks}")
        if config.task_ids is None and config.max_tasks:
            tasks = tasks[: config.max_tasks]
        defines = trajectory_defines(config, provenance, steps)
        record_manifest(path, "trajectories", defines, settings)  # a mismatch is refused
        appenders.get(path, Trajectory)  # repairs a record torn by a crash, before fan-out
        done = {t.episode_id for t in iter_jsonl(path, Trajectory)}
        wanted = [(t, k) for t in tasks for k in range(config.episodes_per_task)]
        pending = [
            _Episode(task_id=t, index=k, output_path=path, max_steps=steps)
            for t, k in wanted
            if episode_id(t, k) not in done
        ]
        already = len(wanted) - len(pending)
        get_stream_writer()({"event": "start", "total": len(wanted), "done": already})
        return {"pending": pending, "already_done": already}

    def fan_out(state: ExploreState) -> list[Send] | str:
        return [Send("run_episode", ep) for ep in state["pending"]] or END

    def run_one(episode: _Episode) -> dict[str, Any]:
        job = EpisodeJob(
            task_id=episode["task_id"],
            seed=stable_seed(config.seed, episode["task_id"], episode["index"]),
            max_steps=episode["max_steps"],
            episode_id=episode_id(episode["task_id"], episode["index"]),
        )
        with slots:
            trajectory = executor.run(job)
        failed = trajectory.failed
        if failed:  # not recorded as a trajectory, so a rerun tries it again; the reason is kept
            appenders.get(failures_path(episode["output_path"])).append(
                {
                    "episode_id": trajectory.episode_id,
                    "task_id": trajectory.task_id,
                    "steps_done": len(trajectory.steps),
                    "error": trajectory.error,
                }
            )
        else:
            appenders.get(episode["output_path"], Trajectory).append(trajectory)
        success = bool(trajectory.evaluation and trajectory.evaluation.success)
        get_stream_writer()({"event": "episode", "failed": failed, "success": success})
        return {"finished": int(not failed), "failed": int(failed), "successes": int(success)}

    graph = StateGraph(ExploreState)
    graph.add_node("plan", plan)
    # a Send target: it takes the Send's payload, which LangGraph's annotations cannot type
    graph.add_node("run_episode", run_one)  # type: ignore[arg-type]
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["run_episode", END])
    graph.add_edge("run_episode", END)
    return graph.compile(name="armap-explore")


def explore(
    policy: Policy | None,
    env_factory: EnvFactory,
    output_path: str | Path,
    config: ExploreConfig | None = None,
    *,
    progress: bool = True,
    provenance: Mapping[str, Any] | None = None,
    executor: EpisodeExecutor | None = None,
) -> ExploreResult:
    """Run (or resume) an exploration into ``output_path`` with a progress bar;
    ``provenance`` and ``executor`` as for :func:`build_explore_graph`."""
    config = config or ExploreConfig()
    graph = build_explore_graph(
        policy, env_factory, config, provenance=provenance, executor=executor
    )
    state = run_with_progress(
        graph,
        {"output_path": str(output_path), "finished": 0, "failed": 0, "successes": 0},
        desc="explore",
        unit="episode",
        max_concurrency=config.max_concurrency,
        progress=progress,
    )
    return ExploreResult(
        output_path=str(output_path),
        already_done=state.get("already_done", 0),
        finished=state.get("finished", 0),
        failed=state.get("failed", 0),
        successes=state.get("successes", 0),
    )
