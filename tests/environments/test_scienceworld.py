"""ScienceWorld: task ids, the curated action list and the relabeler (no JVM), then the real
simulator (``slow``): a gold run succeeds, bad actions change nothing, valid actions are lazy,
a killed JVM is replaced mid-episode, and the explore / reward-model / Best-of-N stages run."""

from __future__ import annotations

import functools
import gc
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("scienceworld")
if shutil.which("java") is None:
    pytest.skip("ScienceWorld needs a Java runtime on PATH", allow_module_level=True)

from armap_agents.environments.base import Environment, Relabeler  # noqa: E402
from armap_agents.environments.scienceworld import (  # noqa: E402
    ScienceWorldEnv,
    ScienceWorldRelabeler,
    curate_actions,
    focus_targets,
    parse_task_id,
    scienceworld_task_names,
    task_name,
    trajectory_scores,
    variation_splits,
)
from armap_agents.errors import ConfigError, EnvironmentCrashed, MissingDependency  # noqa: E402
from armap_agents.policies import (  # noqa: E402
    ActionChoice,
    ExpertPolicy,
    PolicyContext,
    RandomPolicy,
)
from armap_agents.rollout import run_episode  # noqa: E402
from armap_agents.types import Evaluation, Step, Trajectory  # noqa: E402

BOIL = (
    "Your task is to boil water. For compounds without a boiling point, combusting the "
    "substance is also acceptable. First, focus on the substance. Then, take actions that will "
    "cause it to change its state of matter."
)
FIND = (
    "Your task is to find a(n) animal. First, focus on the thing. Then, move it to the red box "
    "in the kitchen."
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


# -- no JVM ---------------------------------------------------------------------------------
def test_task_names_and_ids() -> None:
    from scienceworld.constants import ID2TASK

    names = scienceworld_task_names()
    assert len(names) == 30 and names[0] == "boil" and len(set(names)) == 30
    assert len(ID2TASK) == 30
    for spelling in ("boil", "Boil", "task-1-boil", "1-1", "Matter Changes of State (Boiling)"):
        assert task_name(spelling) == "boil"
    assert task_name("find_animal") == "find-animal"
    assert parse_task_id("boil/3") == ("boil", 3)
    assert parse_task_id("use-thermometer/0") == ("use-thermometer", 0)
    for bad in ("boil", "boil/x", "boil/-1", ""):
        with pytest.raises(KeyError, match="look like"):
            parse_task_id(bad)
    with pytest.raises(KeyError, match="known tasks: boil, "):
        parse_task_id("fly/0")


def test_construction_is_cheap_and_validates() -> None:
    start = time.perf_counter()
    env = ScienceWorldEnv(tasks=["boil", "task-1-boil", "find_animal"])
    assert time.perf_counter() - start < 2.0
    assert env.jvm_pid is None  # no JVM until it is needed
    assert env.tasks == ["boil", "find-animal"]
    assert isinstance(env, Environment) and env.name == "scienceworld"
    with pytest.raises(RuntimeError, match="reset"):
        env.step("look around")
    env.close()  # closing an env that never started is fine
    with pytest.raises(ConfigError, match="known tasks: boil, melt, freeze, "):
        ScienceWorldEnv(tasks=["boil", "fly-to-the-moon"])
    with pytest.raises(ConfigError, match="simplification"):
        ScienceWorldEnv(simplification="easy,superfast")
    with pytest.raises(ConfigError, match="jvm_heap"):
        ScienceWorldEnv(jvm_heap="lots")
    assert ScienceWorldEnv(simplification="teleportAction,openDoors").simplification == (
        "teleportAction,openDoors"
    )


def test_missing_java_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(MissingDependency, match="openjdk-17-jre-headless") as info:
        ScienceWorldEnv()
    assert isinstance(info.value, ImportError)  # catchable as an ImportError too
    monkeypatch.undo()
    with pytest.raises(MissingDependency, match="not an executable"):
        ScienceWorldEnv(java_path="/nonexistent/bin/java")


def test_missing_package_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "scienceworld", None)
    with pytest.raises(MissingDependency, match=r"armap-agents\[scienceworld\]"):
        ScienceWorldEnv()


def test_variation_splits_mirror_the_simulator() -> None:
    # counts observed from the simulator for tasks with 30, 14, 10, 126 and 1386 variations
    for n, counts in {30: (14, 7, 9), 14: (6, 3, 5), 10: (4, 2, 4), 126: (62, 31, 33)}.items():
        splits = variation_splits(n)
        assert tuple(len(splits[k]) for k in ("train", "dev", "test")) == counts
        assert splits["train"] + splits["dev"] + splits["test"] == list(range(n))
    assert variation_splits(1) == {"train": [0], "dev": [], "test": [0]}
    assert variation_splits(3) == {"train": [0], "dev": [1], "test": [2]}


def test_focus_targets() -> None:
    assert focus_targets(BOIL) == {"substance"}
    assert focus_targets(FIND) is None  # "the thing": the agent has to find it
    assert (
        focus_targets(
            "Your task is to find the animal with the longest life span. Focus on the animal with "
            "the longest life span."
        )
        is None
    )
    assert focus_targets(
        "Your task is to turn on the red light bulb. First, focus on the red light bulb."
    ) == {"red", "light", "bulb"}


def test_curate_actions() -> None:
    raw = [
        "teleport to kitchen",
        "open cupboard",
        "open cupboard",  # duplicate
        "task",
        "reset task",
        "look at agent",
        "look at air",
        "use thermometer on air",
        "move metal pot to metal pot",  # an object onto itself
        "move door to hallway to door to hallway",
        "move door to hallway to sink",
        "focus on chair",
        "focus on substance in metal pot",
        "focus on water",
        "pick up metal pot",
        "wait1",
    ] + [f"pour cup {i} into bowl" for i in range(30)]
    out = curate_actions(raw, BOIL, max_per_kind=5)
    assert out[0] == "teleport to kitchen" and len(out) == len(set(out))
    for dropped in ("task", "reset task", "look at agent", "look at air", "use thermometer on air"):
        assert dropped not in out
    assert "move metal pot to metal pot" not in out
    assert "move door to hallway to door to hallway" not in out
    assert "move door to hallway to sink" in out
    # the task says "focus on the substance": the chair is never listed
    assert [a for a in out if a.startswith("focus on")] == ["focus on substance in metal pot"]
    pours = [a for a in out if a.startswith("pour")]
    assert len(pours) == 5  # capped per kind, the same sample every time
    assert pours == [a for a in curate_actions(raw, BOIL, max_per_kind=5) if a.startswith("pour")]
    assert len([a for a in curate_actions(raw, BOIL, max_per_kind=None) if "pour" in a]) == 30
    # no focus target in view yet: no focus action at all
    assert not [a for a in curate_actions(["focus on chair"], BOIL) if a.startswith("focus")]
    # the task does not name the object: every focus action stays (down to the cap), except
    # on rooms, doors and the inventory, which no task is about
    focus = ["focus on chair", "focus on dove", "focus on egg turtle in outside"]
    assert (
        curate_actions(
            [*focus, "focus on outside", "focus on door to kitchen", "focus on inventory"], FIND
        )
        == focus
    )
    assert "focus on chair" in curate_actions(["focus on chair"], BOIL, focus_on_named=False)


def _trajectory(task_id: str, actions: list[str], scores: list[int], **info) -> Trajectory:
    steps = [Step(action=a, observation=f"after {a}") for a in actions]
    return Trajectory(
        task_id=task_id,
        intent=BOIL,
        initial_observation="This room is called the hallway.",
        steps=steps,
        episode_id=f"{task_id}#{'-'.join(actions)}",
        evaluation=Evaluation(success=scores[-1] >= 100, score=max(scores[-1], 0) / 100),
        info={"env": {"score": scores[-1], "scores": scores}, **info},
    )


def test_relabeler_pairs_by_score() -> None:
    good = _trajectory("boil/0", ["a", "b", "c", "d"], [0, 10, 20, 70])
    okay = _trajectory("boil/0", ["a", "x", "y"], [0, 10, 10])
    failed = _trajectory("boil/0", ["a", "focus on chair"], [0, -100])
    tie = _trajectory("boil/0", ["q", "r", "s"], [0, 10, 10])
    crashed = _trajectory("boil/0", ["a", "b"], [0, 10], error="EnvironmentCrashed: boom")
    other_task = _trajectory("boil/1", ["a"], [50])
    relabeler = ScienceWorldRelabeler(negatives_per_positive=5)
    assert isinstance(relabeler, Relabeler)
    triplets = relabeler.relabel([good, okay, failed, tie, crashed, other_task], seed=0)
    assert triplets == relabeler.relabel([good, okay, failed, tie, crashed, other_task], seed=0)
    outcome = [t for t in triplets if t.source == "outcome"]
    pairs = {(t.positive.episode_id, t.negative.episode_id) for t in outcome}
    assert pairs == {
        (good.episode_id, okay.episode_id),
        (good.episode_id, tie.episode_id),
        (good.episode_id, failed.episode_id),
        (okay.episode_id, failed.episode_id),
        (tie.episode_id, failed.episode_id),
    }  # never a tie, never the crashed episode, never across tasks
    for t in triplets:
        assert t.intent == BOIL and t.task_id == "boil/0"
        assert t.positive.evaluation is None and t.negative.evaluation is None
        assert t.positive.intent == t.negative.intent == BOIL
    prefix = {
        (t.positive.episode_id, t.negative.episode_id): len(t.positive.steps)
        for t in triplets
        if t.source == "prefix"
    }
    # good leads okay first at step 3 (20 > 10); okay leads failed at step 2 (10 > -100)
    assert prefix[(good.episode_id, okay.episode_id)] == 3
    assert prefix[(okay.episode_id, failed.episode_id)] == 2
    assert (good.episode_id, failed.episode_id) in prefix
    for t in triplets:
        if t.source == "prefix":
            k = len(t.positive.steps)
            assert len(t.negative.steps) == k
            assert trajectory_scores(t.positive)[-1] > trajectory_scores(t.negative)[-1]
    assert len(ScienceWorldRelabeler(prefixes=False).relabel([good, okay], seed=0)) == 1


def test_trajectory_scores_fallbacks() -> None:
    full = _trajectory("boil/0", ["a", "b", "c"], [0, 30, 30])
    # a trailing invalid step after the last valid one keeps the score
    longer = full.model_copy(update={"steps": [*full.steps, Step(action="z", observation="?")]})
    assert trajectory_scores(longer) == [0, 30, 30, 30]
    assert trajectory_scores(full.prefix(2)) == [0, 30]
    only_final = full.model_copy(update={"info": {"env": {"score": 30}}})
    assert trajectory_scores(only_final) == [30]
    invalid_only = Trajectory(
        task_id="boil/0",
        intent=BOIL,
        initial_observation="",
        steps=[Step(action="fly", observation="No known action", valid=False)],
    )
    assert trajectory_scores(invalid_only) == [0]
    assert trajectory_scores(invalid_only.model_copy(update={"steps": []})) is None


# -- the real simulator ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def sw():
    with ScienceWorldEnv(tasks=["boil"]) as env:
        yield env


@pytest.mark.slow
def test_gold_sequence_succeeds(sw: ScienceWorldEnv) -> None:
    gold = sw.gold_actions("boil/0")
    assert len(gold) > 10
    pid = sw.jvm_pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # the heap cap reached the JVM's command line
        assert b"-Xmx512m" in cmdline.read_bytes().split(b"\0")
    obs = sw.reset("boil/0")
    assert obs.instruction == BOIL and obs.text.startswith("This room is called")
    result = None
    for action in gold:
        result = sw.step(action)
        if result.done:
            break
    assert result is not None and result.done and result.valid
    assert result.info["score"] == 100 and result.info["scores"][-1] == 100
    assert sw.evaluate().success and sw.evaluate().score == 1.0
    after = sw.step("look around")
    assert not after.valid and "over" in after.observation


@pytest.mark.slow
def test_task_ids_use_the_simulators_splits(sw: ScienceWorldEnv) -> None:
    dev = sw.task_ids("dev")
    assert dev == sw.task_ids("valid") and dev[0] == "boil/14" and len(dev) == 7
    for task_id in ("boil/0", "identify-life-stages-2/0"):
        sw.reset(task_id)
        name, _ = parse_task_id(task_id)
        expected = variation_splits(sw.max_variations(name))
        for split, method in (
            ("train", "getVariationsTrain"),
            ("dev", "getVariationsDev"),
            ("test", "getVariationsTest"),
        ):
            got = [int(v) for v in sw._call(lambda s, m=method: getattr(s, m)())]
            assert got == expected[split], (task_id, split)
    with pytest.raises(KeyError, match="exceeds"):
        sw.reset("boil/9999")
    with pytest.raises(ValueError, match="unknown split"):
        sw.task_ids("holdout")


@pytest.mark.slow
def test_invalid_actions_change_nothing(sw: ScienceWorldEnv) -> None:
    sw.reset("boil/0")
    sw.step("teleport to kitchen")
    look = sw._call(lambda s: str(s.freeActionLook()))
    for action in ("fly to the moon", "", "reset task", "pick up the moon"):
        result = sw.step(action)
        assert not result.valid and not result.done, action
        assert result.observation
    assert sw._call(lambda s: str(s.freeActionLook())) == look
    assert sw.evaluate().score == 0.0
    sw.reset("boil/0")  # the hallway, with six doors
    ambiguous = sw.step("open door")  # resolved to its first reading, alphabetically
    assert ambiguous.valid and ambiguous.info["resolved_as"].startswith("open door between")
    assert "Ambiguous" not in ambiguous.observation


@pytest.mark.slow
def test_wrong_focus_fails_the_game(sw: ScienceWorldEnv) -> None:
    sw.reset("boil/0")
    sw.step("teleport to kitchen")
    result = sw.step("focus on chair")
    assert result.valid and result.done and result.info["score"] < 0
    assert sw.evaluate() == Evaluation(success=False, score=0.0)


@pytest.mark.slow
def test_valid_actions_are_lazy_and_work(sw: ScienceWorldEnv, monkeypatch) -> None:
    calls = []
    raw = sw._raw_valid_actions

    def spy():
        calls.append(1)
        return raw()

    monkeypatch.setattr(sw, "_raw_valid_actions", spy)
    sw.reset("boil/0")
    for action in ("teleport to kitchen", "look around", "open cupboard"):
        sw.step(action)
    assert calls == []  # plain steps never ask for the list
    actions = sw.valid_actions()
    assert sw.valid_actions() == actions and len(calls) == 1  # cached until the next step
    assert 20 < len(actions) < 400 and len(set(actions)) == len(actions)
    assert "pick up metal pot" in actions and "teleport to kitchen" in actions
    assert not any(a.startswith("focus on") for a in actions)  # no substance in view yet
    sw.step("pick up thermometer")
    sw.valid_actions()
    assert len(calls) == 2
    for action in ("pick up metal pot", "teleport to bathroom"):
        assert sw.step(action).valid


@pytest.mark.slow
def test_a_killed_jvm_is_replaced_mid_episode() -> None:
    env = ScienceWorldEnv(tasks=["boil"])
    gold = env.gold_actions("boil/0")
    env.reset("boil/0")
    reference = [env.step(a) for a in gold[:7]]
    env.reset("boil/0")
    for action in gold[:6]:
        env.step(action)
    first = env.jvm_pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    result = env.step(gold[6])  # restart, replay six actions, retry the step
    assert env.restarts == 1 and env.jvm_pid != first and not _alive(first)
    assert result.observation == reference[6].observation and result.valid
    assert result.info["scores"] == reference[6].info["scores"]
    second = env.jvm_pid
    env.close()
    env.close()  # idempotent
    assert env.jvm_pid is None and not _alive(second)


@pytest.mark.slow
def test_an_unrecoverable_jvm_raises_environment_crashed(monkeypatch) -> None:
    env = ScienceWorldEnv(tasks=["boil"])
    env.reset("boil/0")
    env.step("teleport to kitchen")
    pid = env.jvm_pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)

    def no_java():
        raise EnvironmentCrashed("the ScienceWorld JVM did not start (simulated)")

    monkeypatch.setattr(env, "_start_jvm", no_java)
    with pytest.raises(EnvironmentCrashed, match="killed by signal 9") as info:
        env.step("look around")
    assert "boil/0" in str(info.value)
    # run_episode records it as a failed episode instead of raising
    trajectory = run_episode(env, RandomPolicy(), "boil/0", seed=0, max_steps=2)
    assert "EnvironmentCrashed" in (trajectory.error or "")
    env.close()
    assert not _alive(pid)


@pytest.mark.slow
def test_garbage_collection_stops_the_jvm() -> None:
    env = ScienceWorldEnv(tasks=["boil"])
    env.reset("boil/0")
    pid = env.jvm_pid
    assert _alive(pid)
    del env
    gc.collect()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


@pytest.mark.slow
def test_explore_accounts_for_every_episode(tmp_path) -> None:
    from armap_agents._jsonl import iter_jsonl
    from armap_agents.graphs.explore import ExploreConfig, explore

    config = ExploreConfig(task_ids=["boil/0"], episodes_per_task=3, max_steps=4, seed=1)
    out = tmp_path / "trajectories.jsonl"
    result = explore(
        RandomPolicy(),
        functools.partial(ScienceWorldEnv, tasks=["boil"]),
        out,
        config.model_copy(update={"max_concurrency": 1}),
        progress=False,
    )
    assert result.finished + result.failed == 3 and result.failed == 0
    trajectories = list(iter_jsonl(out, Trajectory))
    assert sorted(t.episode_id for t in trajectories) == ["boil/0#0", "boil/0#1", "boil/0#2"]
    for t in trajectories:
        assert t.intent == BOIL and 1 <= len(t.steps) <= 4
        assert t.evaluation is not None
        assert trajectory_scores(t) is not None


class _Scripted:
    """Plays a fixed list of actions (a gold demonstration) as a policy."""

    def __init__(self, actions: list[str]) -> None:
        self.actions = actions

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        return ActionChoice(action=self.actions[len(context.steps)])


@pytest.mark.slow
def test_relabeler_on_real_episodes(sw: ScienceWorldEnv) -> None:
    task = "find-non-living-thing/0"
    gold = sw.gold_actions(task)
    assert len(gold) <= 8
    demo = run_episode(
        sw, _Scripted(gold), task, seed=0, max_steps=len(gold), prefix=gold[:-1], episode_id="g"
    )
    assert demo.evaluation.success and demo.info["env"]["scores"][-1] == 100
    wander = run_episode(sw, RandomPolicy(), task, seed=3, max_steps=3, episode_id="r")
    triplets = ScienceWorldRelabeler().relabel([demo, wander], seed=0)
    assert triplets and triplets[0].positive.episode_id == "g"
    assert triplets[0].intent.startswith("Your task is to find a(n) non-living thing")


@pytest.fixture(scope="module")
def reward_model(small_reward_model_config):
    from armap_agents.reward.model import RewardModel

    return RewardModel.create(small_reward_model_config)


@pytest.mark.slow
def test_reward_model_scores_a_scienceworld_trajectory(sw: ScienceWorldEnv, reward_model) -> None:
    trajectory = run_episode(sw, RandomPolicy(), "boil/0", seed=5, max_steps=3)
    assert trajectory.error is None
    (score,) = reward_model.score(trajectory.intent, [trajectory])
    assert isinstance(score, float) and math.isfinite(score)


@pytest.mark.slow
def test_best_of_n_episode_on_scienceworld(reward_model) -> None:
    from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph

    graph = build_best_of_n_graph(
        RandomPolicy(),
        functools.partial(ScienceWorldEnv, tasks=["boil"]),
        reward_model,
        BestOfNConfig(n=2, max_steps=3),
    )
    state = graph.invoke({"task_id": "boil/0"}, {"max_concurrency": 1})
    assert len(state["candidates"]) == 2 and len(state["scores"]) == 2
    assert all(c.error is None for c in state["candidates"])
    assert isinstance(state["best"], Trajectory) and state["best"].steps
    assert state["best"].evaluation is not None


# -- the expert (ExpertHook) ----------------------------------------------------------------
def test_curation_does_not_depend_on_the_hash_seed() -> None:
    """Exploration replays the same actions in every process: nothing in the curated list (or
    the focus targets) may follow the order of a set of strings, which PYTHONHASHSEED shuffles."""
    script = (
        "from armap_agents.environments.scienceworld import curate_actions, focus_targets\n"
        "objects = ['red box', 'blue box', 'frog egg', 'chair', 'table', 'orange', 'banana',\n"
        "           'apple tree', 'flower pot 3', 'metal pot', 'thermometer', 'cupboard']\n"
        "raw = [f'{v} {o}' for v in ('focus on', 'pick up', 'look at', 'open') for o in objects]\n"
        "raw += [f'move {a} to {b}' for a in objects for b in objects]\n"
        f"for text in ({FIND!r}, {BOIL!r}):\n"
        "    print(curate_actions(raw, text, max_per_kind=5), sorted(focus_targets(text) or []))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1 and "move" in outputs.pop()


QUICKSTART_FINDS = ("find-living-thing/225", "find-non-living-thing/226", "find-plant/225")


@pytest.mark.slow
@pytest.mark.parametrize("task_id", [*QUICKSTART_FINDS, "find-animal/226"])
def test_expert_solves_the_quickstart_tasks(sw: ScienceWorldEnv, task_id: str) -> None:
    trajectory = run_episode(sw, ExpertPolicy(0.0), task_id, seed=0, max_steps=15)
    assert trajectory.error is None and trajectory.evaluation.success, trajectory.steps
    assert all(step.valid for step in trajectory.steps)
    assert len(trajectory.steps) <= 6  # teleports straight to where the gold path acts
    assert sw.expert_action() is None  # the episode is over


@pytest.mark.slow
def test_expert_recovers_after_a_detour(sw: ScienceWorldEnv) -> None:
    """A random step takes the carried animal away and leaves the room: the expert goes back
    for it, picks it up again and finishes."""
    task_id = "find-animal/225"
    sw.reset(task_id)
    taken: list[str] = []
    while not taken or not taken[-1].startswith("pick up"):
        action = sw.expert_action()
        assert action is not None and not sw.step(action).done
        taken.append(action)
    animal = taken[-1].removeprefix("pick up ")
    drop = next(a for a in sw.valid_actions() if a.startswith("put down") and animal in a)
    away = next(
        a for a in sw.valid_actions() if a.startswith("teleport to") and a != "teleport to outside"
    )
    detour = [*taken, drop, away]
    trajectory = run_episode(sw, ExpertPolicy(0.0), task_id, seed=0, prefix=detour, max_steps=15)
    assert trajectory.evaluation.success, trajectory.steps
    recovery = [step.action for step in trajectory.steps[len(detour) :]]
    assert recovery[:2] == ["teleport to outside", taken[-1]]


@pytest.mark.slow
def test_expert_action_changes_nothing(sw: ScienceWorldEnv) -> None:
    sw.reset("find-plant/226")
    sw.step("teleport to kitchen")
    sw.step("look at chair")
    sw._gold.clear()  # the first call fetches the gold path: reload + replay

    def state() -> tuple:
        look = sw._call(lambda s: str(s.freeActionLook()))
        inventory = sw._call(lambda s: str(s.freeActionInventory()))
        moves = sw._call(lambda s: int(s.getNumMoves()))
        return look, inventory, moves, sw.evaluate(), sw.valid_actions()

    before = state()
    first = sw.expert_action()
    assert first == "teleport to greenhouse"
    assert state() == before
    assert [sw.expert_action() for _ in range(3)] == [first] * 3
    assert state() == before
    assert sw.step(first).valid and sw.expert_action().startswith("focus on")


def test_the_simulators_own_order_changes_nothing(monkeypatch) -> None:
    """The simulator lists valid actions and an ambiguous command's readings in an order that
    changes between JVMs (and JVM threads): a seeded episode must not follow it."""
    from armap_agents.environments.scienceworld import _Episode, _step_text

    readings = ["open door to kitchen", "open door to bedroom", "open door to workshop"]

    class Server:
        def __init__(self, order: list[str]) -> None:
            self.order, self.sent = order, []

        def step(self, command: str) -> str:
            self.sent.append(command)
            if command.isdigit():
                return f"You chose {self.order[int(command)]}."
            listed = "".join(f"{i}:\t{r}\n" for i, r in enumerate(self.order))
            return f"Ambiguous request: Please enter the number ...:\n{listed}"

    outcomes = {_step_text(Server(order), "open door") for order in (readings, readings[::-1])}
    assert outcomes == {("You chose open door to bedroom.", "open door to bedroom")}

    env = ScienceWorldEnv()  # no JVM: the episode and the simulator's list are stand-ins
    env._episode = _Episode("find-animal", 0, FIND)
    raw = [f"{verb} {o}" for verb in ("look at", "pick up") for o in ("chair", "door", "drawer")]
    raw += [f"move {a} to {b}" for a in ("apple", "chair", "banana") for b in ("box", "table")]
    lists = []
    for order in (raw, raw[::-1], raw[1::2] + raw[::2]):
        monkeypatch.setattr(env, "_raw_valid_actions", lambda order=order: list(order))
        env._valid_cache = None
        lists.append(env.valid_actions())
    assert lists[0] == lists[1] == lists[2] and sorted(lists[0]) == sorted(raw)


@pytest.mark.slow
def test_an_episode_does_not_depend_on_what_the_jvm_ran_before(sw: ScienceWorldEnv) -> None:
    """Pooled environments run episodes in whatever order the workers take them: the same
    task must look the same (names of look-alike objects, valid actions, observation lines)
    whatever its JVM ran before (see JAVA_OPTIONS)."""

    def seen() -> tuple:
        observation = sw.reset("find-living-thing/1")  # three look-alike cups of paint
        return observation.text, sw.valid_actions(), sw.step("look in cupboard").observation

    first = seen()
    sw.reset("boil/0")
    sw.step("teleport to kitchen")
    assert seen() == first
    assert seen() == first
