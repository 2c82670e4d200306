"""Your LangChain tools as an environment: explore, train a reward model and plan over them.

:class:`ToolEnvironment` turns a list of tools (any ``BaseTool``, e.g. functions decorated with
``@tool``), a list of tasks and a success check into an
:class:`~armap_agents.environments.base.Environment`::

    env = ToolEnvironment(
        tools=[search, add_to_cart],
        tasks=[ToolTask(id="1", instruction="Buy the cheapest fruit", data={"item": "banana"})],
        success=lambda task, episode: episode.answer == task.data["item"],
    )

* **Actions** are tool calls, one per step, written ``tool_name[{"arg": value}]`` (the
  arguments as a JSON object; ``tool_name[]`` for a tool without arguments). A tool with a
  single (required) argument also takes ``tool_name[value]``, and the Python-call form
  ``tool_name(arg=value)`` is accepted too. ``finish[answer]`` ends the episode with an answer
  (``finish[]`` without one). An unknown tool, arguments that do not parse or do not fit the
  tool's schema, and a tool that raises are answered ``valid=False`` with an observation
  saying why; nothing raises.
* **The observation** after a call is what the tool returned, as text (long outputs are cut to
  ``max_observation_chars``).
* **Success** is ``success(task, episode)``: ``True``/``False``, or a score (success at
  ``success_threshold``), computed from the :class:`ToolEpisode` (the tool calls that ran, with
  their outputs, and the final answer). It is the environment's verdict, for metrics and the
  relabeler only; planners never see it.
* **Valid actions**: ``None`` in general (an LLM policy writes calls freely), so a
  :class:`~armap_agents.policies.RandomPolicy` cannot explore. Two ways to list them: pass
  ``action_candidates(task, episode) -> list[str]`` (e.g. the items seen in search results), or
  give every tool only arguments with finitely many values (``Literal``, ``Enum``, ``bool``;
  arguments with defaults may be anything) and every combination is listed, plus ``finish[]``,
  up to ``max_enumerated`` actions. A listed action set also constrains an LLM policy's
  structured output, so the listing is all or nothing: if one tool cannot be enumerated,
  nothing is listed.
* **State**: tools shared by every episode must be stateless (or their state is yours to
  manage); for tools with per-episode state (a cart, an in-memory database), pass a function
  ``tools(task) -> list[BaseTool]`` instead of a list: it is called at every ``reset``.
* **Prompts**: :attr:`ToolEnvironment.prompt_guide` is written from the tools' names,
  descriptions and argument schemas, so an :class:`~armap_agents.policies.LLMPolicy` knows the
  action format.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import enum
import itertools
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from armap_agents.errors import ConfigError, UnknownName
from armap_agents.prompts import PromptGuide
from armap_agents.types import Evaluation, Observation, StepResult

__all__ = [
    "ActionCandidates",
    "SuccessCheck",
    "ToolCall",
    "ToolEnvironment",
    "ToolEpisode",
    "ToolTask",
    "format_tool_call",
]


class ToolTask(BaseModel):
    """One task: an id, the instruction the agent sees, its split, and any data the success
    check needs (the expected answer, a target state ...)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    split: str = "train"
    data: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    """A tool call that ran: the tool, its arguments, and what it returned (as text)."""

    model_config = ConfigDict(frozen=True)

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    output: str = ""


class ToolEpisode(BaseModel):
    """What happened in an episode so far: what a success check and ``action_candidates`` see."""

    task: ToolTask
    calls: list[ToolCall] = Field(default_factory=list)
    """The tool calls that ran, in order (invalid actions are not in here)."""
    answer: str | None = None
    """The ``finish[answer]`` answer (None before finishing, or for ``finish[]``)."""
    finished: bool = False
    """Whether ``finish`` was called (an episode can also end at ``max_steps`` calls)."""
    invalid_actions: int = 0


SuccessCheck = Callable[[ToolTask, ToolEpisode], bool | float]
"""``(task, episode) -> bool | float``: the environment's verdict on an episode."""
ActionCandidates = Callable[[ToolTask, ToolEpisode], Sequence[str] | None]
"""``(task, episode) -> actions``: the actions to offer now (what ``valid_actions`` returns)."""
ToolsArg = Sequence[BaseTool] | Callable[[ToolTask], Sequence[BaseTool]]

MAX_ACTION_CHARS = 20_000
"""The longest action :meth:`ToolEnvironment.step` reads; a longer one is invalid unread (the
bound caps the cost of parsing a runaway reply's arguments)."""

# linear time: anchored, and a failed match backtracks once over the text after the bracket
_BRACKET_CALL = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.\-]*)\s*\[(?P<body>.*)\]\s*$", re.DOTALL)
_PAREN_CALL = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.\-]*)\s*\((?P<body>.*)\)\s*$", re.DOTALL)


def format_tool_call(tool: str, args: Mapping[str, Any] | None = None) -> str:
    """The canonical text of a call: ``tool[{"arg": value}]``, or ``tool[]`` without arguments."""
    if not args:
        return f"{tool}[]"
    return f"{tool}[{json.dumps(dict(args), ensure_ascii=False)}]"


class ToolEnvironment:
    """LangChain tools, tasks and a success check as an environment (see the module docstring).

    Args:
        tools: the tools, or a function ``task -> tools`` called at every reset (for tools with
            per-episode state). Names must be unique and differ from ``finish_action``.
        tasks: :class:`ToolTask` objects or mappings with ``id``, ``instruction`` and
            optionally ``split`` (default ``"train"``) and ``data``.
        success: ``(task, episode) -> bool | float``.
        name: the environment's name (in reports).
        max_steps: tool calls per episode; the episode ends after this many (invalid actions
            do not count: they change nothing).
        finish_action: the action that ends an episode with an answer.
        action_candidates: what :meth:`valid_actions` returns, given the task and the episode
            so far; without it, the enumerable calls (see the module docstring) or ``None``.
        success_threshold: a float score counts as success from this value on.
        max_enumerated: the most actions listed by enumeration (beyond it: ``None``).
        max_observation_chars: tool outputs are cut to this length.
        instructions: extra text for the policy's prompt (conventions of your tools).
    """

    def __init__(
        self,
        tools: ToolsArg,
        tasks: Sequence[ToolTask | Mapping[str, Any]],
        success: SuccessCheck,
        *,
        name: str = "tools",
        max_steps: int = 10,
        finish_action: str = "finish",
        action_candidates: ActionCandidates | None = None,
        success_threshold: float = 1.0,
        max_enumerated: int = 200,
        max_observation_chars: int = 1000,
        instructions: str = "",
    ) -> None:
        if max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if not callable(success):
            raise ConfigError("success must be a function (task, episode) -> bool | float")
        self.name = name
        self.max_steps = max_steps
        self.finish_action = finish_action
        self.success_threshold = success_threshold
        self.max_observation_chars = max_observation_chars
        self._success = success
        self._candidates = action_candidates
        self._tasks = _tasks_by_id(tasks)
        self._tools_arg = tools
        first = next(iter(self._tasks.values()))
        self._tools = self._checked_tools(first)
        self._enumerated = (
            None if action_candidates is not None else self._enumerate(max_enumerated)
        )
        self.prompt_guide = self._guide(instructions)
        self._episode: ToolEpisode | None = None

    # -- set-up ----------------------------------------------------------------------------
    def _checked_tools(self, task: ToolTask) -> dict[str, BaseTool]:
        tools = self._tools_arg(task) if callable(self._tools_arg) else self._tools_arg
        out: dict[str, BaseTool] = {}
        for tool in tools:
            if not isinstance(tool, BaseTool):
                raise ConfigError(
                    f"{tool!r} is not a LangChain tool (BaseTool); decorate the function "
                    "with @tool from langchain_core.tools"
                )
            if tool.name in out:
                raise ConfigError(f"two tools are named {tool.name!r}; tool names must differ")
            if tool.name == self.finish_action:
                raise ConfigError(
                    f"a tool is named {tool.name!r}, the finishing action; rename it or pass "
                    "another finish_action"
                )
            out[tool.name] = tool
        if not out:
            raise ConfigError("ToolEnvironment needs at least one tool")
        return out

    def _enumerate(self, limit: int) -> list[str] | None:
        per_tool: list[list[str]] = []
        for name, tool in self._tools.items():
            choices = _enumerable_arguments(tool)
            if choices is None:
                return None
            per_tool.append([format_tool_call(name, args) for args in choices])
        actions = [*itertools.chain.from_iterable(per_tool), f"{self.finish_action}[]"]
        return actions if len(actions) <= limit else None

    def _guide(self, instructions: str) -> PromptGuide:
        lines = [
            "Actions are tool calls, one per step, written tool_name[ARGUMENTS] with the "
            'arguments as a JSON object, e.g. tool_name[{"arg": 1}] (tool_name[] for a tool '
            f"without arguments). {self.finish_action}[answer] ends the episode with your "
            "answer. Each observation is what the tool returned.",
            "Tools:",
        ]
        for name, tool in self._tools.items():
            lines.append(f"- {_signature(name, tool)}: {_one_line(tool.description)}")
        if instructions:
            lines.append(instructions)
        example = self._enumerated[0] if self._enumerated else None
        if example is None:
            name = next(iter(self._tools))
            example = f"{name}[{_example_arguments(self._tools[name])}]"
        lines.append(f"Example: Action: {example}")
        synthesis = (
            "Actions are tool calls written tool_name[JSON arguments] with the tools: "
            f"{', '.join(self._tools)}; {self.finish_action}[answer] ends an episode. An intent "
            "is an instruction for what to achieve with the tools. A negative calls the same "
            "tools in the same format, with observations as the tools would answer, and does "
            "not achieve the intent."
        )
        return PromptGuide(action="\n".join(lines), synthesis=synthesis)

    # -- the protocol ----------------------------------------------------------------------
    def task_ids(self, split: str = "train") -> list[str]:
        """Ids of the tasks of ``split`` (``"all"``: every task), in the order given."""
        if split == "all":
            return list(self._tasks)
        ids = [t.id for t in self._tasks.values() if t.split == split]
        if not ids:
            splits = sorted({t.split for t in self._tasks.values()})
            raise UnknownName(
                f"no task of split {split!r}; the tasks' splits are {splits} (or 'all')"
            )
        return ids

    def task(self, task_id: str) -> ToolTask:
        """The task with this id."""
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownName(f"unknown task {task_id!r} of environment {self.name!r}") from None

    def reset(self, task_id: str) -> Observation:
        task = self.task(task_id)
        if callable(self._tools_arg):
            self._tools = self._checked_tools(task)
        self._episode = ToolEpisode(task=task)
        tools = ", ".join(self._tools)
        return Observation(
            instruction=task.instruction,
            text=f"Tools: {tools}. {self.finish_action}[answer] ends the episode.",
        )

    @property
    def episode(self) -> ToolEpisode:
        """The episode so far (a copy)."""
        return self._require_started().model_copy(deep=True)

    def _require_started(self) -> ToolEpisode:
        if self._episode is None:
            raise RuntimeError("call reset(task_id) before step()")
        return self._episode

    def _over(self, episode: ToolEpisode) -> bool:
        return episode.finished or len(episode.calls) >= self.max_steps

    def valid_actions(self) -> list[str] | None:
        """``action_candidates(task, episode)`` when given, else every call when all tools'
        arguments are enumerable, else ``None``; ``[]`` once the episode is over."""
        episode = self._require_started()
        if self._over(episode):
            return []
        if self._candidates is not None:
            listed = self._candidates(episode.task, episode.model_copy(deep=True))
            return None if listed is None else list(listed)
        return None if self._enumerated is None else list(self._enumerated)

    def step(self, action: str) -> StepResult:
        episode = self._require_started()
        if self._over(episode):
            return self._invalid("the episode is over.")
        if len(action) > MAX_ACTION_CHARS:
            return self._invalid(
                f"the action is {len(action):,} characters long (at most {MAX_ACTION_CHARS:,} "
                'are read); write one call like tool_name[{"arg": 1}].'
            )
        parsed = self._parse(action)
        if isinstance(parsed, str):
            return self._invalid(parsed)
        name, args = parsed
        if name == self.finish_action:
            episode.answer = args
            episode.finished = True
            said = f" with the answer {args!r}" if args is not None else ""
            return StepResult(observation=f"Finished{said}.", done=True)
        tool = self._tools[name]
        output = _invoke(tool, args)
        if isinstance(output, _Failure):
            return self._invalid(output.why)
        text = _shorten(output, self.max_observation_chars)
        episode.calls.append(ToolCall(tool=name, args=args, output=text))
        done = self._over(episode)
        if done:
            text += f" (that was call {self.max_steps} of {self.max_steps}: the episode is over)"
        return StepResult(observation=text, done=done, info={"tool": name})

    def evaluate(self) -> Evaluation:
        """``success(task, episode)``: a bool, or a score compared with ``success_threshold``."""
        episode = self._require_started()
        verdict = self._success(episode.task, episode.model_copy(deep=True))
        if isinstance(verdict, bool):
            return Evaluation(success=verdict, score=float(verdict))
        try:
            score = float(verdict)
        except (TypeError, ValueError):
            raise TypeError(
                f"the success check returned {type(verdict).__name__}; return a bool or a number"
            ) from None
        return Evaluation(success=score >= self.success_threshold, score=score)

    def close(self) -> None:
        """Nothing to release (tools that hold resources are yours to close)."""

    # -- parsing ---------------------------------------------------------------------------
    def _invalid(self, why: str) -> StepResult:
        if self._episode is not None:
            self._episode.invalid_actions += 1
        return StepResult(observation=f"Invalid action: {why}", valid=False, info={"error": why})

    def _parse(self, action: str) -> tuple[str, Any] | str:
        """``(tool name, arguments)`` (for ``finish``: the answer), or why it does not parse."""
        text = action.strip()
        if text.lower().startswith("action:"):
            text = text[len("action:") :].strip()
        usage = 'write one call like tool_name[{"arg": 1}]'
        match = _BRACKET_CALL.match(text) or _PAREN_CALL.match(text)
        if match is None:
            return f"could not read {action!r} as a tool call; {usage}."
        name, body = match["name"], match["body"].strip()
        if name == self.finish_action:
            return name, _answer(body)
        if name not in self._tools:
            known = ", ".join([*self._tools, self.finish_action])
            return f"there is no tool {name!r}; the tools are {known}."
        tool = self._tools[name]
        parameters = list(tool.args)
        if match.re is _PAREN_CALL and not body.startswith("{"):
            args = _python_arguments(body, parameters)
        else:
            args = _json_arguments(body, _single_argument(tool))
        if isinstance(args, str):
            return f"the arguments of {name} do not parse: {args}; {usage}."
        unknown = [k for k in args if k not in parameters]
        if unknown:
            takes = ", ".join(parameters) or "no arguments"
            return f"{name} takes {takes}, not {', '.join(map(repr, unknown))}."
        return name, args


class _Failure(typing.NamedTuple):
    why: str


def _tasks_by_id(tasks: Sequence[ToolTask | Mapping[str, Any]]) -> dict[str, ToolTask]:
    out: dict[str, ToolTask] = {}
    for raw in tasks:
        try:
            task = raw if isinstance(raw, ToolTask) else ToolTask.model_validate(dict(raw))
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"not a task (id, instruction, split, data): {raw!r}: {exc}"
            ) from None
        if task.id in out:
            raise ConfigError(f"two tasks have the id {task.id!r}")
        out[task.id] = task
    if not out:
        raise ConfigError("ToolEnvironment needs at least one task")
    return out


def _answer(body: str) -> str | None:
    """The answer as written (``finish[1.20]`` is ``"1.20"``); a JSON string, or an object with
    one string value (``finish[{"answer": "x"}]``), is unwrapped."""
    if not body:
        return None
    value, error = _loads(body)
    if error is not None:
        return body
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value if isinstance(value, str) else body


def _single_argument(tool: BaseTool) -> str | None:
    """The argument a bare value fills: the tool's only argument, or its only required one."""
    schema = _json_schema(tool)
    names = list(schema.get("properties", {}))
    if len(names) == 1:
        return names[0]
    required = [n for n in names if n in set(schema.get("required", []))]
    return required[0] if len(required) == 1 else None


def _json_arguments(body: str, single: str | None) -> dict[str, Any] | str:
    """A JSON object of arguments, or a bare value (JSON or plain text) for ``single``."""
    if not body:
        return {}
    value, error = _loads(body)
    if error is not None:
        if single is not None:  # tool[plain text]
            return {single: body.strip("\"'")}
        return f"not a JSON object ({error})"
    if isinstance(value, dict):
        return value
    if single is not None:
        return {single: value}
    return "expected a JSON object of arguments"


def _loads(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` for JSON text, else ``(None, why it does not parse)``. Never raises."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, exc.msg
    except ValueError:  # an integer longer than Python converts
        return None, "an integer with too many digits"
    except RecursionError:
        return None, "nested too deeply"


def _python_arguments(body: str, parameters: list[str]) -> dict[str, Any] | str:
    """``a=1, b="x"`` (or one positional value for a one-argument tool), literals only."""
    usage = "not name(arg=value, ...) with literal values"
    try:
        call = ast.parse(f"f({body})", mode="eval").body
        if not isinstance(call, ast.Call):  # e.g. the body ``1) + g(2``
            return usage
        args = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        positional = [ast.literal_eval(a) for a in call.args]
    # a SyntaxError, a ValueError for what is not a literal, a TypeError for {[1]: 2}; the
    # parser gives up on deep nesting with a RecursionError or a MemoryError (its own stack)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        return f"{usage} ({type(exc).__name__})"
    if len(positional) > len(parameters):
        return f"{len(positional)} positional values for {len(parameters)} arguments"
    for name, value in zip(parameters, positional, strict=False):
        if name in args:
            return f"{name!r} given twice"
        args[name] = value
    return args


def _invoke(tool: BaseTool, args: dict[str, Any]) -> Any:
    """What the tool returns, or a :class:`_Failure` saying why it did not run."""
    try:
        if getattr(tool, "func", True) is None and getattr(tool, "coroutine", None) is not None:
            return _run_coroutine(tool.ainvoke(args))  # an async-only tool
        return tool.invoke(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return _Failure(f"the arguments do not fit {tool.name}'s schema: {problems}.")
    except Exception as exc:  # noqa: BLE001 - a failing tool is an invalid action, not a crash
        return _Failure(f"{tool.name} failed: {type(exc).__name__}: {exc}")


def _run_coroutine(coroutine: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # called from inside an event loop (a notebook): run it on a thread with a loop of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _shorten(output: Any, limit: int) -> str:
    if isinstance(output, str):
        text = output
    else:
        try:
            text = json.dumps(output, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(output)
    text = text.strip() or "(no output)"
    return text if len(text) <= limit else text[: limit - 15] + " ... (cut)"


def _one_line(text: str) -> str:
    return " ".join((text or "").split()) or "(no description)"


# -- schemas --------------------------------------------------------------------------------
def _json_schema(tool: BaseTool) -> dict[str, Any]:
    schema = tool.args_schema
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return {"properties": dict(tool.args)}


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**defs.get(ref.removeprefix("#/$defs/"), {}), **prop}
    return prop


def _type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"], ensure_ascii=False)
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        return " | ".join(_type_text(o, defs) for o in options)
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_text(prop.get('items', {}), defs)}"
    if isinstance(kind, list):
        return " | ".join(kind)
    return {"string": "string", "integer": "integer", "number": "number"}.get(
        kind or "", kind or "value"
    )


def _signature(name: str, tool: BaseTool) -> str:
    schema = _json_schema(tool)
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    parts = []
    for arg, prop in schema.get("properties", {}).items():
        optional = "" if arg in required else " (optional)"
        described = _resolve(prop, defs).get("description")
        note = f" - {_one_line(described)}" if described else ""
        parts.append(f'"{arg}": {_type_text(prop, defs)}{optional}{note}')
    return f"{name}[{{{', '.join(parts)}}}]" if parts else f"{name}[]"


def _example_arguments(tool: BaseTool) -> str:
    schema = _json_schema(tool)
    defs = schema.get("$defs", {})
    example: dict[str, Any] = {}
    for arg in schema.get("required", []):
        prop = _resolve(schema.get("properties", {}).get(arg, {}), defs)
        if "enum" in prop and prop["enum"]:
            example[arg] = prop["enum"][0]
        else:
            example[arg] = {"integer": 1, "number": 1.5, "boolean": True, "array": []}.get(
                prop.get("type", ""), "..."
            )
    return json.dumps(example, ensure_ascii=False) if example else ""


def _enumerable_arguments(tool: BaseTool) -> list[dict[str, Any]] | None:
    """Every argument combination of a tool whose required arguments all take finitely many
    values (optional ones keep their defaults); ``None`` when one does not."""
    schema = tool.args_schema
    fields: list[tuple[str, list[Any] | None, bool]] = []
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        for name, field in schema.model_fields.items():
            fields.append((name, _finite_values(field.annotation), field.is_required()))
    else:
        json_schema = _json_schema(tool)
        defs = json_schema.get("$defs", {})
        required_names = set(json_schema.get("required", []))
        for name, prop in json_schema.get("properties", {}).items():
            fields.append((name, _finite_json_values(_resolve(prop, defs)), name in required_names))
    names, choices = [], []
    for name, values, required in fields:
        if values is None:
            if required:
                return None
            continue  # an optional free argument keeps its default
        names.append(name)
        choices.append(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def _finite_values(annotation: Any) -> list[Any] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _finite_values(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        values: list[Any] = []
        for arm in typing.get_args(annotation):
            if arm is type(None):
                continue
            arm_values = _finite_values(arm)
            if arm_values is None:
                return None
            values.extend(v for v in arm_values if v not in values)
        return values
    if annotation is bool:
        return [True, False]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [member.value for member in annotation]
    return None


def _finite_json_values(prop: dict[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    if "const" in prop:
        return [prop["const"]]
    if prop.get("type") == "boolean":
        return [True, False]
    return None
