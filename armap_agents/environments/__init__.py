"""Environments: the protocol, Game of 24, ScienceWorld, ALFWorld, WebShop, LangChain tools
(:class:`ToolEnvironment`), the generic :class:`OutcomeRelabeler`, pooling, a registry.

The names below are imported on first use (PEP 562), so one environment loads without the
others: ``from armap_agents.environments import Game24Env`` imports neither ScienceWorld nor
ALFWorld nor WebShop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armap_agents._lazy import lazy_getattr

if TYPE_CHECKING:
    from armap_agents.environments.alfworld import AlfWorldEnv, AlfWorldRelabeler
    from armap_agents.environments.base import (
        EnvFactory,
        Environment,
        ExpertHook,
        Relabeler,
        expert_action,
        select_tasks,
    )
    from armap_agents.environments.counting import EpisodeCounter
    from armap_agents.environments.defaults import (
        EnvironmentDefaults,
        QuickstartPlan,
        QuickstartSizes,
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

_EXPORTS: dict[str, tuple[str, ...]] = {
    # submodule -> the public names it provides (tests/test_startup.py checks this table
    # against the imports above and __all__)
    "alfworld": ("AlfWorldEnv", "AlfWorldRelabeler"),
    "base": (
        "EnvFactory",
        "Environment",
        "ExpertHook",
        "Relabeler",
        "expert_action",
        "select_tasks",
    ),
    "counting": ("EpisodeCounter",),
    "defaults": ("EnvironmentDefaults", "QuickstartPlan", "QuickstartSizes"),
    "game24": ("Game24Env", "Game24Relabeler"),
    "outcome": ("OutcomeRelabeler",),
    "pool": ("EnvPool",),
    "registry": (
        "EnvRegistry",
        "default_registry",
        "make_env",
        "make_env_factory",
        "make_relabeler",
    ),
    "scienceworld": ("ScienceWorldEnv", "ScienceWorldRelabeler"),
    "tools": ("ToolCall", "ToolEnvironment", "ToolEpisode", "ToolTask"),
    "webshop": ("WebShopEnv", "WebShopRelabeler"),
}

__all__ = [
    "AlfWorldEnv",
    "AlfWorldRelabeler",
    "EnvFactory",
    "EnvPool",
    "EnvRegistry",
    "Environment",
    "EnvironmentDefaults",
    "EpisodeCounter",
    "ExpertHook",
    "Game24Env",
    "Game24Relabeler",
    "OutcomeRelabeler",
    "QuickstartPlan",
    "QuickstartSizes",
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


if not TYPE_CHECKING:  # type checkers read the imports above (and flag a name not there)
    __getattr__ = lazy_getattr(__name__, _EXPORTS, relative=True)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
