"""The reward-guided model call (``RewardGuidedModel``, ``reward_guided_node``): K candidates of a
(tool-calling) chat model, one batched critic call per step, the best message returned; inside a
StateGraph with a ToolNode, and as the model of a prebuilt ReAct agent. Fakes only."""

from __future__ import annotations

import asyncio
import itertools
import json
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from armap_agents import (
    RewardGuidedModel,
    ToolEnvironment,
    conversation_trajectory,
    reward_guided_node,
)
from armap_agents._seeding import stable_seed
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.guided_model import GUIDANCE_KEY
from armap_agents.llm import RetryPolicy, UsageLimits, UsageTracker
from armap_agents.testing import ConstantReward, FunctionReward, ScriptedChatModel, toy_tools
from armap_agents.types import Trajectory

NO_RETRY = RetryPolicy(max_attempts=1)


def call(name: str, **args: Any) -> AIMessage:
    """A scripted reply that calls one tool."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": None}])


def last_action(trajectory: Trajectory) -> str:
    return trajectory.steps[-1].action


def prefers(action: str) -> FunctionReward:
    """A fake critic: 1 for a trajectory whose last action is ``action``, else 0."""
    return FunctionReward(lambda intent, t: float(last_action(t) == action))


def test_one_request_for_k_one_critic_call_the_best_message() -> None:
    chat = ScriptedChatModel(
        replies=[call("add", a=1), call("add", a=2, b=3), call("echo", text="x"), "5"],
        honour_n=True,
    )
    critic = prefers('add[{"a": 2, "b": 3}]')
    guided = RewardGuidedModel(chat, critic, k=4).bind_tools(toy_tools())
    best = guided.invoke([HumanMessage("Add 2 and 3.")])
    assert best.tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert len(chat.calls) == 1 and chat.calls[0][1]["n"] == 4  # one request, n=4
    assert [t["function"]["name"] for t in chat.calls[0][1]["tools"]] == ["echo", "add", "pick"]
    assert critic.calls == 1 and guided.server_honours_n is True
    record = best.response_metadata[GUIDANCE_KEY]
    assert record["actions"] == [
        'add[{"a": 1}]',
        'add[{"a": 2, "b": 3}]',
        'echo[{"text": "x"}]',
        "finish[5]",
    ]
    assert record["scores"] == [0.0, 1.0, 0.0, 0.0] and record["chosen"] == 1


def test_what_the_critic_reads_is_a_tool_environment_trajectory() -> None:
    """History steps in ToolEnvironment's action syntax with the tools' answers; the candidate
    a final step with an empty observation; the intent the first human message."""
    seen: list[Trajectory] = []

    def score(intent: str, t: Trajectory) -> float:
        seen.append(t)
        return float("finish" in last_action(t))

    chat = ScriptedChatModel(replies=["5", call("add", a=9)], honour_n=True)
    guided = RewardGuidedModel(chat, FunctionReward(score), k=2).bind_tools(toy_tools())
    history: list[BaseMessage] = [
        HumanMessage("Add 2 and 3."),
        AIMessage("thinking", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage("5", tool_call_id="c1"),
    ]
    assert guided.invoke(history).content == "5"
    texts = [t.render() for t in seen]
    assert texts[0] == (
        "Observation: Tools: echo, add, pick. finish[answer] ends the episode.\n"
        'Action: add[{"a": 2, "b": 3}]\nObservation: 5\n'
        "Action: finish[5]\nObservation: "
    )
    assert texts[1].endswith('Action: add[{"a": 9}]\nObservation: ')
    assert {t.intent for t in seen} == {"Add 2 and 3."}
    # the same actions, played in a ToolEnvironment, give the same observations
    env = ToolEnvironment(toy_tools(), [{"id": "1", "instruction": "Add 2 and 3."}], lambda *_: 1)
    assert env.reset("1").text == seen[0].initial_observation
    assert env.step(seen[0].steps[0].action).observation == "5"
    assert env.step(seen[0].steps[1].action).done


def test_conversation_trajectory_details() -> None:
    messages = [
        HumanMessage("Pick a fruit."),
        AIMessage(
            "",
            tool_calls=[
                {"name": "pick", "args": {"fruit": "kiwi"}, "id": "a"},
                {"name": "echo", "args": {"text": "hi"}, "id": "b"},
            ],
        ),
        ToolMessage("hi", tool_call_id="b"),
        ToolMessage("Error: kiwi is no fruit here", tool_call_id="a", status="error"),
        AIMessage("apple"),
        HumanMessage("Now a melon."),
    ]
    t = conversation_trajectory(messages, tools=["pick", "echo"])
    assert [(s.action, s.observation, s.valid) for s in t.steps] == [
        ('pick[{"fruit": "kiwi"}]', "Error: kiwi is no fruit here", False),
        ('echo[{"text": "hi"}]', "hi", True),
        ("finish[apple]", "User: Now a melon.", True),
    ]
    assert t.intent == "Pick a fruit."
    fixed = conversation_trajectory(messages, intent=lambda m: m[-1].text, initial_observation="")
    assert fixed.intent == "Now a melon." and fixed.initial_observation == ""
    assert fixed.steps[-1].observation == "User: Now a melon."


def test_k_requests_with_distinct_seeds_where_n_is_ignored() -> None:
    chat = ScriptedChatModel(replies=[call("add", a=1), call("add", a=2), call("add", a=3)])
    critic = prefers('add[{"a": 3}]')
    guided = RewardGuidedModel(chat, critic, k=3, retry=NO_RETRY)
    best = guided.invoke("Add three.")
    # the n=3 request returned one choice: two more requests, then no n from then on
    assert guided.server_honours_n is False
    assert len(chat.calls) == 3 and chat.calls[0][1]["n"] == 3
    assert best.tool_calls[0]["args"] == {"a": 3} and critic.calls == 1
    seeds = [kwargs["seed"] for _, kwargs in chat.calls]
    assert len(set(seeds)) == 3
    guided.invoke("Add three.")
    assert len(chat.calls) == 6 and all("n" not in kw for _, kw in chat.calls[3:])
    assert critic.calls == 2


def test_distinct_candidates_only_ties_go_to_the_first() -> None:
    seen: list[int] = []

    class Counting(ConstantReward):
        def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]:
            seen.append(len(trajectories))
            return super().score(intent, trajectories)

    # the same call twice (another "thought" beside it changes nothing the critic reads)
    replies = [
        call("echo", text="a"),
        AIMessage("hm", tool_calls=call("echo", text="a").tool_calls),
    ]
    replies += [call("echo", text="b"), call("echo", text="a")]
    chat = ScriptedChatModel(replies=replies, honour_n=True)
    best = RewardGuidedModel(chat, Counting(), k=4).invoke("say a")
    assert seen == [2]  # two distinct candidates scored, once
    assert best.tool_calls[0]["args"] == {"text": "a"}
    assert best.response_metadata[GUIDANCE_KEY]["samples"] == 4


@pytest.mark.parametrize(
    ("margin", "prior_weight", "says"), [(1.0, 1.0, "a"), (1.2, 1.0, "b"), (1.0, 0.0, "b")]
)
def test_the_models_own_preference_counts_by_the_log_share_of_samples(
    margin: float, prior_weight: float, says: str
) -> None:
    replies = [call("echo", text="a")] * 3 + [call("echo", text="b")]
    critic = FunctionReward(lambda intent, t: margin * ("b" in last_action(t)))
    chat = ScriptedChatModel(replies=replies, honour_n=True)
    best = RewardGuidedModel(chat, critic, k=4, prior_weight=prior_weight).invoke("say b")
    assert best.tool_calls[0]["args"] == {"text": says}
    assert best.response_metadata[GUIDANCE_KEY]["counts"] == [3, 1]


def test_a_single_distinct_candidate_is_returned_unscored() -> None:
    critic = ConstantReward()
    chat = ScriptedChatModel(replies=["done"], honour_n=True)
    best = RewardGuidedModel(chat, critic, k=3).invoke("hi")
    assert best.content == "done" and critic.calls == 0
    assert best.response_metadata[GUIDANCE_KEY]["scores"] is None


def test_a_model_that_refuses_n_is_asked_k_times_and_failed_candidates_are_dropped() -> None:
    failing: set[int] = set()

    class Picky(ScriptedChatModel):
        """Refuses ``n``; answers with its request's seed; fails the seeds in ``failing``."""

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            if "n" in kwargs:
                raise ValueError("unknown parameter n")
            if kwargs["seed"] in failing:
                raise ValueError(f"seed {kwargs['seed']} fails")
            return ChatResult(generations=[ChatGeneration(message=AIMessage(str(kwargs["seed"])))])

    guided = RewardGuidedModel(Picky(), ConstantReward(), k=3, retry=NO_RETRY)
    seeds = [stable_seed(0, 1, i) % 2**31 for i in range(3)]  # one message, candidates 0-2
    first = guided.invoke("x")
    assert guided.server_honours_n is False
    assert first.content == str(seeds[0])  # a tie: the first candidate
    assert first.response_metadata[GUIDANCE_KEY]["samples"] == 3
    failing.add(seeds[0])
    second = guided.invoke("x")
    assert second.content == str(seeds[1])
    assert second.response_metadata[GUIDANCE_KEY]["samples"] == 2
    failing.update(seeds)
    with pytest.raises(ValueError, match="fails"):
        guided.invoke("x")


def test_usage_is_counted_once_per_request_and_a_budget_stops_it() -> None:
    chat = ScriptedChatModel(replies=["a", "b"], honour_n=True)
    tracker = UsageTracker()
    RewardGuidedModel(chat, ConstantReward(), k=2).invoke("x", {"callbacks": [tracker]})
    assert tracker.usage.calls == 1  # the n=2 request; the wrapper is no chat-model run
    spent = UsageTracker(UsageLimits(max_calls=0))
    with pytest.raises(BudgetExceeded):
        RewardGuidedModel(chat, ConstantReward(), k=2, retry=NO_RETRY).invoke(
            "x", {"callbacks": [spent]}
        )


def test_bad_arguments_are_refused() -> None:
    chat = ScriptedChatModel(replies=["a"])
    with pytest.raises(ConfigError, match="k must be"):
        RewardGuidedModel(chat, ConstantReward(), k=0)
    with pytest.raises(ConfigError, match="not a reward scorer"):
        RewardGuidedModel(chat, object(), k=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prior_weight must be"):
        RewardGuidedModel(chat, ConstantReward(), k=2, prior_weight=-1)


# -- in a graph -------------------------------------------------------------------------------
def adder_responder():
    """A fake tool-calling "LLM": before any tool answer it proposes add calls with various
    arguments, after one it answers with various numbers (cycling, so n samples differ)."""
    proposals = itertools.cycle([{"a": 2, "b": 2}, {"a": 2, "b": 3}, {"a": 3, "b": 3}])
    answers = itertools.cycle(["4", "5", "6"])

    def respond(messages: list[BaseMessage]) -> AIMessage:
        if not any(isinstance(m, ToolMessage) for m in messages):
            return AIMessage("", tool_calls=[{"name": "add", "args": next(proposals), "id": None}])
        return AIMessage(next(answers))

    return respond


def adder_critic() -> FunctionReward:
    """Prefers the right call, then the answer the tool gave."""

    def value(intent: str, t: Trajectory) -> float:
        action = last_action(t)
        if action.startswith("add"):
            return float(json.loads(action[4:-1]) == {"a": 2, "b": 3})
        return float(action == f"finish[{t.steps[-2].observation}]")

    return FunctionReward(value)


def test_a_state_graph_with_a_tool_node_runs_to_the_end() -> None:
    tools = toy_tools()
    chat = ScriptedChatModel(responder=adder_responder(), honour_n=True)
    critic = adder_critic()
    graph = StateGraph(MessagesState)
    graph.add_node("agent", reward_guided_node(chat.bind_tools(tools), critic, k=3))
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    app = graph.compile(checkpointer=InMemorySaver())  # the choice's record checkpoints too
    thread = {"configurable": {"thread_id": "1"}}
    final = app.invoke({"messages": [HumanMessage("Add 2 and 3.")]}, thread)
    messages = final["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[1].tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert messages[2].content == "5" and messages[3].content == "5"
    assert critic.calls == 2 and len(chat.calls) == 2  # one request, one critic call per step
    saved = app.get_state(thread).values["messages"][1].response_metadata[GUIDANCE_KEY]
    assert saved["chosen"] == 1 and saved["scores"] == [0.0, 1.0, 0.0]


def test_stream_messages_shows_the_chosen_message_not_every_candidate() -> None:
    tools = toy_tools()
    chat = ScriptedChatModel(responder=adder_responder(), honour_n=True)
    graph = StateGraph(MessagesState)
    graph.add_node("agent", reward_guided_node(chat.bind_tools(tools), adder_critic(), k=3))
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    streamed = [
        message
        for message, meta in graph.compile().stream(
            {"messages": [HumanMessage("Add 2 and 3.")]}, stream_mode="messages"
        )
        if meta["langgraph_node"] == "agent"
    ]
    assert [m.tool_calls[0]["args"] if m.tool_calls else m.content for m in streamed] == [
        {"a": 2, "b": 3},
        "5",
    ]


def test_the_model_of_a_prebuilt_react_agent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent is deprecated for langchain's
        from langgraph.prebuilt import create_react_agent

        chat = ScriptedChatModel(responder=adder_responder(), honour_n=True)
        critic = adder_critic()
        agent = create_react_agent(RewardGuidedModel(chat, critic, k=3), toy_tools())
    final = agent.invoke({"messages": [HumanMessage("Add 2 and 3.")]})
    assert final["messages"][-1].content == "5" and critic.calls == 2
    assert "tools" in chat.calls[0][1]  # create_react_agent bound the tools through the wrapper
    final = asyncio.run(agent.ainvoke({"messages": [HumanMessage("Add 2 and 3.")]}))
    assert final["messages"][-1].content == "5" and critic.calls == 4  # async too


def test_a_guided_model_is_not_wrapped_twice() -> None:
    guided = RewardGuidedModel(ScriptedChatModel(replies=["a"]), ConstantReward(), k=2)
    with pytest.raises(ConfigError, match="takes the chat model itself"):
        reward_guided_node(guided, ConstantReward())


def test_the_example_agent_beats_its_fake_llm_alone(capsys) -> None:
    from pathlib import Path

    from armap_agents._import_path import load_import_path

    example = Path(__file__).resolve().parents[1] / "examples" / "guided_agent.py"
    rates = load_import_path(f"{example}:main")(["--seeds", "1"])
    assert rates[4] > rates[1] + 0.3
    assert "One guided episode" in capsys.readouterr().out
