"""An LLM as its own value function (LATS-style self-evaluation), in place of a reward model.

:class:`LLMJudge` has the reward model's scoring interface, ``score(intent, trajectories) ->
list[float]``, so every planner takes it where it takes a
:class:`~armap_agents.reward.RewardModel`::

    judge = LLMJudge(make_chat_model("openai:gpt-4o-mini"))
    graph = build_planner("mcts", policy, env_factory, judge, {"iterations": 8})

Each trajectory costs one LLM request (several trajectories are judged concurrently): the model
reads the task and the trajectory and rates, from 1 to 10, how well the trajectory fulfils the
task; the score is that rating divided by 10, so it lies in ``[0.1, 1.0]``. This is the
baseline ARMAP argues against: an API-only LLM paying for its own value estimates instead of a
small local critic (``benchmarks/api_cost.py`` measures the difference).

A reply that names no rating in range is never an error: it scores ``neutral`` (0.5) and is
counted in :attr:`LLMJudge.unparsed`. Transient API errors are retried per ``retry``; an error
that outlasts the retries (or a spent :class:`~armap_agents.llm.UsageLimits` budget) is raised,
because silently scoring everything neutral would turn the search into a random one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables.config import ContextThreadPoolExecutor

from armap_agents.errors import ConfigError
from armap_agents.llm import (
    RetryPolicy,
    auto_structured,
    invoke_with_retries,
    json_object_reply,
    max_tokens_kwargs,
)
from armap_agents.prompts import StructuredFormat
from armap_agents.reward.scorer import TextScorer

__all__ = [
    "JudgePrompt",
    "LLMJudge",
    "auto_structured",
    "default_judge_prompt",
    "judge_response_format",
    "parse_rating",
]

JudgePrompt = Callable[[str, str], list[BaseMessage]]
"""``(intent, trajectory text) -> messages`` asking for a rating."""

MIN_RATING = 1
MAX_RATING = 10


def default_judge_prompt(intent: str, trajectory_text: str) -> list[BaseMessage]:
    """Ask for a 1-10 rating of how well the trajectory fulfils the task, on one line."""
    system = (
        "You evaluate an agent's attempt at a task. Read the task and the agent's trajectory "
        "(its actions and what it observed), then rate how well the trajectory fulfils the "
        f"task, from {MIN_RATING} (no progress, or it did something else) to {MAX_RATING} "
        "(the task is fully and correctly accomplished). An unfinished trajectory is rated by "
        "how likely it is to lead to success. Reply with exactly one line of the form\n"
        "Score: <integer from 1 to 10>"
    )
    human = f"Task: {intent}\n\nTrajectory:\n{trajectory_text}\n\nYour rating?"
    return [SystemMessage(system), HumanMessage(human)]


def judge_response_format(style: StructuredFormat) -> dict[str, Any]:
    """A ``response_format`` constraining the reply to ``{"score": <1..10>}`` (OpenAI's
    ``"json_schema"`` structured outputs, or llama.cpp's ``"json_object"`` grammar)."""
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "enum": list(range(MIN_RATING, 11))}},
        "required": ["score"],
        "additionalProperties": False,
    }
    if style == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "trajectory_rating", "strict": True, "schema": schema},
        }
    return {"type": "json_object", "schema": schema}


MAX_RATING_REPLY_CHARS = 20_000
"""How much of a judge's reply :func:`parse_rating` reads: its first 20,000 characters (a
rating is one line; the bound caps the cost of a runaway reply)."""

# Linear-time patterns: every optional piece starts with a character the one before cannot
# match, and a number never starts inside a run of digits, so no input makes them backtrack
# more than once over it.
_NUMBER = r"(?<!\d)(\d+(?:\.\d+)?)"
_PATTERNS = (
    re.compile(rf"score\s*(?:(?:is|of)\s*)?(?:[:=]\s*)?(?:\*+\s*)?{_NUMBER}", re.IGNORECASE),
    re.compile(rf"rating\s*(?:(?:is|of)\s*)?(?:[:=]\s*)?(?:\*+\s*)?{_NUMBER}", re.IGNORECASE),
    re.compile(rf"{_NUMBER}\s*(?:/|out\s+of)\s*10\b", re.IGNORECASE),
    re.compile(_NUMBER),
)


def _as_float(value: int | float | str) -> float | None:
    """``float(value)``, or None where it has none (text, or an int beyond float's range)."""
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _json_rating(text: str) -> float | None:
    value = json_object_reply(text)
    if value is None:
        return None
    rating = value.get("score", value.get("rating"))
    if isinstance(rating, bool) or not isinstance(rating, int | float | str):
        return None
    return _as_float(rating)


def parse_rating(text: str) -> float | None:
    """The 1-10 rating in a judge's reply, or None when there is none in range.

    Reads ``{"score": 7}``, ``Score: 7``, ``rating of 7``, ``7/10``, ``7 out of 10``, and as a
    last resort the first number in the reply; the first of these forms found decides (``Score:
    42`` is None, not a later number). Only the first :data:`MAX_RATING_REPLY_CHARS` characters
    are read. Never raises, and takes time linear in the part read: any string is a reply
    (``NaN``, infinities and numbers too large for a float are not in range).
    """
    text = text[:MAX_RATING_REPLY_CHARS]
    rating = _json_rating(text)
    if rating is None:
        for pattern in _PATTERNS:
            match = pattern.search(text)
            if match:
                rating = _as_float(match.group(1))
                break
    if rating is None or not MIN_RATING <= rating <= MAX_RATING:
        return None
    return rating


class LLMJudge(TextScorer):
    """A chat model rating ``(intent, trajectory)`` pairs: a drop-in for a reward model.

    ``score`` returns ``rating / 10`` per trajectory (``neutral`` when a reply has no usable
    rating). ``structured`` asks the server for ``{"score": n}`` (``"json_schema"`` for OpenAI,
    ``"json_object"`` for llama.cpp; ``"auto"`` picks by model, see :func:`auto_structured`;
    None asks for plain text); replies are parsed either way. Up to
    ``max_concurrency`` trajectories are judged at once (threads that keep the caller's
    LangChain context, so a graph's usage tracker sees every call).
    """

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        max_tokens: int | None = 16,
        prompt: JudgePrompt | None = None,
        structured: StructuredFormat | Literal["auto"] | None = "auto",
        temperature: float = 0.0,
        neutral: float = 0.5,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
    ) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError("max_tokens must be at least 1 (or None for the model's default)")
        if max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1")
        self.chat_model = chat_model
        self.max_tokens = max_tokens
        self.prompt = prompt or default_judge_prompt
        self.structured = auto_structured(chat_model) if structured == "auto" else structured
        self.temperature = temperature
        self.neutral = neutral
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self._lock = threading.Lock()
        self._judgements = 0
        self._unparsed = 0

    @property
    def judgements(self) -> int:
        """Trajectories judged so far (one LLM request each, retries not counted)."""
        return self._judgements

    @property
    def unparsed(self) -> int:
        """Replies without a usable rating, scored ``neutral``."""
        return self._unparsed

    def score_texts(
        self, intents: Sequence[str], texts: Sequence[str], *, batch_size: int | None = None
    ) -> list[float]:
        """Values in ``[0.1, 1]`` for ``(intent, trajectory text)`` pairs, input order kept
        (``batch_size`` is accepted for compatibility with ``RewardModel`` and ignored: one
        request each); :meth:`score` takes trajectories."""
        if len(intents) != len(texts):
            raise ValueError("intents and texts must have the same length")
        pairs = list(zip(intents, texts, strict=True))
        if len(pairs) <= 1:
            return [self._judge(i, t) for i, t in pairs]
        with ContextThreadPoolExecutor(max_workers=min(self.max_concurrency, len(pairs))) as pool:
            return list(pool.map(lambda pair: self._judge(*pair), pairs))

    def _judge(self, intent: str, text: str) -> float:
        kwargs: dict[str, Any] = {
            "temperature": self.temperature,
            "seed": 0,
            **max_tokens_kwargs(self.chat_model, self.max_tokens),
        }
        if self.structured is not None:
            kwargs["response_format"] = judge_response_format(self.structured)
        messages = self.prompt(intent, text)
        reply = invoke_with_retries(self.chat_model, messages, self.retry, **kwargs)
        rating = parse_rating(str(reply.content))
        with self._lock:
            self._judgements += 1
            self._unparsed += rating is None
        return self.neutral if rating is None else rating / MAX_RATING

    def __repr__(self) -> str:
        name = getattr(self.chat_model, "model_name", None) or type(self.chat_model).__name__
        return f"LLMJudge({name!r}, structured={self.structured!r})"
