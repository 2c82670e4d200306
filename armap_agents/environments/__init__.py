"""Environments: the protocol, Game of 24, and a registry by name."""

from armap_agents.environments.base import EnvFactory, Environment, Relabeler
from armap_agents.environments.game24 import Game24Env, Game24Relabeler
from armap_agents.environments.registry import (
    EnvRegistry,
    default_registry,
    make_env,
    make_relabeler,
)

__all__ = [
    "EnvFactory",
    "EnvRegistry",
    "Environment",
    "Game24Env",
    "Game24Relabeler",
    "Relabeler",
    "default_registry",
    "make_env",
    "make_relabeler",
]
