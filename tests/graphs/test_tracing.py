"""Tracing (LangSmith, or any LangChain tracer) sees every chat-model call inside our graphs.

LangSmith attaches a tracer when ``LANGSMITH_TRACING=true``; here an in-memory tracer
(``RunCollectorCallbackHandler``) stands in for it, attached through the invoke config, and
the test checks that no node of ours drops the callbacks or breaks the run tree: every request
the scripted chat models served is a run nested under the one graph run.
"""

from __future__ import annotations

import re

import pytest
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from armap_agents.environments.game24 import Game24Env
from armap_agents.planners import build_planner
from armap_agents.policies import LLMPolicy
from armap_agents.testing import ConstantReward, ScriptedChatModel


def last_valid_action(messages) -> str:
    """A fake LLM that answers with the last listed valid action."""
    listed = re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)
    return f"Action: {listed[-1]}"


def _runs(run) -> list:
    out = [run]
    for child in run.child_runs:
        out += _runs(child)
    return out


@pytest.mark.parametrize(
    ("planner", "config"),
    [
        ("best_of_n", {"n": 3, "max_steps": 4}),
        ("mcts", {"iterations": 4, "max_policy_calls": 12, "expansion_k": 2, "max_steps": 4}),
        ("reflexion", {"max_trials": 2, "threshold": 0.0, "max_steps": 4}),
    ],
)
def test_a_tracer_in_the_invoke_config_sees_every_chat_model_call(planner, config) -> None:
    policy_model = ScriptedChatModel(responder=last_valid_action)
    reflector = ScriptedChatModel(replies=["Use the largest numbers last."])
    extra = {"reflector": reflector} if planner == "reflexion" else {}
    always_low = ConstantReward(-1.0)  # so Reflexion always reflects
    graph = build_planner(planner, LLMPolicy(policy_model), Game24Env, always_low, config, **extra)
    tracer = RunCollectorCallbackHandler()
    state = graph.invoke(
        {"task_id": "1"},
        {"callbacks": [tracer], "tags": ["armap-test"], "max_concurrency": 2},
    )
    assert state["best"] is not None
    assert len(tracer.traced_runs) == 1, "every call belongs to the one graph run"
    (root,) = tracer.traced_runs
    llm_runs = [r for r in _runs(root) if r.run_type == "llm"]
    served = len(policy_model.calls) + len(reflector.calls)
    assert served > 0 and len(llm_runs) == served
    assert all("armap-test" in r.tags for r in llm_runs), "the run's tags reach the model calls"
    if planner == "reflexion":
        assert reflector.calls, "the reflector was called"
