"""Environments: the protocol, Game of 24, ScienceWorld, ALFWorld, WebShop, LangChain tools
(:class:`ToolEnvironment`), the generic :class:`OutcomeRelabeler`, pooling, a registry."""

from armap_agents.environments.alfworld import AlfWorldEnv, AlfWorldRelabeler
from armap_agents.environments.base import (
    EnvFactory,
    Environment,
    ExpertHook,
    Relabeler,
    expert_action,
    select_tasks,
)
from armap_agents.environments.game24 import Game24Env, Game24Relabeler
from armap_agents.environments.outcome import OutcomeRelabeler
from armap_agents.environments.pool import EnvPool
from armap_agents.environments.registry import (
    EnvRegistry,
    default_registry,
    make_env,
    make_env_factory,
    make_relabeler,
)
from armap_agents.environments.scienceworld import ScienceWorldEnv, ScienceWorldRelabeler
from armap_agents.environments.tools import ToolCall, ToolEnvironment, ToolEpisode, ToolTask
from armap_agents.environments.webshop import WebShopEnv, WebShopRelabeler

__all__ = [
    "AlfWorldEnv",
    "AlfWorldRelabeler",
    "EnvFactory",
    "EnvPool",
    "EnvRegistry",
    "Environment",
    "ExpertHook",
    "Game24Env",
    "Game24Relabeler",
    "OutcomeRelabeler",
    "Relabeler",
    "ScienceWorldEnv",
    "ScienceWorldRelabeler",
    "ToolCall",
    "ToolEnvironment",
    "ToolEpisode",
    "ToolTask",
    "WebShopEnv",
    "WebShopRelabeler",
    "default_registry",
    "expert_action",
    "make_env",
    "make_env_factory",
    "make_relabeler",
    "select_tasks",
]
