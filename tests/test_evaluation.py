"""The evaluation table: usage per method, and a run budget that stops cleanly and resumes."""

from __future__ import annotations

import re

import pytest

from armap_agents._jsonl import read_jsonl
from armap_agents.environments.game24 import Game24Env
from armap_agents.evaluation import TaskOutcome, evaluate_planners
from armap_agents.graphs.best_of_n import BestOfNConfig
from armap_agents.llm import RetryPolicy, UsageLimits
from armap_agents.policies import LLMPolicy
from armap_agents.reward.model import RewardModel
from armap_agents.testing import ScriptedChatModel

NO_WAIT = RetryPolicy(max_attempts=2, initial_wait=0.0, max_wait=0.0, jitter=0.0)


def last_valid_action(messages) -> str:
    """A fake LLM that answers with the last listed valid action."""
    listed = re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)
    return f"Action: {listed[-1]}"


@pytest.fixture(scope="module")
def reward_model(small_reward_model_config) -> RewardModel:
    return RewardModel.create(small_reward_model_config)


def _evaluate(reward_model, tmp_path, limits=None):
    policy = LLMPolicy(ScriptedChatModel(responder=last_valid_action), retry=NO_WAIT)
    return evaluate_planners(
        policy,
        Game24Env,
        reward_model,
        {"best_of_n": BestOfNConfig(n=2, max_steps=3)},
        task_ids=["1", "2", "3"],
        outcomes_path=tmp_path / "outcomes.jsonl",
        limits=limits,
        progress=False,
    )


def test_every_row_shows_llm_usage(reward_model, tmp_path) -> None:
    report = _evaluate(reward_model, tmp_path)
    bon = report.row("ARMAP-B (N=2)")
    # the fake always answers a valid action: one request per policy call
    assert bon.usage.calls == bon.policy_calls == 3 * 2 * 3
    assert report.row("Greedy").usage.calls == 3 * 3
    assert report.row("Sampling").usage.calls == bon.usage.calls // 2
    assert bon.usage.prompt_tokens > 0 and bon.usage.completion_tokens > 0
    table = report.to_markdown()
    assert "LLM requests" in table and report.stopped is None


def test_a_run_budget_stops_between_tasks_and_a_rerun_resumes(reward_model, tmp_path) -> None:
    # 9 requests per task (Best-of-2 x 3 steps + greedy 3 steps): the 2nd task hits 12
    report = _evaluate(reward_model, tmp_path, UsageLimits(max_calls=12))
    assert report.tasks == 1 and report.stopped and "12 LLM calls" in report.stopped
    assert "Stopped early" in report.to_markdown()
    assert [o.task_id for o in read_jsonl(tmp_path / "outcomes.jsonl", TaskOutcome)] == ["1"]
    again = _evaluate(reward_model, tmp_path, UsageLimits(max_calls=100))
    assert again.tasks == 3 and again.stopped is None
    assert len(read_jsonl(tmp_path / "outcomes.jsonl", TaskOutcome)) == 3


def test_a_planner_added_to_a_finished_run_runs_alone(reward_model, tmp_path) -> None:
    requests = []

    def counting(messages) -> str:
        requests.append(1)
        return last_valid_action(messages)

    def evaluate(planners: dict) -> object:
        policy = LLMPolicy(ScriptedChatModel(responder=counting), retry=NO_WAIT)
        return evaluate_planners(
            policy,
            Game24Env,
            reward_model,
            {"best_of_n": BestOfNConfig(n=2, max_steps=3), **planners},
            task_ids=["1", "2"],
            outcomes_path=tmp_path / "outcomes.jsonl",
            progress=False,
        )

    first = evaluate({"reflexion": None})
    before = {o.task_id: o for o in read_jsonl(tmp_path / "outcomes.jsonl", TaskOutcome)}
    requests.clear()
    both = evaluate({"reflexion": None, "mcts": None})
    mcts = both.row("ARMAP-M")
    assert len(requests) == mcts.usage.calls > 0  # no other method ran again
    for row in ("Greedy", "ARMAP-B (N=2)", "ARMAP-R", "Sampling"):
        assert both.row(row) == first.row(row)
    after = {o.task_id: o for o in read_jsonl(tmp_path / "outcomes.jsonl", TaskOutcome)}
    for task, outcome in after.items():  # the last record of a task has every row
        assert set(outcome.methods) == {*before[task].methods, "ARMAP-M"}
        assert outcome.candidates == before[task].candidates
    requests.clear()
    evaluate({"reflexion": None, "mcts": None})
    assert not requests  # everything recorded: nothing runs
