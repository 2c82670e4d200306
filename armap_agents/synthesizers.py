"""Synthesizers turn explored trajectories into ``(intent, positive, negative)`` triplets.

Two implementations behind one interface (:class:`Synthesizer`):

* :class:`RelabelSynthesizer` wraps an environment's programmatic relabeler (exact labels);
* :class:`LLMSynthesizer` asks a chat model, in hindsight, for the intent a trajectory fulfils
  and for a plausible trajectory that does not fulfil it. The reply is JSON validated against
  a schema; a malformed reply is re-asked with the error a bounded number of times, then the
  trajectory is skipped and counted.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import typing
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from armap_agents.environments.base import Relabeler
from armap_agents.errors import ConfigError
from armap_agents.llm import RetryPolicy, invoke_with_retries, max_tokens_kwargs, reply_text
from armap_agents.types import Step, Trajectory, Triplet, render_trajectory

__all__ = [
    "LLMSynthesizer",
    "RelabelSynthesizer",
    "SynthesisOutput",
    "SynthesisResult",
    "Synthesizer",
    "default_synthesis_prompt",
    "relabeler_options",
]

logger = logging.getLogger(__name__)


class SynthesisResult(BaseModel):
    """Triplets made from one task's trajectories, and how many trajectories were skipped."""

    triplets: list[Triplet] = Field(default_factory=list)
    skipped: int = 0
    errors: list[str] = Field(default_factory=list)


@runtime_checkable
class Synthesizer(Protocol):
    """Anything with ``synthesize(trajectories_of_one_task, *, seed) -> SynthesisResult``."""

    def synthesize(self, trajectories: list[Trajectory], *, seed: int) -> SynthesisResult: ...


class RelabelSynthesizer:
    """An environment's :class:`~armap_agents.environments.base.Relabeler` as a synthesizer."""

    def __init__(self, relabeler: Relabeler) -> None:
        self.relabeler = relabeler

    def synthesize(self, trajectories: list[Trajectory], *, seed: int) -> SynthesisResult:
        return SynthesisResult(triplets=self.relabeler.relabel(trajectories, seed))


def relabeler_options(
    constructor: Callable[..., Relabeler], options: Mapping[str, Any]
) -> dict[str, Any]:
    """``options`` for a relabeler (``armap synthesize --relabel-option truncated=false``),
    checked against ``constructor``'s keyword arguments and converted to their annotated types
    (``"no"`` to ``False`` for a ``bool``, ``"4"`` to ``4`` for an ``int``).

    Raises :class:`~armap_agents.errors.ConfigError` naming the relabeler's options for a key it
    does not take, and saying what is wrong with a value its annotation refuses."""
    name = getattr(constructor, "__name__", repr(constructor))
    try:
        parameters = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return dict(options)
    settable = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    unknown = sorted(set(options) - set(settable))
    if unknown and not takes_any:
        raise ConfigError(
            f"relabeler {name} has no option {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(settable) or 'none'}"
        )
    try:
        # a class: the annotations of its __init__ (mypy's [misc] warning is for instances)
        init = constructor.__init__ if isinstance(constructor, type) else constructor  # type: ignore[misc]
        hints = typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - annotations that do not resolve: values kept as given
        hints = {}
    checked = {}
    for key, value in options.items():
        try:
            adapter = TypeAdapter(hints[key], config=ConfigDict(arbitrary_types_allowed=True))
        except Exception:  # noqa: BLE001 - no annotation, or none pydantic can check
            checked[key] = value
            continue
        try:
            checked[key] = adapter.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(error["msg"] for error in exc.errors())
            raise ConfigError(f"relabeler {name} option {key}={value!r}: {problems}") from None
    return checked


class _NegativeStep(BaseModel):
    action: str = Field(min_length=1, max_length=120)
    observation: str = Field(min_length=1, max_length=300)


class SynthesisOutput(BaseModel):
    """The JSON an LLM synthesizer must reply with."""

    # the bounds also bound what a grammar-constrained local model can ramble into
    intent: str = Field(min_length=8, max_length=300, description="the task the trajectory fulfils")
    negative: list[_NegativeStep] = Field(
        min_length=1,
        max_length=12,
        description="a plausible trajectory that does not fulfil the intent",
    )

    @field_validator("intent")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


SynthesisPrompt = Callable[[Trajectory], list[BaseMessage]]


def default_synthesis_prompt(trajectory: Trajectory, guide: str = "") -> list[BaseMessage]:
    """Hindsight prompt: describe what the trajectory achieved, then write a near-miss.
    ``guide`` is the environment's :attr:`~armap_agents.prompts.PromptGuide.synthesis` text."""
    system = (
        "You label agent trajectories for training a reward model. Given a trajectory, "
        "(1) write the task intent that this trajectory fulfils, in the same style as the "
        "original instruction but describing what was actually achieved, and (2) write a "
        "negative trajectory: the same kind of steps, plausible-looking, starting from the same "
        "first observation, that does NOT fulfil your intent. Reply with JSON only:\n"
        '{"intent": "...", "negative": [{"action": "...", "observation": "..."}, ...]}'
    )
    if guide:
        system += "\n\n" + guide
    user = (
        f"Original instruction: {trajectory.intent}\nTrajectory:\n{render_trajectory(trajectory)}"
    )
    return [SystemMessage(system), HumanMessage(user)]


MAX_SYNTHESIS_REPLY_CHARS = 100_000
"""The longest reply :func:`parse_synthesis` reads. The schema's bounds keep a valid reply
under about 10,000 characters; a longer one is refused (with a message) without a parse."""


def parse_synthesis(text: str) -> SynthesisOutput:
    """The :class:`SynthesisOutput` inside a reply (code fences and chatter around it allowed):
    the JSON from the reply's first ``{`` to its last ``}``.

    Raises ``ValueError`` with a message fit to show the model on a retry, and nothing else,
    for any string that does not hold one: no JSON object, JSON that does not parse (nested
    too deeply, an integer too long to convert, ...), JSON that does not match the schema, or a
    reply longer than :data:`MAX_SYNTHESIS_REPLY_CHARS`. Takes time linear in the reply.
    """
    if len(text) > MAX_SYNTHESIS_REPLY_CHARS:
        raise ValueError(
            f"the reply is {len(text):,} characters long (at most "
            f"{MAX_SYNTHESIS_REPLY_CHARS:,} are read); reply with the JSON object only"
        )
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object found in the reply")
    try:
        data = json.loads(text[start : end + 1])
    except ValueError as exc:  # a JSONDecodeError, or an integer longer than Python converts
        raise ValueError(f"the JSON does not parse: {exc}") from None
    except RecursionError:
        raise ValueError("the JSON does not parse: it is nested too deeply") from None
    try:
        return SynthesisOutput.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"the JSON does not match the schema: {problems}") from None


class LLMSynthesizer:
    """Hindsight intents and negatives written by a chat model (see the module docstring)."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        prompt: SynthesisPrompt | None = None,
        guide: str = "",
        max_attempts: int = 3,
        max_per_task: int | None = None,
        temperature: float = 0.7,
        retry: RetryPolicy | None = None,
        response_format: dict | None = None,
        max_tokens: int | None = 512,
    ) -> None:
        """``response_format`` is passed to every call, for models that constrain their output
        (e.g. ``{"type": "json_object", "schema": SynthesisOutput.model_json_schema()}`` for
        llama.cpp); the reply is validated either way. ``guide`` (an environment's
        ``prompt_guide.synthesis``) is added to the default prompt; a custom ``prompt`` replaces
        the default entirely."""
        if max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        self.model = model
        self.prompt = prompt or functools.partial(default_synthesis_prompt, guide=guide)
        self.max_attempts = max_attempts
        self.max_per_task = max_per_task
        self.temperature = temperature
        self.retry = retry or RetryPolicy()
        self.response_format = response_format
        self.max_tokens = max_tokens

    def _one(self, trajectory: Trajectory, seed: int) -> SynthesisOutput:
        messages = self.prompt(trajectory)
        error = ""
        for attempt in range(self.max_attempts):
            extra = max_tokens_kwargs(self.model, self.max_tokens)
            if self.response_format:
                extra["response_format"] = self.response_format
            reply = invoke_with_retries(
                self.model,
                messages,
                self.retry,
                temperature=self.temperature,
                seed=(seed + attempt) % (2**31),
                **extra,
            )
            text = reply_text(reply.content)
            try:
                out = parse_synthesis(text)
            except ValueError as exc:
                error = str(exc)
                messages = [
                    *messages,
                    AIMessage(text),
                    HumanMessage(f"That reply was not usable: {error}. Reply with the JSON only."),
                ]
                continue
            if [(s.action, s.observation) for s in out.negative] == [
                (s.action, s.observation) for s in trajectory.steps
            ]:
                error = "the negative is identical to the positive"
                messages = [
                    *messages,
                    AIMessage(text),
                    HumanMessage(f"{error}; write a different one."),
                ]
                continue
            return out
        raise ValueError(error)

    def synthesize(self, trajectories: list[Trajectory], *, seed: int) -> SynthesisResult:
        result = SynthesisResult()
        usable = [t for t in trajectories if t.steps]
        if self.max_per_task is not None:
            usable = usable[: self.max_per_task]
        result.skipped += len(trajectories) - len(usable)
        for i, trajectory in enumerate(usable):
            try:
                out = self._one(trajectory, seed + 7919 * i)
            except ValueError as exc:
                logger.warning("skipping trajectory %s: %s", trajectory.episode_id, exc)
                result.skipped += 1
                result.errors.append(f"{trajectory.episode_id}: {exc}")
                continue
            positive = trajectory.model_copy(update={"intent": out.intent, "evaluation": None})
            negative = positive.model_copy(
                update={
                    "steps": [
                        Step(action=s.action, observation=s.observation) for s in out.negative
                    ],
                    "episode_id": trajectory.episode_id + "~llm-negative",
                    "info": {"synthetic": True},
                }
            )
            result.triplets.append(
                Triplet(
                    intent=out.intent,
                    positive=positive,
                    negative=negative,
                    task_id=trajectory.task_id,
                    source="llm",
                )
            )
        return result
