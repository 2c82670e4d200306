"""Exploration guided by a critic: a planner (ARMAP-B or ARMAP-M) on each task, keeping every
trajectory it made, not only its pick: :func:`explore_with_planner`.

What the planner keeps of a task:

* ``best_of_n``: all N candidates (``state["candidates"]``), each with the critic's score and
  whether it was the pick;
* ``mcts``: every trajectory the search evaluated: each evaluated node's actions followed by
  its rollout (the partial trajectory itself with ``evaluation="partial"``), one per distinct
  action sequence. The search keeps only actions in its tree, so each is replayed from
  ``reset()`` to record its observations and the environment's verdict: the replay MCTS uses
  to reach a node, no policy call.

Each kept trajectory carries its ``evaluation`` (metrics and relabelers only: the planner never
read it) and ``policy_calls`` (the decisions of its own episode or rollout; the search's total,
expansions included, is the task's). A trajectory whose episode failed (the environment or the
policy raised) is not kept; it is logged in ``<output>.failures.jsonl``, like exploration's.

A task is the unit of resume: when its search ends, everything it kept is appended as one
record (a :class:`GuidedSearch`) to the searches file, one line, fsynced; the trajectory file
is written from those records, in task order, once every task is done. A crash loses at most
the task in flight and never duplicates one (a rerun skips the tasks recorded, and writes
the same file as an uninterrupted run); a spent LLM budget
(:class:`~armap_agents.errors.BudgetExceeded`) stops the run the same way. The trajectory
file's manifest records the environment, the policy, the planner, its config and the critic's
weights (their SHA-256), so a rerun with another critic is refused, not mixed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from armap_agents.errors import AllCandidatesFailed, ArmapError, ConfigError
from armap_agents.pipeline.sources import (
    EnvSource,
    configured,
    describe,
    env_source,
    policy_name,
    policy_object,
    scorer_object,
)
from armap_agents.pipeline.stages import Echo, say
from armap_agents.types import Trajectory

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.llm import UsageTracker
    from armap_agents.policies import Policy
    from armap_agents.reward.scorer import RewardScorer

__all__ = [
    "GUIDING_PLANNERS",
    "GuidedExploreResult",
    "GuidedSearch",
    "critic_identity",
    "explore_with_planner",
    "guided_planner_config",
    "searches_path",
]

GUIDING_PLANNERS = ("best_of_n", "mcts")
"""The planners that can guide an exploration: those that make several trajectories per task."""

WEIGHTS_DIGESTS = "weights_sha256"
"""The key of the weight files' SHA-256 in a saved model's ``armap_reward.json`` (the reward
model's ``WEIGHTS_DIGESTS``, read here without loading torch)."""


class GuidedSearch(BaseModel):
    """One task's search in a guided exploration (a line of the searches file)."""

    task_id: str
    picked: str
    """The episode id of the planner's pick among ``trajectories`` ("" when it is not one of
    them: its replay failed)."""
    picked_success: bool
    """Whether the environment judged the pick a success (metrics only)."""
    policy_calls: int = Field(ge=0)
    """What the whole search spent (MCTS: expansions and rollouts)."""
    reward_model_calls: int = Field(ge=0)
    failed_trajectories: int = 0
    """Trajectories of the search that failed (not kept)."""
    trajectories: list[Trajectory]


class GuidedExploreResult(BaseModel):
    """What a guided exploration holds (resumed tasks included)."""

    output_path: str
    tasks: int
    """Tasks with a finished search."""
    already_done: int
    """Of them, those done by an earlier run."""
    failed_tasks: int
    """Tasks of this run whose every trajectory failed (logged; a rerun tries them again)."""
    trajectories: int
    successes: int
    """Kept trajectories the environment judged a success."""
    pick_successes: int
    """Tasks whose pick the environment judged a success."""
    policy_calls: int
    reward_model_calls: int


def searches_path(output_path: str | Path) -> Path:
    """Where a guided exploration into ``output_path`` keeps its per-task searches:
    ``<name>.searches.jsonl`` beside it (in a round of ``armap improve``,
    :data:`~armap_agents.layout.SEARCHES_FILE`)."""
    path = Path(output_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".searches.jsonl")


def critic_identity(critic: str | Path | RewardScorer) -> dict[str, Any]:
    """What identifies a critic in a manifest: a saved model's weight digests (so a retrained
    or altered model is told apart wherever it lies), else its resolved path, or an object's
    class."""
    if not isinstance(critic, str | Path):
        return {"object": describe(critic)}
    if str(critic).startswith(("http://", "https://")):
        return {"url": str(critic)}
    from armap_agents.reward.configs import CONFIG_FILE

    try:
        saved = json.loads((Path(critic) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None
    digests = saved.get(WEIGHTS_DIGESTS) if isinstance(saved, dict) else None
    if isinstance(digests, dict) and digests:
        return {WEIGHTS_DIGESTS: digests}
    return {"path": str(Path(critic).resolve())}


def _natural_key(text: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _success(trajectory: Trajectory) -> bool:
    return bool(trajectory.evaluation and trajectory.evaluation.success)


def _best_of_n_kept(state: Mapping[str, Any], task_id: str) -> tuple[list[Trajectory], int, str]:
    """Every candidate of a Best-of-N state: ``(kept, failed, picked episode id)``."""
    kept, failed = [], 0
    best_index = state["best_index"]
    picked = ""
    for i, candidate in enumerate(state["candidates"]):
        if candidate.failed:
            failed += 1
            continue
        episode = f"{task_id}@{i}"
        info = {
            **candidate.info,
            "planner": "best_of_n",
            "score": state["scores"][i],
            "picked": i == best_index,
        }
        kept.append(candidate.model_copy(update={"episode_id": episode, "info": info}))
        if i == best_index:
            picked = episode
    return kept, failed, picked


def _mcts_kept(
    state: Mapping[str, Any], task_id: str, factory: EnvFactory, policy: Policy
) -> tuple[list[Trajectory], int, str]:
    """Every trajectory an MCTS search evaluated, replayed: ``(kept, failed, picked id)``."""
    from armap_agents.graphs.mcts import actions_to
    from armap_agents.rollout import run_episode

    nodes = state["nodes"]
    evaluated: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for node in sorted(nodes.values(), key=lambda n: _natural_key(n["id"])):
        if node["value"] is None or "error" in node:
            continue  # never evaluated, or its evaluation failed (cut from the tree)
        actions = tuple(actions_to(nodes, node["id"]) + list(node["rollout"]))
        evaluated.setdefault(actions, []).append(node)
    best_actions = tuple(state["best"].actions)
    kept, failed, picked = [], 0, ""
    for i, (actions, at) in enumerate(evaluated.items()):
        episode = f"{task_id}@{i}"
        with closing(factory()) as env:
            replayed = run_episode(
                env,
                policy,
                task_id,
                seed=0,
                prefix=actions,
                max_steps=len(actions),
                episode_id=episode,
            )
        if replayed.failed:
            failed += 1
            continue
        first = at[0]
        info = {
            **replayed.info,
            "planner": "mcts",
            "candidate": i,
            "nodes": [n["id"] for n in at],
            "score": first["score"],
            "picked": actions == best_actions,
        }
        kept.append(
            replayed.model_copy(update={"policy_calls": len(first["rollout"]), "info": info})
        )
        if actions == best_actions:
            picked = episode
    return kept, failed, picked


def guided_planner_config(
    planner: str, config: BaseModel | Mapping[str, Any] | None, seed: int, max_steps: int | None
) -> BaseModel:
    """The config of ``planner`` guiding an exploration: ``config`` (an object or a mapping)
    with the run's ``seed`` and horizon ``max_steps``; only ``best_of_n`` (selecting with the
    critic) and ``mcts`` guide one (a :class:`ConfigError` otherwise)."""
    from armap_agents.planners import planner_spec

    if planner not in GUIDING_PLANNERS:
        raise ConfigError(
            f"planner {planner!r} cannot guide an exploration: choose "
            f"{' or '.join(GUIDING_PLANNERS)} (they make several trajectories per task)"
        )
    config_type = planner_spec(planner).config_type
    made = configured(config_type, config, {"seed": seed}, what=f"{planner} config")
    if max_steps is not None:
        made = made.model_copy(update={"max_steps": max_steps})
    if getattr(made, "selection", "reward") != "reward":
        raise ConfigError(
            "a guided exploration's best_of_n selects with the critic: selection='reward'"
        )
    return made


def explore_with_planner(
    *,
    out: str | Path,
    critic: str | Path | RewardScorer,
    task_ids: Sequence[str],
    env: str | EnvFactory | EnvSource = "game24",
    env_options: Mapping[str, Any] | None = None,
    policy: str | Policy = "random",
    planner: str = "best_of_n",
    config: BaseModel | Mapping[str, Any] | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    max_concurrency: int = 4,
    provenance: Mapping[str, Any] | None = None,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    progress: bool = True,
) -> GuidedExploreResult:
    """Run ``planner`` (``best_of_n`` or ``mcts``, its ``config`` an object or a mapping of
    its fields) guided by ``critic`` (a reward-model directory or URL, or any
    :class:`~armap_agents.reward.scorer.RewardScorer`) over ``policy`` on each of
    ``task_ids`` in ``env``, and write every trajectory it made to the JSONL file ``out``
    (resumable by task; see the module's docstring).

    ``seed`` seeds the searches (give each round of an improvement its own, or its candidates
    repeat the episodes of the round before); ``max_steps``: the horizon (None: the
    environment's). ``provenance``: more of what made the trajectories, recorded in their
    manifest's ``defines`` (e.g. the round). Everything is checked before anything is
    written."""
    from armap_agents._jsonl import AppenderPool, check_jsonl, iter_jsonl, write_jsonl
    from armap_agents._progress import progress_bar
    from armap_agents._provenance import record_manifest
    from armap_agents.environments.defaults import horizon
    from armap_agents.graphs.explore import failures_path
    from armap_agents.planners import build_planner

    if not task_ids:
        raise ConfigError("a guided exploration needs at least one task")
    source = env_source(env, env_options)
    made = guided_planner_config(planner, config, seed, max_steps)
    out = Path(out)
    check_jsonl(out, Trajectory)  # a file that is not ours is refused before anything
    searches = searches_path(out)
    check_jsonl(searches, GuidedSearch)
    with source.opened() as factory:
        with closing(factory()) as probe:
            steps = horizon(probe, getattr(made, "max_steps", None))
        made = made.model_copy(update={"max_steps": steps})
        defines = {
            **source.defines(),
            "policy": policy_name(policy),
            "max_steps": steps,
            "seed": seed,
            "planner": planner,
            "planner_config": made.model_dump(mode="json", exclude={"seed", "max_steps"}),
            "critic": critic_identity(critic),
            **dict(provenance or {}),
        }
        settings = {
            "tasks": len(task_ids),
            "critic_path": str(critic) if isinstance(critic, str | Path) else describe(critic),
            "max_concurrency": max_concurrency,
        }
        scorer = scorer_object(critic)
        built = policy_object(policy, usage)
        record_manifest(out, "trajectories", defines, settings)  # a mismatch is refused
        appenders = AppenderPool()
        log = appenders.get(searches, GuidedSearch)  # repairs a record torn by a crash
        done = {s.task_id for s in iter_jsonl(searches, GuidedSearch)}
        wanted = list(dict.fromkeys(task_ids))
        pending = [t for t in wanted if t not in done]
        graph = build_planner(planner, built, factory, scorer, made)
        failed_tasks = 0
        bar = progress_bar(
            total=len(wanted),
            initial=len(wanted) - len(pending),
            desc=f"explore with {planner}",
            unit="task",
            progress=progress,
        )
        try:
            for task_id in pending:
                try:
                    state = graph.invoke(
                        {"task_id": task_id, "seed": seed}, {"max_concurrency": max_concurrency}
                    )
                except AllCandidatesFailed as exc:  # logged; a rerun tries the task again
                    appenders.get(failures_path(out)).append(
                        {"task_id": task_id, "error": str(exc), "errors": exc.errors[:5]}
                    )
                    failed_tasks += 1
                    bar.update(1)
                    continue
                if planner == "best_of_n":
                    kept, failed, picked = _best_of_n_kept(state, task_id)
                else:
                    kept, failed, picked = _mcts_kept(state, task_id, factory, built)
                log.append(
                    GuidedSearch(
                        task_id=task_id,
                        picked=picked,
                        picked_success=_success(state["best"]),
                        policy_calls=state["policy_calls"],
                        reward_model_calls=state["reward_model_calls"],
                        failed_trajectories=failed,
                        trajectories=kept,
                    )
                )
                bar.update(1)
        finally:
            bar.close()
    by_task = {s.task_id: s for s in iter_jsonl(searches, GuidedSearch) if s.task_id in wanted}
    records = [by_task[t] for t in wanted if t in by_task]
    if not records:
        raise ArmapError(
            f"every search of this guided exploration failed; the errors are in "
            f"{failures_path(out)}"
        )
    # the trajectory file, in task order whatever order the searches ended in (a task that
    # failed is left out, as exploration leaves out a failed episode; a rerun retries it)
    write_jsonl(out, (t for s in records for t in s.trajectories))
    kept_all = [t for s in records for t in s.trajectories]
    result = GuidedExploreResult(
        output_path=str(out),
        tasks=len(records),
        already_done=len(wanted) - len(pending),
        failed_tasks=failed_tasks,
        trajectories=len(kept_all),
        successes=sum(_success(t) for t in kept_all),
        pick_successes=sum(s.picked_success for s in records),
        policy_calls=sum(s.policy_calls for s in records),
        reward_model_calls=sum(s.reward_model_calls for s in records),
    )
    say(
        echo,
        f"searched {len(pending) - failed_tasks} new tasks with {planner} "
        f"({result.already_done} already done, {failed_tasks} failed): {result.trajectories} "
        f"trajectories kept, {result.successes} successes, picks successful on "
        f"{result.pick_successes} of {result.tasks} tasks -> {out}",
    )
    return result
