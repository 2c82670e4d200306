"""The reward-guided node's own cost per step, beyond the critic and the model. Run::

    python benchmarks/guided_node_overhead.py [--repeats 200]

A step is one call of :class:`~armap_agents.RewardGuidedModel` (what
:func:`~armap_agents.reward_guided_node` runs) on a conversation of ``history`` tool calls
with their answers, for ``k`` candidates. The pieces cost (almost) nothing and are timed:

* the model: ``TimedScriptedModel`` (:class:`~armap_agents.testing.ScriptedChatModel`, no
  latency) replies with distinct tool calls; the time during which at least one of its requests
  was in flight counts as *model* (each whole LangChain call, callbacks included: what a plain
  model call costs too). ``n=k`` honoured: one request; ignored: one request, then ``k - 1``
  concurrent ones;
* the critic: a fake scorer (a hash of each trajectory's text, rendering included), timed as
  *critic*; its calls per step are counted (at most one batch).

Overhead = wall time − model − critic, per step (median of ``--repeats`` steps, and the 90th
percentile): turning the conversation into trajectories, sampling bookkeeping, the thread pool
for separate requests, deduplication, the choice, the run's callbacks. The target is at most
5 ms. The plain model call (``model.invoke(messages)``, what the node replaces) is timed
beside it for scale. Last, a whole ReAct loop (``StateGraph`` with a ``ToolNode``) runs with
the guided node and with the plain model node, and the difference per step is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

from _report import header, save_results
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from armap_agents import RewardGuidedModel, reward_guided_node
from armap_agents.testing import ScriptedChatModel, toy_tools
from armap_agents.types import Trajectory, render_trajectory

NAME = "guided_node_overhead"


class Intervals:
    """Time intervals from any thread; :meth:`covered` is the length of their union."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[tuple[float, float]] = []

    def add(self, start: float, end: float) -> None:
        with self._lock:
            self.spans.append((start, end))

    def covered(self) -> float:
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()


class TimedScriptedModel(ScriptedChatModel):
    """A scripted chat model whose every whole call (``generate``: what ``invoke`` runs too)
    is recorded as an interval. Not a model."""

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().generate(*args, **kwargs)
        finally:
            SPANS.add(start, time.perf_counter())


SPANS = Intervals()


class HashCritic:
    """A fake critic: a stable pseudo-random score per trajectory text; timed, calls counted."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]:
        start = time.perf_counter()
        out = [
            int.from_bytes(hashlib.sha256(render_trajectory(t).encode()).digest()[:4], "big")
            / 2**32
            for t in trajectories
        ]
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def replies(count: int) -> list[AIMessage]:
    """``count`` distinct tool calls."""
    return [
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": None}])
        for i in range(count)
    ]


def conversation(history: int) -> list[BaseMessage]:
    """A task and ``history`` tool calls with their answers."""
    messages: list[BaseMessage] = [HumanMessage("Add the numbers up to 100.")]
    for i in range(history):
        messages.append(
            AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}"}])
        )
        messages.append(ToolMessage(str(i + 1), tool_call_id=f"c{i}"))
    return messages


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def step_row(k: int, honour_n: bool, history: int, repeats: int) -> dict[str, Any]:
    model = TimedScriptedModel(replies=replies(max(k, 1)), honour_n=honour_n)
    critic = HashCritic()
    guided = RewardGuidedModel(model, critic, k=k).bind_tools(toy_tools())
    messages = conversation(history)
    for _ in range(5):  # warm-up (and, where n is ignored, learning it)
        guided.invoke(messages)
    overheads, walls, model_times, critic_times = [], [], [], []
    critic.calls = 0
    for _ in range(repeats):
        SPANS.clear()
        critic.seconds = 0.0
        start = time.perf_counter()
        guided.invoke(messages)
        wall = time.perf_counter() - start
        model_time = SPANS.covered()
        walls.append(wall)
        model_times.append(model_time)
        critic_times.append(critic.seconds)
        overheads.append(wall - model_time - critic.seconds)
    plain_model = model.bind_tools(toy_tools())
    plain = []
    for _ in range(repeats):
        start = time.perf_counter()
        plain_model.invoke(messages)
        plain.append(time.perf_counter() - start)
    return {
        "k": k,
        "n": "honoured" if honour_n else "ignored",
        "history": history,
        "requests": len(model.calls) // (repeats + 5) if honour_n else k,
        "critic_calls": critic.calls / repeats,
        "wall": statistics.median(walls) * 1e3,
        "model": statistics.median(model_times) * 1e3,
        "critic": statistics.median(critic_times) * 1e3,
        "overhead": statistics.median(overheads) * 1e3,
        "p90": percentile(overheads, 0.9) * 1e3,
        "plain": statistics.median(plain) * 1e3,
    }


def graph_row(k: int, steps: int, repeats: int) -> dict[str, Any]:
    """A ReAct loop of ``steps`` tool calls then an answer, guided (k) and plain."""
    tools = toy_tools()

    samples = itertools.count()

    def respond(messages: list[BaseMessage]) -> AIMessage:
        """Distinct samples: a call with a new ``b`` each time, an answer after ``steps``."""
        done = sum(isinstance(m, ToolMessage) for m in messages)
        if done >= steps:
            return AIMessage(f"done {next(samples)}")
        args = {"a": done, "b": next(samples)}
        return AIMessage("", tool_calls=[{"name": "add", "args": args, "id": None}])

    def build(node: Any):
        graph = StateGraph(MessagesState)
        graph.add_node("agent", node)
        graph.add_node("tools", ToolNode(tools))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        return graph.compile()

    critic = HashCritic()
    guided_model = TimedScriptedModel(responder=respond, honour_n=True)
    plain_model = TimedScriptedModel(responder=respond, honour_n=True)
    bound = plain_model.bind_tools(tools)
    guided = build(reward_guided_node(guided_model.bind_tools(tools), critic, k=k))
    plain = build(lambda state: {"messages": [bound.invoke(state["messages"])]})
    start_messages = {"messages": [HumanMessage("Count.")]}
    config = {"recursion_limit": 4 * steps + 10}
    results = {}
    for label, graph in (("guided", guided), ("plain", plain)):
        graph.invoke(start_messages, config)  # warm-up
        walls, models = [], []
        critic.seconds, critic.calls = 0.0, 0
        for _ in range(repeats):
            SPANS.clear()
            start = time.perf_counter()
            graph.invoke(start_messages, config)
            walls.append(time.perf_counter() - start)
            models.append(SPANS.covered())
        results[label] = (statistics.median(walls), statistics.median(models))
        results[label + "_critic"] = critic.seconds / repeats
        results[label + "_critic_calls"] = critic.calls / repeats
    agent_steps = steps + 1
    g_wall, g_model = results["guided"]
    p_wall, p_model = results["plain"]
    extra = (g_wall - g_model - results["guided_critic"]) - (p_wall - p_model)
    return {
        "k": k,
        "steps": agent_steps,
        "guided": g_wall * 1e3,
        "plain": p_wall * 1e3,
        "model": (g_model - p_model) * 1e3,
        "critic": results["guided_critic"] * 1e3,
        "critic_calls": results["guided_critic_calls"],
        "extra": extra * 1e3 / agent_steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="steps timed per row")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [
        step_row(k, honour_n, history, args.repeats)
        for honour_n in (True, False)
        for k in (2, 4, 8)
        for history in (0, 10, 30)
    ]
    graphs = [graph_row(k, 8, max(10, args.repeats // 4)) for k in (4, 8)]
    lines = [
        "# Reward-guided node: overhead per step",
        "",
        header(),
        "",
        f"Total run time {time.perf_counter() - started:.0f} s.",
        "",
        "## One step: `RewardGuidedModel.invoke` (what `reward_guided_node` runs)",
        "",
        "Model: a scripted tool-calling fake, no latency (time with a request in flight; each "
        "whole LangChain call). Critic: a hash of each trajectory's text, timed. Overhead = wall "
        f"− model − critic; medians of {args.repeats} steps (p90: 90th percentile). *History*: "
        "tool calls with answers before the step. *Plain call*: `model.invoke(messages)`, the "
        "call the node replaces.",
        "",
        "| k | n | history | requests | critic calls / step | wall (ms) | model (ms) "
        "| critic (ms) | overhead (ms) | overhead p90 (ms) | plain call (ms) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['n']} | {r['history']} | {r['requests']} | {r['critic_calls']:.0f} "
            f"| {r['wall']:.2f} | {r['model']:.2f} | {r['critic']:.2f} | **{r['overhead']:.2f}** "
            f"| {r['p90']:.2f} | {r['plain']:.2f} |"
        )
    lines += [
        "",
        "## A whole ReAct loop: `StateGraph` + `ToolNode`, guided node against the plain one",
        "",
        "8 tool calls then an answer (9 agent steps), `n` honoured. *Extra per step* = (guided "
        "wall − its model − its critic − (plain wall − its model)) / 9: what the guided node "
        "adds to a step beyond the critic and the model, LangGraph's own cost cancelled.",
        "",
        "| k | agent steps | critic calls / run | guided run (ms) | plain run (ms) "
        "| extra model (ms) | critic (ms) | extra per step (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in graphs:
        lines.append(
            f"| {g['k']} | {g['steps']} | {g['critic_calls']:.0f} | {g['guided']:.1f} "
            f"| {g['plain']:.1f} | {g['model']:.1f} "
            f"| {g['critic']:.2f} | **{g['extra']:.2f}** |"
        )
    worst = max(r["overhead"] for r in rows)
    lines += [
        "",
        f"Largest median overhead per step: {worst:.2f} ms (target: at most 5 ms); at most "
        f"{max(r['critic_calls'] for r in rows):.0f} critic call per step.",
    ]
    save_results(NAME, "\n".join(lines))


if __name__ == "__main__":
    main()
