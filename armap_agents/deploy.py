"""Graph factories for LangGraph's Agent Server: ``langgraph dev`` serves ARMAP's graphs.

``langgraph.json`` (at the repository root) names five graphs, one per factory here:
``explore``, ``synthesize``, ``best_of_n``, ``reflexion`` and ``mcts``. The server calls a
factory for every run, with the run's config; what the graph is made of comes from
``config["configurable"]`` (the run's ``config={"configurable": ...}``, its ``context=...`` —
the server copies one into the other — or the assistant's), read as :class:`DeploySettings`::

    client.runs.stream(None, "best_of_n", input={"task_id": "905"},
                       context={"reward_model": "runs/quickstart/reward_model",
                                "planner_config": {"n": 8}},
                       stream_mode=["custom", "values"])

The server also calls a factory to read a thread's state or a graph's schemas; those graphs
are never run, so they get the same topology without setting anything up (no reward model is
loaded, no chat model or environment is made). Only a run loads the reward model (a directory,
or the URL of ``armap serve-rm``; default ``$ARMAP_REWARD_MODEL``), builds the policy and the
environment factory, and closes pooled environments (ScienceWorld's JVMs ...) when it ends.
Nothing is cached between runs.

The factories return async context managers because the server calls them on its event loop:
the setup (loading weights, reading data files) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from armap_agents import _builders as build
from armap_agents.errors import ConfigError

if TYPE_CHECKING:  # the server resolves this annotation itself; langgraph_sdk is optional
    from langgraph_sdk.runtime import ServerRuntime

__all__ = [
    "REWARD_MODEL_ENV",
    "DeploySettings",
    "best_of_n",
    "explore",
    "mcts",
    "reflexion",
    "synthesize",
]

REWARD_MODEL_ENV = "ARMAP_REWARD_MODEL"
"""Environment variable with the default reward model (a directory or a URL) of served runs."""


class DeploySettings(BaseModel):
    """What a served graph is made of: the keys of a run's ``configurable`` (or ``context``).

    Keys the server adds itself (``thread_id``, ``assistant_id``, ...) are ignored; each graph
    reads the keys that concern it.
    """

    model_config = ConfigDict(extra="ignore")

    env: str = "game24"
    """A built-in environment: game24, scienceworld, alfworld or webshop."""
    env_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the environment (``{"data_dir": ...}`` for ALFWorld ...)."""
    policy: str = "random"
    """``random`` (valid actions at random) or a chat model, e.g. ``openai:gpt-4o-mini``."""
    reward_model: str | None = None
    """A saved reward-model directory or the URL of ``armap serve-rm`` (planners); when
    missing, ``$ARMAP_REWARD_MODEL``. Relative paths are relative to the server's directory."""
    planner_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of the planner's config (``BestOfNConfig``, ``ReflexionConfig``, ``MCTSConfig``)."""
    objectives: list[str] = Field(default_factory=list)
    """Extra objectives, as on the command line: ``fewer_steps:0.1``, ``price_paid:-0.005``."""
    reflector: str | None = None
    """Reflexion: the chat model that writes reflections (none: resampling only)."""
    memory: str | None = None
    """Reflexion: a directory of reflections shared across runs (``TrajectoryMemory``)."""
    explore_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of :class:`~armap_agents.graphs.explore.ExploreConfig` (its ``max_concurrency``
    is not read here: bound parallel episodes with the run config's ``max_concurrency``)."""
    synthesizer: str = "relabel"
    """``relabel`` (the environment's programmatic relabeler) or a chat model."""
    synthesize_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of :class:`~armap_agents.graphs.synthesize.SynthesizeConfig`."""

    @classmethod
    def from_config(cls, config: RunnableConfig | None) -> DeploySettings:
        """The settings in ``config["configurable"]``; a wrong value raises ``ConfigError``."""
        try:
            return cls.model_validate((config or {}).get("configurable") or {})
        except ValidationError as exc:
            raise ConfigError(f"invalid armap settings in the run's configurable: {exc}") from None

    def reward_model_spec(self) -> str | None:
        """``reward_model``, else ``$ARMAP_REWARD_MODEL``, else None."""
        return self.reward_model or os.environ.get(REWARD_MODEL_ENV) or None


def _validated(config_type: type[BaseModel], fields: dict[str, Any], key: str) -> Any:
    """``config_type(**fields)``; a wrong or unknown field (a typo) raises ``ConfigError``."""
    unknown = sorted(set(fields) - set(config_type.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown {key} field(s) {unknown}; {config_type.__name__} has "
            f"{', '.join(config_type.model_fields)}"
        )
    try:
        return config_type(**fields)
    except ValidationError as exc:
        raise ConfigError(f"invalid {key}: {exc}") from None


class _SetUpOnlyForRuns:
    """Stands in for a policy, reward model or environment factory in a graph the server
    builds only to read state or schemas; such a graph is never run."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"the {self._what} is set up only when the graph runs")

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the {self._what} is set up only when the graph runs ({name!r})")


def _is_run(runtime: ServerRuntime | None) -> bool:
    """Whether the server builds the graph to run it (no runtime: called directly, to run)."""
    return runtime is None or runtime.execution_runtime is not None


def _checked(what: str, build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``; a bad name or value (KeyError, ValueError) -> ConfigError."""
    try:
        return build(*args, **kwargs)
    except ConfigError:
        raise
    except (KeyError, ValueError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ConfigError(f"invalid {what}: {reason}") from None


def _env_factory(settings: DeploySettings, stack: ExitStack) -> Any:
    from armap_agents.environments.registry import make_env_factory

    factory = _checked("env", make_env_factory, settings.env, **settings.env_options)
    close = getattr(factory, "close", None)
    if close is not None:  # a pool of costly environments: stop them when the run ends
        stack.callback(close)
    return factory


def _load_reward_model(settings: DeploySettings) -> Any:
    spec = settings.reward_model_spec()
    if spec is None:
        raise ConfigError(
            "this planner needs a reward model: set `reward_model` (a saved reward-model "
            "directory or the URL of `armap serve-rm`) in the run's configurable or context, "
            f"or the {REWARD_MODEL_ENV} environment variable of the server"
        )
    return build.reward_model(spec)


def _build_planner(
    name: str, settings: DeploySettings, stack: ExitStack, run: bool
) -> CompiledStateGraph:
    from armap_agents.planners import PLANNERS, build_planner

    config = _validated(PLANNERS[name][1], settings.planner_config, "planner_config")
    needs_reward_model = name != "best_of_n" or config.selection == "reward"
    extra: dict[str, Any] = {
        "objectives": _checked("objectives", build.objectives, settings.objectives)
    }
    if not run:
        placeholder = _SetUpOnlyForRuns
        reward_model = placeholder("reward model") if needs_reward_model else None
        return build_planner(
            name, placeholder("policy"), placeholder("environment"), reward_model, config, **extra
        )
    # cheap checks first, weights last
    env_factory = _env_factory(settings, stack)
    policy = _checked("policy", build.policy, settings.policy)
    if name == "reflexion" and settings.reflector:
        extra["reflector"] = _checked("reflector", build.chat_model, settings.reflector)
    reward_model = _load_reward_model(settings) if needs_reward_model else None
    if name == "reflexion" and settings.memory:
        from armap_agents.memory import TrajectoryMemory

        extra.update(memory=TrajectoryMemory.open(settings.memory), memory_path=settings.memory)
    return build_planner(name, policy, env_factory, reward_model, config, **extra)


def _build_explore(settings: DeploySettings, stack: ExitStack, run: bool) -> CompiledStateGraph:
    from armap_agents.graphs.explore import ExploreConfig, build_explore_graph

    config = _validated(ExploreConfig, settings.explore_config, "explore_config")
    if not run:
        return build_explore_graph(
            _SetUpOnlyForRuns("policy"), _SetUpOnlyForRuns("environment"), config
        )
    policy = _checked("policy", build.policy, settings.policy)
    return build_explore_graph(policy, _env_factory(settings, stack), config)


def _build_synthesize(settings: DeploySettings, stack: ExitStack, run: bool) -> CompiledStateGraph:
    from armap_agents.graphs.synthesize import SynthesizeConfig, build_synthesize_graph

    config = _validated(SynthesizeConfig, settings.synthesize_config, "synthesize_config")
    if not run:
        return build_synthesize_graph(_SetUpOnlyForRuns("synthesizer"), config)
    synthesizer = _checked(
        "synthesizer",
        build.synthesizer,
        settings.synthesizer,
        settings.env,
        None,
        settings.env_options,
    )
    return build_synthesize_graph(synthesizer, config)


@asynccontextmanager
async def _served(
    build: Callable[[DeploySettings, ExitStack, bool], CompiledStateGraph],
    config: RunnableConfig | None,
    runtime: ServerRuntime | None,
) -> AsyncIterator[CompiledStateGraph]:
    settings = DeploySettings.from_config(config)
    with ExitStack() as stack:
        # setup reads files and may load weights: keep it off the server's event loop
        graph = await asyncio.to_thread(build, settings, stack, _is_run(runtime))
        try:
            yield graph
        finally:
            await asyncio.to_thread(stack.close)


# The server classifies a factory by its parameters: ``config`` gets the run's RunnableConfig,
# the parameter annotated ServerRuntime the runtime (None when a factory is called directly).
def explore(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """The exploration graph; input ``{"output_path": "trajectories.jsonl"}`` (on the server).

    Settings: ``env``, ``env_options``, ``policy``, ``explore_config``. Streams custom
    progress events: ``{"event": "start", ...}``, then one ``{"event": "episode", ...}`` each.
    """
    return _served(_build_explore, config, runtime)


def synthesize(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """The synthesis graph; input ``{"trajectories_path": ..., "output_dir": ...}``.

    Settings: ``env``, ``env_options``, ``synthesizer``, ``synthesize_config``. Streams custom
    progress events: ``{"event": "start", ...}``, then one ``{"event": "task", ...}`` each.
    """
    return _served(_build_synthesize, config, runtime)


def best_of_n(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """ARMAP-B; input ``{"task_id": "905"}``, the answer in ``best`` (``scores`` beside it).

    Settings: ``env``, ``env_options``, ``policy``, ``reward_model`` (not needed with
    ``planner_config.selection`` random or oracle), ``planner_config``, ``objectives``.
    Streams one custom ``{"event": "candidate", "index": i}`` per finished candidate.
    """
    return _served(functools.partial(_build_planner, "best_of_n"), config, runtime)


def reflexion(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """ARMAP-R; input ``{"task_id": "905"}``, the answer in ``best``.

    Settings: ``env``, ``env_options``, ``policy``, ``reward_model``, ``planner_config``,
    ``objectives``, ``reflector``, ``memory``. Streams one custom ``{"event": "trial",
    "trial": n, "score": s, "value": v}`` per scored attempt.
    """
    return _served(functools.partial(_build_planner, "reflexion"), config, runtime)


def mcts(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """ARMAP-M; input ``{"task_id": "905"}``, the answer in ``best`` (the tree in ``nodes``).

    Settings: ``env``, ``env_options``, ``policy``, ``reward_model``, ``planner_config``,
    ``objectives``. Streams one custom ``{"event": "iteration", ...}`` per search round.
    """
    return _served(functools.partial(_build_planner, "mcts"), config, runtime)
