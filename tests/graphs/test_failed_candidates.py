"""Failed episodes never win: ``error`` and ``policy_calls`` are typed fields (older files still
read), no planner scores or picks a failed candidate, every score is against the task's intent,
a task with no usable candidate is a clear error, and a spent budget stops the run."""

from __future__ import annotations

import re
from fractions import Fraction
from itertools import count
from pathlib import Path
from threading import Lock

import pytest

from armap_agents._jsonl import read_jsonl
from armap_agents.cli import main
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import AllCandidatesFailed, ArmapError, BudgetExceeded
from armap_agents.evaluation import evaluate_planners
from armap_agents.llm import RetryPolicy, UsageLimits, UsageTracker
from armap_agents.planners import build_planner
from armap_agents.policies import LLMPolicy, RandomPolicy
from armap_agents.rollout import run_episode
from armap_agents.testing import ConstantReward, FunctionReward, ScriptedChatModel
from armap_agents.types import Trajectory

OLD_FILE = Path(__file__).resolve().parents[1] / "support" / "data" / "trajectories_v0.jsonl"
"""Written by ``armap explore`` (and ``run_episode`` on a breaking simulator, the last line)
before ``error`` and ``policy_calls`` were fields: both are in ``info`` there."""

TASK = "1"  # 1 1 4 6: moves making odd and even numbers alike
INTENT = Game24Env().reset(TASK).instruction
NO_WAIT = RetryPolicy(max_attempts=1, initial_wait=0.0, max_wait=0.0, jitter=0.0)


class Breaking(Game24Env):
    """Game of 24 whose simulator raises in ``breaks_in`` (``"step"`` or ``"evaluate"``) once a
    move has made an odd number, and in ``reset`` when ``reset_fails``."""

    def __init__(self, breaks_in: str = "step", reset_fails: bool = False) -> None:
        super().__init__()
        self.breaks_in, self.reset_fails = breaks_in, reset_fails

    def reset(self, task_id):
        if self.reset_fails:
            raise ConnectionError("simulator did not start")
        return super().reset(task_id)

    def _odd(self) -> bool:
        last = self._numbers[-1] if len(self._numbers) < 4 else Fraction(2)
        return last.denominator == 1 and last.numerator % 2 == 1

    def step(self, action):
        result = super().step(action)
        if self.breaks_in == "step" and self._odd():
            raise RuntimeError("simulator lost its state")
        return result

    def evaluate(self):
        if self.breaks_in == "evaluate" and self._odd():
            raise RuntimeError("simulator lost its state")
        return super().evaluate()


def failed_scores_highest(seen: list[tuple[str, Trajectory]]) -> FunctionReward:
    """A scorer that would pick every failed candidate, had it been asked about one; it
    records what it was asked."""

    def fn(intent: str, trajectory: Trajectory) -> float:
        seen.append((intent, trajectory))
        return 100.0 if trajectory.failed else -float(len(trajectory.steps))

    return FunctionReward(fn)


def first_valid_action(messages) -> str:
    listed = re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)
    return f"Action: {listed[0]}"


# -- the fields, and files written before them --------------------------------------------
def test_a_file_written_before_the_fields_reads_into_them() -> None:
    old = read_jsonl(OLD_FILE, Trajectory)
    assert [t.policy_calls for t in old] == [3, 3, 2]
    assert [t.error for t in old] == [None, None, "RuntimeError: simulator lost its state"]
    assert [t.failed for t in old] == [False, False, True]
    for t in old:  # moved, not copied; the rest of info stays
        assert "error" not in t.info and "policy_calls" not in t.info and "seed" in t.info
        assert Trajectory.model_validate_json(t.model_dump_json()) == t


def test_a_field_given_beside_an_old_info_entry_wins() -> None:
    t = Trajectory.model_validate(
        {
            "task_id": "1",
            "intent": "x",
            "initial_observation": "o",
            "error": "new",
            "info": {"error": "old", "policy_calls": 4, "env": {"price": 3}},
        }
    )
    assert (t.error, t.policy_calls, t.info) == ("new", 4, {"env": {"price": 3}})


# -- one episode --------------------------------------------------------------------------
def test_an_episode_that_breaks_records_why_in_its_error_field() -> None:
    broken = run_episode(Breaking(), RandomPolicy(), TASK, seed=0, max_steps=3)
    assert broken.failed and broken.error == "RuntimeError: simulator lost its state"
    assert broken.intent == INTENT and broken.evaluation is None and broken.policy_calls >= 1
    unstarted = run_episode(Breaking(reset_fails=True), RandomPolicy(), TASK, seed=0)
    assert unstarted.error == "ConnectionError: simulator did not start"
    assert unstarted.intent == "" and unstarted.policy_calls == 0


def test_a_spent_budget_is_raised_by_the_episode_not_recorded() -> None:
    tracker = UsageTracker(UsageLimits(max_calls=1))
    model = ScriptedChatModel(responder=first_valid_action, callbacks=[tracker])
    with pytest.raises(BudgetExceeded, match="1 LLM calls"):
        run_episode(Game24Env(), LLMPolicy(model, retry=NO_WAIT), TASK, seed=0, max_steps=3)
    assert len(model.calls) == 1


# -- Best-of-N ----------------------------------------------------------------------------
@pytest.mark.parametrize("selection", ["reward", "oracle", "random"])
def test_best_of_n_never_scores_nor_picks_a_failed_candidate(selection) -> None:
    seen: list[tuple[str, Trajectory]] = []
    graph = build_planner(
        "best_of_n",
        RandomPolicy(),
        Breaking,
        failed_scores_highest(seen),
        {"n": 8, "max_steps": 3, "selection": selection},
    )
    state = graph.invoke({"task_id": TASK})
    candidates, scores = state["candidates"], state["scores"]
    failed = [c.failed for c in candidates]
    assert 0 < sum(failed) < len(candidates)  # the case under test: some broke, some did not
    assert not state["best"].failed and not failed[state["best_index"]]
    assert [s is None for s in scores] == failed  # kept, with their error, but not scored
    assert all(c.error == "RuntimeError: simulator lost its state" for c in candidates if c.failed)
    assert {intent for intent, _ in seen} == {INTENT} and not any(t.failed for _, t in seen)
    assert len(seen) == state["reward_model_calls"] == failed.count(False)
    assert state["policy_calls"] == sum(c.policy_calls for c in candidates)  # failed ones too


def test_candidates_that_failed_at_reset_do_not_blank_the_intent() -> None:
    made = count()
    lock = Lock()

    def every_other_fails_at_reset() -> Breaking:
        with lock:
            return Breaking(breaks_in="never", reset_fails=next(made) % 2 == 0)

    seen: list[tuple[str, Trajectory]] = []
    graph = build_planner(
        "best_of_n",
        RandomPolicy(),
        every_other_fails_at_reset,
        failed_scores_highest(seen),
        {"n": 6, "max_steps": 3},
    )
    state = graph.invoke({"task_id": TASK}, {"max_concurrency": 1})
    # one rollout at a time makes the envs in candidate order: candidate 0 never started
    assert state["candidates"][0].intent == "" and state["candidates"][0].failed
    unstarted = [c for c in state["candidates"] if c.intent == ""]
    assert len(unstarted) == 3 and all(c.failed for c in unstarted)
    assert {intent for intent, _ in seen} == {INTENT} and len(seen) == 3


def test_best_of_n_with_every_candidate_failed_raises_a_clear_error() -> None:
    never_starts = lambda: Breaking(reset_fails=True)  # noqa: E731
    graph = build_planner("best_of_n", RandomPolicy(), never_starts, ConstantReward(), {"n": 3})
    with pytest.raises(AllCandidatesFailed, match="all 3 candidate episodes of task 1") as caught:
        graph.invoke({"task_id": TASK})
    assert caught.value.errors == ["ConnectionError: simulator did not start"] * 3
    assert isinstance(caught.value, ArmapError)


def test_a_spent_budget_stops_best_of_n() -> None:
    model = ScriptedChatModel(responder=first_valid_action)
    graph = build_planner(
        "best_of_n", LLMPolicy(model, retry=NO_WAIT), Game24Env, ConstantReward(), {"n": 3}
    )
    tracker = UsageTracker(UsageLimits(max_calls=4))
    with pytest.raises(BudgetExceeded, match="usage budget spent"):
        graph.invoke({"task_id": TASK}, {"callbacks": [tracker], "max_concurrency": 1})
    assert tracker.usage.calls == 4


# -- Reflexion and MCTS -------------------------------------------------------------------
def test_reflexion_retries_after_a_failed_attempt_and_never_returns_one() -> None:
    seen: list[tuple[str, Trajectory]] = []
    reflector = ScriptedChatModel(replies=["Combine the larger numbers first."])
    graph = build_planner(
        "reflexion",
        RandomPolicy(),
        Breaking,
        failed_scores_highest(seen),
        {"max_trials": 6, "max_steps": 3, "threshold": 1000.0},  # never satisfied
        reflector=reflector,
    )
    state = graph.invoke({"task_id": TASK})
    failed = [a.failed for a in state["attempts"]]
    assert len(failed) == 6 and 0 < sum(failed) < 6
    assert [s is None for s in state["scores"]] == failed
    assert not state["best"].failed and not any(t.failed for _, t in seen)
    assert state["reward_model_calls"] == len(seen) == failed.count(False)
    # a crash teaches nothing: reflections only on the scored attempts before the last trial
    assert state["reflection_calls"] == len(reflector.calls) == failed[:-1].count(False)


def test_reflexion_with_every_attempt_failed_raises_a_clear_error() -> None:
    never_starts = lambda: Breaking(reset_fails=True)  # noqa: E731
    graph = build_planner(
        "reflexion", RandomPolicy(), never_starts, ConstantReward(), {"max_trials": 2}
    )
    with pytest.raises(AllCandidatesFailed, match="all 2 candidate episodes of task 1"):
        graph.invoke({"task_id": TASK})


def test_mcts_cuts_failed_evaluations_from_the_tree_and_never_chooses_them() -> None:
    seen: list[tuple[str, Trajectory]] = []
    graph = build_planner(
        "mcts",
        RandomPolicy(),
        lambda: Breaking(breaks_in="evaluate"),
        failed_scores_highest(seen),
        {"iterations": 8, "expansion_k": 3, "max_policy_calls": None, "evaluation": "partial"},
    )
    state = graph.invoke({"task_id": TASK})
    nodes = state["nodes"]
    cut = [k for k, node in nodes.items() if "error" in node]
    assert cut and all(nodes[k]["parent"] is not None for k in cut)
    assert not any(k in node["children"] for node in nodes.values() for k in cut)
    assert state["best_node"] not in cut and not set(state["path"]) & set(cut)
    assert not state["best"].failed
    assert {intent for intent, _ in seen} == {INTENT} and not any(t.failed for _, t in seen)
    assert state["reward_model_calls"] == len(seen)


def test_mcts_with_every_evaluation_failed_raises_a_clear_error() -> None:
    class NeverJudged(Game24Env):
        def evaluate(self):
            raise RuntimeError("judge crashed")

    graph = build_planner(
        "mcts", RandomPolicy(), NeverJudged, ConstantReward(), {"iterations": 2, "max_steps": 3}
    )
    with pytest.raises(AllCandidatesFailed, match="every evaluation .* failed") as caught:
        graph.invoke({"task_id": TASK})
    assert caught.value.errors and set(caught.value.errors) == {"RuntimeError: judge crashed"}


# -- runs ---------------------------------------------------------------------------------
def test_the_evaluation_counts_a_task_with_no_usable_candidate_as_a_failure(tmp_path) -> None:
    def breaks_on_task_2() -> Game24Env:
        env = Game24Env()
        reset = env.reset

        def flaky_reset(task_id):
            if task_id == "2":
                raise ConnectionError("simulator did not start")
            return reset(task_id)

        env.reset = flaky_reset
        return env

    report = evaluate_planners(
        RandomPolicy(),
        breaks_on_task_2,
        ConstantReward(),
        {"best_of_n": {"n": 2, "max_steps": 3}},
        task_ids=["1", "2"],
        outcomes_path=tmp_path / "outcomes.jsonl",
        progress=False,
    )
    assert report.tasks == 2 and "Failed" in report.notes
    from armap_agents.evaluation import TaskOutcome

    first, second = read_jsonl(tmp_path / "outcomes.jsonl", TaskOutcome)
    assert not any(m.error for m in first.methods.values())
    assert all(
        not m.success and "simulator did not start" in m.error for m in second.methods.values()
    )
    assert second.candidates == [False, False] and second.scores == [None, None]


def test_a_spent_budget_stops_explore_on_the_command_line_in_one_line(
    tmp_path, capsys, monkeypatch
) -> None:
    from armap_agents import _builders

    monkeypatch.setattr(
        _builders,
        "chat_model",
        lambda spec, usage=None: ScriptedChatModel(
            responder=first_valid_action, callbacks=[usage] if usage else None
        ),
    )
    out = tmp_path / "t.jsonl"
    argv = ["explore", "--policy", "fake:model", "--max-tasks", "3", "--episodes-per-task", "1"]
    code = main([*argv, "--concurrency", "1", "--max-llm-calls", "4", "--out", str(out)])
    captured = capsys.readouterr()
    err = captured.err  # after the progress bar: one line, no traceback
    errors = [line for line in err.splitlines() if line.startswith("armap ")]
    assert code == 2 and "Traceback" not in err
    assert errors == [
        "armap explore: error: usage budget spent: 4 LLM calls (limit 4); rerun with a larger "
        "budget to resume where it stopped"
    ]
    assert "LLM usage: 4 requests" in captured.out  # the usage line is still printed
    assert len(read_jsonl(out, Trajectory)) == 1  # the finished game is saved
