"""Graph factories for LangGraph's Agent Server: ``langgraph dev`` serves ARMAP's graphs.

``langgraph.json`` (at the repository root) names seven graphs, one per factory here:
``explore``, ``synthesize``, ``best_of_n``, ``reflexion``, ``mcts``, ``beam_search`` and
``live_rerank``. The server calls a
factory for every run, with the run's config; what the graph is made of comes from
``config["configurable"]`` (the run's ``config={"configurable": ...}``, its ``context=...`` —
the server copies one into the other — or the assistant's), read as :class:`DeploySettings`::

    client.runs.stream(None, "best_of_n", input={"task_id": "905"},
                       context={"planner_config": {"n": 8}},
                       stream_mode=["custom", "values"])

The server also calls a factory to read a thread's state or a graph's schemas; those graphs
are never run, so they get the same topology without setting anything up (no reward model is
loaded, no chat model or environment is made). Only a run loads the reward model (one the
operator configured, see below), builds the policy and the environment factory, and closes
pooled environments (ScienceWorld's JVMs ...) when it ends. Nothing is cached between runs.

The factories return async context managers because the server calls them on its event loop:
the setup (loading weights, reading data files) runs in a worker thread.

Security model. A run's settings and inputs come from the server's clients; what they may name
is fixed by the operator in environment variables of the server process, read at every run
(not in the assistant's config: a run's ``context`` is merged over it). See
:class:`ServerConfig`:

``ARMAP_DEPLOY_DATA_DIR`` (default ``armap_data`` in the server's working directory)
    the only directory runs read or write: ``memory``, explore's input ``output_path``,
    synthesize's ``trajectories_path`` and ``output_dir``, and the environment options
    ``data_dir`` / ``cache_dir`` are paths relative to it. Absolute paths, ``..`` and symbolic
    links leading out of it are refused.
``ARMAP_DEPLOY_ALLOWED_ENVS``
    import paths (``package.module:Class``, ``path/to/file.py:Class``), comma-separated, that a
    run may name as ``env`` besides the built-in environments; none by default.
``ARMAP_DEPLOY_ALLOWED_MODELS``
    chat-model specs (``openai:gpt-4o-mini``, ``local:smollm2`` ...), comma-separated, that a
    run may name as ``policy``, ``reflector`` or ``synthesizer``; by default only ``random``
    (policy) and ``relabel`` (synthesizer), which are always allowed.
``ARMAP_REWARD_MODEL``, ``ARMAP_REWARD_MODELS``
    the default reward model (a directory or the URL of ``armap serve-rm``) and named ones,
    ``name=directory-or-URL`` pairs, comma-separated; a run's ``reward_model`` is one of these
    names (or values) and nothing else. ``ARMAP_RM_TOKEN`` is sent to these URLs only.

Environment options that choose a program the server starts (``java_path``,
``java_options``) are refused. Each refusal is a :class:`~armap_agents.errors.ConfigError`
naming what was refused and the variable that allows it; nothing of the run has started then.
An import path the operator allows runs its code in the server with the run's ``env_options``:
allow only code you trust with any options.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents import _builders as build
from armap_agents._import_path import is_import_path
from armap_agents.config import StrictConfig, parse_config
from armap_agents.errors import ConfigError, UnknownName

if TYPE_CHECKING:  # the server resolves this annotation itself; langgraph_sdk is optional
    from langgraph_sdk.runtime import ServerRuntime

__all__ = [
    "ALLOWED_ENVS_ENV",
    "ALLOWED_MODELS_ENV",
    "DATA_DIR_ENV",
    "REWARD_MODELS_ENV",
    "REWARD_MODEL_ENV",
    "DeploySettings",
    "ServerConfig",
    "beam_search",
    "best_of_n",
    "explore",
    "live_rerank",
    "mcts",
    "reflexion",
    "synthesize",
]

REWARD_MODEL_ENV = "ARMAP_REWARD_MODEL"
"""Environment variable with the default reward model (a directory or a URL) of served runs."""
REWARD_MODELS_ENV = "ARMAP_REWARD_MODELS"
"""Environment variable naming more reward models: ``name=directory-or-URL``, comma-separated."""
DATA_DIR_ENV = "ARMAP_DEPLOY_DATA_DIR"
"""Environment variable with the directory that runs' paths are relative to (and confined to)."""
ALLOWED_ENVS_ENV = "ARMAP_DEPLOY_ALLOWED_ENVS"
"""Environment variable listing the import paths a run may name as ``env``, comma-separated."""
ALLOWED_MODELS_ENV = "ARMAP_DEPLOY_ALLOWED_MODELS"
"""Environment variable listing the chat-model specs a run may name, comma-separated."""
DEFAULT_DATA_DIR = "armap_data"
"""The data directory when ``ARMAP_DEPLOY_DATA_DIR`` is not set (in the server's directory)."""

# environment options that are paths (confined to the data directory) or choose a program the
# server starts (refused); tests/test_deploy.py checks every built-in option is classified
PATH_OPTIONS = frozenset({"data_dir", "cache_dir"})
PROGRAM_OPTIONS = frozenset({"java_path", "java_options"})


def _listed(environ: Mapping[str, str], name: str) -> list[str]:
    """The comma-separated items of the variable ``name`` (blanks dropped)."""
    return [item.strip() for item in (environ.get(name) or "").split(",") if item.strip()]


class ServerConfig(StrictConfig):
    """What the runs of a server may name, fixed by its operator: read from the server's
    environment variables by :meth:`from_environ` (see the module's docstring). Its methods
    check a run's choice and return what to use, or raise :class:`ConfigError` naming what
    was refused and how the operator allows it."""

    data_dir: Path
    """The directory runs' paths are relative to and confined to (made absolute, resolved)."""
    envs: frozenset[str] = frozenset()
    """Import paths a run may name as ``env``, besides the built-in environments."""
    chat_models: frozenset[str] = frozenset()
    """Chat-model specs a run may name as ``policy``, ``reflector`` or ``synthesizer``."""
    reward_models: Mapping[str, str] = Field(default_factory=dict)
    """Reward models a run may name: name -> directory or URL of ``armap serve-rm``."""
    default_reward_model: str | None = None
    """The reward model of a run that names none (a directory or a URL)."""

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, data_dir: Path) -> Path:
        return data_dir.expanduser().resolve()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """The configuration in ``environ`` (default: this process's environment variables);
        a malformed variable raises ``ConfigError``."""
        environ = os.environ if environ is None else environ
        envs = _listed(environ, ALLOWED_ENVS_ENV)
        for spec in envs:
            if not is_import_path(spec):
                raise ConfigError(
                    f"{ALLOWED_ENVS_ENV}: {spec!r} is not an import path (package.module:Name "
                    "or path/to/file.py:Name); built-in environments need no listing"
                )
        reward_models = {}
        for item in _listed(environ, REWARD_MODELS_ENV):
            name, sep, spec = item.partition("=")
            if not (sep and name.strip() and spec.strip()):
                raise ConfigError(
                    f"{REWARD_MODELS_ENV}: cannot read {item!r}; write NAME=DIRECTORY_OR_URL, "
                    "comma-separated"
                )
            reward_models[name.strip()] = spec.strip()
        return cls(
            data_dir=Path(environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR),
            envs=frozenset(envs),
            chat_models=frozenset(_listed(environ, ALLOWED_MODELS_ENV)),
            reward_models=reward_models,
            default_reward_model=(environ.get(REWARD_MODEL_ENV) or "").strip() or None,
        )

    def env(self, name: str) -> str:
        """``name`` if a run may use it: a built-in environment or an allowed import path."""
        from armap_agents.environments.registry import default_registry

        known = default_registry().names()
        if name in known or name in self.envs:
            return name
        if is_import_path(name):
            raise ConfigError(
                f"env {name!r} is refused: a run names a built-in environment "
                f"({', '.join(known)}) or an import path the operator listed in "
                f"{ALLOWED_ENVS_ENV} on the server"
            )
        raise UnknownName(
            f"unknown environment {name!r}; this server has {', '.join(known + sorted(self.envs))}"
        )

    def env_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with their paths (``data_dir``, ``cache_dir``) resolved in the data
        directory; an option that chooses a program (``java_path`` ...) is refused."""
        out = dict(options)
        for key, value in options.items():
            if key in PROGRAM_OPTIONS:
                raise ConfigError(
                    f"env_options.{key} is refused: a run may not choose a program the server "
                    "starts (the operator sets JAVA_HOME or PATH on the server)"
                )
            if key in PATH_OPTIONS and not (value is None or isinstance(value, bool)):
                out[key] = str(self.path(value, f"env_options.{key}"))
        return out

    def chat_model(self, spec: str, what: str) -> str:
        """``spec`` if the operator allowed this chat model; ``what`` names the setting."""
        if spec in self.chat_models:
            return spec
        allowed = ", ".join(sorted(self.chat_models)) or "none"
        raise ConfigError(
            f"{what} {spec!r} is refused: a run may use the chat models the operator listed in "
            f"{ALLOWED_MODELS_ENV} on the server (here: {allowed})"
        )

    def reward_model(self, choice: str | None) -> str:
        """The directory or URL of the reward model a run names (``None``: the default)."""
        if choice is None:
            if self.default_reward_model is None:
                raise ConfigError(
                    "this planner needs a reward model: set `reward_model` in the run's context "
                    f"to one the operator named in {REWARD_MODELS_ENV}, or the operator sets "
                    f"the {REWARD_MODEL_ENV} environment variable of the server (the default)"
                )
            return self.default_reward_model
        if choice in self.reward_models:
            return self.reward_models[choice]
        if choice in self.reward_model_specs():
            return choice
        names = ", ".join(sorted(self.reward_models)) or "none"
        raise ConfigError(
            f"reward_model {choice!r} is refused: a run names one of the server's reward "
            f"models (here: {names}); the operator names them in {REWARD_MODELS_ENV} "
            f"(NAME=DIRECTORY_OR_URL, comma-separated) or sets {REWARD_MODEL_ENV}"
        )

    def reward_model_specs(self) -> set[str]:
        """The directories and URLs of every configured reward model."""
        specs = set(self.reward_models.values())
        if self.default_reward_model is not None:
            specs.add(self.default_reward_model)
        return specs

    def path(self, value: Any, what: str) -> Path:
        """``value``, a run's path relative to the data directory, made absolute; an absolute
        path, ``..`` or a symbolic link leading out of the directory is refused."""
        how = (
            "give a path relative to the server's data directory (the operator sets it with "
            f"{DATA_DIR_ENV}), without '..'"
        )
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise ConfigError(f"{what} {value!r} is refused: {how}")
        relative = PurePath(value)
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(f"{what} {value!r} is refused: {how}")
        try:
            target = (self.data_dir / relative).resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop ...
            raise ConfigError(f"{what} {value!r} cannot be resolved: {exc}") from None
        if not target.is_relative_to(self.data_dir):
            raise ConfigError(
                f"{what} {value!r} is refused: a symbolic link leads it out of the server's "
                f"data directory; {how}"
            )
        return target


class DeploySettings(StrictConfig):
    """What a served graph is made of: the keys of a run's ``configurable`` (or ``context``).

    Each graph reads the keys that concern it; what each key may name is limited by the
    operator's :class:`ServerConfig`. Any other key is refused with a
    :class:`~armap_agents.errors.ConfigError` naming the closest setting (``planer_config``:
    did you mean ``planner_config``?), except the keys the LangGraph server and LangGraph add
    to ``configurable`` themselves, which are ignored:

    * the ids of the run: ``thread_id``, ``checkpoint_id``, ``checkpoint_ns``,
      ``checkpoint_map``, ``assistant_id``, ``graph_id``, ``run_id``, ``user_id``,
      ``cron_id`` (:attr:`SERVER_KEYS`);
    * keys starting with ``__`` (``__pregel_runtime``, ``__is_for_execution__``,
      ``__after_seconds__`` ...) or ``langgraph_`` (``langgraph_auth_user``,
      ``langgraph_request_id`` ...) (:attr:`SERVER_KEY_PREFIXES`);
    * keys with a ``-``: HTTP headers the server copies (``langsmith-trace``, ``user-agent``,
      ``x-...`` and those the operator passes with ``http.configurable_headers``); no
      setting has one (``planner-config``, a setting spelt with ``-``, is refused).
    """

    SERVER_KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "thread_id",
            "checkpoint_id",
            "checkpoint_ns",
            "checkpoint_map",
            "assistant_id",
            "graph_id",
            "run_id",
            "user_id",
            "cron_id",
        }
    )
    """The ids the server puts in a run's ``configurable`` (ignored)."""
    SERVER_KEY_PREFIXES: ClassVar[tuple[str, ...]] = ("__", "langgraph_")
    """How the other keys of the server and of LangGraph itself start (ignored)."""

    env: str = "game24"
    """A built-in environment (game24, scienceworld, alfworld or webshop) or an import path
    the operator allowed (``ARMAP_DEPLOY_ALLOWED_ENVS``)."""
    env_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the environment (``{"data_dir": ...}`` for ALFWorld, relative to
    the server's data directory ...)."""
    policy: str = "random"
    """``random`` (valid actions at random) or a chat model the operator allowed
    (``ARMAP_DEPLOY_ALLOWED_MODELS``), e.g. ``openai:gpt-4o-mini``."""
    reward_model: str | None = None
    """Planners: the name of one of the operator's reward models (``ARMAP_REWARD_MODELS``);
    when missing, ``$ARMAP_REWARD_MODEL``."""
    planner_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of the planner's config (``BestOfNConfig``, ``ReflexionConfig``, ``MCTSConfig``)."""
    objectives: list[str] = Field(default_factory=list)
    """Extra objectives, as on the command line: ``fewer_steps:0.1``, ``price_paid:-0.005``."""
    reflector: str | None = None
    """Reflexion: the chat model that writes reflections (none: resampling only)."""
    memory: str | None = None
    """Reflexion: a directory of reflections shared across runs (``TrajectoryMemory``),
    relative to the server's data directory."""
    explore_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of :class:`~armap_agents.graphs.explore.ExploreConfig` (its ``max_concurrency``
    and the run config's both bound the episodes run at once)."""
    synthesizer: str = "relabel"
    """``relabel`` (the environment's programmatic relabeler) or a chat model."""
    synthesize_config: dict[str, Any] = Field(default_factory=dict)
    """Fields of :class:`~armap_agents.graphs.synthesize.SynthesizeConfig`."""

    @classmethod
    def is_server_key(cls, key: object) -> bool:
        """Whether ``key`` of a ``configurable`` is the server's own, not a setting (a header
        spelling a setting with ``-``, ``planner-config``, is a setting: refused)."""
        if not isinstance(key, str):
            return False
        header = "-" in key and key.replace("-", "_") not in cls.model_fields
        return key in cls.SERVER_KEYS or key.startswith(cls.SERVER_KEY_PREFIXES) or header

    @model_validator(mode="before")
    @classmethod
    def _drop_server_keys(cls, data: Any) -> Any:
        """The settings without the server's keys (before pydantic refuses unknown ones)."""
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if not cls.is_server_key(key)}
        return data

    @classmethod
    def from_config(cls, config: RunnableConfig | None) -> DeploySettings:
        """The settings in ``config["configurable"]``; an unknown key (not the server's) or a
        wrong value raises ``ConfigError``."""
        return cls.model_validate((config or {}).get("configurable") or {})


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


def _chat_spec(server: ServerConfig, spec: str, what: str, builtin: str) -> str:
    """``spec`` if it is ``builtin`` (``random``, ``relabel``) or an allowed chat model."""
    return spec if spec == builtin else server.chat_model(spec, what)


def _env_factory(settings: DeploySettings, server: ServerConfig, stack: ExitStack) -> Any:
    from armap_agents.environments.registry import make_env_factory

    name, options = server.env(settings.env), server.env_options(settings.env_options)
    factory = _checked("env", make_env_factory, name, **options)
    close = getattr(factory, "close", None)
    if close is not None:  # a pool of costly environments: stop them when the run ends
        stack.callback(close)
    return factory


def _policy(settings: DeploySettings, server: ServerConfig) -> Any:
    return _checked("policy", build.policy, _chat_spec(server, settings.policy, "policy", "random"))


def _load_reward_model(settings: DeploySettings, server: ServerConfig) -> Any:
    spec = server.reward_model(settings.reward_model)
    # the token goes to the operator's URLs only, whatever the run named
    return build.reward_model(spec, token_urls=server.reward_model_specs())


def _build_planner(
    name: str, settings: DeploySettings, server: ServerConfig, stack: ExitStack, run: bool
) -> CompiledStateGraph:
    from armap_agents.pipeline.plan import needs_reward_model, planner_graph
    from armap_agents.planners import planner_spec

    config_type = planner_spec(name).config_type
    config = parse_config(config_type, settings.planner_config, what="planner_config")
    scored = needs_reward_model(config)
    objectives = _checked("objectives", build.objectives, settings.objectives)
    if not run:
        placeholder = _SetUpOnlyForRuns
        return planner_graph(
            name,
            placeholder("policy"),
            placeholder("environment"),
            placeholder("reward model") if scored else None,
            config,
            objectives=objectives,
        )
    # cheap checks first, weights last
    env_factory = _env_factory(settings, server, stack)
    policy = _policy(settings, server)
    reflector = None
    if name == "reflexion" and settings.reflector:
        spec = server.chat_model(settings.reflector, "reflector")
        reflector = _checked("reflector", build.chat_model, spec)
    memory = (
        server.path(settings.memory, "memory") if name == "reflexion" and settings.memory else None
    )
    reward_model = _load_reward_model(settings, server) if scored else None
    return planner_graph(
        name,
        policy,
        env_factory,
        reward_model,
        config,
        objectives=objectives,
        reflector=reflector,
        memory=memory,
    )


class _ServedExploreState(TypedDict, total=False):
    """The served exploration's state: its input, relative to the data directory, and counts."""

    output_path: str
    already_done: int
    finished: int
    failed: int
    successes: int


class _ServedSynthesizeState(TypedDict, total=False):
    """The served synthesis's state: its inputs, relative to the data directory, and counts."""

    trajectories_path: str
    output_dir: str
    tasks: int
    failed_tasks: int
    skipped: int
    train: int
    val: int
    duplicates: int


def _confined(
    graph: CompiledStateGraph,
    schema: type,
    paths: tuple[str, ...],
    server: ServerConfig,
    name: str,
) -> CompiledStateGraph:
    """``graph`` run by a one-node graph that first resolves the input's ``paths`` in the data
    directory (refusing others); the state keeps the paths as the run gave them.

    The check is in the node that runs ``graph`` (not a node before it, which a client could
    skip with ``update_state``), and ``graph`` keeps no state of its own (no checkpointer) that
    a client could edit. Its progress events are passed on as the node's own, so a client
    sees them without ``stream_subgraphs``.
    """
    inner = graph.copy(update={"checkpointer": False})
    keys = set(schema.__annotations__) - set(paths)

    async def run(state: Any, config: RunnableConfig) -> dict[str, Any]:  # a `schema` dict
        inputs = dict(state)
        for key in paths:
            if key not in state:
                raise ConfigError(
                    f"the input needs {key!r}: a path relative to the server's data directory"
                )
            # resolving reads the file system: off the server's event loop
            inputs[key] = str(await asyncio.to_thread(server.path, state[key], key))
        write = get_stream_writer()
        final: dict[str, Any] = {}
        async for mode, chunk in inner.astream(inputs, config, stream_mode=["custom", "values"]):
            if mode == "custom":
                write(chunk)
            else:  # a "values" chunk: the whole state
                final = cast(dict[str, Any], chunk)
        return {k: v for k, v in final.items() if k in keys}

    outer: StateGraph[Any, Any, Any, Any] = StateGraph(schema)
    outer.add_node(name, run)
    outer.add_edge(START, name)
    outer.add_edge(name, END)
    return outer.compile(name=graph.name)


def _build_explore(
    settings: DeploySettings, server: ServerConfig, stack: ExitStack, run: bool
) -> CompiledStateGraph:
    from armap_agents.graphs.explore import ExploreConfig, build_explore_graph

    config = parse_config(ExploreConfig, settings.explore_config, what="explore_config")
    if run:
        from armap_agents.pipeline import exploration_provenance

        env_factory = _env_factory(settings, server, stack)
        provenance = exploration_provenance(
            env=settings.env, env_options=settings.env_options, policy=settings.policy
        )
        graph = build_explore_graph(
            _policy(settings, server), env_factory, config, provenance=provenance
        )
    else:
        graph = build_explore_graph(
            _SetUpOnlyForRuns("policy"), _SetUpOnlyForRuns("environment"), config
        )
    return _confined(graph, _ServedExploreState, ("output_path",), server, "explore")


def _build_synthesize(
    settings: DeploySettings, server: ServerConfig, stack: ExitStack, run: bool
) -> CompiledStateGraph:
    from armap_agents.graphs.synthesize import SynthesizeConfig, build_synthesize_graph

    config = parse_config(SynthesizeConfig, settings.synthesize_config, what="synthesize_config")
    if run:
        synthesizer = _checked(
            "synthesizer",
            build.synthesizer,
            _chat_spec(server, settings.synthesizer, "synthesizer", "relabel"),
            server.env(settings.env),
            None,
            server.env_options(settings.env_options),
        )
        from armap_agents.pipeline import synthesis_provenance

        provenance = synthesis_provenance(
            env=settings.env, env_options=settings.env_options, synthesizer=settings.synthesizer
        )
        graph = build_synthesize_graph(synthesizer, config, provenance=provenance)
    else:
        graph = build_synthesize_graph(_SetUpOnlyForRuns("synthesizer"), config)
    paths = ("trajectories_path", "output_dir")
    return _confined(graph, _ServedSynthesizeState, paths, server, "synthesize")


@asynccontextmanager
async def _served(
    build: Callable[[DeploySettings, ServerConfig, ExitStack, bool], CompiledStateGraph],
    config: RunnableConfig | None,
    runtime: ServerRuntime | None,
) -> AsyncIterator[CompiledStateGraph]:
    settings = DeploySettings.from_config(config)
    with ExitStack() as stack:
        # setup reads files and may load weights: keep it off the server's event loop
        graph = await asyncio.to_thread(
            lambda: build(settings, ServerConfig.from_environ(), stack, _is_run(runtime))
        )
        try:
            yield graph
        finally:
            await asyncio.to_thread(stack.close)


# The server classifies a factory by its parameters: ``config`` gets the run's RunnableConfig,
# the parameter annotated ServerRuntime the runtime (None when a factory is called directly).
def explore(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """The exploration graph; input ``{"output_path": "trajectories.jsonl"}`` (relative to the
    server's data directory; the graph runs asynchronously only).

    Settings: ``env``, ``env_options``, ``policy``, ``explore_config``. Streams custom
    progress events: ``{"event": "start", ...}``, then one ``{"event": "episode", ...}`` each.
    """
    return _served(_build_explore, config, runtime)


def synthesize(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """The synthesis graph; input ``{"trajectories_path": ..., "output_dir": ...}`` (relative
    to the server's data directory; the graph runs asynchronously only).

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


def beam_search(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """Step-level beam search; input ``{"task_id": "905"}``, the answer in ``best`` (the last
    beams in ``beams``).

    Settings: ``env``, ``env_options``, ``policy``, ``reward_model``, ``planner_config``,
    ``objectives``. Streams one custom ``{"event": "step", "step": s, "beams": b, ...}`` per
    step.
    """
    return _served(functools.partial(_build_planner, "beam_search"), config, runtime)


def live_rerank(
    config: RunnableConfig, runtime: ServerRuntime | None = None
) -> AbstractAsyncContextManager[CompiledStateGraph]:
    """Live action reranking: one episode, each action chosen by the reward model before it is
    taken; input ``{"task_id": "905"}``, the answer in ``best`` (each step's choice in
    ``decisions``).

    Settings: ``env``, ``env_options``, ``policy``, ``reward_model``, ``planner_config``,
    ``objectives``. Streams one custom ``{"event": "step", "step": s, "action": a, ...}`` per
    step taken.
    """
    return _served(functools.partial(_build_planner, "live_rerank"), config, runtime)
