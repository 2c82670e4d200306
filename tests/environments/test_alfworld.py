"""ALFWorld: task listing, the engine's invariants, walkthroughs, relabeling, and the planners.

Fast tests need no game engine run; ``slow`` ones play real games from the shared data folder
(``../shared/data/alfworld`` from the project root) and are skipped when it is absent.
"""

from __future__ import annotations

import functools
import json
import math
import random
from pathlib import Path

import pytest

pytest.importorskip("textworld")
pytest.importorskip("alfworld")

from armap_agents.environments.alfworld import (  # noqa: E402
    DATA_ENV_VAR,
    TASK_TYPES,
    AlfWorldEnginePool,
    AlfWorldEnv,
    AlfWorldRelabeler,
    HindsightGoal,
    _cache_textworld_parsers,
    _cached_parser,
    _ExpertMemory,
    find_data_dir,
    resolve_task_types,
    satisfied_goals,
    task_type,
)
from armap_agents.environments.base import Environment, Relabeler  # noqa: E402
from armap_agents.errors import ConfigError, MissingDependency  # noqa: E402
from armap_agents.policies import ExpertPolicy  # noqa: E402
from armap_agents.rollout import replay, run_episode  # noqa: E402
from armap_agents.types import Evaluation, Step, Trajectory  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alfworld"
needs_data = pytest.mark.skipif(
    not (DATA / "json_2.1.1").is_dir(), reason=f"no ALFWorld data at {DATA}"
)

BOOK = "valid_seen/pick_and_place_simple-Book-None-SideTable-329/trial_T20190908_050633_745514"
ONE_PER_TYPE = {
    "look_at_obj_in_light": (
        "valid_seen/look_at_obj_in_light-AlarmClock-None-DeskLamp-323/trial_T20190909_044715_250790"
    ),
    "pick_and_place_simple": BOOK,
    "pick_clean_then_place_in_recep": (
        "valid_seen/pick_clean_then_place_in_recep-ButterKnife-None-CounterTop-8/"
        "trial_T20190909_105559_983897"
    ),
    "pick_cool_then_place_in_recep": (
        "valid_seen/pick_cool_then_place_in_recep-Apple-None-CounterTop-14/"
        "trial_T20190909_044933_815840"
    ),
    "pick_heat_then_place_in_recep": (
        "valid_seen/pick_heat_then_place_in_recep-Apple-None-DiningTable-26/"
        "trial_T20190907_060234_011675"
    ),
    "pick_two_obj_and_place": (
        "valid_seen/pick_two_obj_and_place-AlarmClock-None-Dresser-305/trial_T20190907_165826_194855"
    ),
}


@pytest.fixture(scope="module")
def pool():
    pool = AlfWorldEnginePool(max_idle=4)
    yield pool
    pool.close()


@pytest.fixture
def alf(pool):
    env = AlfWorldEnv(DATA, pool=pool)
    yield env
    env.close()


# -- names, splits and configuration (no engine) ------------------------------------------
def test_task_type_comes_from_the_directory_name() -> None:
    for expected, task_id in ONE_PER_TYPE.items():
        assert task_type(task_id) == expected
        assert AlfWorldEnv.task_type(task_id) == expected
    assert task_type("pick_two_obj_and_place-Pen-None-Desk-3/trial_T1/game.tw-pddl") == (
        "pick_two_obj_and_place"
    )
    with pytest.raises(KeyError, match="cannot read a task type"):
        task_type("valid_seen/trial_T20190908")
    assert HindsightGoal.of_task(BOOK) == HindsightGoal("place", "book", "sidetable")
    assert HindsightGoal.of_task(ONE_PER_TYPE["look_at_obj_in_light"]) == HindsightGoal(
        "look", "alarmclock", "desklamp"
    )


def test_task_types_accept_short_names_and_numbers() -> None:
    assert resolve_task_types(None) == TASK_TYPES
    assert resolve_task_types(["pick_and_place", "clean", "HEAT", "cool", "two", "look"]) == (
        "pick_and_place_simple",
        "pick_clean_then_place_in_recep",
        "pick_heat_then_place_in_recep",
        "pick_cool_then_place_in_recep",
        "pick_two_obj_and_place",
        "look_at_obj_in_light",
    )
    assert resolve_task_types([1, "6", "pick_and_place_simple"]) == (
        "pick_and_place_simple",
        "pick_two_obj_and_place",
    )
    with pytest.raises(ConfigError, match="ambiguous") as excinfo:
        resolve_task_types(["pick"])
    assert "known task types: pick_and_place_simple, look_at_obj_in_light" in str(excinfo.value)
    with pytest.raises(ConfigError, match="'slice' is unknown; known task types: ") as excinfo:
        resolve_task_types(["slice"])
    assert all(t in str(excinfo.value) for t in TASK_TYPES)
    with pytest.raises(ConfigError):
        resolve_task_types(["7"])


def test_missing_data_says_how_to_supply_it(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    with pytest.raises(MissingDependency, match="ALFWORLD_DATA is not set") as excinfo:
        AlfWorldEnv()
    message = str(excinfo.value)
    assert "data_dir" in message and "alfworld-download" in message and "json_2.1.1" in message
    assert isinstance(excinfo.value, ImportError)  # catchable like a missing package
    with pytest.raises(MissingDependency, match="does not exist"):
        AlfWorldEnv(tmp_path / "nowhere")
    with pytest.raises(MissingDependency, match="has no ALFWorld splits"):
        AlfWorldEnv(tmp_path)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MissingDependency, match=r"from \$ALFWORLD_DATA\) does not exist"):
        AlfWorldEnv()
    with pytest.raises(MissingDependency, match="ALFWORLD_DATA"):
        AlfWorldRelabeler()  # replaying for hindsight needs the games
    AlfWorldRelabeler(hindsight=False)  # labels from the recorded evaluations need none


def test_missing_engine_packages_say_what_to_install(monkeypatch, tmp_path) -> None:
    import armap_agents.environments.alfworld as alfworld

    (tmp_path / "json_2.1.1" / "valid_seen").mkdir(parents=True)
    monkeypatch.setattr(alfworld, "_has_module", lambda name: name != "textworld")
    with pytest.raises(
        MissingDependency, match=r"needs textworld: pip install 'armap-agents\[alfworld\]'"
    ):
        AlfWorldEnv(tmp_path)


def test_importing_the_module_does_not_import_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, armap_agents.environments.alfworld\n"
        "assert not {'textworld', 'alfworld', 'fast_downward'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_empty_split_is_a_missing_dependency(tmp_path) -> None:
    (tmp_path / "json_2.1.1" / "valid_seen").mkdir(parents=True)
    env = AlfWorldEnv(tmp_path)  # construction only checks that the layout is there
    with pytest.raises(MissingDependency, match="'valid_seen' has no games"):
        env.task_ids("dev")
    with pytest.raises(ConfigError, match="unknown ALFWorld split 'validation'"):
        env.task_ids("validation")
    with pytest.raises(ConfigError, match="max_episode_steps"):
        AlfWorldEnv(tmp_path, max_episode_steps=0)


def test_listing_skips_unsolvable_and_sliced_games(tmp_path) -> None:
    split = tmp_path / "json_2.1.1" / "train"
    for task, solvable in (
        ("pick_and_place_simple-Book-None-Desk-1", True),
        ("pick_and_place_simple-Pen-None-Desk-2", False),
        ("pick_and_place_simple-AppleSliced-None-Desk-3", True),
        ("pick_and_place_with_movable_recep-Pen-Mug-Desk-4", True),
        ("look_at_obj_in_light-Book-None-DeskLamp-5", True),
    ):
        (split / task / "trial_T1").mkdir(parents=True)
        game = {"pddl_domain": "", "grammar": "", "solvable": solvable, "walkthrough": ["look"]}
        (split / task / "trial_T1" / "game.tw-pddl").write_text(json.dumps(game))
    env = AlfWorldEnv(tmp_path / "json_2.1.1")  # the json_2.1.1 folder itself works too
    assert env.task_ids("train") == [
        "train/look_at_obj_in_light-Book-None-DeskLamp-5/trial_T1",
        "train/pick_and_place_simple-Book-None-Desk-1/trial_T1",
    ]
    only = AlfWorldEnv(tmp_path, task_types=["pick_and_place"])
    assert only.task_ids("train") == ["train/pick_and_place_simple-Book-None-Desk-1/trial_T1"]
    assert only.walkthrough(only.task_ids("train")[0]) == ["look"]
    with pytest.raises(KeyError, match="unknown ALFWorld task"):
        only.walkthrough("train/../../etc")
    with pytest.raises(RuntimeError, match="reset"):
        only.valid_actions()


@needs_data
def test_splits_of_the_shared_data(monkeypatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(DATA))
    env = AlfWorldEnv()
    assert isinstance(env, Environment) and env.name == "alfworld"
    assert isinstance(AlfWorldRelabeler(), Relabeler)
    dev, test, train = env.task_ids("dev"), env.task_ids("test"), env.task_ids("train")
    assert (len(dev), len(test), len(train)) == (140, 134, 395)
    assert env.task_ids("valid_seen") == dev and env.task_ids("valid_unseen") == test
    assert dev == sorted(dev) and all(t.startswith("valid_seen/") for t in dev)
    assert {task_type(t) for t in dev} == set(TASK_TYPES)
    assert all(env.game_file(t).is_file() for t in test)
    heat = AlfWorldEnv(DATA, task_types=["heat"]).task_ids("dev")
    assert heat and heat == [t for t in dev if task_type(t) == "pick_heat_then_place_in_recep"]
    assert find_data_dir(DATA) == find_data_dir(DATA / "json_2.1.1")
    assert env.goal(BOOK) == "put some book on sidetable."
    assert env.walkthrough(BOOK)[-1] == "move book 2 to sidetable 1"


# -- hindsight goals on hand-made states and trajectories ---------------------------------
def _objects(*specs: tuple[str, str]) -> set:
    return {("objecttype", (o, f"{kind}type")) for o, kind in specs}


def test_goal_checks_follow_alfworld_pddl_goals() -> None:
    facts = _objects(("mug_1", "mug"), ("mug_2", "mug"), ("lamp_1", "desklamp"))
    facts |= {
        ("receptacletype", ("shelf_1", "shelftype")),
        ("receptacletype", ("shelf_2", "shelftype")),
        ("receptacletype", ("desk_1", "desktype")),
        ("inreceptacle", ("mug_1", "shelf_1")),
        ("inreceptacle", ("mug_2", "shelf_2")),
        ("inreceptacle", ("lamp_1", "desk_1")),
        ("isclean", ("mug_1",)),
        ("ishot", ("mug_2",)),
    }
    goals = satisfied_goals(facts)
    assert HindsightGoal("place", "mug", "shelf") in goals
    assert HindsightGoal("clean", "mug", "shelf") in goals
    assert HindsightGoal("heat", "mug", "shelf") in goals
    assert HindsightGoal("cool", "mug", "shelf") not in goals
    assert HindsightGoal("two", "mug", "shelf") not in goals  # two shelves, one mug each
    assert not any(g.family == "look" for g in goals)
    together = facts - {("inreceptacle", ("mug_2", "shelf_2"))} | {
        ("inreceptacle", ("mug_2", "shelf_1"))
    }
    assert HindsightGoal("two", "mug", "shelf") in satisfied_goals(together)
    # look: hold a mug where a lamp that is on stands
    looking = facts | {
        ("holds", ("agent1", "mug_1")),
        ("atlocation", ("agent1", "loc_1")),
        ("receptacleatlocation", ("desk_1", "loc_1")),
    }
    assert HindsightGoal("look", "mug", "desklamp") not in satisfied_goals(looking)  # lamp off
    assert HindsightGoal("look", "mug", "desklamp") in satisfied_goals(
        looking | {("istoggled", ("lamp_1",))}
    )
    assert HindsightGoal("clean", "mug", "shelf").intent(0) == "put a clean mug in shelf."
    assert HindsightGoal("two", "pen", "desk").intent(1) == "find two pen and put them in desk."


def _trajectory(task_id: str, actions: list[str], success: bool, n: int = 0) -> Trajectory:
    return Trajectory(
        task_id=task_id,
        intent="put some book on sidetable.",
        initial_observation="You are in the middle of a room.",
        steps=[Step(action=a, observation=f"obs {a}") for a in actions],
        episode_id=f"{task_id}#{n}",
        done=success,
        evaluation=Evaluation(success=success, score=float(success)),
    )


def test_relabeler_without_replay_pairs_winners_with_losers_of_the_same_game() -> None:
    won = _trajectory("a", ["go to bed 1", "take book 2 from bed 1"], True, 0)
    lost = [_trajectory("a", ["look"], False, i) for i in (1, 2, 3)]
    other_game = _trajectory("b", ["look"], False, 4)
    triplets = AlfWorldRelabeler(hindsight=False, negatives_per_positive=2, prefixes=False).relabel(
        [won, *lost, other_game], seed=0
    )
    assert len(triplets) == 2
    for t in triplets:
        assert t.source == "goal" and t.task_id == "a"
        assert t.intent == "put some book on sidetable."
        assert t.positive.actions == won.actions and t.negative.task_id == "a"
        assert t.positive.evaluation is None and t.negative.evaluation is None  # no leaks
    assert AlfWorldRelabeler(hindsight=False).relabel(lost, seed=0) == []


# -- real games ---------------------------------------------------------------------------
def test_a_cached_parser_parses_once_and_hands_out_copies() -> None:
    calls = []

    def parse(text, rule_name=None):
        calls.append(text)
        return {"text": text, "rule": [rule_name]}

    cached = _cached_parser(parse)
    first, second = cached("a & b", rule_name="q"), cached("a & b", rule_name="q")
    assert first == second == {"text": "a & b", "rule": ["q"]} and calls == ["a & b"]
    first["rule"].append("mutated")  # TextWorld's callers mutate what they get
    assert cached("a & b", rule_name="q")["rule"] == ["q"] and calls == ["a & b"]


def test_cached_textworld_parsers_give_what_textworld_parses() -> None:
    """The strings an ALFWorld step parses (grammar expansions, rule conditions), through the
    cache and through TextWorld's own parser."""
    from textworld import logic
    from textworld.envs.pddl import textgen

    _cache_textworld_parsers()
    _cache_textworld_parsers()  # idempotent: wraps once
    cases = [
        (textgen, "#GotoLocation.feedback#", {"rule_name": "symbols", "trace": False}),
        (
            textgen,
            "go to [{r.name | receptacleatlocation(r:receptacle, lend:location)}]",
            {"rule_name": "symbols", "trace": False},
        ),
        (logic, "openable(r:receptacle) & opened(r:receptacle)", {"rule_name": "conjunctiveQuery"}),
    ]
    for module, text, kwargs in cases:
        assert not hasattr(module._parse_and_convert.uncached, "uncached")
        for _ in range(2):
            cached = module._parse_and_convert(text, **kwargs)
            assert repr(cached) == repr(module._parse_and_convert.uncached(text, **kwargs))


@needs_data
@pytest.mark.slow
def test_walkthroughs_win_for_every_task_type(alf: AlfWorldEnv) -> None:
    for expected_type, task_id in ONE_PER_TYPE.items():
        assert alf.task_type(task_id) == expected_type
        obs = alf.reset(task_id)
        assert obs.instruction == alf.goal(task_id) and obs.instruction.endswith(".")
        assert obs.text.startswith("You are in the middle of a room.")
        assert "Your task" not in obs.text and "Welcome" not in obs.text
        plan = alf.walkthrough()
        for i, action in enumerate(plan):
            assert action in alf.valid_actions()
            assert not alf.evaluate().success
            result = alf.step(action)
            assert result.valid, (task_id, action, result.observation)
            assert result.done == (i == len(plan) - 1)
        assert alf.evaluate().success and alf.evaluate().score == 1.0
        assert alf.valid_actions() == []
        after = alf.step("look")
        assert not after.valid and "episode is over" in after.observation


@needs_data
@pytest.mark.slow
def test_invalid_actions_change_nothing(alf: AlfWorldEnv) -> None:
    first = alf.reset(BOOK)
    before, facts = alf.valid_actions(), alf._facts()
    for action in ("fly to the moon", "take book 2 from bed 1", "go to bed 9", ""):
        result = alf.step(action)
        assert not result.valid and not result.done and result.info["error"]
        assert result.observation.startswith("Nothing happens. Invalid action:")
        assert "e.g. 'go to bed 1'" in result.observation
        assert alf.valid_actions() == before and alf._facts() == facts
    # case, spacing, a final period and ReAct's "put X in/on Y" are understood
    assert alf.step("Go to  Bed 1.").valid
    assert alf.step("take book 2 from bed 1").valid
    assert alf.step("go to sidetable 1").valid
    result = alf.step("put book 2 in/on sidetable 1")
    assert result.valid and result.done and alf.evaluate().success
    # a rewind is a fresh start: same first observation and actions, not won
    assert alf.reset(BOOK) == first and alf.valid_actions() == before and alf._facts() == facts
    assert not alf.evaluate().success


@needs_data
@pytest.mark.slow
def test_rewound_reset_matches_textworlds_own_reset(alf: AlfWorldEnv) -> None:
    reference = AlfWorldEnv(DATA, fast_reset=False)
    try:
        for seed in range(2):
            assert alf.reset(BOOK) == reference.reset(BOOK)
            rng = random.Random(seed)
            for _ in range(12):
                actions = alf.valid_actions()
                assert actions == reference.valid_actions()
                action = rng.choice(actions)
                assert alf.step(action) == reference.step(action)
            assert alf._facts() == reference._facts()
            assert alf.evaluate() == reference.evaluate()
    finally:
        reference.close()


@needs_data
@pytest.mark.slow
def test_concurrent_episodes_in_threads_stay_correct(pool) -> None:
    """TextWorld's PDDL backend is not thread-safe; the environment serializes engine calls."""
    import sys
    import threading

    argv, stdout = list(sys.argv), sys.stdout
    games = [BOOK, ONE_PER_TYPE["look_at_obj_in_light"], ONE_PER_TYPE["pick_two_obj_and_place"]]
    failures: list[str] = []

    def play(task_id: str, fresh: bool) -> None:
        env = AlfWorldEnv(DATA, pool=None if fresh else pool)
        try:
            for _ in range(2):
                env.reset(task_id)
                for action in env.walkthrough():
                    if not env.step(action).valid:
                        failures.append(f"{task_id}: {action}")
                if not env.evaluate().success:
                    failures.append(f"{task_id}: not won")
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"{task_id}: {exc!r}")
        finally:
            env.close()

    threads = [
        threading.Thread(target=play, args=(game, fresh))
        for game in games
        for fresh in (False, True)  # pooled engines and fresh ones that load concurrently
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sys.argv == argv and sys.stdout is stdout  # fast-downward's translator restored


@needs_data
@pytest.mark.slow
def test_max_episode_steps_truncates(pool) -> None:
    env = AlfWorldEnv(DATA, max_episode_steps=2, pool=pool)
    try:
        env.reset(BOOK)
        assert not env.step("look").done
        result = env.step("nonsense")  # invalid actions count too
        assert result.done and result.info == {"truncated": True} and not result.valid
        assert not env.evaluate().success
    finally:
        env.close()
        env.close()  # idempotent


@needs_data
@pytest.mark.slow
def test_explore_accounts_for_every_episode(tmp_path) -> None:
    from armap_agents.graphs.explore import ExploreConfig, explore
    from armap_agents.policies import RandomPolicy

    config = ExploreConfig(
        split="dev", max_tasks=2, episodes_per_task=2, max_steps=5, max_concurrency=2
    )
    out = tmp_path / "trajectories.jsonl"
    result = explore(
        RandomPolicy(), functools.partial(AlfWorldEnv, data_dir=DATA), out, config, progress=False
    )
    assert (result.finished, result.failed) == (4, 0)
    rows = [Trajectory.model_validate_json(line) for line in out.read_text().splitlines()]
    dev = AlfWorldEnv(DATA).task_ids("dev")[:2]
    assert sorted(r.episode_id for r in rows) == sorted(f"{t}#{k}" for t in dev for k in (0, 1))
    for r in rows:
        assert r.intent and r.evaluation is not None and r.error is None
        assert len(r.steps) == 5 or r.done
        assert all(s.valid for s in r.steps)


@pytest.fixture(scope="module")
def reward_model(small_reward_model_config):
    from armap_agents.reward.model import RewardModel

    return RewardModel.create(small_reward_model_config)


@needs_data
@pytest.mark.slow
def test_reward_model_scores_alfworld_trajectories(alf: AlfWorldEnv, reward_model) -> None:
    obs, steps, done = replay(alf, BOOK, alf.walkthrough(BOOK))
    trajectory = Trajectory(
        task_id=BOOK,
        intent=obs.instruction,
        initial_observation=obs.text,
        steps=steps,
        done=done,
    )
    scores = reward_model.score(obs.instruction, [trajectory, trajectory.prefix(1)])
    assert len(scores) == 2 and all(isinstance(s, float) and math.isfinite(s) for s in scores)


@needs_data
@pytest.mark.slow
def test_an_mcts_episode_replays_prefixes_on_pooled_engines(reward_model) -> None:
    from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph
    from armap_agents.policies import RandomPolicy

    pool = AlfWorldEnginePool(max_idle=4)
    factory = functools.partial(AlfWorldEnv, data_dir=DATA, pool=pool)
    config = MCTSConfig(iterations=3, max_policy_calls=None, max_steps=4, expansion_k=2)
    try:
        graph = build_mcts_graph(RandomPolicy(), factory, reward_model, config)
        state = graph.invoke({"task_id": BOOK}, {"max_concurrency": 2})
    finally:
        pool.close()
    assert len(state["nodes"]) > 1 and state["iteration"] == 3
    best = state["best"]
    assert best.steps and best.evaluation is not None and all(s.valid for s in best.steps)
    assert best.actions[: len(state["path"]) - 1] == [
        state["nodes"][n]["action"] for n in state["path"][1:]
    ]
    assert pool.created <= 3  # engines were reused across the search's many environments


@needs_data
@pytest.mark.slow
def test_hindsight_relabels_are_verified_by_the_game(pool) -> None:
    from armap_agents.policies import RandomPolicy
    from armap_agents.rollout import run_episode

    # the game's goal is a book on a sidetable; the detour puts a cellphone on the dining table
    detour = [
        "go to bed 1",
        "take cellphone 2 from bed 1",
        "go to diningtable 1",
        "move cellphone 2 to diningtable 1",
    ]
    env = AlfWorldEnv(DATA, pool=pool)
    try:
        runs = {"win": env.walkthrough(BOOK), "detour": [*detour, "look"]}
        trajectories = []
        for name, actions in runs.items():
            obs, steps, done = replay(env, BOOK, actions)
            trajectories.append(
                Trajectory(
                    task_id=BOOK,
                    intent=obs.instruction,
                    initial_observation=obs.text,
                    steps=steps,
                    episode_id=name,
                    done=done,
                    evaluation=env.evaluate(),
                )
            )
        for seed in range(3):
            trajectories.append(
                run_episode(env, RandomPolicy(), BOOK, seed=seed, max_steps=4, episode_id=str(seed))
            )
    finally:
        env.close()
    tampered = trajectories[1].model_copy(deep=True)
    tampered.steps[0] = Step(action="go to bed 1", observation="You see a unicorn.")
    tampered.episode_id = "tampered"

    relabeler = AlfWorldRelabeler(functools.partial(AlfWorldEnv, data_dir=DATA, pool=pool))
    triplets = relabeler.relabel([*trajectories, tampered], seed=0)
    assert relabeler.skipped == 1  # the tampered one cannot be verified
    assert {t.source for t in triplets} == {"goal", "hindsight", "prefix"}
    cellphone = HindsightGoal("place", "cellphone", "diningtable")
    assert any(
        t.positive.episode_id == "detour"
        and t.positive.actions == detour  # cut where the goal first held
        and t.intent in {cellphone.intent(0), cellphone.intent(1)}
        for t in triplets
    )
    checker = AlfWorldEnv(DATA, pool=pool)
    try:
        for t in triplets:
            assert t.task_id == BOOK and t.positive.render() != t.negative.render()
            assert 0 < len(t.negative.steps) <= len(t.positive.steps)
            assert "tampered" not in (t.positive.episode_id, t.negative.episode_id)
            if t.source == "prefix":  # the same step count of a goal / hindsight pair
                assert len(t.positive.steps) == len(t.negative.steps)
                continue
            if t.source == "goal":
                assert t.intent == "put some book on sidetable."
                assert t.positive.actions == runs["win"]
                replay(checker, BOOK, t.negative.actions)
                assert not checker.evaluate().success
                continue
            # the intent names a goal that was false at the start and holds after the positive
            checker.reset(BOOK)
            start = satisfied_goals(checker._facts())
            replay(checker, BOOK, t.positive.actions)
            (goal,) = [
                g
                for g in satisfied_goals(checker._facts())
                if t.intent in (g.intent(0), g.intent(1))
            ]
            assert goal not in start and goal != HindsightGoal.of_task(BOOK)
            # ... and never holds along the negative
            checker.reset(BOOK)
            for action in t.negative.actions:
                checker.step(action)
                assert goal not in satisfied_goals(checker._facts())
    finally:
        checker.close()


# -- the expert (ExpertHook) --------------------------------------------------------------
def _facts(*names: str) -> frozenset:
    return frozenset((name, ()) for name in names)


def test_expert_memory_follows_its_plan_and_undoes_reversible_detours() -> None:
    walk = ("go to a 1", "take x 1 from a 1", "go to b 1", "move x 1 to b 1")
    start, at_a, holding, elsewhere = frozenset(), _facts("s1"), _facts("s2"), _facts("s3")
    searches: list[int] = []

    def search() -> tuple[str, ...]:
        searches.append(1)
        return ("searched",)

    anything = {"go to a 1", "take x 1 from a 1", "go to b 1", "move y 1 to a 1", "searched"}
    memory = _ExpertMemory(walk)
    assert memory.plan(start, anything, search) == walk  # the stored walkthrough: no search
    # a first "go to" elsewhere needs no undo (the plan's own "go to" sets the location) ...
    memory.moved("go to c 1", _facts("at c"))
    assert memory.plan(_facts("at c"), anything, search) == walk
    # ... and neither does one followed by an undoable step
    memory.moved("open c 1", _facts("at c", "c open"))
    assert memory.plan(_facts("at c", "c open"), anything | {"close c 1"}, search) == (
        "close c 1",
        *walk,
    )
    memory.restart()
    memory.moved("go to a 1", at_a)
    assert memory.plan(at_a, anything, search) == walk[1:]  # the rest of a followed plan
    memory.moved("examine x 1", at_a)  # changes nothing the plan needs
    assert memory.plan(at_a, anything, search) == walk[1:]
    # a detour elsewhere is walked back before the plan goes on
    memory.moved("go to c 1", elsewhere)
    assert memory.plan(elsewhere, anything, search) == ("go to a 1", *walk[1:])
    memory.moved("go to a 1", at_a)
    assert memory.plan(at_a, anything, search) == walk[1:]
    memory.moved("go to c 1", elsewhere)  # two places away: one "go to" back is enough
    memory.moved("go to d 1", _facts("at d"))
    assert memory.plan(_facts("at d"), anything, search) == ("go to a 1", *walk[1:])
    memory.moved("go to a 1", at_a)
    # a wrong object taken is put back
    memory.moved("take y 1 from a 1", _facts("s1", "holds y"))
    assert memory.plan(_facts("s1", "holds y"), anything, search)[:2] == (
        "move y 1 to a 1",
        "take x 1 from a 1",
    )
    memory.moved("move y 1 to a 1", at_a)
    memory.moved("take x 1 from a 1", holding)
    # a detour while the plan's next command is a "go to" needs no undo
    memory.moved("go to c 1", _facts("s2", "at c"))
    assert memory.plan(_facts("s2", "at c"), anything, search) == walk[2:]
    assert searches == []
    # an irreversible detour, or an undo that is not admissible, is searched again (once)
    memory.moved("heat x 1 with microwave 1", _facts("hot"))
    assert memory.plan(_facts("hot"), anything, search) == ("searched",)
    assert memory.plan(_facts("hot"), anything, search) == ("searched",)
    assert len(searches) == 1
    memory.restart()  # a new episode; a known plan whose first command is not admissible
    assert memory.plan(start, anything - {"go to a 1"}, search) == ("searched",)
    assert len(searches) == 2
    # searches are remembered across episodes; plans found by following are not
    memory.restart()
    memory.moved("heat x 1 with microwave 1", _facts("hot"))
    assert memory.plan(_facts("hot"), anything, search) == ("searched",)
    assert len(searches) == 2
    assert memory.plan(at_a, anything, search) == ("searched",)  # path restarts (defensive)
    assert len(searches) == 3
    # an undo that does not lead back is not undone in turn: the expert searches instead
    memory.restart()
    memory.moved("go to a 1", at_a)
    memory.moved("take y 1 from a 1", _facts("s1", "holds y"))
    memory.moved("move y 1 to a 1", _facts("s1", "y elsewhere"))
    assert memory.plan(_facts("s1", "y elsewhere"), anything, search) == ("searched",)
    assert len(searches) == 4


def _first_other(actions: list[str], prefix: str, *exclude: str) -> str | None:
    return next((a for a in actions if a.startswith(prefix) and a not in exclude), None)


def _detours(env: AlfWorldEnv, task_id: str) -> dict[str, list[str]]:
    """Prefixes ending in one non-expert step of each kind (``go to``, ``take``, ``open``,
    ``close``), each taken at the first state along the walkthrough where one is admissible."""
    walk = env.walkthrough(task_id)
    found: dict[str, list[str]] = {}
    for k in range(len(walk)):
        if len(found) == 4:
            break
        replay(env, task_id, walk[:k])
        for verb in ("go to ", "take ", "open ", "close "):
            wrong = _first_other(env.valid_actions(), verb, walk[k])
            if verb not in found and wrong is not None:
                found[verb] = [*walk[:k], wrong]
    return found


@needs_data
@pytest.mark.slow
def test_the_expert_wins_every_task_type_at_epsilon_zero(alf: AlfWorldEnv) -> None:
    for task_id in ONE_PER_TYPE.values():
        trajectory = run_episode(alf, ExpertPolicy(0.0), task_id, seed=0, max_steps=40)
        assert trajectory.evaluation is not None and trajectory.evaluation.success, task_id
        assert trajectory.actions == alf.walkthrough(task_id)  # no detour: the stored plan


@needs_data
@pytest.mark.slow
def test_the_expert_recovers_after_a_forced_non_expert_step(alf: AlfWorldEnv) -> None:
    cool = ONE_PER_TYPE["pick_cool_then_place_in_recep"]
    kinds = set()
    for task_id in (BOOK, cool):
        walk = alf.walkthrough(task_id)
        alf.reset(task_id)
        assert alf.expert_action() == walk[0]
        for verb, prefix in _detours(alf, task_id).items():
            kinds.add(verb)
            trajectory = run_episode(
                alf,
                ExpertPolicy(0.0),
                task_id,
                seed=0,
                max_steps=len(prefix) + len(walk) + 4,
                prefix=prefix,
            )
            assert trajectory.steps[len(prefix) - 1].valid
            assert trajectory.evaluation is not None and trajectory.evaluation.success, prefix
    assert kinds == {"go to ", "take ", "open ", "close "}
    # an irreversible detour (the apple heated before it is cooled) is planned for afresh
    walk = alf.walkthrough(cool)
    assert walk[2] == "take apple 1 from microwave 1"
    prefix = [*walk[:3], "heat apple 1 with microwave 1"]
    trajectory = run_episode(alf, ExpertPolicy(0.0), cool, seed=0, max_steps=14, prefix=prefix)
    assert all(step.valid for step in trajectory.steps)
    assert trajectory.evaluation is not None and trajectory.evaluation.success


@needs_data
@pytest.mark.slow
def test_expert_action_does_not_change_the_episode(pool) -> None:
    asked, plain = AlfWorldEnv(DATA, pool=pool), AlfWorldEnv(DATA, pool=pool)
    try:
        walk = asked.walkthrough(BOOK)
        asked.reset(BOOK)
        detour = _first_other(asked.valid_actions(), "go to ", walk[0])
        for env in (asked, plain):
            replay(env, BOOK, [detour])
        before = (asked._facts(), asked.valid_actions(), asked.evaluate())
        action = asked.expert_action()
        assert action in asked.valid_actions() and action == asked.expert_action()
        assert (asked._facts(), asked.valid_actions(), asked.evaluate()) == before
        while action is not None:
            result = asked.step(action)
            assert result == plain.step(action)  # as if the expert had never been asked
            assert asked._facts() == plain._facts()
            action = asked.expert_action()
        assert asked.evaluate().success and asked.expert_action() is None  # over: no action
    finally:
        asked.close()
        plain.close()
