"""Environments by name: ``make_env("game24")``; ``registry.register("mine", MyEnv)``.

Every method that takes a name also takes an import path, ``package.module:Name`` or
``path/to/file.py:Name``, naming an environment class (or any callable returning an
environment): that is how the command line runs an environment no registry knows
(``armap quickstart --env examples/guess_number.py:GuessNumber``). Its relabeler is the
class's ``relabeler`` attribute (a relabeler class, or a classmethod returning a relabeler)
when it has one, else the generic :class:`~armap_agents.environments.outcome.OutcomeRelabeler`.

:func:`default_registry` is one registry per process: what ``default_registry().register(...)``
adds is seen by :func:`make_env`, the command line run in the same process (``main([...])``) and
the deployment's graphs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from armap_agents._import_path import is_import_path, load_import_path
from armap_agents.environments.base import EnvFactory, Environment, Relabeler
from armap_agents.environments.defaults import EnvironmentDefaults, environment_defaults
from armap_agents.environments.outcome import OutcomeRelabeler
from armap_agents.errors import ArmapError, ConfigError, UnknownName
from armap_agents.prompts import PromptGuide, prompt_guide
from armap_agents.reward_view import TrajectoryView, environment_view

__all__ = [
    "EnvRegistry",
    "default_registry",
    "make_env",
    "make_env_factory",
    "make_relabeler",
    "opened_factory",
]


class EnvRegistry:
    """Maps a name to an environment constructor and, optionally, its relabeler; an import
    path (``module:Class``, ``file.py:Class``) is loaded on use (once per process, by
    :func:`~armap_agents._import_path.load_import_path`) and never joins :meth:`names`."""

    def __init__(self) -> None:
        self._envs: dict[str, Callable[..., Environment]] = {}
        self._relabelers: dict[str, Callable[..., Relabeler]] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., Environment],
        relabeler: Callable[..., Relabeler] | None = None,
    ) -> None:
        """Make ``name`` build environments with ``factory`` (and relabelers with
        ``relabeler``; none: the generic :class:`OutcomeRelabeler`); a name registered before
        is replaced."""
        self._envs[name] = factory
        self._relabelers.pop(name, None)
        if relabeler is not None:
            self._relabelers[name] = relabeler

    def unregister(self, name: str) -> None:
        """Forget ``name`` (an unknown name raises :class:`UnknownName`)."""
        if name not in self._envs:
            raise UnknownName(f"unknown environment {name!r}; known: {', '.join(self.names())}")
        del self._envs[name]
        self._relabelers.pop(name, None)

    def names(self) -> list[str]:
        """The registered names (import paths are not listed)."""
        return sorted(self._envs)

    def constructor(self, name: str | type) -> Callable[..., Environment]:
        """What builds ``name``: the registered constructor, or the object an import path
        names (loaded and checked to be callable); an environment class is its own (so every
        method below also takes the class of a user's environment)."""
        if isinstance(name, type):
            return name
        if name in self._envs:
            return self._envs[name]
        if not is_import_path(name):
            raise UnknownName(
                f"unknown environment {name!r}; known: {', '.join(self.names())}, or an import "
                "path: package.module:Class or path/to/file.py:Class"
            )
        obj = load_import_path(name, "environment")
        if not callable(obj):
            raise ConfigError(
                f"environment {name!r} is a {type(obj).__name__}, not a class or a function "
                "returning an environment"
            )
        return obj

    def make(self, name: str, **kwargs: Any) -> Environment:
        """A new environment (``name``: registered, or an import path)."""
        constructor = self.constructor(name)
        check_arguments(constructor, kwargs, f"environment {name!r}")
        with _option_errors(name, kwargs):
            return constructor(**kwargs)

    def factory(self, name: str, **kwargs: Any) -> EnvFactory:
        """An environment factory for graphs (one environment per episode or tree operation).

        Environments that are costly to start provide a ``factory`` classmethod that reuses
        instances (ScienceWorld's JVMs, ALFWorld's game engines); others are built anew each
        time. Arguments are checked now.
        """
        constructor = self.constructor(name)
        check_arguments(constructor, kwargs, f"environment {name!r}")
        pooled = getattr(constructor, "factory", None)
        with _option_errors(name, kwargs):
            if pooled is not None:
                return pooled(**kwargs)
            constructor(**kwargs).close()  # fail early on wrong arguments
        return functools.partial(constructor, **kwargs)

    def prompt_guide(self, name: str | type, **kwargs: Any) -> PromptGuide:
        """The environment's :class:`~armap_agents.prompts.PromptGuide`: its class attribute
        (without making one), else that of an instance made with ``kwargs`` (an environment
        whose guide depends on its arguments, like :class:`ToolEnvironment`'s)."""
        constructor = self.constructor(name)
        guide = getattr(constructor, "prompt_guide", None)
        if isinstance(guide, PromptGuide):
            return guide
        with _option_errors(name, kwargs):
            env = constructor(**kwargs)
        try:
            return prompt_guide(env)
        finally:
            env.close()

    def defaults(self, name: str | type) -> EnvironmentDefaults:
        """What ``name`` declares about itself: its horizon, the reward model's window and
        quickstart sizes (the class's ``defaults`` attribute, else the generic
        :class:`~armap_agents.environments.defaults.EnvironmentDefaults`)."""
        return environment_defaults(self.constructor(name))

    def reward_view(self, name: str | type) -> TrajectoryView:
        """How the reward model should read ``name``'s trajectories: the class's
        ``reward_view`` attribute, else the generic :class:`TrajectoryView` (every action,
        observations fitted to the window)."""
        return environment_view(self.constructor(name))

    def relabeler_constructor(self, name: str | type) -> Callable[..., Relabeler]:
        """What builds ``name``'s relabeler (to see which arguments it takes): the registered
        one (for an import path, the class's callable ``relabeler`` attribute), else the
        generic :class:`~armap_agents.environments.outcome.OutcomeRelabeler` (pairs by the
        environment's own verdicts)."""
        constructor = self.constructor(name)  # an unknown name raises; an import path loads
        if name in self._envs:
            return self._relabelers.get(name, OutcomeRelabeler)
        relabeler = getattr(constructor, "relabeler", None)
        return relabeler if callable(relabeler) else OutcomeRelabeler

    def relabeler(self, name: str | type, **kwargs: Any) -> Relabeler:
        """``name``'s programmatic relabeler, built with ``kwargs``."""
        return self.relabeler_constructor(name)(**kwargs)


def check_arguments(constructor: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Raise :class:`ConfigError` when ``constructor`` does not take ``kwargs`` (an unknown
    option, a missing required one), naming the options it takes."""
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        options = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise ConfigError(
            f"{what}: {exc}; its options are {', '.join(options) or 'none'}"
        ) from None


@contextmanager
def _option_errors(name: str | type, kwargs: dict[str, Any]) -> Iterator[None]:
    """Turn a ``TypeError``/``ValueError`` that an environment's constructor raises on the
    options it was given (``puzzles=3`` where a list is expected) into a
    :class:`ConfigError` naming the environment and the options; one raised without options
    is a bug and keeps its traceback, as does an :class:`ArmapError` (already one line)."""
    try:
        yield
    except ArmapError:
        raise
    except (TypeError, ValueError) as exc:
        if not kwargs:
            raise
        label = name.__name__ if isinstance(name, type) else name
        options = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        raise ConfigError(
            f"environment {label!r} cannot be made with the options {options}: {exc} "
            f"({type(exc).__name__}); check their types and values"
        ) from exc


@functools.cache
def default_registry() -> EnvRegistry:
    """The process's registry, made on first use with the built-in environments (ScienceWorld
    and ALFWorld need their extras, Java for ScienceWorld and a data directory for ALFWorld,
    when one is made); every call returns the same registry, so an environment registered on
    it is known to :func:`make_env`, the command line and the deployment."""
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


@contextmanager
def opened_factory(name: str, **kwargs: Any) -> Iterator[EnvFactory]:
    """:func:`make_env_factory` as a context: pooled environments (ScienceWorld's JVMs,
    ALFWorld's engines) are stopped when the block ends."""
    factory = make_env_factory(name, **kwargs)
    try:
        yield factory
    finally:
        close = getattr(factory, "close", None)
        if close is not None:
            close()


def make_env(name: str, **kwargs: Any) -> Environment:
    """A new built-in environment by name (or an environment by import path)."""
    return default_registry().make(name, **kwargs)


def make_env_factory(name: str, **kwargs: Any) -> EnvFactory:
    """A factory of a built-in (or import-path) environment for graphs (reusing costly
    instances)."""
    return default_registry().factory(name, **kwargs)


def make_relabeler(name: str, **kwargs: Any) -> Relabeler:
    """The programmatic relabeler of a built-in (or import-path) environment."""
    return default_registry().relabeler(name, **kwargs)
