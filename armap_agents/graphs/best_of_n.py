"""ARMAP-B: sample N candidate trajectories in parallel, score them, return the best.

::

    START --Send(rollout) x N--> rollout -> select -> END

``select`` is the reward-model node: it scores every candidate with ``reward_model.score`` and
picks the highest. The same graph gives the baselines: ``selection="random"`` (Sampling: one
candidate at random), ``greedy=True, n=1`` (Greedy: the policy's most likely action each step)
and ``selection="oracle"`` (pick by the environment's own evaluator: the upper bound of any
selection rule, for metrics only).

A candidate whose episode failed (its ``error`` is set) is neither scored nor chosen, by any
selection; it stays in ``candidates`` with its error (score ``None``). When every candidate
failed, the graph raises :class:`~armap_agents.errors.AllCandidatesFailed`; a spent usage
budget (:class:`~armap_agents.errors.BudgetExceeded`) stops it too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory
from armap_agents.errors import ConfigError
from armap_agents.executors import EpisodeExecutor, EpisodeJob, LocalExecutor
from armap_agents.policies import Policy
from armap_agents.reward.objectives import WeightedObjective, combined_value
from armap_agents.reward.scorer import RewardScorer
from armap_agents.rollout import usable_candidates
from armap_agents.types import Trajectory

__all__ = ["BestOfNConfig", "BestOfNState", "build_best_of_n_graph"]

Selection = Literal["reward", "oracle", "random"]


class BestOfNConfig(StrictConfig):
    """How many candidates, how they are sampled, and how the winner is chosen."""

    n: int = Field(16, ge=1)
    """Candidates drawn (whole episodes)."""
    selection: Selection = "reward"
    """How the winner is picked: the reward model, the environment's verdict (a ceiling), or
    at random."""
    greedy: bool = False
    """Each candidate takes the policy's most likely action (Greedy decoding)."""
    max_steps: int | None = Field(None, ge=1)
    """Steps per episode at most (None: the environment's horizon, its
    ``EnvironmentDefaults.max_steps``)."""
    seed: int = 0
    """Random seed of the run."""
    score_batch_size: int = Field(64, ge=1)
    """At most this many candidates per call of the reward scorer."""


class _Rollout(TypedDict):
    task_id: str
    index: int
    seed: int


def _merge_candidates(old: list[Trajectory], new: list[Trajectory]) -> list[Trajectory]:
    """Reducer: candidates kept in index order, whatever order the rollouts finish in."""
    return sorted([*old, *new], key=lambda t: t.info["candidate"])


class BestOfNState(TypedDict, total=False):
    """Input: ``task_id`` (and optionally ``seed``). Output: ``best`` and everything behind it."""

    task_id: str
    seed: int
    candidates: Annotated[list[Trajectory], _merge_candidates]
    scores: list[float | None]
    """Reward-model score per candidate (``None`` for a failed one: not scored)."""
    values: list[float | None]
    """Score plus weighted objectives per candidate: what ``selection="reward"`` maximises."""
    best_index: int
    best: Trajectory
    policy_calls: int
    reward_model_calls: int


def build_best_of_n_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer | None = None,
    config: BestOfNConfig | None = None,
    *,
    objectives: Sequence[WeightedObjective] = (),
    checkpointer: Any = None,
    executor: EpisodeExecutor | None = None,
):
    """A compiled Best-of-N graph. Invoke with ``{"task_id": "905"}``.

    With ``selection="reward"`` the pick maximises ``score + sum(weight * objective)`` (see
    :mod:`armap_agents.reward.objectives`). Parallel rollouts are bounded by LangGraph's
    ``max_concurrency`` config key. ``executor``: where the candidates' episodes run (default:
    in this process, :class:`~armap_agents.executors.LocalExecutor`; see
    :mod:`armap_agents.executors`).
    """
    config = config or BestOfNConfig()
    executor = executor or LocalExecutor(policy, env_factory)
    if config.selection == "reward" and reward_model is None:
        raise ConfigError("selection='reward' needs a reward_model (or choose 'random'/'oracle')")

    def fan_out(state: BestOfNState) -> list[Send]:
        base = state.get("seed", config.seed)
        return [
            Send(
                "rollout",
                _Rollout(
                    task_id=state["task_id"], index=i, seed=stable_seed(base, state["task_id"], i)
                ),
            )
            for i in range(config.n)
        ]

    def rollout(job: _Rollout) -> dict[str, Any]:
        trajectory = executor.run(
            EpisodeJob(
                task_id=job["task_id"],
                seed=job["seed"],
                max_steps=config.max_steps,
                greedy=config.greedy,
                episode_id=f"{job['task_id']}@{job['index']}",
            )
        )
        trajectory.info["candidate"] = job["index"]
        get_stream_writer()({"event": "candidate", "index": job["index"]})
        return {"candidates": [trajectory]}

    def select(state: BestOfNState) -> dict[str, Any]:
        candidates = state["candidates"]
        usable = usable_candidates(candidates, state["task_id"])
        scored = [0.0] * len(usable)
        if reward_model is not None:
            chosen = [candidates[i] for i in usable]  # all share the task's intent
            size = config.score_batch_size
            scored = [
                s
                for start in range(0, len(chosen), size)
                for s in reward_model.score(chosen[0].intent, chosen[start : start + size])
            ]
        score = dict(zip(usable, scored, strict=True))
        value = {i: combined_value(s, candidates[i], objectives) for i, s in score.items()}
        if config.selection == "reward":
            best = max(usable, key=lambda i: (value[i], -i))
        elif config.selection == "oracle":
            best = max(
                usable,
                key=lambda i: (e.score if (e := candidates[i].evaluation) else -1.0, -i),
            )
        else:
            best = random.Random(
                stable_seed(state.get("seed", config.seed), state["task_id"], "pick")
            ).choice(usable)
        return {
            "scores": [score.get(i) for i in range(len(candidates))],
            "values": [value.get(i) for i in range(len(candidates))],
            "best_index": best,
            "best": candidates[best],
            "policy_calls": sum(t.policy_calls for t in candidates),
            "reward_model_calls": len(usable) if reward_model is not None else 0,
        }

    graph = StateGraph(BestOfNState)
    # a Send target: it takes the Send's payload, which LangGraph's annotations cannot type
    graph.add_node("rollout", rollout)  # type: ignore[arg-type]
    graph.add_node("select", select)
    graph.add_conditional_edges(START, fan_out, ["rollout"])
    graph.add_edge("rollout", "select")
    graph.add_edge("select", END)
    return graph.compile(checkpointer=checkpointer, name="armap-best-of-n")
