"""Chat models by name, bounded retries with backoff, and usage accounting.

``make_chat_model`` accepts ``"openai:<model>"``, ``"openai-compatible:<base_url>:<model>"``
or any LangChain ``BaseChatModel`` instance. Keys come from ``OPENAI_API_KEY`` and the base URL
from ``OPENAI_BASE_URL``, the usual way; they are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult
from langchain_core.runnables import ensure_config
from pydantic import BaseModel
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from armap_agents.config import StrictConfig
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.prompts import StructuredFormat

__all__ = [
    "auto_structured",
    "max_tokens_kwargs",
    "RetryPolicy",
    "UsageLimits",
    "SQLiteCache",
    "Usage",
    "UsageTracker",
    "generate_with_retries",
    "invoke_with_retries",
    "make_chat_model",
]

logger = logging.getLogger(__name__)


def make_chat_model(
    spec: str | BaseChatModel, *, cache: str | Path | BaseCache | None = None, **kwargs: Any
) -> BaseChatModel:
    """A chat model from a name, or ``spec`` itself when it already is one.

    * ``"openai:gpt-4o-mini"``: OpenAI (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` if set);
    * ``"openai-compatible:http://127.0.0.1:8000/v1:my-model"``: any OpenAI-compatible server;
    * ``"local:smollm2"`` (or ``"local:/path/to/model.gguf"``): an offline model run in process by
      llama.cpp (extra ``[local]``).

    ``cache``: a file path (a :class:`SQLiteCache`) or any LangChain cache; identical requests
    (same model, messages, parameters and seed) are then answered from it.
    """
    model = _make(spec, **kwargs)
    if cache is not None:
        model.cache = cache if isinstance(cache, BaseCache) else SQLiteCache(cache)
    return model


def _make(spec: str | BaseChatModel, **kwargs: Any) -> BaseChatModel:
    if isinstance(spec, BaseChatModel):
        return spec
    provider, _, rest = spec.partition(":")
    if not rest:
        raise ConfigError(
            f"cannot read model name {spec!r}: use 'openai:<model>', "
            "'openai-compatible:<base_url>:<model>' or pass a LangChain chat model"
        )
    if provider == "local":
        from armap_agents.local_llm import ChatLlamaCpp

        return ChatLlamaCpp.from_name(rest, **kwargs)
    from langchain_openai import ChatOpenAI

    # retries are ours (bounded, counted, Retry-After honoured): the SDK's own would hide them
    kwargs.setdefault("max_retries", 0)
    if provider == "openai":
        if not (kwargs.get("api_key") or os.environ.get("OPENAI_API_KEY")):
            raise ConfigError(
                f"{spec!r} needs an API key: set OPENAI_API_KEY (and OPENAI_BASE_URL for an "
                "OpenAI-compatible server), or use 'openai-compatible:<base_url>:<model>' "
                "for a server that needs none"
            )
        return ChatOpenAI(model=rest, **kwargs)
    if provider == "openai-compatible":
        base_url, sep, model = rest.rpartition(":")
        if not sep or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"cannot read {spec!r}: write 'openai-compatible:<base_url>:<model>', "
                "e.g. 'openai-compatible:http://127.0.0.1:8000/v1:smollm2'"
            )
        kwargs.setdefault("api_key", "not-needed")
        return ChatOpenAI(model=model, base_url=base_url, **kwargs)
    raise ConfigError(
        f"unknown model provider {provider!r} in {spec!r}: use 'openai:', "
        "'openai-compatible:', 'local:' or pass a LangChain chat model"
    )


# what a chat-model cache entry may contain: generations of AI messages, nothing else
_CACHED_TYPES = (ChatGeneration, Generation, AIMessage, AIMessageChunk, ChatGenerationChunk)


class SQLiteCache(BaseCache):
    """A persistent LangChain cache in one SQLite file (JSON values, no pickle; thread-safe).

    The key is the prompt plus LangChain's description of the model and call parameters
    (temperature, seed, ...), so a rerun with the same seeds is answered from disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "create table if not exists llm_cache (key text primary key, value text)"
            )

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> Any:
        with self._lock:
            row = self._db.execute(
                "select value from llm_cache where key = ?", (self._key(prompt, llm_string),)
            ).fetchone()
        if row is None:
            return None
        with warnings.catch_warnings():  # langchain marks loads() beta
            warnings.simplefilter("ignore")
            return loads(row[0], allowed_objects=_CACHED_TYPES)

    def update(self, prompt: str, llm_string: str, return_val: Any) -> None:
        with self._lock, self._db:
            self._db.execute(
                "insert or replace into llm_cache values (?, ?)",
                (self._key(prompt, llm_string), dumps(list(return_val))),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock, self._db:
            self._db.execute("delete from llm_cache")


MAX_JSON_REPLY_CHARS = 100_000
"""The longest reply :func:`json_object_reply` parses. A structured action or rating is a few
dozen characters; a longer reply is not one, and is not worth a parse."""


def json_object_reply(text: str) -> dict | None:
    """The JSON object a structured reply holds (a ```json fence allowed), or ``None``.

    Never raises: ``None`` also for a reply longer than :data:`MAX_JSON_REPLY_CHARS`, nested
    deeper than the ``json`` module can parse, or holding an integer with more digits than
    Python converts (``sys.get_int_max_str_digits()``). ``NaN`` and ``Infinity`` parse as the
    floats they name; callers that need finite numbers check.
    """
    if len(text) > MAX_JSON_REPLY_CHARS:
        return None
    stripped = text.strip().removeprefix("```json").strip("`").strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    # JSONDecodeError and an over-long integer are ValueErrors; deep nesting is a RecursionError
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def reply_text(content: Any) -> str:
    """A reply's text (a message's ``content`` or a generation's ``text``) as a string that
    every later step can carry: lone surrogates, which a server's JSON may hold but UTF-8
    cannot encode (so no JSONL file, checkpoint or message could take them), become U+FFFD."""
    text = str(content)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _openai_base_url(model: BaseChatModel) -> str | None:
    """Where a ``ChatOpenAI`` sends its requests ("" for OpenAI's own API, also when the
    address is OpenAI's), or ``None`` for any other chat model. The address comes from the
    model or, as the OpenAI SDK reads it, from ``$OPENAI_BASE_URL``."""
    # a ChatOpenAI exists only once langchain_openai is imported: never import it (seconds) here
    chat_openai = getattr(sys.modules.get("langchain_openai"), "ChatOpenAI", None)
    if chat_openai is None or not isinstance(model, chat_openai):
        return None
    base_url = str(getattr(model, "openai_api_base", None) or os.environ.get("OPENAI_BASE_URL", ""))
    return "" if "api.openai.com" in base_url else base_url


def auto_structured(model: BaseChatModel) -> StructuredFormat | None:
    """The structured-output style a model is known to enforce: ``"json_object"`` (a grammar)
    for the in-process llama.cpp model, ``"json_schema"`` for OpenAI's own API, else ``None``
    (plain text, parsed tolerantly): other OpenAI-compatible servers differ in what they
    support. Small local models ramble without a grammar."""
    from armap_agents.local_llm import ChatLlamaCpp

    if isinstance(model, ChatLlamaCpp):
        return "json_object"
    return "json_schema" if _openai_base_url(model) == "" else None


def max_tokens_kwargs(model: BaseChatModel, max_tokens: int | None) -> dict[str, Any]:
    """Call arguments that bound a reply to ``max_tokens``, whatever serves the model.

    langchain-openai sends ``max_completion_tokens``, which OpenAI honours but llama.cpp's
    server ignores; for a ``ChatOpenAI`` pointed at another server, ``max_tokens`` also goes in
    the request body (OpenAI itself refuses both at once, so not there).
    """
    if max_tokens is None:
        return {}
    kwargs: dict[str, Any] = {"max_tokens": max_tokens}
    if _openai_base_url(model):  # another server behind the OpenAI client
        kwargs["extra_body"] = {
            **(getattr(model, "extra_body", None) or {}),
            "max_tokens": max_tokens,
        }
    return kwargs


class RetryPolicy(StrictConfig):
    """Bounded exponential backoff with jitter for transient API failures."""

    max_attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 30.0
    jitter: float = 1.0


def _is_transient(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts, connection errors and garbled (non-JSON) bodies;
    not other 4xx, which cannot succeed by asking again."""
    import json

    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on openai
        return isinstance(exc, TimeoutError | ConnectionError | json.JSONDecodeError)
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc,
        openai.APITimeoutError
        | openai.APIConnectionError
        | openai.APIResponseValidationError
        | TimeoutError
        | ConnectionError
        | json.JSONDecodeError,
    )


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds a server asked us to wait (``Retry-After``), if it said so."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _retrying(retry: RetryPolicy | None) -> Retrying:
    """Tenacity's retry loop for one LLM request, per ``retry``."""
    retry = retry or RetryPolicy()
    backoff = wait_exponential_jitter(
        multiplier=retry.initial_wait, max=retry.max_wait, jitter=retry.jitter
    )

    def wait(state) -> float:
        asked = _retry_after(state.outcome.exception() if state.outcome else None)
        return min(asked, retry.max_wait) if asked is not None else backoff(state)

    return Retrying(
        stop=stop_after_attempt(retry.max_attempts),
        wait=wait,
        retry=retry_if_exception(_is_transient),
        reraise=True,
        before_sleep=lambda state: logger.warning(
            "LLM call failed (%s); retry %d of %d",
            type(state.outcome.exception()).__name__,  # type: ignore[union-attr]  # set by then
            state.attempt_number,
            retry.max_attempts - 1,
        ),
    )


def invoke_with_retries(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> BaseMessage:
    """``model.invoke(messages, **kwargs)`` with bounded retries on transient errors.

    Waits what a 429's ``Retry-After`` asks (capped at ``max_wait``), else exponential backoff
    with jitter. Each failed attempt reaches callbacks as an error (``UsageTracker.errors``).
    """
    return _retrying(retry)(model.invoke, list(messages), **kwargs)


def generate_with_retries(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> list[str]:
    """Every reply text of one request (``n=...`` in ``kwargs`` asks for several), retried like
    :func:`invoke_with_retries`. The callbacks of the surrounding run (a graph's usage tracker)
    see the request; the cache answers it when the model has one.

    Servers differ in whether they honour ``n``: count what comes back.
    """
    callbacks = ensure_config().get("callbacks")

    def generate() -> list[str]:
        result = model.generate([list(messages)], callbacks=callbacks, **kwargs)
        return [generation.text for generation in result.generations[0]]

    return _retrying(retry)(generate)


class Usage(BaseModel):
    """LLM calls and tokens used by a run."""

    calls: int = 0
    """Successful LLM calls."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    """Failed attempts (each one retried, or the last one given up on)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            errors=self.errors + other.errors,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageLimits(StrictConfig):
    """A per-run budget. Costs are per 1,000 tokens, in whatever currency you price in."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    prompt_cost_per_1k: float = 0.0
    completion_cost_per_1k: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.prompt_cost_per_1k
            + usage.completion_tokens * self.completion_cost_per_1k
        ) / 1000

    def exceeded_by(self, usage: Usage, in_flight: int = 0) -> str | None:
        """Why ``usage`` (plus ``in_flight`` calls not finished yet) is over the budget, or None."""
        if self.max_calls is not None and usage.calls + in_flight >= self.max_calls:
            return f"{usage.calls + in_flight} LLM calls (limit {self.max_calls})"
        tokens = usage.prompt_tokens + usage.completion_tokens
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"{tokens} tokens (limit {self.max_tokens})"
        if self.max_cost is not None and self.cost(usage) >= self.max_cost:
            return f"cost {self.cost(usage):.4f} (limit {self.max_cost})"
        return None


class UsageTracker(BaseCallbackHandler):
    """A LangChain callback counting LLM calls and tokens (thread-safe), and enforcing
    optional :class:`UsageLimits`: once the budget is spent, the next call raises
    :class:`~armap_agents.errors.BudgetExceeded` before reaching the API. Episodes in flight then
    end with that error (and are not recorded, so a rerun with a larger budget resumes them).

    Pass it in ``config={"callbacks": [tracker]}`` or attach it to a model's callbacks.
    """

    raise_error = True  # let BudgetExceeded stop the call instead of being logged away

    def __init__(self, limits: UsageLimits | None = None) -> None:
        self._lock = threading.Lock()
        self.usage = Usage()
        self.limits = limits
        self._in_flight = 0
        self.exhausted: str | None = None
        """Why the budget stopped a call (None while it has not)."""

    def _check_budget(self) -> None:
        with self._lock:
            reason = self.limits.exceeded_by(self.usage, self._in_flight) if self.limits else None
            if reason is None:
                self._in_flight += 1  # a call slot is reserved until it ends
            else:
                self.exhausted = reason
        if reason is not None:
            raise BudgetExceeded(f"usage budget spent: {reason}")

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self._check_budget()

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        self._check_budget()

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        prompt = completion = 0
        for generations in response.generations:
            # n choices of one request: OpenAI-compatible servers (via langchain-openai) put
            # the request's totals on every choice; other models each choice's own usage
            metas = [
                getattr(getattr(gen, "message", None), "usage_metadata", None) or {}
                for gen in generations
            ]
            if not metas:
                continue
            prompt += metas[0].get("input_tokens", 0)
            if all(meta == metas[0] for meta in metas):
                completion += metas[0].get("output_tokens", 0)
            else:
                completion += sum(meta.get("output_tokens", 0) for meta in metas)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self.usage.calls += 1
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += completion

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        if isinstance(error, BudgetExceeded):
            return
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self.usage.errors += 1

    def add(self, usage: Usage) -> None:
        """Count ``usage``: requests made elsewhere (e.g. on a Ray worker)."""
        with self._lock:
            self.usage = self.usage + usage

    def set_usage(self, usage: Usage) -> None:
        """Replace the count with ``usage`` (an account that includes this tracker's)."""
        with self._lock:
            self.usage = usage.model_copy()
