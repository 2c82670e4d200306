from fractions import Fraction

import pytest

from armap_agents.environments.game24 import (
    Game24Env,
    Game24Relabeler,
    game24_intent,
    load_puzzles,
    reachable_values,
)
from armap_agents.policies import ExpertPolicy, RandomPolicy
from armap_agents.rollout import run_episode


def test_puzzles_and_splits(env: Game24Env) -> None:
    puzzles = load_puzzles()
    assert len(puzzles) == 1362
    assert all(len(p) == 4 for p in puzzles)
    test, train = env.task_ids("test"), env.task_ids("train")
    assert test == [str(r) for r in range(901, 1001)]
    assert len(train) == 1262 and not set(train) & set(test)
    with pytest.raises(ValueError, match="unknown split"):
        env.task_ids("dev")


def test_reset_shows_numbers_and_intent(env: Game24Env) -> None:
    obs = env.reset("1")
    numbers = env.puzzle("1")
    assert obs.text == "Numbers left: " + " ".join(str(n) for n in sorted(numbers))
    assert "obtain 24" in obs.instruction
    with pytest.raises(KeyError, match="unknown Game of 24 task"):
        env.reset("0")


def test_exact_arithmetic_and_success() -> None:
    env = Game24Env(puzzles=[(1, 3, 4, 6)])
    env.reset("1")
    r = env.step("1 / 4 = 1/4")
    assert r.valid and r.observation == "Numbers left: 1/4 3 6"
    r = env.step("3 - 1/4 = 11/4")
    assert r.valid and "11/4" in r.observation
    r = env.step("6 / 11/4 = 24/11")
    assert r.valid and r.done
    assert env.evaluate().success is False  # 24/11 is not 24

    env.reset("1")
    for action in ("1 / 4 = 1/4", "3 / 1/4 = 12", "12 * 6"):  # "= result" may be omitted
        assert env.step(action).valid
    assert env.numbers == [Fraction(72)]
    assert env.evaluate().success is False

    env.reset("1")
    assert env.step("6 / 4 = 3/2").valid
    assert env.step("3 / 3/2 = 2").valid  # fractions are exact numbers like any other
    assert env.numbers == [Fraction(1), Fraction(2)]


def test_a_known_solution_succeeds() -> None:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    env.reset("1")
    for action in ("4 + 8 = 12", "6 - 4 = 2", "12 * 2 = 24"):
        result = env.step(action)
        assert result.valid, result.observation
    assert result.done
    assert env.evaluate().success and env.evaluate().score == 1.0


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("hello", "could not parse"),
        ("4 + 9 = 13", "9 is not among the numbers left"),
        ("4 + 8 = 13", "is 12, not 13"),
        ("8 / 0 = 0", "0 is not among"),
        ("", "could not parse"),
        ("4 ^ 8 = 12", "could not parse"),
    ],
)
def test_invalid_actions_say_why_and_change_nothing(action: str, reason: str) -> None:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    env.reset("1")
    result = env.step(action)
    assert not result.valid and not result.done
    assert reason in result.observation
    assert result.observation.endswith("Numbers left: 4 4 6 8")
    assert env.numbers == [4, 4, 6, 8]


def test_number_used_twice_is_invalid() -> None:
    env = Game24Env(puzzles=[(1, 2, 3, 4)])
    env.reset("1")
    assert not env.step("2 + 2 = 4").valid
    env = Game24Env(puzzles=[(2, 2, 3, 4)])
    env.reset("1")
    assert env.step("2 + 2 = 4").valid


def test_division_by_zero_is_invalid() -> None:
    env = Game24Env(puzzles=[(3, 3, 4, 5)])
    env.reset("1")
    assert env.step("3 - 3 = 0").valid
    result = env.step("4 / 0")
    assert not result.valid and "division by zero" in result.observation


def test_step_after_the_end_is_invalid() -> None:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    env.reset("1")
    for action in ("4 + 8 = 12", "6 - 4 = 2", "12 * 2 = 24"):
        env.step(action)
    result = env.step("24 + 0 = 24")
    assert not result.valid and "game is over" in result.observation


def test_valid_actions_enumerate_every_legal_combination() -> None:
    env = Game24Env(puzzles=[(1, 2, 3, 4)])
    env.reset("1")
    actions = env.valid_actions()
    # 6 pairs x (+, *, a-b, b-a, a/b, b/a), no zeros so no division is dropped, no duplicates
    assert len(actions) == 36 and len(set(actions)) == 36
    for action in actions:
        clone = env.clone()
        assert clone.step(action).valid, action
    # equal numbers: a-b and b-a coincide, a/b and b/a coincide
    env = Game24Env(puzzles=[(5, 5, 5, 5)])
    env.reset("1")
    assert len(env.valid_actions()) == 4  # 5+5, 5*5, 5-5, 5/5
    # a zero drops the divisions by zero
    env = Game24Env(puzzles=[(3, 3, 4, 5)])
    env.reset("1")
    env.step("3 - 3 = 0")
    assert not any("/ 0 " in a for a in env.valid_actions())


def test_every_puzzle_in_the_test_split_is_solvable(env: Game24Env) -> None:
    for task_id in env.task_ids("test")[:20]:
        numbers = [Fraction(x) for x in env.puzzle(task_id)]
        assert Fraction(24) in reachable_values(numbers)


def test_clone_is_independent(env: Game24Env) -> None:
    env.reset("901")
    copy = env.clone()
    copy.step(copy.valid_actions()[0])
    assert len(env.numbers) == 4 and len(copy.numbers) == 3


def test_relabeler_labels_are_verified_by_the_game(env: Game24Env) -> None:
    trajectories = [
        run_episode(env, RandomPolicy(), "5", seed=s, episode_id=f"5#{s}") for s in range(8)
    ]
    triplets = Game24Relabeler().relabel(trajectories, seed=0)
    assert {t.source for t in triplets} >= {"other-outcome", "prefix"}
    numbers = [Fraction(x) for x in env.puzzle("5")]
    for t in triplets:
        target = Fraction(t.intent.split("to obtain ")[1].split(".")[0])
        assert t.intent == game24_intent(env.puzzle("5"), target)
        if t.source == "other-outcome":
            assert (
                t.positive.final_observation
                == f"Numbers left: {t.intent.split('obtain ')[1].split('.')[0]}"
            )
            assert t.negative.final_observation != t.positive.final_observation
        if t.source == "prefix":
            k = len(t.positive.steps)
            assert len(t.negative.steps) == k
            replay = env.clone()
            replay.reset("5")
            for step in t.negative.steps:
                replay.step(step.action)
            assert target not in reachable_values(replay.numbers)
        assert numbers  # the puzzle is the same for every triplet


# -- the expert (ExpertPolicy's hook) ----------------------------------------------------------
def test_the_expert_solves_test_puzzles_at_epsilon_zero(env: Game24Env) -> None:
    for task_id in env.task_ids("test")[:10]:
        t = run_episode(env, ExpertPolicy(0.0), task_id, seed=0, max_steps=3)
        assert t.error is None and t.evaluation is not None
        assert t.evaluation.success, (task_id, [s.action for s in t.steps])
        assert all(step.valid for step in t.steps)


def test_the_expert_recovers_after_a_detour_that_keeps_24_reachable(env: Game24Env) -> None:
    recovered = 0
    for task_id in env.task_ids("test")[:10]:
        env.reset(task_id)
        expert = env.expert_action()
        detours = []
        for action in env.valid_actions():
            trial = env.clone()
            trial.step(action)
            if action != expert and Fraction(24) in reachable_values(trial.numbers):
                detours.append(action)
        if not detours:
            continue
        t = run_episode(env, ExpertPolicy(0.0), task_id, seed=0, max_steps=3, prefix=[detours[-1]])
        assert t.steps[0].action == detours[-1] != expert
        assert t.evaluation is not None and t.evaluation.success
        recovered += 1
    assert recovered >= 5


def test_the_expert_has_no_action_once_24_is_out_of_reach() -> None:
    env = Game24Env([(1, 1, 1, 1), (4, 4, 6, 8)])
    env.reset("1")  # 1 1 1 1 cannot make 24
    assert env.expert_action() is None
    env.reset("2")
    env.step("4 - 4 = 0")
    env.step("0 * 6 = 0")  # 0 and 8 left
    assert env.expert_action() is None
    env.step("0 + 8 = 8")
    assert env.expert_action() is None  # the game is over


def test_the_expert_changes_nothing_and_is_a_valid_action(env: Game24Env) -> None:
    env.reset("901")
    for _ in range(3):
        before = (env.numbers, env.valid_actions(), env.evaluate())
        action = env.expert_action()
        assert action is not None and action in env.valid_actions()
        assert (env.numbers, env.valid_actions(), env.evaluate()) == before
        assert env.step(action).valid
    assert env.evaluate().success


def test_an_expert_policy_episode_is_deterministic_for_a_seed(env: Game24Env) -> None:
    def actions(seed: int) -> list[list[str]]:
        policy = ExpertPolicy(0.5)
        return [
            [s.action for s in run_episode(env, policy, tid, seed=seed, max_steps=10).steps]
            for tid in env.task_ids("test")[:10]
        ]

    assert actions(3) == actions(3)
    assert actions(3) != actions(4)
