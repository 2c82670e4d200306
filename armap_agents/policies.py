"""Policies: what picks the next action. ``RandomPolicy``, ``LLMPolicy`` and the benchmark
stand-in ``ExpertPolicy`` share one interface.

A policy gets a :class:`PolicyContext` (task, history, current observation, valid actions when
the environment lists them) and returns an :class:`ActionChoice`. ``seed`` makes a sampled
choice reproducible; ``greedy=True`` asks for the policy's single most likely action.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables.config import ContextThreadPoolExecutor
from pydantic import BaseModel, ConfigDict, Field

from armap_agents._seeding import stable_seed
from armap_agents.errors import ConfigError
from armap_agents.llm import (
    RetryPolicy,
    generate_with_retries,
    invoke_with_retries,
    json_object_reply,
    max_tokens_kwargs,
    reply_text,
)
from armap_agents.prompts import StructuredFormat, action_response_format
from armap_agents.types import Step

__all__ = [
    "ActionChoice",
    "ExpertPolicy",
    "LLMPolicy",
    "Policy",
    "PolicyContext",
    "RandomPolicy",
    "default_action_prompt",
    "parse_action",
    "sample_actions",
    "uses_expert",
]

logger = logging.getLogger(__name__)


class PolicyContext(BaseModel):
    """Everything a policy may look at to choose the next action."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    instruction: str
    initial_observation: str
    steps: list[Step] = Field(default_factory=list)
    valid_actions: list[str] | None = None
    notes: list[str] = Field(default_factory=list)
    """Guidance for this attempt, e.g. reflections on earlier failed attempts (Reflexion)."""
    guide: str = ""
    """The environment's own prompt text (its :class:`~armap_agents.prompts.PromptGuide`)."""
    expert_action: str | None = None
    """What the environment's expert would do now (its
    :class:`~armap_agents.environments.base.ExpertHook`), filled only for a policy that
    :func:`uses_expert` (the benchmark stand-in :class:`ExpertPolicy`); None otherwise."""

    @property
    def observation(self) -> str:
        return self.steps[-1].observation if self.steps else self.initial_observation


class ActionChoice(BaseModel):
    """A chosen action. ``parsed=False`` means the policy gave up parsing and ``action`` is raw."""

    action: str
    raw: str = ""
    attempts: int = 1
    parsed: bool = True


@runtime_checkable
class Policy(Protocol):
    """Anything with ``act(context, *, seed, greedy) -> ActionChoice``."""

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice: ...


class RandomPolicy:
    """Uniform over the environment's valid actions; greedy takes the first valid action."""

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        if not context.valid_actions:
            raise ConfigError(
                "RandomPolicy needs an environment that lists its valid actions "
                "(valid_actions() returned nothing)"
            )
        action = (
            context.valid_actions[0]
            if greedy
            else random.Random(seed).choice(context.valid_actions)
        )
        return ActionChoice(action=action, raw=action)


class ExpertPolicy:
    """A reference policy of chosen strength: a benchmark stand-in for an LLM agent, not a
    product policy.

    At each step, with probability ``1 - epsilon`` it takes the action the environment's expert
    takes from the current state (the environment's
    :class:`~armap_agents.environments.base.ExpertHook`, which recovers after a detour), else a
    uniformly random valid action. ``epsilon=0`` is the expert, ``epsilon=1`` the random policy;
    in between, Sampling's success rate falls as ``epsilon`` grows, which is how the benchmarks
    grade policy strength (``--policy expert:0.3`` on the command line). Deterministic given the
    seed. ``greedy=True`` takes the expert's action (its most likely one). When the expert has
    no action (``None``), the step is random. The expert reads what only the environment knows
    (a solver, the gold plan, the target product) but never ``evaluate()``; planners see this
    policy as any other.
    """

    uses_expert = True

    def __init__(self, epsilon: float) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"expert epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def __repr__(self) -> str:
        return f"ExpertPolicy(epsilon={self.epsilon})"

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        rng = random.Random(seed)
        explore = not greedy and rng.random() < self.epsilon
        expert = context.expert_action
        if expert is not None and not explore:
            return ActionChoice(action=expert, raw=expert)
        if not context.valid_actions:
            if expert is not None:
                return ActionChoice(action=expert, raw=expert)
            raise ConfigError(
                "ExpertPolicy had neither an expert action nor valid actions to choose from"
            )
        action = rng.choice(context.valid_actions)
        return ActionChoice(action=action, raw=action)


def uses_expert(policy: object) -> bool:
    """Whether ``policy`` reads :attr:`PolicyContext.expert_action` (so the environment's
    expert hook is asked at every step)."""
    return bool(getattr(policy, "uses_expert", False))


PromptBuilder = Callable[[PolicyContext], list[BaseMessage]]


def default_action_prompt(context: PolicyContext, max_listed: int = 60) -> list[BaseMessage]:
    """A generic prompt: task, history, observation, valid actions, one-line answer format,
    plus the environment's guide (action syntax, rules, an example) when it has one."""
    system = (
        "You are an agent acting in a text environment. Choose the single next action that "
        "makes progress on the task. Reply with exactly one line of the form\n"
        "Action: <action>"
    )
    if context.guide:
        system += "\n\n" + context.guide
    lines = [f"Task: {context.instruction}"]
    if context.notes:
        lines.append(
            "Lessons from earlier attempts:\n" + "\n".join(f"- {n}" for n in context.notes)
        )
    lines.append(f"Start: {context.initial_observation}")
    for i, step in enumerate(context.steps, 1):
        lines.append(f"Step {i}: {step.action} -> {step.observation}")
    lines.append(f"Now: {context.observation}")
    if context.valid_actions:
        shown = context.valid_actions[:max_listed]
        more = len(context.valid_actions) - len(shown)
        lines.append("Valid actions:\n" + "\n".join(f"- {a}" for a in shown))
        if more > 0:
            lines.append(f"(and {more} more of the same form)")
    lines.append("Your next action?")
    return [SystemMessage(system), HumanMessage("\n".join(lines))]


MAX_REPLY_CHARS = 20_000
"""How much of a reply :func:`parse_action` reads: its last 20,000 characters, where the
action line of even a long reasoning reply is (the bound caps the cost of a runaway reply)."""
_SHOWN_CHARS = 200  # how much of an unusable action a retry message quotes

# linear time: a failed match backtracks only over the whitespace after one "action"
_ACTION_LINE = re.compile(r"action\s*[:：]\s*(.+)", re.IGNORECASE)


def _json_action(text: str) -> str | None:
    """The ``action`` of a structured reply ``{"action": "..."}``, if the reply is one."""
    value = json_object_reply(text)
    action = value.get("action") if value is not None else None
    return action if isinstance(action, str) else None


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut to :data:`_SHOWN_CHARS` characters."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return repr(text[:_SHOWN_CHARS]) + f" (cut; {len(text):,} characters)"


def parse_action(text: str, valid_actions: Sequence[str] | None) -> tuple[str | None, str]:
    """Extract an action from a model's reply.

    Returns ``(action, reason)``: ``action`` is None when the reply cannot be used, and
    ``reason`` says why (it is shown to the model on a retry). With ``valid_actions`` known,
    near misses (spacing, case, a valid action's unambiguous prefix) map onto a valid action.

    The action is the ``action`` of a JSON reply ``{"action": "..."}``, else the last
    ``Action: ...`` line, else the last non-blank line. Only the last :data:`MAX_REPLY_CHARS`
    characters are read. Never raises, and takes time linear in the part read: any string
    gives one of the two outcomes above.
    """
    text = text[-MAX_REPLY_CHARS:]
    structured = _json_action(text)
    matches = [structured] if structured is not None else _ACTION_LINE.findall(text)
    candidate = (
        matches[-1]
        if matches
        else next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "")
    )
    candidate = candidate.strip().strip("`*\"' ").rstrip(".")
    if not candidate:
        return None, "the reply was empty; answer with one line 'Action: <action>'."
    if valid_actions is None:
        return candidate, ""
    if candidate in valid_actions:
        return candidate, ""
    squashed = _squash(candidate)
    exact = [a for a in valid_actions if _squash(a) == squashed]
    if exact:
        return exact[0], ""
    prefixed = [a for a in valid_actions if _squash(a).startswith(squashed)]
    if len(prefixed) == 1:
        return prefixed[0], ""
    return None, f"{_shown(candidate)} is not one of the valid actions listed."


class LLMPolicy:
    """A LangChain chat model as a policy: prompt -> reply -> parsed action.

    An unusable reply is re-asked with the reason (and the part of the reply that was read,
    at most :data:`MAX_REPLY_CHARS` characters), at most ``max_reasks`` times; then the raw
    answer is returned with ``parsed=False`` and the environment records it as invalid. No
    reply makes :meth:`act` or :meth:`act_many` raise (a planner's search goes on): whatever
    the model writes is parsed by :func:`parse_action`, which never raises, and lone
    surrogates in it become U+FFFD (:func:`~armap_agents.llm.reply_text`). Transient API errors
    are retried per ``retry``; an error that outlasts the retries, or a spent budget, is raised.

    ``structured`` asks the server for a JSON reply ``{"action": ...}`` constrained to the valid
    actions when the environment lists them (:func:`~armap_agents.prompts.action_response_format`):
    ``"json_schema"`` for OpenAI's structured outputs, ``"json_object"`` for llama.cpp (a
    grammar). Leave it None for servers that support neither; text replies are parsed either way.
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        prompt: PromptBuilder = default_action_prompt,
        temperature: float = 1.0,
        max_reasks: int = 2,
        retry: RetryPolicy | None = None,
        max_tokens: int | None = 64,
        structured: StructuredFormat | None = None,
    ) -> None:
        self.model = model
        self.structured = structured
        self.max_tokens = max_tokens
        self.prompt = prompt
        self.temperature = temperature
        self.max_reasks = max_reasks
        self.retry = retry or RetryPolicy()
        self._n_honoured: bool | None = None

    @property
    def server_honours_n(self) -> bool | None:
        """Whether the model returned ``n`` choices for one request (None: not asked yet)."""
        return self._n_honoured

    def _call_kwargs(
        self, seed: int, greedy: bool, valid_actions: Sequence[str] | None
    ) -> dict[str, Any]:
        kwargs = {
            "temperature": 0.0 if greedy else self.temperature,
            "seed": seed % (2**31),
            **max_tokens_kwargs(self.model, self.max_tokens),
        }
        if self.structured is not None:
            kwargs["response_format"] = action_response_format(valid_actions, self.structured)
        return kwargs

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        messages = self.prompt(context)
        reply = invoke_with_retries(
            self.model,
            messages,
            self.retry,
            **self._call_kwargs(seed, greedy, context.valid_actions),
        )
        return self._parse_or_reask(context, messages, str(reply.content), seed, greedy)

    def act_many(self, context: PolicyContext, n: int, *, seed: int) -> list[ActionChoice]:
        """``n`` sampled actions for one context (MCTS expansion uses this).

        One request asks for ``n`` choices; servers that ignore ``n`` (llama.cpp's) return
        fewer, so what came back is counted and the rest is asked for in separate requests
        with distinct seeds, concurrently. Once a server has returned fewer than asked, later
        calls skip straight to separate requests.
        """
        if n <= 0:
            return []
        messages = self.prompt(context)
        texts: list[str] = []
        if n > 1 and self._n_honoured is not False:
            texts = generate_with_retries(
                self.model,
                messages,
                self.retry,
                n=n,
                **self._call_kwargs(seed, False, context.valid_actions),
            )[:n]
            if self._n_honoured is None:
                self._n_honoured = len(texts) >= n
                if not self._n_honoured:
                    logger.info(
                        "the model returned %d of n=%d choices; sampling with separate requests",
                        len(texts),
                        n,
                    )
        seeds = [stable_seed(seed, "sample", i) for i in range(n)]

        def choose(index: int) -> ActionChoice:
            if index < len(texts):
                return self._parse_or_reask(context, messages, texts[index], seeds[index], False)
            return self.act(context, seed=seeds[index])

        # copies each thread's context, so a graph's callbacks (usage, budget) see the calls
        with ContextThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(choose, range(n)))

    def _parse_or_reask(
        self,
        context: PolicyContext,
        messages: list[BaseMessage],
        raw: str,
        seed: int,
        greedy: bool,
    ) -> ActionChoice:
        raw = reply_text(raw)
        for attempt in range(1, self.max_reasks + 2):
            if attempt > 1:
                reply = invoke_with_retries(
                    self.model,
                    messages,
                    self.retry,
                    **self._call_kwargs(seed + attempt - 1, greedy, context.valid_actions),
                )
                raw = reply_text(reply.content)
            action, reason = parse_action(raw, context.valid_actions)
            if action is not None:
                return ActionChoice(action=action, raw=raw, attempts=attempt)
            # the part of the reply that was read: a runaway reply is not sent back whole
            read = AIMessage(raw[-MAX_REPLY_CHARS:])
            messages = [*messages, read, HumanMessage(f"Not usable: {reason} Try again.")]
        fallback = raw.strip().splitlines()[-1] if raw.strip() else ""
        return ActionChoice(action=fallback, raw=raw, attempts=self.max_reasks + 1, parsed=False)


def sample_actions(
    policy: Policy, context: PolicyContext, n: int, *, seed: int
) -> list[ActionChoice]:
    """``n`` sampled actions: the policy's ``act_many`` when it has one (one request with ``n``
    choices), else ``n`` calls of ``act`` with distinct seeds."""
    act_many = getattr(policy, "act_many", None)
    if act_many is not None:
        return act_many(context, n, seed=seed)
    return [policy.act(context, seed=stable_seed(seed, "sample", i)) for i in range(n)]
