"""Live action reranking: the reward model picks each action *before* it is taken, in one episode.

::

    START -> episode -> END

For environments whose actions cannot be undone (a purchase, a sent message, a real robot):
the environment is reset once and stepped once per step, never replayed, and never stepped
with an action that was not chosen. At every step the policy proposes ``expansion_k`` actions
(:func:`~armap_agents.policies.sample_actions`); each distinct one is appended to the history
as a final step whose observation is not known yet (``Step(action=a, observation="")``, see
:func:`pending`), the reward model scores these trajectories in one batched call, the
weighted objectives are added, and so is the policy's own preference, ``prior_weight`` times
the log of the share of the K samples that proposed the action; the environment takes the
best action (the first on ties; a single distinct proposal is taken without scoring).

Why the prior: the K samples are the policy's distribution, and an action it proposes 12 times
in 16 is likely what it knows to do. Ranking the distinct actions by the critic alone treats a
one-off random proposal as the equal of that one, so where the critic cannot tell actions
apart before their effect is seen, the pick is uniform over distinct actions, below one
sample of the policy (measured on Game of 24 with reference policies: 5-14% against
Sampling's 9-48%; benchmarks/README.md, section 10); with the prior, see
:func:`~armap_agents.reward.objectives.action_values`; 0 ranks by the critic alone.

The reward model reads a trajectory that ends in an action, with an empty final observation
(``... Action: a\\nObservation: ``): what a model trained on whole episodes has not seen,
so expect it to rank such prefixes less well than finished trajectories (training on prefix
pairs helps). The graph is one node: the environment lives for the episode, so there is no
state to resume from halfway, and a checkpointer is refused (a resumed run would play the
task again). Streams one custom ``{"event": "step", ...}`` per step taken.

A failing policy or environment ends the episode; as the only candidate, it then raises
:class:`~armap_agents.errors.AllCandidatesFailed` (see
:func:`~armap_agents.rollout.usable_candidates`). A failing reward model raises as it is.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from pydantic import Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory, require_expert_hook
from armap_agents.environments.defaults import horizon
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.policies import Policy, sample_actions, uses_expert
from armap_agents.reward.objectives import WeightedObjective, action_values
from armap_agents.reward.scorer import RewardScorer
from armap_agents.rollout import policy_context, usable_candidates
from armap_agents.types import Observation, Step, Trajectory

__all__ = [
    "Decision",
    "LiveRerankConfig",
    "LiveRerankState",
    "build_live_rerank_graph",
    "pending",
]

logger = logging.getLogger(__name__)


class LiveRerankConfig(StrictConfig):
    """Candidates per step, horizon and seed."""

    expansion_k: int = Field(3, ge=1)
    """Policy samples per step; the reward model ranks their distinct actions (the default is
    MCTS's: the command line shares it)."""
    prior_weight: float = Field(1.0, ge=0)
    """Weight of the policy's own preference, the log of the share of the samples that
    proposed an action, added to its value (0: the critic alone)."""
    max_steps: int | None = Field(None, ge=1)
    """Steps at most (None: the environment's horizon, its ``EnvironmentDefaults.max_steps``)."""
    seed: int = 0
    """Random seed of the run."""


class Decision(TypedDict):
    """One step of the episode: the actions proposed, their values, the one taken."""

    actions: list[str]
    """The distinct actions proposed, in the order the policy gave them."""
    scores: list[float] | None
    """The reward model's score of each (None: a single proposal, taken unscored)."""
    values: list[float] | None
    """Score plus the weighted objectives and the policy's prior: what the choice maximises."""
    shares: list[float]
    """The share of the step's samples that proposed each action."""
    chosen: int


class LiveRerankState(TypedDict, total=False):
    """Input: ``task_id`` (and optionally ``seed``). Output: ``best`` and the decisions."""

    task_id: str
    seed: int
    decisions: list[Decision]
    best: Trajectory
    policy_calls: int
    reward_model_calls: int


def pending(trajectory: Trajectory, action: str) -> Trajectory:
    """``trajectory`` with ``action`` appended as a step not taken yet: its observation is empty.
    What the reward model scores for a candidate action."""
    return trajectory.model_copy(
        update={"steps": [*trajectory.steps, Step(action=action, observation="")]}
    )


def build_live_rerank_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer,
    config: LiveRerankConfig | None = None,
    *,
    objectives: Sequence[WeightedObjective] = (),
    checkpointer: Any = None,
):
    """A compiled live-reranking graph. Invoke with ``{"task_id": "905"}``: it plays the task
    once, choosing every action with the reward model before taking it."""
    config = config or LiveRerankConfig()
    if reward_model is None:
        raise ConfigError("live reranking needs a reward model: its scores choose the actions")
    if checkpointer is not None:
        raise ConfigError(
            "live reranking cannot resume from a checkpoint: its episode's actions were taken "
            "in the environment, and a resumed run would play the task again"
        )

    def episode(state: LiveRerankState) -> dict[str, Any]:
        task_id = state["task_id"]
        seed = state.get("seed", config.seed)
        expert = uses_expert(policy)
        writer = get_stream_writer()
        observation = Observation(instruction="", text="")
        steps: list[Step] = []
        decisions: list[Decision] = []
        info: dict[str, Any] = {"invalid_actions": 0, "seed": seed}
        done = False
        evaluation = None
        error = None
        policy_calls = scored = 0
        with closing(env_factory()) as env:
            if expert:
                require_expert_hook(env)  # a configuration error, not this episode's failure
            try:
                limit = horizon(env, config.max_steps)
                observation = env.reset(task_id)
                while not done and len(steps) < limit:
                    context = policy_context(env, task_id, observation, steps, expert=expert)
                    choices = sample_actions(
                        policy,
                        context,
                        config.expansion_k,
                        seed=stable_seed(seed, task_id, len(steps)),
                    )
                    policy_calls += len(choices)
                    proposed = Counter(c.action for c in choices)
                    actions = list(proposed)  # distinct, in the policy's order
                    decision = _decide(
                        Trajectory(
                            task_id=task_id,
                            intent=observation.instruction,
                            initial_observation=observation.text,
                            steps=steps,
                        ),
                        actions,
                        [proposed[a] / len(choices) for a in actions],
                        reward_model,
                        objectives,
                        config.prior_weight,
                    )
                    scored += len(actions) if decision["scores"] is not None else 0
                    decisions.append(decision)
                    action = actions[decision["chosen"]]
                    result = env.step(action)
                    steps.append(
                        Step(action=action, observation=result.observation, valid=result.valid)
                    )
                    info["invalid_actions"] += not result.valid
                    if result.valid and result.info:
                        info["env"] = result.info
                    done = result.done
                    writer(
                        {
                            "event": "step",
                            "step": len(steps),
                            "action": action,
                            "candidates": len(actions),
                            "values": decision["values"],
                        }
                    )
                evaluation = env.evaluate()
            except BudgetExceeded:
                raise
            except _CriticFailed as failed:
                raise failed.original from None
            except Exception as exc:  # noqa: BLE001 - the episode's failure, as run_episode's
                logger.warning("live episode of task %s failed: %r", task_id, exc)
                error = f"{type(exc).__name__}: {exc}"
        trajectory = Trajectory(
            task_id=task_id,
            intent=observation.instruction,
            initial_observation=observation.text,
            steps=steps,
            episode_id=f"{task_id}@live",
            done=done,
            evaluation=evaluation,
            policy_calls=policy_calls,
            error=error,
            info=info,
        )
        usable_candidates([trajectory], task_id)  # a failed episode: AllCandidatesFailed
        return {
            "decisions": decisions,
            "best": trajectory,
            "policy_calls": policy_calls,
            "reward_model_calls": scored,
        }

    graph = StateGraph(LiveRerankState)
    graph.add_node("episode", episode)
    graph.add_edge(START, "episode")
    graph.add_edge("episode", END)
    return graph.compile(name="armap-live-rerank")


class _CriticFailed(Exception):
    """The reward model raised: not the episode's failure (``original`` is raised as it was)."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _decide(
    history: Trajectory,
    actions: list[str],
    shares: list[float],
    reward_model: RewardScorer,
    objectives: Sequence[WeightedObjective],
    prior_weight: float,
) -> Decision:
    """The decision among ``actions`` (proposed by ``shares`` of the samples) after
    ``history``: the best value, the first on ties."""
    if len(actions) == 1:
        return Decision(actions=actions, scores=None, values=None, shares=shares, chosen=0)
    candidates = [pending(history, a) for a in actions]
    try:
        scores = [float(s) for s in reward_model.score(history.intent, candidates)]
    except Exception as exc:  # noqa: BLE001 - re-raised as it was by the episode's handler
        raise _CriticFailed(exc) from exc
    log_priors = [math.log(share) for share in shares]
    values = action_values(scores, candidates, log_priors, objectives, prior_weight)
    chosen = max(range(len(actions)), key=lambda i: (values[i], -i))
    return Decision(actions=actions, scores=scores, values=values, shares=shares, chosen=chosen)
