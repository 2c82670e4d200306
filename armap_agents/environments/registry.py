"""Environments by name: ``make_env("game24")``; ``registry.register("mine", MyEnv)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from armap_agents.environments.base import Environment, Relabeler

__all__ = ["EnvRegistry", "default_registry", "make_env", "make_relabeler"]


class EnvRegistry:
    """Maps a name to an environment constructor and, optionally, its relabeler."""

    def __init__(self) -> None:
        self._envs: dict[str, Callable[..., Environment]] = {}
        self._relabelers: dict[str, Callable[..., Relabeler]] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., Environment],
        relabeler: Callable[..., Relabeler] | None = None,
    ) -> None:
        self._envs[name] = factory
        if relabeler is not None:
            self._relabelers[name] = relabeler

    def names(self) -> list[str]:
        return sorted(self._envs)

    def make(self, name: str, **kwargs: Any) -> Environment:
        try:
            factory = self._envs[name]
        except KeyError:
            raise KeyError(
                f"unknown environment {name!r}; known: {', '.join(self.names())}"
            ) from None
        return factory(**kwargs)

    def relabeler(self, name: str, **kwargs: Any) -> Relabeler:
        if name not in self._relabelers:
            raise KeyError(
                f"environment {name!r} has no programmatic relabeler; use an LLM synthesizer"
            )
        return self._relabelers[name](**kwargs)


def default_registry() -> EnvRegistry:
    """A registry holding the built-in environments."""
    from armap_agents.environments.game24 import Game24Env, Game24Relabeler

    registry = EnvRegistry()
    registry.register("game24", Game24Env, Game24Relabeler)
    return registry


def make_env(name: str, **kwargs: Any) -> Environment:
    """A new built-in environment by name."""
    return default_registry().make(name, **kwargs)


def make_relabeler(name: str, **kwargs: Any) -> Relabeler:
    """The programmatic relabeler of a built-in environment."""
    return default_registry().relabeler(name, **kwargs)
