"""LLMJudge: an LLM as the value function (LATS-style), with a scripted fake chat model."""

from __future__ import annotations

import re

import pytest

from armap_agents import LLMJudge
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import BudgetExceeded
from armap_agents.llm import UsageLimits, UsageTracker
from armap_agents.planners import build_planner
from armap_agents.policies import RandomPolicy
from armap_agents.reward.judge import judge_response_format, parse_rating
from armap_agents.rollout import run_episode
from armap_agents.testing import ScriptedChatModel
from armap_agents.types import Trajectory


def _trajectories(count: int) -> list[Trajectory]:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    return [run_episode(env, RandomPolicy(), "1", seed=i) for i in range(count)]


@pytest.mark.parametrize(
    ("reply", "rating"),
    [
        ('{"score": 7}', 7.0),
        ('```json\n{"score": 3}\n```', 3.0),
        ("Score: 9", 9.0),
        ("**Score:** 4", 4.0),
        ("I would give it a rating of 6.", 6.0),
        ("8/10 - almost there", 8.0),
        ("2 out of 10", 2.0),
        ("Probably 5", 5.0),
        ("Score: 10", 10.0),
        ("Score: 0", None),
        ("Score: 42", None),
        ("no idea", None),
        ("", None),
        ('{"score": "high"}', None),
    ],
)
def test_parse_rating(reply: str, rating: float | None) -> None:
    assert parse_rating(reply) == rating


def test_scores_are_ratings_over_ten_in_input_order() -> None:
    trajectories = _trajectories(4)

    def respond(messages) -> str:
        # rate by the number of steps, so each trajectory gets a predictable answer
        steps = str(messages[-1].content).count("Action:")
        return f"Score: {steps + 1}"

    judge = LLMJudge(ScriptedChatModel(responder=respond))
    scores = judge.score(trajectories[0].intent, trajectories)
    assert scores == [(len(t.steps) + 1) / 10 for t in trajectories]
    assert judge.judgements == 4 and judge.unparsed == 0


def test_an_unparsable_reply_scores_neutral_and_is_counted() -> None:
    model = ScriptedChatModel(replies=["Score: 9", "I cannot rate this."])
    judge = LLMJudge(model, neutral=0.5, max_concurrency=1)
    trajectories = _trajectories(2)
    assert judge.score(trajectories[0].intent, trajectories) == [0.9, 0.5]
    assert judge.unparsed == 1 and judge.judgements == 2


def test_the_prompt_shows_the_task_and_the_trajectory_and_kwargs_reach_the_model() -> None:
    model = ScriptedChatModel(replies=['{"score": 6}'])
    judge = LLMJudge(model, max_tokens=8, structured="json_object")
    (trajectory,) = _trajectories(1)
    assert judge.score(trajectory.intent, [trajectory]) == [0.6]
    (messages, kwargs) = model.calls[0]
    text = "\n".join(str(m.content) for m in messages)
    assert trajectory.intent in text and trajectory.steps[0].action in text
    assert kwargs["max_tokens"] == 8 and kwargs["temperature"] == 0.0
    assert kwargs["response_format"] == judge_response_format("json_object")


def test_a_custom_prompt_is_used() -> None:
    model = ScriptedChatModel(replies=["Score: 2"])
    judge = LLMJudge(model, prompt=lambda intent, text: [_human(f"RATE {intent}")])
    assert judge.score_texts(["make 24"], ["Observation: 1 2 3 4"]) == [0.2]
    assert str(model.calls[0][0][0].content) == "RATE make 24"


def _human(text: str):
    from langchain_core.messages import HumanMessage

    return HumanMessage(text)


def test_structured_formats() -> None:
    openai = judge_response_format("json_schema")
    assert openai["json_schema"]["strict"] is True
    enum = openai["json_schema"]["schema"]["properties"]["score"]["enum"]
    assert enum == list(range(1, 11))
    assert judge_response_format("json_object")["type"] == "json_object"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        LLMJudge(ScriptedChatModel(replies=["1"]), max_tokens=0)
    with pytest.raises(ValueError, match="same length"):
        LLMJudge(ScriptedChatModel(replies=["1"])).score_texts(["a"], [])


def test_mcts_with_the_judge_as_value_and_usage_seen_by_the_graph_tracker() -> None:
    def respond(messages) -> str:
        # prefer trajectories that end with the single number 24
        final = str(messages[-1].content).rsplit("Numbers left:", 1)[-1]
        return "Score: 10" if re.fullmatch(r"\s*24\s+Your rating\?", final) else "Score: 2"

    judge = LLMJudge(ScriptedChatModel(responder=respond))
    graph = build_planner(
        "mcts",
        RandomPolicy(),
        lambda: Game24Env(puzzles=[(4, 4, 6, 8)]),
        judge,
        {"iterations": 3, "expansion_k": 2, "max_policy_calls": None},
    )
    tracker = UsageTracker()
    state = graph.invoke({"task_id": "1"}, {"callbacks": [tracker]})
    assert state["reward_model_calls"] == judge.judgements > 0
    assert tracker.usage.calls == judge.judgements  # the random policy calls no LLM
    assert state["best"].info["score"] in {0.2, 1.0}


def test_best_of_n_with_the_judge_and_a_spent_budget_raises() -> None:
    judge = LLMJudge(ScriptedChatModel(replies=["Score: 5"]))
    graph = build_planner("best_of_n", RandomPolicy(), Game24Env, judge, {"n": 3})
    state = graph.invoke({"task_id": "1"})
    assert state["scores"] == [0.5, 0.5, 0.5]
    tracker = UsageTracker(UsageLimits(max_calls=1))
    with pytest.raises(BudgetExceeded):
        graph.invoke({"task_id": "1"}, {"callbacks": [tracker]})


def test_auto_structured_picks_by_model(monkeypatch) -> None:
    from langchain_openai import ChatOpenAI

    from armap_agents.local_llm import ChatLlamaCpp
    from armap_agents.reward.judge import auto_structured

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert auto_structured(ChatLlamaCpp(model_path="unused.gguf")) == "json_object"
    assert auto_structured(ChatOpenAI(model="gpt-4o-mini", api_key="unused")) == "json_schema"
    local = ChatOpenAI(model="m", api_key="unused", base_url="http://127.0.0.1:1/v1")
    assert auto_structured(local) is None
    # a server named the usual way, by $OPENAI_BASE_URL, is not OpenAI either
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert auto_structured(ChatOpenAI(model="m", api_key="unused")) is None
    assert LLMJudge(ScriptedChatModel(replies=["1"])).structured is None
