"""Deployment: the graph factories of ``langgraph.json``, the graphs as subgraphs of a user's
graph, and ``langgraph dev`` (the in-memory LangGraph server) driven by ``langgraph-sdk``."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from armap_agents import _builders, deploy
from armap_agents.environments.game24 import Game24Env
from armap_agents.environments.registry import default_registry
from armap_agents.errors import ConfigError
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.explore import ExploreConfig, build_explore_graph
from armap_agents.local_llm import free_port
from armap_agents.policies import RandomPolicy
from armap_agents.testing import FunctionReward
from armap_agents.types import Trajectory

REPO = Path(__file__).resolve().parents[1]


def fewer_numbers_reward() -> FunctionReward:
    """A fake reward model: fewer numbers left (a finished game) scores higher."""
    return FunctionReward(lambda intent, t: -len(t.final_observation.split(":", 1)[1].split()))


class FakeReadRuntime:
    """A fake of the server's ServerRuntime when it only reads state or schemas."""

    execution_runtime = None


# -- the graphs inside a user's own graph ---------------------------------------------------


class PlanAndReport(TypedDict, total=False):
    task_id: str
    best: Trajectory
    scores: list[float]
    report: str


def test_planner_graph_is_a_node_of_a_user_graph_and_streams_progress() -> None:
    planner = build_best_of_n_graph(
        RandomPolicy(), Game24Env, fewer_numbers_reward(), BestOfNConfig(n=3, max_steps=4)
    )
    graph = StateGraph(PlanAndReport)
    graph.add_node("plan", planner)  # the compiled graph itself is the node
    graph.add_node("report", lambda s: {"report": " | ".join(s["best"].actions)})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "report")
    graph.add_edge("report", END)
    app = graph.compile()

    progress, final = [], None
    for namespace, mode, chunk in app.stream(
        {"task_id": "905"}, stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom":
            progress.append((namespace, chunk))
        elif not namespace:
            final = chunk
    assert sorted(chunk["index"] for _, chunk in progress) == [0, 1, 2]
    assert all(chunk["event"] == "candidate" for _, chunk in progress)
    assert all(ns and ns[0].startswith("plan:") for ns, _ in progress)  # from the subgraph
    assert len(final["scores"]) == 3
    assert final["report"] == " | ".join(final["best"].actions) and final["best"].steps


class Pipeline(TypedDict, total=False):
    trajectories_path: str
    episodes: int


def test_exploration_graph_called_from_a_user_node_streams_progress(tmp_path) -> None:
    explorer = build_explore_graph(
        RandomPolicy(), Game24Env, ExploreConfig(task_ids=["1", "2"], episodes_per_task=2)
    )

    def explore_step(state: Pipeline) -> dict:
        result = explorer.invoke({"output_path": state["trajectories_path"]})
        return {"episodes": result["finished"]}

    graph = StateGraph(Pipeline)
    graph.add_node("explore", explore_step)
    graph.add_edge(START, "explore")
    graph.add_edge("explore", END)
    app = graph.compile()

    path = str(tmp_path / "t.jsonl")
    parts = list(app.stream({"trajectories_path": path}, stream_mode="custom", subgraphs=True))
    events = [chunk["event"] for _, chunk in parts]
    assert events[0] == "start" and parts[0][1]["total"] == 4
    assert events[1:] == ["episode"] * 4
    assert app.invoke({"trajectories_path": path})["episodes"] == 0  # resumed: all done
    assert len(Path(path).read_text().splitlines()) == 4


# -- the factories, called directly ----------------------------------------------------------


async def _invoke(factory, config, inputs, runtime=None) -> dict:
    async with factory(config, runtime) as graph:
        return await graph.ainvoke(inputs)


def test_factory_builds_a_runnable_graph_from_the_configurable() -> None:
    config = {"configurable": {"planner_config": {"n": 2, "selection": "random", "max_steps": 4}}}
    state = asyncio.run(_invoke(deploy.best_of_n, config, {"task_id": "905"}))
    assert len(state["candidates"]) == 2 and state["best"].task_id == "905"


def test_a_planner_run_without_reward_model_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv(deploy.REWARD_MODEL_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"reward_model.*{deploy.REWARD_MODEL_ENV}"):
        asyncio.run(_invoke(deploy.mcts, {"configurable": {}}, {"task_id": "905"}))


async def _topology(factory, configurable: dict, runtime) -> list[str]:
    async with factory({"configurable": configurable}, runtime) as graph:
        return sorted(graph.get_graph().nodes)


def test_reading_state_or_schemas_sets_nothing_up(monkeypatch) -> None:
    monkeypatch.delenv(deploy.REWARD_MODEL_ENV, raising=False)
    read = FakeReadRuntime()
    for factory in (deploy.reflexion, deploy.mcts, deploy.beam_search):
        assert len(asyncio.run(_topology(factory, {}, read))) > 3  # no reward model needed
    # one node: the environment lives for the episode
    assert asyncio.run(_topology(deploy.live_rerank, {}, read)) == [
        "__end__",
        "__start__",
        "episode",
    ]
    for factory in (deploy.explore, deploy.synthesize):  # one node: checks paths, runs the graph
        nodes = asyncio.run(_topology(factory, {}, read))
        assert nodes == ["__end__", "__start__", factory.__name__]
        assert nodes == asyncio.run(_topology(factory, {}, None))
    configurable = {"planner_config": {"selection": "random"}}
    assert asyncio.run(_topology(deploy.best_of_n, configurable, read)) == asyncio.run(
        _topology(deploy.best_of_n, configurable, None)  # a run's graph: the same topology
    )
    with pytest.raises(RuntimeError, match="set up only when the graph runs"):
        asyncio.run(
            _invoke(deploy.best_of_n, {"configurable": configurable}, {"task_id": "1"}, read)
        )


@pytest.mark.parametrize(
    ("configurable", "message"),
    [
        ({"planner_config": {"n": 0}}, "planner_config"),
        ({"planner_config": {"N": 4}}, r"unknown planner_config field\(s\) \['N'\]"),
        ({"env": "chess"}, "unknown environment 'chess'"),
        ({"env_options": "x"}, "env_options"),
        ({"policy": "gpt-4o"}, f"policy 'gpt-4o' is refused.*{deploy.ALLOWED_MODELS_ENV}"),
        ({"objectives": ["fewer_steps:lots"]}, "objective.*'fewer_steps:lots'"),
    ],
)
def test_bad_settings_are_clear_errors(configurable, message, data_dir) -> None:
    config = {"configurable": {**configurable, "reward_model": "unused"}}
    with pytest.raises(ConfigError, match=message):
        asyncio.run(_invoke(deploy.best_of_n, config, {"task_id": "905"}))


# -- the trust boundary: what a run may name is the operator's choice -------------------------


class RecordingHandler(BaseHTTPRequestHandler):
    """Records every request (path, Authorization header); answers like ``armap serve-rm``."""

    def do_GET(self) -> None:
        self._answer({"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        n = len(body.get("trajectories", []))
        self._answer({"rewards": [0.0] * n, "scores": [0.0] * n})

    def _answer(self, payload: dict) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@contextmanager
def recording_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 whose ``seen`` lists the requests it received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def recorder() -> Iterator[ThreadingHTTPServer]:
    with recording_server() as server:
        yield server


def _url(server: ThreadingHTTPServer, path: str = "") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """The server's data directory, tmp_path/data, with the working directory tmp_path and no
    other operator setting."""
    for name in (
        deploy.REWARD_MODEL_ENV,
        deploy.REWARD_MODELS_ENV,
        deploy.ALLOWED_ENVS_ENV,
        deploy.ALLOWED_MODELS_ENV,
        "ARMAP_RM_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(deploy.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def _refused(factory, configurable: dict, inputs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        asyncio.run(_invoke(factory, {"configurable": configurable}, inputs))


EXPLORE_TWO = {"explore_config": {"task_ids": ["1"], "episodes_per_task": 2, "max_steps": 4}}
BEST_OF_TWO = {"planner_config": {"n": 2, "max_steps": 3}}


def test_an_import_path_as_env_is_refused_and_never_loaded(data_dir) -> None:
    (data_dir.parent / "evil.py").write_text("open('loaded', 'w').close()\nclass Evil: pass\n")
    hostile = {"env_options": {"command": "touch pwned"}}
    for env in ("os:system", "evil.py:Evil"):
        refused = f"env '{env}' is refused.*{deploy.ALLOWED_ENVS_ENV}"
        for factory, inputs in (
            (deploy.explore, {"output_path": "t.jsonl"}),
            (deploy.synthesize, {"trajectories_path": "t.jsonl", "output_dir": "out"}),
            (deploy.best_of_n, {"task_id": "1"}),
        ):
            _refused(factory, {**hostile, "env": env}, inputs, refused)
    assert not (data_dir.parent / "pwned").exists() and not (data_dir.parent / "loaded").exists()
    assert not data_dir.exists()  # nothing was written


def test_an_import_path_the_operator_lists_is_served(data_dir, monkeypatch) -> None:
    env = "armap_agents.environments.game24:Game24Env"
    monkeypatch.setenv(deploy.ALLOWED_ENVS_ENV, f" {env} , examples/none.py:X")
    config = {"configurable": {"env": env, **EXPLORE_TWO}}
    state = asyncio.run(_invoke(deploy.explore, config, {"output_path": "runs/t.jsonl"}))
    assert state["finished"] == 2 and state["output_path"] == "runs/t.jsonl"
    assert len((data_dir / "runs" / "t.jsonl").read_text().splitlines()) == 2
    monkeypatch.setenv(deploy.ALLOWED_ENVS_ENV, "game24x")
    with pytest.raises(ConfigError, match="'game24x' is not an import path"):
        deploy.ServerConfig.from_environ()


def test_env_options_never_choose_a_program_and_paths_stay_inside(data_dir) -> None:
    inputs = {"output_path": "t.jsonl"}
    for key in deploy.PROGRAM_OPTIONS:
        options = {"env": "scienceworld", "env_options": {key: "/tmp/evil"}}
        _refused(deploy.explore, options, inputs, f"env_options.{key} is refused")
    for value in ("/etc", "../data2", "ok/../../up"):
        options = {"env": "alfworld", "env_options": {"data_dir": value}}
        _refused(deploy.explore, options, inputs, "env_options.data_dir .* is refused")
    server = deploy.ServerConfig.from_environ()
    options = server.env_options({"data_dir": "alf", "cache_dir": False, "tasks": ["1-1"]})
    assert options == {"data_dir": str(data_dir / "alf"), "cache_dir": False, "tasks": ["1-1"]}


def test_every_option_of_the_built_in_environments_is_classified() -> None:
    """A new option that names a file or a program must join PATH_OPTIONS / PROGRAM_OPTIONS."""
    plain = {
        "catalog", "catalog_seed", "corrupt_rate", "env", "env_factory", "env_step_limit",
        "fast_reset", "focus_on_named", "hindsight", "jvm_heap", "max_attributes",
        "max_episode_steps", "max_idle", "max_intents_per_trajectory", "max_per_kind",
        "negatives_per_positive", "num_products", "num_suggestions", "observation_mode",
        "option_swaps", "pool", "prefix_pairs_per_pair", "prefixes", "puzzles", "simplification",
        "task_types", "tasks",
    }  # fmt: skip
    registry = default_registry()
    options = set()
    for name in registry.names():
        constructor = registry.constructor(name)
        for f in (constructor, getattr(constructor, "factory", None)):
            if f is not None:
                options |= {
                    p.name
                    for p in inspect.signature(f).parameters.values()
                    if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                }
        options |= set(inspect.signature(registry.relabeler_constructor(name)).parameters)
    assert options - plain == deploy.PATH_OPTIONS | deploy.PROGRAM_OPTIONS


def test_chat_models_are_the_operators_and_a_refused_one_is_never_called(
    data_dir, recorder, monkeypatch
) -> None:
    spec = f"openai-compatible:{_url(recorder, '/v1')}:m"
    for factory, configurable, inputs in (
        (deploy.explore, {"policy": spec, **EXPLORE_TWO}, {"output_path": "t.jsonl"}),
        (deploy.best_of_n, {"policy": spec}, {"task_id": "1"}),
        (deploy.reflexion, {"reflector": spec}, {"task_id": "1"}),
        (
            deploy.synthesize,
            {"synthesizer": spec},
            {"trajectories_path": "t.jsonl", "output_dir": "out"},
        ),
    ):
        what = next(iter(configurable))
        _refused(factory, configurable, inputs, f"{what} '.*' is refused.*here: none")
    assert recorder.seen == []
    monkeypatch.setenv(deploy.ALLOWED_MODELS_ENV, f"openai:gpt-4o-mini,{spec}")
    server = deploy.ServerConfig.from_environ()
    assert server.chat_model(spec, "policy") == spec
    with pytest.raises(ConfigError, match=r"here: openai-compatible:.*, openai:gpt-4o-mini"):
        server.chat_model("openai-compatible:http://elsewhere/v1:m", "policy")


def test_the_token_goes_to_the_operators_reward_model_url_only(
    data_dir, recorder, monkeypatch
) -> None:
    monkeypatch.setenv("ARMAP_RM_TOKEN", "s3cret")
    monkeypatch.setenv(deploy.REWARD_MODELS_ENV, f"remote={_url(recorder, '/operator')}")
    config = {"configurable": {"reward_model": "remote", **BEST_OF_TWO}}
    state = asyncio.run(_invoke(deploy.best_of_n, config, {"task_id": "905"}))
    assert len(state["scores"]) == 2
    assert recorder.seen and set(recorder.seen) == {("/operator/get_reward", "Bearer s3cret")}
    recorder.seen.clear()
    for foreign in (_url(recorder, "/foreign"), str(data_dir.parent / "rm")):
        configurable = {"reward_model": foreign, **BEST_OF_TWO}
        _refused(deploy.best_of_n, configurable, {"task_id": "905"}, "reward_model .* refused")
    assert recorder.seen == []  # the foreign URL got no request, so no token
    # the token-sending code itself refuses a URL outside the operator's
    with pytest.raises(ConfigError, match="refusing to send ARMAP_RM_TOKEN"):
        _builders.reward_model(_url(recorder, "/foreign"), token_urls=[_url(recorder, "/op")])
    assert recorder.seen == []


def test_a_run_names_a_configured_reward_model_by_name_or_value(data_dir, monkeypatch) -> None:
    monkeypatch.setenv(deploy.REWARD_MODEL_ENV, "rm/default")
    monkeypatch.setenv(deploy.REWARD_MODELS_ENV, "big=rm/big, remote=http://h:1/?a=b")
    server = deploy.ServerConfig.from_environ()
    assert server.reward_model(None) == "rm/default"
    assert server.reward_model("big") == server.reward_model("rm/big") == "rm/big"
    assert server.reward_model("remote") == "http://h:1/?a=b"
    with pytest.raises(ConfigError, match=r"'rm' is refused.*here: big, remote"):
        server.reward_model("rm")
    monkeypatch.setenv(deploy.REWARD_MODELS_ENV, "nameonly")
    with pytest.raises(ConfigError, match="cannot read 'nameonly'"):
        deploy.ServerConfig.from_environ()


def _explore_refuses(data_dir: Path, output_path, match: str = "output_path .* is refused"):
    _refused(deploy.explore, EXPLORE_TWO, {"output_path": output_path}, match)


def test_paths_are_confined_to_the_data_directory(data_dir) -> None:
    outside = data_dir.parent / "outside"
    outside.mkdir()
    data_dir.mkdir()
    (data_dir / "link").symlink_to(outside)
    for path in ("../x.jsonl", "a/../../x.jsonl", str(outside / "x.jsonl"), "", 7):
        _explore_refuses(data_dir, path)
    _explore_refuses(data_dir, "link/x.jsonl", "symbolic link leads it out")
    _refused(deploy.explore, EXPLORE_TWO, {}, "the input needs 'output_path'")
    synthesize_inputs = (
        {"trajectories_path": "/etc/passwd", "output_dir": "out"},
        {"trajectories_path": "t.jsonl", "output_dir": "../out"},
        {"trajectories_path": "t.jsonl", "output_dir": "link"},
    )
    for inputs in synthesize_inputs:
        _refused(deploy.synthesize, {}, inputs, "(trajectories_path|output_dir) .* is refused")
    for memory in ("../memory", str(outside), "link/memory"):
        _refused(deploy.reflexion, {"memory": memory}, {"task_id": "1"}, "memory .* is refused")
    assert list(outside.iterdir()) == [] and sorted(p.name for p in data_dir.iterdir()) == ["link"]
    assert sorted(p.name for p in data_dir.parent.iterdir()) == ["data", "outside"]


def test_a_state_update_cannot_skip_the_path_check(data_dir) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    async def run() -> None:
        async with deploy.explore({"configurable": EXPLORE_TWO}) as graph:
            graph = graph.copy(update={"checkpointer": InMemorySaver()})  # as the server does
            thread = {"configurable": {"thread_id": "1"}}
            assert (await graph.ainvoke({"output_path": "t.jsonl"}, thread))["finished"] == 2
            await graph.aupdate_state(thread, {"output_path": "../x.jsonl"}, as_node="__start__")
            with pytest.raises(ConfigError, match="output_path '../x.jsonl' is refused"):
                await graph.ainvoke(None, thread)

    asyncio.run(run())
    assert not (data_dir.parent / "x.jsonl").exists()


async def _stream(factory, config: dict, inputs: dict) -> tuple[list[dict], dict]:
    custom, final = [], {}
    async with factory(config) as graph:
        async for mode, chunk in graph.astream(inputs, stream_mode=["custom", "values"]):
            if mode == "custom":
                custom.append(chunk)
            else:
                final = chunk
    return custom, final


def test_served_explore_and_synthesize_work_inside_and_stream_progress(data_dir) -> None:
    custom, final = asyncio.run(
        _stream(deploy.explore, {"configurable": EXPLORE_TWO}, {"output_path": "r/t.jsonl"})
    )
    assert [e["event"] for e in custom] == ["start", "episode", "episode"]  # passed on
    assert final["finished"] == 2 and final["output_path"] == "r/t.jsonl"  # as the run gave it
    assert len((data_dir / "r" / "t.jsonl").read_text().splitlines()) == 2
    inputs = {"trajectories_path": "r/t.jsonl", "output_dir": "r/syn"}
    custom, final = asyncio.run(_stream(deploy.synthesize, {"configurable": {}}, inputs))
    assert [e["event"] for e in custom] == ["start", "task"]
    assert final["tasks"] == 1 and final["output_dir"] == "r/syn"
    assert (data_dir / "r" / "syn" / "triplets.train.jsonl").exists()


# -- langgraph dev + langgraph-sdk -----------------------------------------------------------


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it leads it), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.slow
def test_langgraph_dev_serves_a_planner_to_the_sdk(
    tmp_path, small_reward_model_config, recorder
) -> None:
    sdk = pytest.importorskip("langgraph_sdk")
    pytest.importorskip("langgraph_api")
    cli = Path(sys.executable).parent / "langgraph"
    if not cli.exists():
        pytest.skip("the langgraph CLI is not installed (extra [deploy])")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMAP_")}
    data = tmp_path / "data"
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        # the operator's choices: a data directory, one named reward model, a service token
        ARMAP_DEPLOY_DATA_DIR=str(data),
        ARMAP_REWARD_MODELS=f"small={tmp_path / 'rm'}",
        ARMAP_RM_TOKEN="s3cret",
    )
    log = (tmp_path / "server.log").open("w")
    # the working directory is tmp_path: the dev server keeps its state in ./.langgraph_api
    process = subprocess.Popen(
        [
            str(cli),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(REPO / "langgraph.json"),
        ],  # fmt: skip
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as one
    )
    url = f"http://127.0.0.1:{port}"
    try:
        from armap_agents.reward.model import RewardModel

        # an untrained reward model, saved while the server starts
        RewardModel.create(small_reward_model_config).save(tmp_path / "rm")
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "langgraph dev did not come up"
            time.sleep(0.5)

        client = sdk.get_sync_client(url=url)
        graphs = {a["graph_id"]: a["assistant_id"] for a in client.assistants.search(limit=20)}
        assert set(graphs) == {
            "explore",
            "synthesize",
            "best_of_n",
            "reflexion",
            "mcts",
            "beam_search",
            "live_rerank",
        }
        # the server builds a graph to read its schemas: no reward model needed for that
        schemas = client.assistants.get_schemas(graphs["best_of_n"])
        assert "best" in schemas["state_schema"]["properties"]

        thread = client.threads.create()
        custom, final = [], None
        for part in client.runs.stream(
            thread["thread_id"],
            "best_of_n",
            input={"task_id": "905"},
            context={"reward_model": "small", "planner_config": {"n": 4, "max_steps": 4}},
            stream_mode=["custom", "values"],
        ):
            assert part.event != "error", part.data
            if part.event == "custom":
                custom.append(part.data)
            elif part.event == "values":
                final = part.data
        assert sorted(e["index"] for e in custom) == [0, 1, 2, 3]
        assert len(final["scores"]) == 4 and len(final["candidates"]) == 4
        best = Trajectory.model_validate(final["best"])  # it came through as JSON
        assert best.task_id == "905" and best.steps
        assert best == Trajectory.model_validate(final["candidates"][final["best_index"]])
        state = client.threads.get_state(thread["thread_id"])
        assert state["values"]["scores"] == final["scores"]  # checkpointed by the server

        # a planner run without a reward model fails with the reason
        with pytest.raises(Exception, match="needs a reward model"):
            client.runs.wait(None, "mcts", input={"task_id": "905"})

        # a hostile client: each run is refused with the reason; nothing runs, nothing is written
        outside = tmp_path / "outside"
        outside.mkdir()
        data.mkdir()
        (data / "link").symlink_to(outside)
        chat = f"openai-compatible:{_url(recorder, '/v1')}:m"
        hostile = [
            ("explore", {"env": "os:system", "env_options": {"command": "touch pwned"}}, {}),
            ("best_of_n", {"reward_model": _url(recorder, "/rm")}, {}),
            ("best_of_n", {"reward_model": str(outside)}, {}),  # a directory not configured
            ("best_of_n", {"policy": chat}, {}),
            ("reflexion", {"reflector": chat}, {}),
            ("reflexion", {"memory": "../memory"}, {}),
            ("explore", {}, {"output_path": "../escaped.jsonl"}),
            ("explore", {}, {"output_path": str(tmp_path / "absolute.jsonl")}),
            ("explore", {}, {"output_path": "link/t.jsonl"}),
            ("synthesize", {}, {"trajectories_path": "/etc/passwd", "output_dir": "out"}),
            ("synthesize", {}, {"trajectories_path": "t.jsonl", "output_dir": "../out"}),
        ]
        defaults = {"explore": {"output_path": "t.jsonl"}, "synthesize": {}}
        for graph_id, context, inputs in hostile:
            inputs = {**defaults.get(graph_id, {"task_id": "905"}), **inputs}
            with pytest.raises(Exception, match=r"is refused: .*(ARMAP_|symbolic link)"):
                client.runs.wait(None, graph_id, input=inputs, context=context)
                pytest.fail(f"{graph_id} ran with {context} and {inputs}")
        assert recorder.seen == []  # no request (so no token) went to a URL the client chose
        for name in ("pwned", "escaped.jsonl", "absolute.jsonl", "memory", "out"):
            assert not (tmp_path / name).exists(), name
        assert list(outside.iterdir()) == [] and [p.name for p in data.iterdir()] == ["link"]

        # inside the data directory, exploration runs and streams its progress as before
        custom = []
        for part in client.runs.stream(
            None,
            "explore",
            input={"output_path": "runs/t.jsonl"},
            context={"explore_config": {"task_ids": ["1"], "episodes_per_task": 2}},
            stream_mode=["custom", "values"],
        ):
            assert part.event != "error", part.data
            if part.event == "custom":
                custom.append(part.data["event"])
        assert custom == ["start", "episode", "episode"]
        assert len((data / "runs" / "t.jsonl").read_text().splitlines()) == 2
    finally:
        _stop_group(process)
        log.close()
    assert process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of the group is left
    assert (tmp_path / ".langgraph_api").is_dir()  # its state went to its directory
