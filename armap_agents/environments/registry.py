"""Environments by name: ``make_env("game24")``; ``registry.register("mine", MyEnv)``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from armap_agents.environments.base import EnvFactory, Environment, Relabeler
from armap_agents.prompts import PromptGuide, prompt_guide

__all__ = ["EnvRegistry", "default_registry", "make_env", "make_env_factory", "make_relabeler"]


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

    def factory(self, name: str, **kwargs: Any) -> EnvFactory:
        """An environment factory for graphs (one environment per episode or tree operation).

        Environments that are costly to start provide a ``factory`` classmethod that reuses
        instances (ScienceWorld's JVMs, ALFWorld's game engines); others are built anew each
        time. Arguments are checked now.
        """
        if name not in self._envs:
            self.make(name)  # raises the helpful KeyError
        constructor = self._envs[name]
        pooled = getattr(constructor, "factory", None)
        if pooled is not None:
            return pooled(**kwargs)
        constructor(**kwargs).close()  # fail early on wrong arguments
        return functools.partial(constructor, **kwargs)

    def prompt_guide(self, name: str) -> PromptGuide:
        """The environment's :class:`~armap_agents.prompts.PromptGuide` (without making one)."""
        if name not in self._envs:
            self.make(name)  # raises the helpful KeyError
        return prompt_guide(self._envs[name])

    def relabeler_constructor(self, name: str) -> Callable[..., Relabeler]:
        """What builds ``name``'s relabeler (to see which arguments it takes)."""
        if name not in self._relabelers:
            raise KeyError(
                f"environment {name!r} has no programmatic relabeler; use an LLM synthesizer"
            )
        return self._relabelers[name]

    def relabeler(self, name: str, **kwargs: Any) -> Relabeler:
        """``name``'s programmatic relabeler, built with ``kwargs``."""
        return self.relabeler_constructor(name)(**kwargs)


def default_registry() -> EnvRegistry:
    """A registry holding the built-in environments (ScienceWorld and ALFWorld need their
    extras, Java for ScienceWorld and a data directory for ALFWorld, when one is made)."""
    from armap_agents.environments.alfworld import AlfWorldEnv, AlfWorldRelabeler
    from armap_agents.environments.game24 import Game24Env, Game24Relabeler
    from armap_agents.environments.scienceworld import ScienceWorldEnv, ScienceWorldRelabeler
    from armap_agents.environments.webshop import WebShopEnv, WebShopRelabeler

    registry = EnvRegistry()
    registry.register("game24", Game24Env, Game24Relabeler)
    registry.register("scienceworld", ScienceWorldEnv, ScienceWorldRelabeler)
    registry.register("alfworld", AlfWorldEnv, AlfWorldRelabeler)
    registry.register("webshop", WebShopEnv, WebShopRelabeler)
    return registry


def make_env(name: str, **kwargs: Any) -> Environment:
    """A new built-in environment by name."""
    return default_registry().make(name, **kwargs)


def make_env_factory(name: str, **kwargs: Any) -> EnvFactory:
    """A factory of a built-in environment for graphs (reusing costly instances)."""
    return default_registry().factory(name, **kwargs)


def make_relabeler(name: str, **kwargs: Any) -> Relabeler:
    """The programmatic relabeler of a built-in environment."""
    return default_registry().relabeler(name, **kwargs)
