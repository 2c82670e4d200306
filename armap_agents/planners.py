"""Planners by name: ``build_planner("mcts", policy, env_factory, reward_model, config)``.

All three share one entry shape — ``(policy, env_factory, reward_model, config, *, objectives,
...)`` — and return a compiled LangGraph graph that takes ``{"task_id": ...}`` and leaves the
chosen trajectory in ``state["best"]`` (with ``policy_calls`` and ``reward_model_calls``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from armap_agents.environments.base import EnvFactory
from armap_agents.errors import ConfigError
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph
from armap_agents.graphs.reflexion import ReflexionConfig, build_reflexion_graph
from armap_agents.policies import Policy
from armap_agents.reward.model import RewardModel

__all__ = ["PLANNERS", "build_planner"]

PLANNERS: dict[str, tuple[Any, type[BaseModel]]] = {
    "best_of_n": (build_best_of_n_graph, BestOfNConfig),
    "reflexion": (build_reflexion_graph, ReflexionConfig),
    "mcts": (build_mcts_graph, MCTSConfig),
}


def build_planner(
    name: str,
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardModel | None,
    config: BaseModel | dict[str, Any] | None = None,
    **kwargs: Any,
):
    """The compiled planner graph called ``name`` (``best_of_n``, ``reflexion`` or ``mcts``).

    ``config`` may be the planner's config object or a plain dict of its fields; ``kwargs``
    go to the builder (``objectives=...``, ``checkpointer=...``, ``memory=...``).
    """
    try:
        builder, config_type = PLANNERS[name]
    except KeyError:
        raise ConfigError(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}") from None
    if config is None or isinstance(config, dict):
        config = config_type(**(config or {}))
    elif not isinstance(config, config_type):
        raise ConfigError(
            f"planner {name!r} takes a {config_type.__name__}, not {type(config).__name__}"
        )
    return builder(policy, env_factory, reward_model, config, **kwargs)
