"""Planning one task: :func:`plan_task` (what ``armap plan`` runs) and :func:`planner_graph`,
the one assembly of a planner that the command line and the deployment share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from armap_agents.errors import ConfigError
from armap_agents.pipeline.evaluate import model_environment
from armap_agents.pipeline.sources import (
    EnvSource,
    configured,
    env_source,
    policy_object,
    scorer_object,
)

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.llm import UsageTracker
    from armap_agents.policies import Policy
    from armap_agents.reward.objectives import WeightedObjective
    from armap_agents.reward.scorer import RewardScorer

__all__ = ["PlanResult", "needs_reward_model", "plan_task", "planner_graph"]


def needs_reward_model(config: BaseModel) -> bool:
    """Whether a planner with ``config`` scores with a reward model: every one does, but
    Best-of-N selecting by the oracle or at random."""
    return getattr(config, "selection", "reward") == "reward"


def planner_graph(
    name: str,
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer | None,
    config: BaseModel,
    *,
    objectives: Sequence[str | WeightedObjective] = (),
    reflector: Any = None,
    memory: str | Path | None = None,
    checkpointer: Any = None,
):
    """Planner ``name``'s compiled graph with its extras: ``objectives`` (specs such as
    ``fewer_steps:0.5``, or :class:`WeightedObjective` objects), and for Reflexion a chat model
    ``reflector`` and a trajectory-memory directory ``memory`` (read and extended)."""
    from armap_agents import _builders as build
    from armap_agents.planners import build_planner

    specs = [o for o in objectives if isinstance(o, str)]
    extra: dict[str, Any] = {
        "objectives": [*build.objectives(specs), *(o for o in objectives if not isinstance(o, str))]
    }
    if name != "reflexion" and (reflector is not None or memory is not None):
        raise ConfigError("a reflector and a memory apply to the reflexion planner only")
    if reflector is not None:
        extra["reflector"] = reflector
    if memory is not None:
        from armap_agents.memory import TrajectoryMemory

        extra.update(memory=TrajectoryMemory.open(memory), memory_path=memory)
    if checkpointer is not None:
        if name in ("best_of_n", "live_rerank"):
            raise ConfigError(
                "a checkpoint applies to the mcts, reflexion and beam_search planners"
            )
        extra["checkpointer"] = checkpointer
    return build_planner(name, policy, env_factory, reward_model, config, **extra)


@dataclass(frozen=True)
class PlanResult:
    """What :func:`plan_task` did: the planner's final state (``state["best"]`` is the chosen
    trajectory, with ``policy_calls`` and ``reward_model_calls``) and how it got there."""

    state: dict[str, Any]
    status: Literal["planned", "resumed", "already finished"]
    """``resumed``: an interrupted run continued from its checkpoint; ``already finished``:
    the checkpoint held a finished run, whose state is returned."""
    config: BaseModel
    """The planner's config, as run (the horizon filled in from the model where it records
    one)."""


def plan_task(
    task_id: str,
    *,
    planner: str = "best_of_n",
    model: str | Path | RewardScorer | None = None,
    env: str | EnvFactory | EnvSource | None = None,
    env_options: Mapping[str, Any] | None = None,
    policy: str | Policy = "random",
    config: BaseModel | Mapping[str, Any] | None = None,
    objectives: Sequence[str | WeightedObjective] = (),
    reflector: Any = None,
    memory: str | Path | None = None,
    checkpointer: Any = None,
    thread_id: str | None = None,
    max_concurrency: int = 4,
    usage: UsageTracker | None = None,
    **settings: Any,
) -> PlanResult:
    """Solve ``task_id`` with ``planner`` (a name of :data:`~armap_agents.planners.PLANNERS`) guided
    by ``model`` (a reward-model directory, the URL of ``armap serve-rm``, or any
    :class:`~armap_agents.reward.scorer.RewardScorer`; none only for Best-of-N selecting by the
    oracle or at random).

    ``env``: by default the environment the model's manifest records (a contradicting one is
    refused); ``policy``: a spec or a :class:`~armap_agents.policies.Policy`; ``config``: the
    planner's config (an object or mapping), ``settings`` its fields as keywords. Episodes
    last the model's training horizon, else the environment's, unless ``max_steps`` is given.
    With a LangGraph ``checkpointer`` (and ``thread_id``, default ``<planner>-<task>``) an
    interrupted run resumes and a finished one is returned as it was."""
    from contextlib import closing

    from armap_agents.errors import UnknownName
    from armap_agents.planners import planner_spec

    config_type = planner_spec(planner).config_type
    planner_config = configured(config_type, config, settings, what=f"{planner} config")
    scored = needs_reward_model(planner_config)
    if scored and model is None:
        raise ConfigError(f"planner {planner} needs a reward model (a directory, URL or scorer)")
    if model is not None:
        source, inherited = model_environment(model, env, env_options)
        steps = getattr(planner_config, "max_steps", None)
        if steps is None and inherited.max_steps is not None:
            planner_config = planner_config.model_copy(update={"max_steps": inherited.max_steps})
    elif env is not None:
        source = env_source(env, env_options)
    else:
        raise ConfigError("give the environment (--env): without a reward model nothing records it")
    reward_model = scorer_object(model) if scored and model is not None else None
    run_config: dict[str, Any] = {"max_concurrency": max_concurrency}
    if checkpointer is not None:
        run_config["configurable"] = {"thread_id": thread_id or f"{planner}-{task_id}"}
    with source.opened() as factory:
        with closing(factory()) as probe:  # no such task: fail before planning
            try:
                probe.reset(task_id)
            except KeyError as exc:
                reason = exc.args[0] if exc.args else task_id
                raise UnknownName(f"no task {task_id!r} in {source.name}: {reason}") from None
        graph = planner_graph(
            planner,
            policy_object(policy, usage),
            factory,
            reward_model,
            planner_config,
            objectives=objectives,
            reflector=reflector,
            memory=memory,
            checkpointer=checkpointer,
        )
        snapshot = graph.get_state(run_config) if checkpointer is not None else None
        # "sync": each superstep's checkpoint is on disk before the next starts, so a kill at
        # any moment leaves a state to resume from (the default "async" can lose the last one)
        durable = {"durability": "sync"} if checkpointer is not None else {}
        if snapshot is not None and snapshot.next:
            state = graph.invoke(None, run_config, **durable)
            status: Literal["planned", "resumed", "already finished"] = "resumed"
        elif snapshot is not None and snapshot.values.get("best") is not None:
            state, status = dict(snapshot.values), "already finished"
        else:
            state = graph.invoke({"task_id": task_id}, run_config, **durable)
            status = "planned"
    return PlanResult(state=state, status=status, config=planner_config)
