"""Test doubles, for unit tests and benchmarks only: not a real LLM, reward model or tool.

* :class:`ScriptedChatModel`: a LangChain chat model that replies with a fixed script (or a
  function of the prompt), so graphs, policies and synthesizers can be tested without a server;
* :class:`ConstantReward` and :class:`FunctionReward`: reward scorers
  (:class:`~armap_agents.reward.scorer.RewardScorer`) that give every trajectory one value, or
  the value of a function, so planners can be tested without a trained model;
* :func:`toy_tools`: three tiny LangChain tools (``echo``, ``add``, ``pick``) for
  :class:`~armap_agents.environments.tools.ToolEnvironment` tests and parser fuzzing;
* :func:`game24_triplets`: a few real training triplets in seconds (random Game of 24
  episodes, relabeled), for reward-model tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from armap_agents.errors import ConfigError
from armap_agents.types import Trajectory, Triplet

__all__ = [
    "ConstantReward",
    "FunctionReward",
    "ScriptedChatModel",
    "game24_triplets",
    "toy_tools",
]

Responder = Callable[[list[BaseMessage]], str | AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A fake chat model: replies come from ``replies`` in order (cycling) or from ``responder``.

    Every call is recorded in :attr:`calls` (the messages and keyword arguments), and usage
    metadata is attached so usage accounting can be tested too. A reply may be an ``AIMessage``
    with ``tool_calls`` (a copy is returned; calls without an id get a fresh one), so a
    tool-calling agent can be scripted; :meth:`bind_tools` passes the tools in the calls'
    keyword arguments and changes nothing else.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[str | AIMessage] = []
    responder: Responder | None = None
    honour_n: bool = False
    """Answer ``n=k`` with ``k`` choices (like OpenAI); by default ``n`` is ignored (like
    llama.cpp's server) and one choice comes back."""
    _calls: list[tuple[list[BaseMessage], dict[str, Any]]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _served: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[tuple[list[BaseMessage], dict[str, Any]]]:
        return self._calls

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """This model with ``tools`` (as OpenAI tool schemas) in every call's keyword arguments."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Sequence[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        count = int(kwargs.get("n") or 1) if self.honour_n else 1
        with self._lock:
            index = self._served
            self._served += count
            self._calls.append((list(messages), dict(kwargs)))
        replies: list[str | AIMessage] = []
        for k in range(count):
            if self.responder is not None:
                replies.append(self.responder(list(messages)))
            elif self.replies:
                replies.append(self.replies[(index + k) % len(self.replies)])
            else:
                raise ConfigError("ScriptedChatModel needs replies or a responder")
        # like OpenAI: every choice carries the whole request's usage
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        completion_tokens = sum(len(str(_content(r)).split()) for r in replies)
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return ChatResult(
            generations=[
                ChatGeneration(message=_message(reply, usage, f"call_{index + k}"))
                for k, reply in enumerate(replies)
            ]
        )


def _content(reply: str | AIMessage) -> Any:
    return reply.content if isinstance(reply, AIMessage) else reply


def _message(reply: str | AIMessage, usage: dict[str, int], call_id: str) -> AIMessage:
    """A fresh message for one reply: a scripted ``AIMessage`` is copied (its tool calls
    without an id get ``call_id``-based ones), a text is wrapped."""
    if not isinstance(reply, AIMessage):
        return AIMessage(reply, usage_metadata=dict(usage))
    calls = [
        {**call, "id": call.get("id") or f"{call_id}_{j}"}
        for j, call in enumerate(reply.tool_calls)
    ]
    return reply.model_copy(update={"tool_calls": calls, "usage_metadata": dict(usage)}, deep=True)


class FunctionReward:
    """A fake reward scorer for unit tests: ``fn(intent, trajectory)`` is each trajectory's
    value. :attr:`calls` counts the ``score`` calls (one per batch, as a planner makes them)."""

    def __init__(self, fn: Callable[[str, Trajectory], float]) -> None:
        self.fn = fn
        self.calls = 0

    def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]:
        """``[fn(intent, t) for t in trajectories]``."""
        self.calls += 1
        return [float(self.fn(intent, t)) for t in trajectories]


class ConstantReward(FunctionReward):
    """A fake reward scorer for unit tests that cannot tell trajectories apart: every one
    gets ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(lambda intent, trajectory: value)
        self.value = value


def toy_tools() -> list[BaseTool]:
    """Three tiny tools for tests and parser fuzzing: ``echo(text)`` repeats its text,
    ``add(a, b=0)`` adds two integers, ``pick(fruit)`` takes ``"apple"`` or ``"melon"``."""

    @tool
    def echo(text: str) -> str:
        """Repeat the text."""
        return text

    @tool
    def add(a: int, b: int = 0) -> int:
        """Add two integers."""
        return a + b

    @tool
    def pick(fruit: Literal["apple", "melon"]) -> str:
        """Pick a fruit."""
        return fruit

    return [echo, add, pick]


def game24_triplets(task_ids: Sequence[str], episodes: int = 4) -> list[Triplet]:
    """Outcome triplets from ``episodes`` random-policy episodes per Game of 24 puzzle (seeds
    0, 1, ...), relabeled without corruption or prefixes: same puzzle, the positive reaches
    the intent's target, the negative does not."""
    from armap_agents.environments.game24 import Game24Env, Game24Relabeler
    from armap_agents.policies import RandomPolicy
    from armap_agents.rollout import run_episode

    env, relabeler = Game24Env(), Game24Relabeler(corrupt_rate=0.0, prefixes=False)
    out: list[Triplet] = []
    for task_id in task_ids:
        trajectories = [
            run_episode(env, RandomPolicy(), task_id, seed=s, episode_id=f"{task_id}#{s}")
            for s in range(episodes)
        ]
        out += relabeler.relabel(trajectories, seed=int(task_id))
    return out
