"""ARMAP-R: Reflexion guided by the reward model, with a trajectory memory across tasks and runs.

::

    START -> retrieve -> attempt -> score --(value >= threshold, or K trials done)--> finish -> END
                            ^                  \\--(else)--> reflect --/
                            \\-------------------------------------/

* **retrieve** looks up the most similar past reflections in a :class:`TrajectoryMemory`
  (other tasks, earlier runs) and shows them to the policy as notes;
* **attempt** plays one episode with the notes and this task's reflections so far;
* **score** is the reward-model node (plus custom objectives);
* **reflect** asks a chat model what went wrong, in a sentence or three; the reflection is kept
  for the next trial and stored in the memory (saved to disk when the memory has a path).

The best-scored attempt is returned. Without a ``reflector`` the loop still retries (new
seeds) until the reward model is satisfied: reward-guided sequential sampling.

An attempt whose episode failed (its ``error`` is set) is not scored (score ``None``), not
reflected on and never returned; the next trial simply retries. When every trial failed, the
graph raises :class:`~armap_agents.errors.AllCandidatesFailed`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from pydantic import Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory
from armap_agents.errors import ConfigError
from armap_agents.llm import RetryPolicy, invoke_with_retries, reply_text
from armap_agents.memory import TrajectoryMemory
from armap_agents.policies import Policy
from armap_agents.reward.objectives import WeightedObjective, combined_value
from armap_agents.reward.scorer import RewardScorer
from armap_agents.rollout import run_episode, usable_candidates
from armap_agents.types import Trajectory, render_trajectory

__all__ = [
    "ReflexionConfig",
    "ReflexionState",
    "build_reflexion_graph",
    "default_reflection_prompt",
]


class ReflexionConfig(StrictConfig):
    """Attempts, when to stop, and what the policy is shown of earlier reflections."""

    max_trials: int = Field(3, ge=1)
    """Attempts at most."""
    threshold: float | None = None
    """Stop retrying once an attempt's value (reward-model score + objectives) reaches this.
    None: the reward model's calibrated ``success_threshold`` (the score that told held-out
    successes from failures best at training, see
    :mod:`armap_agents.reward.planning_metrics`), else 0.0 (a scorer without one)."""
    retrieve_k: int = Field(3, ge=0)
    """How many past reflections (from other tasks) to show the policy."""
    max_steps: int | None = Field(None, ge=1)
    """Steps per episode at most (None: the environment's horizon, its
    ``EnvironmentDefaults.max_steps``)."""
    seed: int = 0
    """Random seed of the run."""


class ReflexionState(TypedDict, total=False):
    """Input: ``task_id`` (and optionally ``seed``). Output: ``best`` and every attempt."""

    task_id: str
    seed: int
    retrieved: list[str]
    reflections: Annotated[list[str], operator.add]
    attempts: Annotated[list[Trajectory], operator.add]
    scores: Annotated[list[float | None], operator.add]
    """Per attempt: the reward-model score (``None`` for a failed attempt: not scored)."""
    values: Annotated[list[float | None], operator.add]
    best_index: int
    best: Trajectory
    policy_calls: int
    reward_model_calls: int
    reflection_calls: int


def default_reflection_prompt(
    trajectory: Trajectory, score: float, threshold: float
) -> list[BaseMessage]:
    """Ask for a short, transferable lesson about a low-scored attempt."""
    return [
        SystemMessage(
            "You review an agent's attempt at a task. A critic judged that it probably failed. "
            "In at most three sentences, say what went wrong and what to do differently next "
            "time. Be concrete and general enough to help on similar tasks."
        ),
        HumanMessage(
            f"Task: {trajectory.intent}\nAttempt:\n{render_trajectory(trajectory)}\n"
            f"Critic score: {score:.3f} (a success would score at least {threshold:.3f})."
        ),
    ]


def stop_threshold(config: ReflexionConfig, reward_model: Any) -> float:
    """The value at which Reflexion stops retrying: ``config.threshold`` when set, else the
    reward model's calibrated ``success_threshold`` when it has one, else 0.0."""
    if config.threshold is not None:
        return config.threshold
    calibrated = getattr(reward_model, "success_threshold", None)
    return float(calibrated) if isinstance(calibrated, int | float) else 0.0


def build_reflexion_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer,
    config: ReflexionConfig | None = None,
    *,
    reflector: BaseChatModel | None = None,
    memory: TrajectoryMemory | None = None,
    memory_path: str | Path | None = None,
    objectives: Sequence[WeightedObjective] = (),
    retry: RetryPolicy | None = None,
    checkpointer: Any = None,
):
    """A compiled Reflexion graph. Invoke with ``{"task_id": "905"}``.

    ``memory_path``: where ``memory`` is saved after each new reflection (load it next time
    with ``TrajectoryMemory.open(memory_path)`` to carry lessons across runs).
    """
    config = config or ReflexionConfig()
    if reward_model is None:
        raise ConfigError("Reflexion needs a reward model to judge its attempts")
    retry = retry or RetryPolicy()
    threshold = stop_threshold(config, reward_model)

    def seed_of(state: ReflexionState) -> int:
        return state.get("seed", config.seed)

    def retrieve(state: ReflexionState) -> dict[str, Any]:
        notes: list[str] = []
        if memory is not None and config.retrieve_k and len(memory):
            with closing(env_factory()) as env:
                observation = env.reset(state["task_id"])
            query = f"Task: {observation.instruction}\nObservation: {observation.text}"
            hits = memory.search(
                query, config.retrieve_k, with_reflection=True, exclude_task=state["task_id"]
            )
            notes = [record.reflection for record, _ in hits]
        return {
            "retrieved": notes,
            "policy_calls": 0,
            "reward_model_calls": 0,
            "reflection_calls": 0,
        }

    def attempt(state: ReflexionState) -> dict[str, Any]:
        trial = len(state.get("attempts", []))
        with closing(env_factory()) as env:
            trajectory = run_episode(
                env,
                policy,
                state["task_id"],
                seed=stable_seed(seed_of(state), state["task_id"], trial),
                max_steps=config.max_steps,
                episode_id=f"{state['task_id']}@reflexion{trial}",
                notes=[*state.get("retrieved", []), *state.get("reflections", [])],
            )
        return {
            "attempts": [trajectory],
            "policy_calls": state["policy_calls"] + trajectory.policy_calls,
        }

    def score(state: ReflexionState) -> dict[str, Any]:
        trajectory = state["attempts"][-1]
        trial = len(state["attempts"])
        if trajectory.failed:
            get_stream_writer()({"event": "trial", "trial": trial, "error": trajectory.error})
            return {"scores": [None], "values": [None]}
        (s,) = reward_model.score(trajectory.intent, [trajectory])
        value = combined_value(s, trajectory, objectives)
        get_stream_writer()({"event": "trial", "trial": trial, "score": s, "value": value})
        return {
            "scores": [s],
            "values": [value],
            "reward_model_calls": state["reward_model_calls"] + 1,
        }

    def route(state: ReflexionState) -> str:
        value = state["values"][-1]
        if len(state["attempts"]) >= config.max_trials or (
            value is not None and value >= threshold
        ):
            return "finish"
        return "reflect"

    def reflect(state: ReflexionState) -> dict[str, Any]:
        trajectory, s = state["attempts"][-1], state["scores"][-1]
        if reflector is None or s is None:  # no reflector, or a failed attempt: just retry
            return {}
        reply = invoke_with_retries(
            reflector, default_reflection_prompt(trajectory, s, threshold), retry
        )
        text = reply_text(reply.content).strip()  # no lone surrogate into memory files
        if memory is not None and text:
            memory.add(trajectory.intent, trajectory, text, task_id=state["task_id"], score=s)
            if memory_path is not None:
                memory.save(memory_path)
        return {
            "reflections": [text] if text else [],
            "reflection_calls": state["reflection_calls"] + 1,
        }

    def finish(state: ReflexionState) -> dict[str, Any]:
        usable_candidates(state["attempts"], state["task_id"])  # raises when every trial failed
        value = {i: v for i, v in enumerate(state["values"]) if v is not None}  # the usable ones
        best = max(value, key=lambda i: (value[i], -i))
        return {"best_index": best, "best": state["attempts"][best]}

    graph = StateGraph(ReflexionState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("attempt", attempt)
    graph.add_node("score", score)
    graph.add_node("reflect", reflect)
    graph.add_node("finish", finish)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "attempt")
    graph.add_edge("attempt", "score")
    graph.add_conditional_edges("score", route, ["reflect", "finish"])
    graph.add_edge("reflect", "attempt")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer, name="armap-reflexion")
