"""Test doubles for code that calls chat models. For unit tests only: not a real LLM.

:class:`ScriptedChatModel` is a LangChain chat model that replies with a fixed script (or a
function of the prompt), so graphs, policies and synthesizers can be tested without a server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

__all__ = ["ScriptedChatModel"]

Responder = Callable[[list[BaseMessage]], str]


class ScriptedChatModel(BaseChatModel):
    """A fake chat model: replies come from ``replies`` in order (cycling) or from ``responder``.

    Every call is recorded in :attr:`calls` (the messages and keyword arguments), and usage
    metadata is attached so usage accounting can be tested too.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[str] = []
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
        texts = []
        for k in range(count):
            if self.responder is not None:
                texts.append(self.responder(list(messages)))
            elif self.replies:
                texts.append(self.replies[(index + k) % len(self.replies)])
            else:
                raise ValueError("ScriptedChatModel needs replies or a responder")
        # like OpenAI: every choice carries the whole request's usage
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        completion_tokens = sum(len(text.split()) for text in texts)
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return ChatResult(
            generations=[
                ChatGeneration(message=AIMessage(text, usage_metadata=dict(usage)))
                for text in texts
            ]
        )
