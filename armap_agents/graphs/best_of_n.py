"""ARMAP-B: sample N candidate trajectories in parallel, score them, return the best.

::

    START --Send(rollout) x N--> rollout -> select -> END

``select`` is the reward-model node: it scores every candidate with ``reward_model.score`` and
picks the highest. The same graph gives the baselines: ``selection="random"`` (Sampling: one
candidate at random), ``greedy=True, n=1`` (Greedy: the policy's most likely action each step)
and ``selection="oracle"`` (pick by the environment's own evaluator: the upper bound of any
selection rule, for metrics only).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import closing
from typing import Annotated, Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.environments.base import EnvFactory
from armap_agents.errors import ConfigError
from armap_agents.policies import Policy
from armap_agents.reward.model import RewardModel
from armap_agents.reward.objectives import WeightedObjective, combined_value
from armap_agents.rollout import run_episode
from armap_agents.types import Trajectory

__all__ = ["BestOfNConfig", "BestOfNState", "build_best_of_n_graph"]

Selection = Literal["reward", "oracle", "random"]


class BestOfNConfig(BaseModel):
    """How many candidates, how they are sampled, and how the winner is chosen."""

    n: int = Field(16, ge=1)
    selection: Selection = "reward"
    greedy: bool = False
    max_steps: int = Field(10, ge=1)
    seed: int = 0
    score_batch_size: int = Field(64, ge=1)


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
    scores: list[float]
    """Reward-model score per candidate."""
    values: list[float]
    """Score plus weighted objectives per candidate: what ``selection="reward"`` maximises."""
    best_index: int
    best: Trajectory
    policy_calls: int
    reward_model_calls: int


def build_best_of_n_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardModel | None = None,
    config: BestOfNConfig | None = None,
    *,
    objectives: Sequence[WeightedObjective] = (),
    checkpointer: Any = None,
):
    """A compiled Best-of-N graph. Invoke with ``{"task_id": "905"}``.

    With ``selection="reward"`` the pick maximises ``score + sum(weight * objective)`` (see
    :mod:`armap_agents.reward.objectives`). Parallel rollouts are bounded by LangGraph's
    ``max_concurrency`` config key.
    """
    config = config or BestOfNConfig()
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
        with closing(env_factory()) as env:
            trajectory = run_episode(
                env,
                policy,
                job["task_id"],
                seed=job["seed"],
                max_steps=config.max_steps,
                greedy=config.greedy,
                episode_id=f"{job['task_id']}@{job['index']}",
            )
        trajectory.info["candidate"] = job["index"]
        get_stream_writer()({"event": "candidate", "index": job["index"]})
        return {"candidates": [trajectory]}

    def select(state: BestOfNState) -> dict[str, Any]:
        candidates = state["candidates"]
        reward_calls = 0
        if reward_model is not None:
            scores = reward_model.score(
                candidates[0].intent, candidates, batch_size=config.score_batch_size
            )
            reward_calls = len(candidates)
        else:
            scores = [0.0] * len(candidates)
        values = [combined_value(s, t, objectives) for s, t in zip(scores, candidates, strict=True)]
        if config.selection == "reward":
            best = max(range(len(candidates)), key=lambda i: (values[i], -i))
        elif config.selection == "oracle":
            best = max(
                range(len(candidates)),
                key=lambda i: (
                    candidates[i].evaluation.score if candidates[i].evaluation else -1.0,
                    -i,
                ),
            )
        else:
            best = random.Random(
                stable_seed(state.get("seed", config.seed), state["task_id"], "pick")
            ).randrange(len(candidates))
        return {
            "scores": scores,
            "values": values,
            "best_index": best,
            "best": candidates[best],
            "policy_calls": sum(int(t.info.get("policy_calls", 0)) for t in candidates),
            "reward_model_calls": reward_calls,
        }

    graph = StateGraph(BestOfNState)
    graph.add_node("rollout", rollout)
    graph.add_node("select", select)
    graph.add_conditional_edges(START, fan_out, ["rollout"])
    graph.add_edge("rollout", "select")
    graph.add_edge("select", END)
    return graph.compile(checkpointer=checkpointer, name="armap-best-of-n")
