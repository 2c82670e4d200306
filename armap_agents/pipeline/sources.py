"""What a stage is given, by name or as an object, and what the run's manifests say.

Every stage takes its environment, policy and reward model either as a spec (``"webshop"``,
``"expert:0.3"``, a model directory or URL) or as the object itself (an environment factory,
a :class:`~armap_agents.policies.Policy`, any :class:`~armap_agents.reward.scorer.RewardScorer`).
This module turns either into what the stage needs, and reads the defaults that the inputs'
manifests record: a command that reads trajectories, triplets or a reward model takes the
environment (and its options and horizon) from them when it is not given, and refuses one that
contradicts them, naming both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from armap_agents.errors import ConfigError

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.environments.defaults import EnvironmentDefaults
    from armap_agents.policies import Policy
    from armap_agents.reward.scorer import RewardScorer
    from armap_agents.reward_view import TrajectoryView

__all__ = [
    "EnvSource",
    "configured",
    "split_settings",
    "Inherited",
    "describe",
    "env_source",
    "inherit",
    "policy_name",
    "policy_object",
    "scorer_object",
]


def describe(obj: Any) -> str:
    """How a manifest names an object given instead of a spec: ``object:module.Class``."""
    kind = type(obj)
    return f"object:{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True)
class EnvSource:
    """An environment by name (a registered name or an import path, with its options) or a
    factory object; :func:`env_source` makes one."""

    name: str
    """The registered name or import path; for a factory object, its environments' ``name``."""
    options: Mapping[str, Any] = field(default_factory=dict)
    factory: EnvFactory | None = None
    """The user's factory object (None: made from ``name`` and ``options``)."""
    kind: type | None = None
    """The class of a factory object's environments (what declares their defaults, view,
    relabeler and prompt guide)."""

    @property
    def by_name(self) -> bool:
        """Whether the environment is named (so another process, a Ray worker, can make it)."""
        return self.factory is None

    @property
    def spec(self) -> str | type:
        """What the registry looks up: the name, or a factory object's environment class."""
        return self.kind if self.kind is not None else self.name

    @contextmanager
    def opened(self) -> Iterator[EnvFactory]:
        """The factory, as a context: pooled environments (JVMs ...) stop when it exits (a
        user's factory object is theirs to close)."""
        if self.factory is not None:
            yield self.factory
            return
        from armap_agents.environments.registry import opened_factory

        with opened_factory(self.name, **dict(self.options)) as factory:
            yield factory

    def defaults(self) -> EnvironmentDefaults:
        """What the environment declares (horizon, reward-model window, quickstart sizes)."""
        from armap_agents.environments.registry import default_registry

        return default_registry().defaults(self.spec)

    def view(self) -> TrajectoryView:
        """How a reward model reads its trajectories (the environment's ``reward_view``)."""
        from armap_agents.environments.registry import default_registry

        return default_registry().reward_view(self.spec)

    def defines(self) -> dict[str, Any]:
        """The environment as a manifest records it (see ``armap_agents._provenance``)."""
        from armap_agents._provenance import env_defines

        return env_defines(self.name, self.options)


def env_source(
    env: str | EnvFactory | EnvSource, options: Mapping[str, Any] | None = None
) -> EnvSource:
    """``env`` as an :class:`EnvSource`: a name or import path (made with ``options``), or a
    factory object (a zero-argument callable returning an environment; ``options`` must then
    be empty: they are the factory's business)."""
    if isinstance(env, EnvSource):
        return env
    if isinstance(env, str):
        return EnvSource(name=env, options=dict(options or {}))
    if not callable(env):
        raise ConfigError(
            f"env is a {type(env).__name__}: give an environment's name or import path, or a "
            "factory (a callable returning a new environment)"
        )
    if options:
        raise ConfigError("env_options apply to an environment given by name, not to a factory")
    from armap_agents.environments.pool import unwrapped

    with closing(env()) as probe:
        name = getattr(probe, "name", None) or type(probe).__name__
        kind = type(unwrapped(probe))
    return EnvSource(name=str(name), factory=env, kind=kind)


@dataclass(frozen=True)
class Inherited:
    """What an input's manifest says made it: the environment and its options, the episode
    horizon (None where it does not say)."""

    env: str | None = None
    env_options: Mapping[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    manifest: Path | None = None
    """The manifest it was read from (for messages)."""
    defines: Mapping[str, Any] | None = None
    """The manifest's whole ``defines`` record (None: no manifest)."""

    @classmethod
    def read(cls, artifact: str | Path, kind: str) -> Inherited:
        """What the manifest of ``artifact`` (``trajectories``, ``synthesis`` or
        ``reward_model``) records; nothing when it has none."""
        from armap_agents._provenance import manifest_path, recorded_defines

        defines = recorded_defines(artifact, kind)
        if defines is None:
            return cls()
        # a reward model records its synthesis, which records its trajectories
        made_of = defines.get("data", {}) if kind == "reward_model" else defines
        trajectories = made_of.get("trajectories", {}) if kind != "trajectories" else made_of
        env = made_of.get("env")
        steps = trajectories.get("max_steps") if isinstance(trajectories, dict) else None
        return cls(
            env=env if isinstance(env, str) else None,
            env_options=dict(made_of.get("env_options") or {}),
            max_steps=steps if isinstance(steps, int) else None,
            manifest=manifest_path(artifact, kind),
            defines=defines,
        )


def inherit(
    env: str | EnvFactory | EnvSource | None,
    env_options: Mapping[str, Any] | None,
    inherited: Inherited,
    *,
    what: str,
) -> EnvSource:
    """The environment of a stage that reads ``what`` (e.g. ``"the reward model in m/"``):
    ``env`` if given (refused with a :class:`ConfigError` naming both when ``inherited``
    records another), else the one ``inherited`` records (with its options unless
    ``env_options`` are given); neither is a ConfigError asking for it."""
    if env is None:
        if inherited.env is None:
            raise ConfigError(f"{what} does not record its environment (no manifest): give --env")
        options = inherited.env_options if env_options is None else env_options
        return env_source(inherited.env, options)
    source = env_source(env, env_options)
    if inherited.env is not None and source.name != inherited.env:
        raise ConfigError(
            f"--env {source.name!r} contradicts {what}, made on environment "
            f"{inherited.env!r} (see {inherited.manifest}): leave --env out to use "
            f"{inherited.env!r}, or give {source.name!r} data"
        )
    return source


def policy_object(policy: str | Policy, usage: Any = None) -> Policy:
    """``policy`` itself, or the policy its spec names (``random``, ``expert:EPSILON``, a
    chat model)."""
    if isinstance(policy, str):
        from armap_agents import _builders as build

        built: Policy = build.policy(policy, usage)
        return built
    if not callable(getattr(policy, "act", None)):
        raise ConfigError(f"policy is a {type(policy).__name__}, not a spec or a Policy")
    return policy


def policy_name(policy: str | Policy) -> str:
    """How a manifest names ``policy``."""
    return policy if isinstance(policy, str) else describe(policy)


def scorer_object(model: str | Path | RewardScorer) -> RewardScorer:
    """``model`` itself (any :class:`RewardScorer`), or the reward model its spec names: a
    directory (loaded) or the URL of ``armap serve-rm``."""
    if isinstance(model, str | Path):
        from armap_agents import _builders as build

        scorer: RewardScorer = build.reward_model(str(model))
        return scorer
    if not callable(getattr(model, "score", None)):
        raise ConfigError(
            f"model is a {type(model).__name__}: give a reward-model directory, a URL or a "
            "RewardScorer (an object with score(intent, trajectories))"
        )
    return model


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def configured(
    config_type: type[ConfigT],
    config: ConfigT | Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None = None,
    *,
    what: str = "",
) -> ConfigT:
    """A ``config_type``: ``config`` (the object, a mapping of its fields, or None for the
    defaults) with ``settings`` on top, checked (a :class:`ConfigError` with a did-you-mean
    hint on an unknown field or a bad value)."""
    from armap_agents.config import parse_config

    if config is not None and not isinstance(config, Mapping | config_type):
        raise ConfigError(
            f"{what or 'config'} is a {type(config).__name__}, not a {config_type.__name__}"
        )
    if isinstance(config, config_type) and not settings:
        return config
    base = config.model_dump(exclude_unset=True) if isinstance(config, BaseModel) else config
    return parse_config(config_type, {**dict(base or {}), **dict(settings or {})}, what=what)


def split_settings(
    settings: Mapping[str, Any], *config_types: type[BaseModel], what: str
) -> list[dict[str, Any]]:
    """``settings`` divided among ``config_types``: each gets the fields it has (a field
    several have goes to each); one no type has is a :class:`ConfigError` naming the closest."""
    known = [name for t in config_types for name in t.model_fields]
    unknown = [key for key in settings if key not in known]
    if unknown:
        from armap_agents.config import did_you_mean

        raise ConfigError(
            f"unknown {what} setting(s) {unknown}{did_you_mean(unknown, known)}; the settings "
            f"are the fields of {', '.join(t.__name__ for t in config_types)}"
        )
    return [{k: v for k, v in settings.items() if k in t.model_fields} for t in config_types]
