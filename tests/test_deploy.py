"""Deployment: the graph factories of ``langgraph.json``, the graphs as subgraphs of a user's
graph, and ``langgraph dev`` (the in-memory LangGraph server) driven by ``langgraph-sdk``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from armap_agents import deploy
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import ConfigError
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.explore import ExploreConfig, build_explore_graph
from armap_agents.local_llm import free_port
from armap_agents.policies import RandomPolicy
from armap_agents.types import Trajectory

REPO = Path(__file__).resolve().parents[1]


class FakeFewerNumbersReward:
    """A fake reward model: fewer numbers left (a finished game) scores higher."""

    def score(self, intent, trajectories, *, batch_size=64):
        return [-len(t.final_observation.split(":", 1)[1].split()) for t in trajectories]


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
        RandomPolicy(), Game24Env, FakeFewerNumbersReward(), BestOfNConfig(n=3, max_steps=4)
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
    for factory in (deploy.explore, deploy.synthesize, deploy.reflexion, deploy.mcts):
        assert len(asyncio.run(_topology(factory, {}, read))) > 3  # no reward model needed
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
        ({"policy": "gpt-4o"}, "invalid policy: cannot read model name 'gpt-4o'"),
        ({"objectives": ["fewer_steps:lots"]}, "invalid objectives"),
    ],
)
def test_bad_settings_are_clear_errors(configurable, message) -> None:
    config = {"configurable": {**configurable, "reward_model": "unused"}}
    with pytest.raises(ConfigError, match=message):
        asyncio.run(_invoke(deploy.best_of_n, config, {"task_id": "905"}))


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
def test_langgraph_dev_serves_a_planner_to_the_sdk(tmp_path, small_reward_model_config) -> None:
    sdk = pytest.importorskip("langgraph_sdk")
    pytest.importorskip("langgraph_api")
    cli = Path(sys.executable).parent / "langgraph"
    if not cli.exists():
        pytest.skip("the langgraph CLI is not installed (extra [deploy])")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != deploy.REWARD_MODEL_ENV}
    env.update(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false")
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
        model_dir = RewardModel.create(small_reward_model_config).save(tmp_path / "rm")
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
        assert set(graphs) == {"explore", "synthesize", "best_of_n", "reflexion", "mcts"}
        # the server builds a graph to read its schemas: no reward model needed for that
        schemas = client.assistants.get_schemas(graphs["best_of_n"])
        assert "best" in schemas["state_schema"]["properties"]

        thread = client.threads.create()
        custom, final = [], None
        for part in client.runs.stream(
            thread["thread_id"],
            "best_of_n",
            input={"task_id": "905"},
            context={"reward_model": str(model_dir), "planner_config": {"n": 4, "max_steps": 4}},
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
    finally:
        _stop_group(process)
        log.close()
    assert process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of the group is left
    assert (tmp_path / ".langgraph_api").is_dir()  # its state went to its directory
