"""A reward-guided model call for your own LangGraph agent: K candidates, the critic picks one.

:class:`RewardGuidedModel` wraps a (tool-calling) chat model. Where your agent calls the model,
it asks for ``k`` candidate next messages, scores each distinct one against the conversation
with any :class:`~armap_agents.reward.scorer.RewardScorer` in one batched call, and returns the
best as an ordinary ``AIMessage`` (tool calls and all)::

    guided = RewardGuidedModel(ChatOpenAI(model="gpt-4o-mini"), critic, k=4)

    # 1. a prebuilt ReAct agent: it calls guided.bind_tools(tools) itself
    agent = create_react_agent(guided, tools)

    # 2. your own StateGraph with MessagesState: the node the plain model call was
    graph.add_node("agent", reward_guided_node(chat.bind_tools(tools), critic, k=4))
    graph.add_node("tools", ToolNode(tools))

Why a ``Runnable`` and not a chat model: it is what LangGraph and LangChain take wherever a
model goes (``create_react_agent``, ``prompt | model``, ``model.invoke(messages)`` in a node),
and it has ``bind_tools``; being no ``BaseChatModel``, its run is a chain in a trace and the
``k`` requests inside it are the only LLM runs, so
:class:`~armap_agents.llm.UsageTracker` and budgets count exactly the requests made, once.
Those requests carry the ``nostream`` tag: ``stream_mode="messages"`` shows the chosen message
(when the node returns it), not every candidate.

**Candidates.** One request with ``n=k`` (``ChatOpenAI`` answers it with ``k`` choices); a
server that returns fewer (llama.cpp's, most fakes) gets the rest as separate requests, run
concurrently, each with its own ``seed``, and from then on only separate requests. A model that
refuses ``n`` (an error on the first request with it) is asked ``k`` times from then on; pass
``use_n=False`` to skip the try, ``seed=None`` for a provider that refuses a ``seed``. A
candidate whose request fails (after ``retry``) is dropped; all failing raise the first error,
and a spent budget (:class:`~armap_agents.errors.BudgetExceeded`) raises at once.

**What the critic reads** (:func:`conversation_trajectory`): the conversation as a
:class:`~armap_agents.types.Trajectory` written the way
:class:`~armap_agents.environments.tools.ToolEnvironment` writes an episode, so a critic
trained on a ToolEnvironment's trajectories reads the same text:

* intent: the first human message (or ``intent=``: a fixed text or a function of the messages);
* initial observation: ToolEnvironment's ``Tools: a, b. finish[answer] ends the episode.``,
  with the names of the tools bound to the model (or ``initial_observation=``);
* one step per tool call, the action ``tool[{"arg": value}]``
  (:func:`~armap_agents.environments.tools.format_tool_call`), the observation the tool's
  ``ToolMessage`` (``valid=False`` for an error status); an answer without tool calls is the
  action ``finish[answer]``; a human message after the first is the observation of the step
  before it (``User: ...``); system messages and the text beside tool calls are not read;
* a candidate is the history plus its step(s) with an empty observation, not taken yet
  (:func:`~armap_agents.graphs.live_rerank.pending`): ``... Action: a\\nObservation: ``.

**The choice.** Candidates are told apart by those actions; the distinct ones are scored in one
``scorer.score(intent, trajectories)`` call, plus any weighted ``objectives`` and
``prior_weight`` times the log of the share of the ``k`` samples that wrote the same actions
(the model's own preference: :func:`~armap_agents.reward.objectives.action_values`); the best
value wins, the first on ties. A single distinct candidate is returned unscored. The returned
message's ``response_metadata["reward_guidance"]`` records the actions, scores and choice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import ContextThreadPoolExecutor, patch_config

from armap_agents._seeding import stable_seed
from armap_agents.environments.tools import format_tool_call
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.llm import RetryPolicy, _retrying
from armap_agents.reward.objectives import WeightedObjective, action_values
from armap_agents.reward.scorer import RewardScorer
from armap_agents.types import Step, Trajectory

__all__ = [
    "GUIDANCE_KEY",
    "RewardGuidedModel",
    "conversation_trajectory",
    "message_actions",
    "reward_guided_node",
]

logger = logging.getLogger(__name__)

GUIDANCE_KEY = "reward_guidance"
"""The key of the chosen message's ``response_metadata`` that records the choice: ``actions``
(each distinct candidate's, joined by newlines), ``scores`` and ``values`` (None when a single
candidate was taken unscored), ``chosen`` (its index), ``samples`` (candidates received) and
``counts`` (how many of them wrote each distinct candidate's actions)."""

IntentArg = str | Callable[[Sequence[BaseMessage]], str] | None


# -- the conversation as a trajectory --------------------------------------------------------
def message_actions(message: AIMessage, finish_action: str = "finish") -> list[str]:
    """The actions an AI message takes, as ToolEnvironment writes them: one
    ``tool[{"arg": value}]`` per tool call (an unparsed call: its raw arguments), or
    ``finish[answer]`` for an answer without tool calls."""
    actions = [format_tool_call(call["name"], call["args"]) for call in message.tool_calls]
    actions += [
        f"{call.get('name') or 'unknown'}[{call.get('args') or ''}]"
        for call in message.invalid_tool_calls
    ]
    return actions or [f"{finish_action}[{str(message.text).strip()}]"]


def _tool_names(model: Any) -> list[str]:
    """The names of the tools bound to ``model`` (``model.bind_tools(...)``), if any."""
    bound = model.kwargs.get("tools") if isinstance(model, RunnableBinding) else None
    names = []
    for spec in bound or []:
        if isinstance(spec, Mapping):
            name = (spec.get("function") or {}).get("name") or spec.get("name")
        else:
            name = getattr(spec, "name", None)
        if isinstance(name, str):
            names.append(name)
    return names


def conversation_trajectory(
    messages: Sequence[BaseMessage],
    *,
    intent: IntentArg = None,
    initial_observation: str | None = None,
    tools: Sequence[str] = (),
    finish_action: str = "finish",
) -> Trajectory:
    """``messages`` as the trajectory a critic reads (see the module docstring): the intent,
    ToolEnvironment's first observation (from ``tools``' names unless ``initial_observation`` is
    given), one step per tool call with its tool's answer, ``finish[answer]`` for an answer."""
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    if intent is None:
        task = str(humans[0].text) if humans else ""
    else:
        task = intent if isinstance(intent, str) else str(intent(messages))
    if initial_observation is None:
        initial_observation = (
            f"Tools: {', '.join(tools)}. {finish_action}[answer] ends the episode." if tools else ""
        )
    steps: list[dict[str, Any]] = []
    by_call_id: dict[str, int] = {}
    first_human = humans[0] if humans else None  # it opens the episode: never an observation
    for message in messages:
        if isinstance(message, AIMessage):
            ids = [call.get("id") for call in message.tool_calls]
            for j, action in enumerate(message_actions(message, finish_action)):
                call_id = ids[j] if j < len(ids) else None
                if call_id:
                    by_call_id[call_id] = len(steps)
                steps.append({"action": action, "observation": None, "valid": True})
        elif isinstance(message, ToolMessage):
            index = by_call_id.get(message.tool_call_id)
            if index is None:  # no such call: the oldest step still waiting for its answer
                index = next((i for i, s in enumerate(steps) if s["observation"] is None), None)
            if index is not None:
                steps[index]["observation"] = str(message.text)
                steps[index]["valid"] = message.status != "error"
        elif isinstance(message, HumanMessage) and message is not first_human:
            said = f"User: {message.text}"
            if steps:
                before = steps[-1]["observation"]
                steps[-1]["observation"] = f"{before}\n{said}" if before else said
            else:
                initial_observation = f"{initial_observation}\n{said}".strip()
        # system messages are instructions to the model, not part of the episode
    return Trajectory(
        task_id="conversation",
        intent=task,
        initial_observation=initial_observation,
        steps=[
            Step(action=s["action"], observation=s["observation"] or "", valid=s["valid"])
            for s in steps
        ],
    )


def _pending(history: Trajectory, actions: Sequence[str]) -> Trajectory:
    """``history`` with ``actions`` appended as steps not taken yet (empty observations), as
    :func:`~armap_agents.graphs.live_rerank.pending` does for one action."""
    steps = [Step(action=a, observation="") for a in actions]
    return history.model_copy(update={"steps": [*history.steps, *steps]})


# -- the model ------------------------------------------------------------------------------
class RewardGuidedModel(Runnable[LanguageModelInput, AIMessage]):
    """A chat model call that returns the critic's pick of ``k`` candidate messages (see the
    module docstring).

    Args:
        model: a chat model, a chat model with tools bound (``model.bind_tools(tools)``), or any
            runnable that returns an ``AIMessage`` (then only separate requests are made).
        scorer: any :class:`~armap_agents.reward.scorer.RewardScorer`.
        k: candidates asked for per call (1: the plain model call, unscored).
        intent: what the critic judges against: None for the first human message, a text, or a
            function of the messages.
        initial_observation: the trajectory's first observation (None: ToolEnvironment's, from
            the bound tools' names).
        finish_action: the action an answer without tool calls is written as.
        objectives: weighted objectives added to the critic's score.
        prior_weight: weight of the log share of the samples that wrote a candidate's actions
            (0: the critic alone).
        use_n: ask for the ``k`` candidates in one request first (``n=k``).
        seed: the base of each request's ``seed`` (one per message count and candidate); None
            sends none.
        temperature: sent with every request when given (None: the model's own).
        retry: retries of each request on transient errors (default :class:`RetryPolicy`).
        max_concurrency: separate requests in flight at once (None: all).
    """

    def __init__(
        self,
        model: Runnable[Any, Any],
        scorer: RewardScorer,
        *,
        k: int = 4,
        intent: IntentArg = None,
        initial_observation: str | None = None,
        finish_action: str = "finish",
        objectives: Sequence[WeightedObjective] = (),
        prior_weight: float = 1.0,
        use_n: bool = True,
        seed: int | None = 0,
        temperature: float | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if not callable(getattr(scorer, "score", None)):
            raise ConfigError(
                f"{scorer!r} is not a reward scorer: it needs score(intent, trajectories)"
            )
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1 (or None)")
        if prior_weight < 0:
            raise ConfigError(f"prior_weight must be >= 0, got {prior_weight}")
        self.model = model
        self.scorer = scorer
        self.k = k
        self.intent = intent
        self.initial_observation = initial_observation
        self.finish_action = finish_action
        self.objectives = tuple(objectives)
        self.prior_weight = prior_weight
        self.use_n = use_n
        self.seed = seed
        self.temperature = temperature
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self._n_honoured: bool | None = None if use_n else False

    def __repr__(self) -> str:
        return f"RewardGuidedModel({self.model!r}, {self.scorer!r}, k={self.k})"

    @property
    def server_honours_n(self) -> bool | None:
        """Whether the model returned ``k`` choices for one request (None: not asked yet)."""
        return self._n_honoured

    def _options(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "intent": self.intent,
            "initial_observation": self.initial_observation,
            "finish_action": self.finish_action,
            "objectives": self.objectives,
            "prior_weight": self.prior_weight,
            "use_n": self.use_n,
            "seed": self.seed,
            "temperature": self.temperature,
            "retry": self.retry,
            "max_concurrency": self.max_concurrency,
        }

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RewardGuidedModel:
        """The same guidance over ``model.bind_tools(tools, **kwargs)`` (what
        ``create_react_agent`` calls)."""
        bind = getattr(self.model, "bind_tools", None)
        if bind is None:
            raise ConfigError(f"{self.model!r} cannot bind tools (it has no bind_tools)")
        return RewardGuidedModel(bind(tools, **kwargs), self.scorer, **self._options())

    def trajectory(self, messages: Sequence[BaseMessage]) -> Trajectory:
        """The conversation as the critic reads it (:func:`conversation_trajectory`)."""
        return conversation_trajectory(
            messages,
            intent=self.intent,
            initial_observation=self.initial_observation,
            tools=_tool_names(self.model),
            finish_action=self.finish_action,
        )

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """The best of ``k`` candidate replies to ``input`` (messages, a prompt value or a
        text); ``kwargs`` go to every request."""
        return self._call_with_config(self._choose, input, config, **kwargs)

    # -- one call ---------------------------------------------------------------------------
    def _choose(
        self,
        input: LanguageModelInput,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AIMessage:
        messages = _messages(input)
        candidates = self._sample(messages, config, kwargs)
        actions: list[list[str]] = []
        distinct: list[AIMessage] = []
        counts: list[int] = []
        for candidate in candidates:
            written = message_actions(candidate, self.finish_action)
            if written in actions:
                counts[actions.index(written)] += 1
            else:
                actions.append(written)
                distinct.append(candidate)
                counts.append(1)
        scores = values = None
        chosen = 0
        if len(distinct) > 1:
            history = self.trajectory(messages)
            trajectories = [_pending(history, a) for a in actions]
            scores = [float(s) for s in self.scorer.score(history.intent, trajectories)]
            if len(scores) != len(trajectories):
                raise ConfigError(
                    f"the scorer returned {len(scores)} scores for {len(trajectories)} trajectories"
                )
            log_priors = [math.log(c / len(candidates)) for c in counts]
            values = action_values(
                scores, trajectories, log_priors, self.objectives, self.prior_weight
            )
            chosen = max(range(len(values)), key=lambda i: (values[i], -i))
        best = distinct[chosen]
        record = {
            "actions": ["\n".join(a) for a in actions],
            "scores": scores,
            "values": values,
            "chosen": chosen,
            "samples": len(candidates),
            "counts": counts,
        }
        return best.model_copy(
            update={"response_metadata": {**best.response_metadata, GUIDANCE_KEY: record}}
        )

    def _sample(
        self, messages: list[BaseMessage], config: RunnableConfig, kwargs: dict[str, Any]
    ) -> list[AIMessage]:
        """``k`` candidates: one request with ``n=k`` where honoured, the rest separately."""
        quiet = patch_config(config)
        quiet["tags"] = [*config.get("tags", []), "nostream"]
        extra = dict(kwargs)
        if self.temperature is not None:
            extra.setdefault("temperature", self.temperature)
        got: list[AIMessage] = []
        chat, bound = _chat_model(self.model)
        if self.k > 1 and chat is not None and self._n_honoured is not False:
            got = self._one_request_for_k(chat, bound, messages, quiet, extra)
        seeds = [
            None if self.seed is None else stable_seed(self.seed, len(messages), i) % (2**31)
            for i in range(len(got), self.k)
        ]
        if not seeds:
            return got

        def request(seed: int | None) -> AIMessage | BaseException:
            options = extra if seed is None else {"seed": seed, **extra}
            try:
                reply = _retrying(self.retry)(self.model.invoke, messages, quiet, **options)
            except BudgetExceeded:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed candidate is dropped
                logger.warning("a candidate request failed: %r", exc)
                return exc
            return _ai_message(reply)

        if len(seeds) == 1:
            replies = [request(seeds[0])]
        else:
            # copies each thread's context, so the graph's callbacks (usage, budget) see the calls
            workers = min(len(seeds), self.max_concurrency or len(seeds))
            with ContextThreadPoolExecutor(max_workers=workers) as pool:
                replies = list(pool.map(request, seeds))
        got += [r for r in replies if isinstance(r, AIMessage)]
        if not got:
            raise next(r for r in replies if isinstance(r, BaseException))
        return got

    def _one_request_for_k(
        self,
        chat: BaseChatModel,
        bound: dict[str, Any],
        messages: list[BaseMessage],
        config: RunnableConfig,
        extra: dict[str, Any],
    ) -> list[AIMessage]:
        """The choices of one ``n=k`` request (fewer, or none, where ``n`` is not honoured)."""
        options = {**bound, **extra, "n": self.k}
        if self.seed is not None:
            options.setdefault("seed", stable_seed(self.seed, len(messages), "n") % (2**31))

        def generate() -> list[AIMessage]:
            result = chat.generate(
                [messages],
                callbacks=config.get("callbacks"),
                tags=config.get("tags"),
                metadata=config.get("metadata"),
                **options,
            )
            return [_ai_message(getattr(g, "message", g.text)) for g in result.generations[0]]

        try:
            got = _retrying(self.retry)(generate)[: self.k]
        except BudgetExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that refuses n: separate requests
            if self._n_honoured is not None:
                raise
            logger.info(
                "a request with n=%d failed (%r); sampling with separate requests", self.k, exc
            )
            self._n_honoured = False
            return []
        if self._n_honoured is None:
            self._n_honoured = len(got) >= self.k
            if not self._n_honoured:
                logger.info(
                    "the model returned %d of n=%d choices; sampling with separate requests",
                    len(got),
                    self.k,
                )
        return got


def reward_guided_node(
    model: Runnable[Any, Any],
    scorer: RewardScorer,
    *,
    k: int = 4,
    messages_key: str = "messages",
    **options: Any,
) -> Callable[..., dict[str, list[AIMessage]]]:
    """A LangGraph node for a ``MessagesState``-like graph: it reads ``state[messages_key]``
    and returns ``{messages_key: [best]}``, the critic's pick of ``k`` candidates of ``model``
    (bind your tools first: ``model.bind_tools(tools)``). ``options`` are
    :class:`RewardGuidedModel`'s. ``graph.add_node("agent", reward_guided_node(...))``."""
    if isinstance(model, RewardGuidedModel):
        raise ConfigError(
            "reward_guided_node takes the chat model itself (it wraps it in a RewardGuidedModel); "
            "a RewardGuidedModel would ask each of its k candidates k times"
        )
    guided = RewardGuidedModel(model, scorer, k=k, **options)

    def agent(state: Any, config: RunnableConfig) -> dict[str, list[AIMessage]]:
        messages = (
            state[messages_key] if isinstance(state, Mapping) else getattr(state, messages_key)
        )
        return {messages_key: [guided.invoke(messages, config)]}

    agent.guided = guided  # type: ignore[attr-defined]  # the model behind the node
    return agent


# -- helpers --------------------------------------------------------------------------------
def _messages(input: LanguageModelInput) -> list[BaseMessage]:
    if isinstance(input, PromptValue):
        return input.to_messages()
    if isinstance(input, str):
        return [HumanMessage(input)]
    return convert_to_messages(input)


def _chat_model(model: Any) -> tuple[BaseChatModel | None, dict[str, Any]]:
    """The chat model that can take ``n`` (and the keyword arguments bound to it), or None for
    another runnable."""
    if isinstance(model, BaseChatModel):
        return model, {}
    if isinstance(model, RunnableBinding) and isinstance(model.bound, BaseChatModel):
        return model.bound, dict(model.kwargs)
    return None, {}


def _ai_message(reply: Any) -> AIMessage:
    if isinstance(reply, AIMessage):
        return reply
    if isinstance(reply, BaseMessage):
        return AIMessage(reply.content)
    if isinstance(reply, str):
        return AIMessage(reply)
    raise ConfigError(f"the model returned {type(reply).__name__}, not a message")
