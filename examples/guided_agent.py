"""A reward-guided ReAct agent over your own tools: at every step a critic picks the model's
message among K candidates. Offline: the "LLM" is a fake, the critic hand-written (or yours).

    python examples/guided_agent.py [--k 4] [--critic runs/quickstart-.../reward_model]

The agent is the usual LangGraph loop, an agent node and a ``ToolNode`` over the shop of
``tool_shop.py`` (search a category, add to the cart, empty it; answering ends the episode, as
``finish[]`` checks out). The agent node is :func:`~armap_agents.reward_guided_node` in place of
the plain model call: K candidate messages, one critic call, the best one taken.

* The model is :class:`~armap_agents.testing.ScriptedChatModel` with :func:`noisy_shopper`, a
  stand-in for a sampling LLM (not a model): each sample is one of the shop's sensible next
  calls, drawn at random. ``k=1`` is that "LLM" alone.
* The critic is :func:`shop_critic`, a hand-written scorer standing in for a trained one: it
  reads only what a trained critic reads (the intent and the trajectory text, see
  :func:`~armap_agents.conversation_trajectory`), not the environment's verdict. ``--critic``
  loads a reward model trained on the shop instead (``armap quickstart --env
  examples/tool_shop.py:make_shop --size tiny`` writes one); the trajectories it reads are in
  the shop ``ToolEnvironment``'s own text, so it reads what it was trained on.
* Each episode's tool calls are then played in the shop's ``ToolEnvironment`` for its verdict:
  the actions the critic read are that environment's actions.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from tool_shop import CATALOG, make_shop, make_tools, shop_tasks

from armap_agents import ToolTask, Trajectory, conversation_trajectory, reward_guided_node
from armap_agents.reward.scorer import RewardScorer
from armap_agents.testing import FunctionReward, ScriptedChatModel

MAX_CALLS = 6  # the shop environment's max_steps


def noisy_shopper(seed: int = 0) -> Callable[[list[BaseMessage]], AIMessage]:
    """A fake tool-calling LLM: a random sensible next call given the conversation (search a
    category not searched yet; with an empty cart, add an item a search showed; with a full one,
    empty it or answer, which checks out)."""
    rng = random.Random(seed)

    def respond(messages: list[BaseMessage]) -> AIMessage:
        calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
        searched = [c["args"]["category"] for c in calls if c["name"] == "search"]
        cart: list[str] = []
        for c in calls:
            if c["name"] == "add_to_cart":
                cart.append(c["args"]["item"])
            elif c["name"] == "empty_cart":
                cart.clear()
        options: list[tuple[str, dict[str, Any]]] = [
            ("search", {"category": c}) for c in ("fruit", "dairy", "bakery") if c not in searched
        ]
        if cart:
            options += [("empty_cart", {}), ("answer", {})]
        else:
            shown = [n for n, (c, _) in CATALOG.items() if c in searched]
            options += [("add_to_cart", {"item": n}) for n in shown]
        name, args = rng.choice(options)
        if name == "answer" or len(calls) >= MAX_CALLS:
            return AIMessage(f"I bought {', '.join(cart) or 'nothing'}.")
        return AIMessage("", tool_calls=[{"name": name, "args": args, "id": None}])

    return respond


_PRICE = re.compile(r"(\w+) \$(\d+\.\d+)")


def shop_critic(intent: str, trajectory: Trajectory) -> float:
    """A hand-written critic: what the intent asks for, read against the trajectory's text.

    The target is the item named ("Buy one pear.") or the cheapest / priciest item of the
    category among the prices the searches showed. Buying it is good, buying another item bad,
    emptying a wrong cart good, answering with the target in the cart best; searching the
    category the task names is mildly good."""
    prices = dict(
        (name, float(p))
        for step in trajectory.steps
        if step.action.startswith("search")
        for name, p in _PRICE.findall(step.observation)
    )
    words = intent.rstrip(".").split()
    target: str | None = words[-1] if intent.startswith("Buy one") else None
    category = words[-2] if not target and len(words) >= 2 else None
    if category:
        seen = {n: p for n, p in prices.items() if CATALOG.get(n, ("",))[0] == category}
        if seen:
            pick = min if "cheapest" in intent else max
            target = pick(seen, key=seen.__getitem__)
    cart: list[str] = []
    before: list[str] = []
    for step in trajectory.steps:
        before = list(cart)
        if step.action.startswith("add_to_cart"):
            cart.append(step.action.split('"item": "')[1].split('"')[0])
        elif step.action.startswith("empty_cart"):
            cart.clear()
    last = trajectory.steps[-1].action if trajectory.steps else ""
    right = target is not None and cart == [target]
    right_before = target is not None and before == [target]
    if last.startswith("finish"):
        return 2.0 if right else -2.0
    if last.startswith("add_to_cart"):
        return 1.0 if right else -1.0
    if last.startswith("empty_cart"):
        return -1.0 if right_before else 0.5
    if last.startswith("search"):
        named = category or (CATALOG[target][0] if target in CATALOG else None)
        return 0.3 if named and named in last else 0.0
    return 0.0


def build_agent(model: Any, critic: RewardScorer, tools: Sequence[Any], k: int):
    """The ReAct loop: the reward-guided agent node and a ToolNode."""
    graph = StateGraph(MessagesState)
    graph.add_node("agent", reward_guided_node(model.bind_tools(tools), critic, k=k))
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def run_task(task: ToolTask, critic: RewardScorer, k: int, seed: int = 0) -> dict[str, Any]:
    """One episode of ``task``: the agent's messages, and the shop environment's verdict on
    its tool calls played again there."""
    model = ScriptedChatModel(responder=noisy_shopper(seed), honour_n=True)
    agent = build_agent(model, critic, make_tools(task), k)  # a fresh cart per episode
    messages = agent.invoke(
        {"messages": [HumanMessage(task.instruction)]}, {"recursion_limit": 4 * MAX_CALLS}
    )["messages"]
    env = make_shop()
    env.reset(task.id)
    for step in conversation_trajectory(messages).steps:
        if env.step(step.action).done:
            break
    return {"messages": messages, "success": env.evaluate().success, "requests": len(model.calls)}


def main(argv: Sequence[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=4, help="candidates per step (default 4)")
    parser.add_argument("--critic", help="a trained reward model's directory (default: none)")
    parser.add_argument("--seeds", type=int, default=3, help="episodes per task (default 3)")
    args = parser.parse_args(argv)
    if args.critic:
        from armap_agents import RewardModel

        critic: Any = RewardModel.load(args.critic)
    else:
        critic = FunctionReward(shop_critic)
    tasks = shop_tasks()
    rates: dict[int, float] = {}
    for k in sorted({1, args.k}):
        wins = sum(
            run_task(task, critic, k, seed)["success"]
            for task in tasks
            for seed in range(args.seeds)
        )
        rates[k] = wins / (len(tasks) * args.seeds)
        label = "the fake LLM alone" if k == 1 else "reward-guided"
        print(f"k={k} ({label}): {rates[k]:.0%} of {len(tasks) * args.seeds} episodes")
    one = run_task(next(t for t in tasks if t.id == "cheapest-dairy"), critic, args.k)
    print("\nOne guided episode (cheapest-dairy):")
    for message in one["messages"][1:]:
        if isinstance(message, AIMessage):
            record = message.response_metadata.get("reward_guidance", {})
            print(f"  candidates {record.get('actions')} scores {record.get('scores')}")
            print(f"  -> {message.tool_calls[0] if message.tool_calls else message.content}")
    return rates


if __name__ == "__main__":
    main()
