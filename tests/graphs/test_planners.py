"""MCTS, Reflexion with memory, objectives, the planner registry and the tree view."""

from __future__ import annotations

import json
import math
import re

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import ConfigError
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.mcts import (
    MCTSConfig,
    TreeNode,
    backup_path,
    build_mcts_graph,
    select_leaf,
    uct_score,
    value_bounds,
)
from armap_agents.graphs.reflexion import ReflexionConfig, build_reflexion_graph
from armap_agents.memory import TrajectoryMemory
from armap_agents.planners import build_planner
from armap_agents.policies import LLMPolicy, RandomPolicy
from armap_agents.reward.objectives import WeightedObjective, fewer_steps, numeric_attribute
from armap_agents.testing import ConstantReward, ScriptedChatModel
from armap_agents.tree_view import tree_to_json, write_tree_html
from armap_agents.types import Step, Trajectory


class FakeDistanceReward:
    """A fake reward model for planner tests: closer to 24 at the end is better."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def score(self, intent, trajectories, *, batch_size=64):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash")
        out = []
        for t in trajectories:
            numbers = t.final_observation.rsplit(":", 1)[1].split()
            value = float(eval(numbers[0])) if len(numbers) == 1 else 0.0  # noqa: S307
            out.append(-abs(value - 24.0) / 10 - (len(numbers) - 1))
        return out


def _node(node_id, parent, visits, value_sum, children=()):
    return TreeNode(
        id=node_id,
        parent=parent,
        action=None if parent is None else f"a{node_id}",
        depth=0,
        observation="",
        terminal=False,
        children=list(children),
        visits=visits,
        value_sum=value_sum,
        score=None,
        value=None,
        rollout=[],
        complete=False,
    )


def test_uct_arithmetic() -> None:
    child = _node("0.0", "0", visits=2, value_sum=1.0)
    assert uct_score(child, parent_visits=8, c=1.0) == pytest.approx(
        0.5 + math.sqrt(math.log(8) / 2)
    )
    assert uct_score(child, parent_visits=8, c=0.0) == pytest.approx(0.5)
    assert uct_score(_node("0.1", "0", 0, 0.0), parent_visits=8, c=1.0) == math.inf
    # with bounds the mean is scaled to [0, 1] first: (0.5 - -1.5) / (2.5 - -1.5) = 0.5
    assert uct_score(child, parent_visits=8, c=0.0, bounds=(-1.5, 2.5)) == pytest.approx(0.5)
    assert uct_score(child, parent_visits=8, c=0.0, bounds=(0.5, 0.5)) == pytest.approx(0.5)


def test_normalized_values_make_exploration_independent_of_the_score_scale() -> None:
    def tree(scale: float) -> dict:
        # a well-visited child worth 1.0 x scale against a once-visited one worth 0.0
        return {
            "0": _node("0", None, 10, 9.0 * scale, children=["0.0", "0.1"]),
            "0.0": _node("0.0", "0", 9, 9.0 * scale),
            "0.1": _node("0.1", "0", 1, 0.0),
        }

    # raw values: exploration's weight depends on the reward model's scale
    assert select_leaf(tree(0.1), c=1.0) == "0.1"
    assert select_leaf(tree(10.0), c=1.0) == "0.0"
    # scaled to the tree's bounds: the same choice at any scale
    assert {select_leaf(tree(s), c=1.0, normalize=True) for s in (0.1, 1.0, 10.0, 100.0)} == {"0.1"}
    assert value_bounds(tree(10.0)) == (0.0, 10.0)


def test_select_and_backup_on_a_hand_built_tree() -> None:
    nodes = {
        "0": _node("0", None, 4, 2.0, children=["0.0", "0.1"]),
        "0.0": _node("0.0", "0", 3, 0.3, children=["0.0.0"]),
        "0.1": _node("0.1", "0", 1, 1.5),
        "0.0.0": _node("0.0.0", "0.0", 3, 0.3),
    }
    # 0.1: 1.5 + sqrt(ln4/1) = 2.68 beats 0.0: 0.1 + sqrt(ln4/3) = 0.78
    assert select_leaf(nodes, c=1.0) == "0.1"
    # with no exploration the mean decides: 1.5 > 0.1
    assert select_leaf(nodes, c=0.0) == "0.1"
    nodes["0.1"]["value_sum"] = -5.0
    assert select_leaf(nodes, c=0.0) == "0.0.0"
    updated = backup_path(nodes, "0.0.0", 0.5)
    assert set(updated) == {"0", "0.0", "0.0.0"}
    assert updated["0"]["visits"] == 5 and updated["0"]["value_sum"] == pytest.approx(2.5)
    assert updated["0.0.0"]["visits"] == 4 and updated["0.0.0"]["value_sum"] == pytest.approx(0.8)
    assert nodes["0"]["visits"] == 4  # the input tree is not mutated


def test_mcts_runs_within_budget_and_is_deterministic() -> None:
    config = MCTSConfig(iterations=50, max_policy_calls=48, expansion_k=3)
    graph = build_mcts_graph(RandomPolicy(), Game24Env, FakeDistanceReward(), config)
    state = graph.invoke({"task_id": "950"}, {"max_concurrency": 4})
    # stops starting rounds at the call budget (or at the iteration cap: re-selecting a terminal
    # leaf backs its value up again without new calls)
    assert state["policy_calls"] <= 48 + 9
    assert state["policy_calls"] >= 48 or state["iteration"] == 50
    nodes = state["nodes"]
    root = nodes["0"]  # every evaluation of a new child is backed up through the root
    assert root["visits"] == sum(nodes[c]["visits"] for c in root["children"]) >= state["iteration"]
    for node in nodes.values():  # a parent has as many visits as its children together, + its own
        if node["children"] and node["id"] != "0":
            assert node["visits"] >= sum(nodes[c]["visits"] for c in node["children"])
    assert state["path"][0] == "0" and state["path"][-1] == state["best_node"]
    assert state["best"].steps and state["best"].evaluation is not None
    again = graph.invoke({"task_id": "950"}, {"max_concurrency": 1})
    assert again["best"].actions == state["best"].actions and again["nodes"] == nodes


def test_mcts_with_a_scripted_llm_policy() -> None:
    replies = {"4 4 6 8": "4 + 8 = 12", "4 6 12": "6 - 4 = 2", "2 12": "12 * 2 = 24"}

    def respond(messages) -> str:
        now = re.search(r"Now: Numbers left: ([\d ]+)", str(messages[-1].content)).group(1).strip()
        return f"Action: {replies[now]}"

    policy = LLMPolicy(ScriptedChatModel(responder=respond))
    graph = build_mcts_graph(
        policy,
        lambda: Game24Env(puzzles=[(4, 4, 6, 8)]),
        FakeDistanceReward(),
        MCTSConfig(iterations=3, max_policy_calls=None, expansion_k=2),
    )
    state = graph.invoke({"task_id": "1"})
    assert state["best"].evaluation.success
    assert len(state["nodes"]["0"]["children"]) == 1  # two samples, one distinct action


def test_mcts_resumes_from_its_checkpoint_to_the_same_answer(tmp_path) -> None:
    config = MCTSConfig(iterations=12, max_policy_calls=None)
    reference = build_mcts_graph(RandomPolicy(), Game24Env, FakeDistanceReward(), config).invoke(
        {"task_id": "933"}
    )
    with SqliteSaver.from_conn_string(str(tmp_path / "ckpt.sqlite")) as saver:
        crashing = build_mcts_graph(
            RandomPolicy(), Game24Env, FakeDistanceReward(fail_after=2), config, checkpointer=saver
        )
        run = {"configurable": {"thread_id": "t1"}}
        with pytest.raises(RuntimeError, match="simulated crash"):
            crashing.invoke({"task_id": "933"}, run)
        assert crashing.get_state(run).next  # stopped midway
    with SqliteSaver.from_conn_string(str(tmp_path / "ckpt.sqlite")) as saver:
        resumed = build_mcts_graph(
            RandomPolicy(), Game24Env, FakeDistanceReward(), config, checkpointer=saver
        ).invoke(None, {"configurable": {"thread_id": "t1"}})
    assert resumed["best"].actions == reference["best"].actions
    assert resumed["nodes"] == reference["nodes"]


def test_mcts_needs_a_reward_model() -> None:
    with pytest.raises(ConfigError, match="needs a reward model"):
        build_mcts_graph(RandomPolicy(), Game24Env, None)


def test_tree_html_is_self_contained(tmp_path) -> None:
    graph = build_mcts_graph(
        RandomPolicy(), Game24Env, FakeDistanceReward(), MCTSConfig(iterations=4)
    )
    state = graph.invoke({"task_id": "901"})
    page = write_tree_html(state, tmp_path / "tree.html").read_text()
    assert "<script src" not in page and "<link" not in page
    assert not re.search(r"(src|href)=[\"']?https?:", page)
    data = json.loads(
        re.search(
            r'<script type="application/json" id="data">(.*?)</script>', page, re.DOTALL
        ).group(1)
    )
    assert data == json.loads(json.dumps(tree_to_json(state)))
    assert data["chosen_path"][-1] == state["best_node"] and len(data["nodes"]) == len(
        state["nodes"]
    )


def _trajectory(actions: list[str], valid: list[bool], price: float | None = None) -> Trajectory:
    steps = [Step(action=a, observation="o", valid=v) for a, v in zip(actions, valid, strict=True)]
    info = {"env": {"price": price}} if price is not None else {}
    return Trajectory(task_id="1", intent="i", initial_observation="s", steps=steps, info=info)


def test_objectives() -> None:
    short, long = _trajectory(["a"], [True]), _trajectory(["x", "a"], [False, True])
    assert fewer_steps(short) == -1 and fewer_steps(long) == -2
    cheaper = numeric_attribute("price", sign=-1)
    assert cheaper(_trajectory(["a"], [True], price=12.5)) == -12.5
    assert cheaper(short) == 0.0  # missing counts as the default
    paid = numeric_attribute("price", sign=-1, default=1000.0, only_if="purchased")
    viewed = _trajectory(["a"], [True], price=12.5)  # a price seen, nothing bought
    bought = viewed.model_copy(update={"info": {"env": {"price": 30.0, "purchased": True}}})
    assert paid(viewed) == -1000.0 and paid(bought) == -30.0


def test_a_step_count_objective_changes_the_pick_on_game24() -> None:
    """Candidates that wasted moves on invalid actions lose once fewer_steps has weight."""
    solution = ["4 + 8 = 12", "6 - 4 = 2", "12 * 2 = 24"]

    def respond(messages) -> str:
        text = str(messages[-1].content)
        seed_line = len(re.findall(r"^Step \d+:", text, re.MULTILINE))
        wasted = "Invalid action" in text
        # the first sampled candidates stumble once before solving; later ones do not
        if not wasted and seed_line == 0 and respond.calls < 6:
            respond.calls += 1
            return "Action: 9 + 9 = 18"
        respond.calls += 1
        return (
            f"Action: {solution[len(re.findall('Numbers left', text)) - 2 - (1 if wasted else 0)]}"
        )

    respond.calls = 0
    env_factory = lambda: Game24Env(puzzles=[(4, 4, 6, 8)])  # noqa: E731
    policy = LLMPolicy(ScriptedChatModel(responder=respond), max_reasks=0)
    config = BestOfNConfig(n=4, max_steps=6)
    plain = build_best_of_n_graph(policy, env_factory, ConstantReward(), config, checkpointer=None)
    state = plain.invoke({"task_id": "1"}, {"max_concurrency": 1})
    lengths = [len(c.steps) for c in state["candidates"]]
    assert max(lengths) > min(lengths)  # some candidates wasted a move
    assert len(state["best"].steps) == lengths[0]  # without an objective: the first (a tie)
    respond.calls = 0
    weighted = build_best_of_n_graph(
        policy,
        env_factory,
        ConstantReward(),
        config,
        objectives=[WeightedObjective(fewer_steps, 1.0)],
    )
    state = weighted.invoke({"task_id": "1"}, {"max_concurrency": 1})
    assert len(state["best"].steps) == min(len(c.steps) for c in state["candidates"])
    assert state["values"][state["best_index"]] == max(state["values"])


def test_build_planner_by_name() -> None:
    for name in ("best_of_n", "reflexion", "mcts"):
        graph = build_planner(name, RandomPolicy(), Game24Env, FakeDistanceReward(), {"seed": 1})
        state = graph.invoke({"task_id": "905"})
        assert isinstance(state["best"], Trajectory) and state["policy_calls"] > 0
    with pytest.raises(ConfigError, match="unknown planner"):
        build_planner("beam", RandomPolicy(), Game24Env, None)
    with pytest.raises(ConfigError, match="takes a MCTSConfig"):
        build_planner("mcts", RandomPolicy(), Game24Env, FakeDistanceReward(), BestOfNConfig())


class FakeEmbedder:
    """A fake, deterministic bag-of-words embedder for memory tests (not a real model)."""

    name = "fake-bow"
    dim = 64

    def embed(self, texts):
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i, sum(map(ord, word)) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def test_memory_add_search_save_load(tmp_path) -> None:
    memory = TrajectoryMemory(FakeEmbedder())
    memory.add("reach 24 from 4 4 6 8", reflection="multiply last", task_id="a")
    memory.add("sort the red blocks", reflection="look under the table", task_id="b")
    memory.add("reach 24 from 1 2 3 4", task_id="c")
    hits = memory.search("reach 24 from 2 2 6 6", k=2)
    assert [r.task_id for r, _ in hits][0] in {"a", "c"} and hits[0][1] >= hits[1][1]
    only = memory.search("reach 24 from 2 2 6 6", k=5, with_reflection=True, exclude_task="a")
    assert [r.task_id for r, _ in only] == ["b"]
    memory.save(tmp_path / "mem")
    loaded = TrajectoryMemory.load(tmp_path / "mem", FakeEmbedder())
    assert loaded.records == memory.records
    assert loaded.search("reach 24 from 2 2 6 6", k=2) == hits
    (tmp_path / "mem" / "index.faiss").write_bytes(b"garbage")
    from armap_agents.errors import CheckpointError

    with pytest.raises(CheckpointError):
        TrajectoryMemory.load(tmp_path / "mem", FakeEmbedder())


def test_memory_with_the_real_minilm_embedder(tmp_path) -> None:
    memory = TrajectoryMemory()
    memory.add("Use the numbers 4 4 6 8 to obtain 24", reflection="try 4 + 8 first")
    memory.add("Put a clean mug in the coffee machine", reflection="rinse it in the sink")
    (record, sim), _ = memory.search("Use the numbers 2 4 6 8 to obtain 24", k=2)
    assert record.reflection == "try 4 + 8 first" and 0.5 < sim <= 1.0001
    memory.save(tmp_path / "m")
    again = TrajectoryMemory.load(tmp_path / "m")
    assert again.search("Use the numbers 2 4 6 8 to obtain 24", k=2)[0][1] == pytest.approx(sim)


def test_reflexion_retrieves_reflections_an_earlier_run_stored_on_disk(tmp_path) -> None:
    store = tmp_path / "memory"
    reflector = ScriptedChatModel(replies=["Combine the two largest numbers last."])
    first = build_reflexion_graph(
        RandomPolicy(),
        Game24Env,
        FakeDistanceReward(),
        ReflexionConfig(max_trials=2, threshold=10),
        reflector=reflector,
        memory=TrajectoryMemory.open(store, FakeEmbedder()),
        memory_path=store,
    )
    state = first.invoke({"task_id": "910"})
    assert len(state["attempts"]) == 2 and state["reflections"] == [
        "Combine the two largest numbers last."
    ]
    assert state["best"] == state["attempts"][state["best_index"]]

    # a later run, a new process's worth of objects, another task: the lesson comes from disk
    seen_prompts = []

    def respond(messages) -> str:
        seen_prompts.append(str(messages[-1].content))
        return "Action: " + re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)[-1]

    second = build_reflexion_graph(
        LLMPolicy(ScriptedChatModel(responder=respond)),
        Game24Env,
        FakeDistanceReward(),
        ReflexionConfig(max_trials=1),
        memory=TrajectoryMemory.load(store, FakeEmbedder()),
    )
    state = second.invoke({"task_id": "911"})
    assert state["retrieved"] == ["Combine the two largest numbers last."]
    assert (
        "Lessons from earlier attempts:\n- Combine the two largest numbers last." in seen_prompts[0]
    )


def test_reflexion_stops_when_the_reward_model_is_satisfied() -> None:
    graph = build_reflexion_graph(
        RandomPolicy(), Game24Env, ConstantReward(), ReflexionConfig(max_trials=5, threshold=0.0)
    )
    state = graph.invoke({"task_id": "905"})
    assert len(state["attempts"]) == 1 and state["reward_model_calls"] == 1


def test_reflexion_streams_one_progress_event_per_trial() -> None:
    graph = build_reflexion_graph(
        RandomPolicy(), Game24Env, ConstantReward(), ReflexionConfig(max_trials=3, threshold=2.0)
    )
    events = list(graph.stream({"task_id": "905"}, stream_mode="custom"))
    assert [e["trial"] for e in events] == [1, 2, 3]
    assert all(e["event"] == "trial" and "score" in e and "value" in e for e in events)


def test_mcts_widens_an_exhausted_tree_until_its_budget_is_spent() -> None:
    # one sample per expansion: without widening the tree is a single path, exhausted once it
    # reaches the end of the game, and every later round only backs a known value up again
    def search(widen: bool) -> dict:
        config = MCTSConfig(iterations=40, max_policy_calls=30, expansion_k=1, widen=widen)
        graph = build_mcts_graph(RandomPolicy(), Game24Env, FakeDistanceReward(), config)
        return graph.invoke({"task_id": "950"})

    narrow, wide = search(False), search(True)
    assert narrow["iteration"] == 40 and narrow["policy_calls"] < 30
    assert all(len(n["children"]) <= 1 for n in narrow["nodes"].values())
    assert wide["policy_calls"] >= 30 and wide["iteration"] < 40
    nodes = wide["nodes"]
    # widened where selection could not expand: the deepest node with untried actions first
    assert any(len(n["children"]) > 1 for n in nodes.values())
    for node in nodes.values():  # children keep distinct ids and distinct actions
        actions = [nodes[c]["action"] for c in node["children"]]
        assert len(actions) == len(set(actions))
        assert all(nodes[c]["parent"] == node["id"] for c in node["children"])
    # a widening round that found nothing new marks its node, which is not widened again
    assert all(n["children"] for n in nodes.values() if n.get("saturated"))
    assert wide["best"].evaluation is not None
