"""Reuse environment instances across episodes, for environments that are costly to start.

The graphs open one environment per episode or tree operation (``with closing(env_factory())``).
For Game of 24 that is free; for ScienceWorld each instance is a JVM (about a second to start,
a few hundred MiB). :class:`EnvPool` is an :data:`~armap_agents.environments.base.EnvFactory`
that hands out idle instances and takes them back on ``close()``; ``reset()`` starts every
episode from scratch, so a reused instance behaves like a new one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from armap_agents.environments.base import Environment
from armap_agents.errors import ConfigError

__all__ = ["EnvPool"]


class _Lease:
    """An environment borrowed from a pool: everything is the environment's, except
    ``close()``, which gives it back (once)."""

    def __init__(self, env: Environment, pool: EnvPool) -> None:
        self._env: Environment | None = env
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        env = self.__dict__.get("_env")
        if env is None:
            raise AttributeError(f"{name!r}: this environment was closed (returned to its pool)")
        return getattr(env, name)

    def close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            self._pool._release(env)


def unwrapped(env: Environment) -> Environment:
    """The environment itself: ``env``, or the environment a pool's lease lends."""
    if isinstance(env, _Lease):
        lent = env.__dict__.get("_env")
        return env if lent is None else lent
    return env


class EnvPool:
    """A thread-safe pool of environments built by ``factory``; call it to borrow one.

    At most ``max_idle`` environments wait idle (more are closed when returned); environments
    in use are not limited. :meth:`close` closes the idle ones (also done when the pool is
    garbage collected). Use it as the ``env_factory`` of any graph.
    """

    def __init__(self, factory: Callable[[], Environment], *, max_idle: int = 8) -> None:
        if max_idle < 0:
            raise ConfigError(f"max_idle must be >= 0, got {max_idle}")
        self.factory = factory
        self.max_idle = max_idle
        self.created = 0
        """How many environments the pool has built."""
        self._idle: list[Environment] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def __call__(self) -> Environment:
        with self._lock:
            env = self._idle.pop() if self._idle else None
            if env is None:
                self.created += 1
        if env is None:
            env = self.factory()
        return _Lease(env, self)

    def _release(self, env: Environment) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(env)
                return
        env.close()

    def close(self) -> None:
        """Close every idle environment (borrowed ones are closed when they come back)."""
        with self._lock:
            self.max_idle = 0
        self._finalizer()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_all(envs: list[Environment]) -> None:
    while envs:
        envs.pop().close()
