"""ScienceWorld: 30 elementary-science tasks (boil water, grow a plant, build a circuit, ...) in a
text world with ten rooms, run by the ScienceWorld simulator (Wang et al., EMNLP 2022).

The simulator is a Scala program; this module starts it in a JVM of its own (through py4j) the
first time an episode needs it, one JVM per environment instance, with a capped heap
(``jvm_heap``, ``-Xmx``), and stops it in :meth:`ScienceWorldEnv.close` (or when the
environment is garbage collected, or the Python process exits).

* **Tasks**: ids are ``"<task-name>/<variation>"``, e.g. ``"boil/3"``. Task names are
  ScienceWorld's (``boil``, ``find-animal``, ``use-thermometer``, ...); ``"task-1-boil"``,
  ``"1-1"``, ``"find_animal"`` and the paper's titles are accepted too. Splits ``train``,
  ``dev`` (alias ``valid``) and ``test`` are ScienceWorld's own variation splits (the first
  half of a task's variations, the third quarter, the rest).
* **Actions** are ScienceWorld commands (``teleport to kitchen``, ``pick up metal pot``,
  ``move metal pot to stove``, ``activate stove``, ``wait1``, ``focus on substance in metal
  pot``). Any string is accepted; one the simulator does not understand ("No known action
  matches that input.", "Unknown action ...") is ``valid=False``. An ambiguous command is
  resolved to its first reading in alphabetical order. ``reset task`` is refused: it would
  rewrite the episode's score behind the planner's back.
* **Scores** are ScienceWorld's 0-100 progress score; a wrong ``focus on`` sets it to -100 and
  ends the episode. :meth:`ScienceWorldEnv.evaluate` reports ``score / 100`` (0 for a failed
  game) and success at 100. ``StepResult.info`` carries the raw score for metrics and for the
  programmatic relabeler; planners must not optimise it (it is the evaluator's verdict).
* **Costs** (measured on 2 shared cores with ``benchmarks/scienceworld_costs.py``): a JVM
  starts in 0.4-1 s (once per environment instance) and holds ~300-400 MiB; a reset (load +
  look around) takes 30-60 ms; a step 2-15 ms (up to ~0.5 s when plants grow during a wait);
  :meth:`~ScienceWorldEnv.valid_actions` 20-150 ms, so it is computed only when asked. There is
  no state copy: MCTS reaches a tree node by reset + replaying its actions, about 130-160 ms
  for a 10-action prefix. :meth:`~ScienceWorldEnv.gold_actions` (the gold path) can take
  seconds on the Mendelian-genetics tasks.
* **Fault tolerance**: if the JVM dies mid-episode, the environment starts a new one, reloads
  the task, replays the episode's actions (checking the scores match) and retries the call
  once; if that fails it raises :class:`~armap_agents.errors.EnvironmentCrashed`.
  :attr:`ScienceWorldEnv.restarts` counts the recoveries.

* **Expert** (a benchmark stand-in, never read by planners): :meth:`ScienceWorldEnv.expert_action`
  resumes the gold path from the current state, for :class:`~armap_agents.policies.ExpertPolicy`.
* **Reproducible**: the same seed plays the same episode in any JVM, pooled or not (see
  :data:`JAVA_OPTIONS` and :meth:`ScienceWorldEnv.valid_actions`).

Requires ``pip install 'armap-agents[scienceworld]'`` and a Java runtime (>= 8) on ``PATH``.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import re
import shutil
import subprocess
import weakref
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan, QuickstartSizes
from armap_agents.environments.outcome import OutcomeRelabeler
from armap_agents.environments.pool import EnvPool
from armap_agents.errors import (
    ConfigError,
    EnvironmentCrashed,
    MissingDependency,
    UnknownName,
)
from armap_agents.prompts import PromptGuide
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Evaluation, Observation, StepResult, Trajectory

__all__ = [
    "JAVA_OPTIONS",
    "SIMPLIFICATIONS",
    "ScienceWorldEnv",
    "ScienceWorldRelabeler",
    "curate_actions",
    "focus_targets",
    "format_task_id",
    "parse_task_id",
    "scienceworld_task_names",
    "task_name",
    "trajectory_scores",
    "variation_splits",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCIENCEWORLD_INSTALL = "pip install 'armap-agents[scienceworld]'"
JAVA_INSTALL = (
    "install a Java runtime >= 8 (e.g. `apt install openjdk-17-jre-headless`) and put `java` "
    "on PATH (or set JAVA_HOME)"
)
SIMPLIFICATIONS = (
    "teleportAction",
    "selfWateringFlowerPots",
    "openContainers",
    "openDoors",
    "noElectricalAction",
    "easy",
)
"""ScienceWorld's simplifications (``easy`` is all of them that suit the task); combine them
with commas, e.g. ``"teleportAction,openDoors"``; ``""`` is the full game."""

JAVA_OPTIONS = (
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:hashCode=2",
)
"""The JVM options of :class:`ScienceWorldEnv` by default. ``-XX:hashCode=2`` gives every Java
object the same identity hash: the simulator iterates hash sets of objects, so with Java's
default (per-thread random) hashes the names of look-alike objects ("cup containing red paint
in cupboard"), the valid actions and the order of an observation's lines change with what the
JVM ran before; a pooled, concurrent exploration then plays other episodes from the same seed.
With a constant hash the order is the insertion order, the same in every JVM (steps measured
as fast)."""

MAX_ACTION_CHARS = 1_000
"""The longest action :meth:`ScienceWorldEnv.step` sends to the simulator; a longer one is
invalid unread (a command is a few words)."""

QUICKSTART_FAMILIES = ("find-living-thing", "find-non-living-thing", "find-plant", "find-animal")
"""The task families of a quickstart run: navigate, focus on the right thing, move it to a box;
partial scores along the way give the relabeler something to compare."""
SPLIT_ALIASES = MappingProxyType({"train": "train", "dev": "dev", "valid": "dev", "test": "test"})
_NOT_UNDERSTOOD = ("No known action matches that input.", "Unknown action")
_AMBIGUOUS = "Ambiguous request"
_REFUSED = MappingProxyType(
    {"reset task": "`reset task` is disabled here: an episode cannot restart its score."}
)


# -- the scienceworld package, imported lazily ----------------------------------------------
def _scienceworld() -> tuple[Any, Any]:
    """``(constants, utils)`` of the installed scienceworld package, or MissingDependency."""
    try:
        import py4j.java_gateway  # noqa: F401  (scienceworld's own dependency)
        from scienceworld import constants, utils
    except ImportError as exc:
        raise MissingDependency(
            f"the ScienceWorld environment needs the scienceworld package: {SCIENCEWORLD_INSTALL}"
            f" ({exc})"
        ) from exc
    return constants, utils


def scienceworld_task_names() -> list[str]:
    """ScienceWorld's 30 task names, in the paper's order (no JVM needed)."""
    constants, utils = _scienceworld()
    return [utils.infer_task(t["task_name"]) for t in constants.TASKS]


def task_name(name: str) -> str:
    """The canonical ScienceWorld name of a task given in any accepted spelling.

    ``"boil"``, ``"task-1-boil"``, ``"1-1"``, ``"Matter Changes of State (Boiling)"`` and
    ``"Boil"`` all give ``"boil"``; ``find_animal`` gives ``find-animal``. Unknown names raise
    :class:`~armap_agents.errors.ConfigError` listing the known ones.
    """
    _, utils = _scienceworld()
    known = scienceworld_task_names()
    raw = name.strip()
    for candidate in (raw, raw.lower(), raw.lower().replace("_", "-").replace(" ", "-")):
        inferred = utils.infer_task(candidate)
        if inferred in known:
            return inferred
    raise ConfigError(f"unknown ScienceWorld task {name!r}; known tasks: {', '.join(known)}")


def format_task_id(name: str, variation: int) -> str:
    """``"boil/3"``."""
    return f"{name}/{variation}"


def parse_task_id(task_id: str) -> tuple[str, int]:
    """``"boil/3"`` -> ``("boil", 3)``; a malformed id or unknown task raises ``KeyError``."""
    name, sep, variation = task_id.rpartition("/")
    if not sep or not variation.strip().isdigit():
        raise UnknownName(
            f"ScienceWorld task ids look like '<task-name>/<variation>', e.g. 'boil/3', "
            f"not {task_id!r}"
        )
    try:
        return task_name(name), int(variation)
    except ConfigError as exc:
        raise UnknownName(str(exc)) from None


def variation_splits(n_variations: int) -> dict[str, list[int]]:
    """ScienceWorld's train/dev/test variation split of a task with ``n_variations`` variations.

    A mirror of the simulator's ``PythonInterface.getSets`` (scienceworld 1.2.x), so listing the
    task ids does not load every task: the variations are cut into quarters of
    ``n // 4``; train is the first two, dev the third, test the rest. Tiny tasks: 1 -> train and
    test both ``[0]``; 2 -> ``[0]``/``[]``/``[1]``; 3 -> ``[0]``/``[1]``/``[2]``; 4 ->
    ``[0, 1]``/``[2]``/``[3]``. The test suite checks the mirror against the simulator.
    """
    n = n_variations
    small = {
        0: ([], [], []),
        1: ([0], [], [0]),
        2: ([0], [], [1]),
        3: ([0], [1], [2]),
        4: ([0, 1], [2], [3]),
    }
    if n in small:
        train, dev, test = small[n]
    else:
        q = n // 4
        train, dev, test = list(range(2 * q)), list(range(2 * q, 3 * q)), list(range(3 * q, n))
    return {"train": list(train), "dev": list(dev), "test": list(test)}


# -- the valid-action list -------------------------------------------------------------------
_KINDS = (  # the order the curated list is shown in (a prompt may show only its head)
    "teleport to",
    "go to",
    "focus on",
    "pick up",
    "put down",
    "open",
    "close",
    "activate",
    "deactivate",
    "use",
    "connect",
    "disconnect",
    "move",
    "pour",
    "dunk",
    "mix",
    "look around",
    "look at",
    "look in",
    "read",
    "inventory",
    "wait",
    "wait1",
    "eat",
    "flush",
)
_TWO_OBJECT_SEPARATORS = (" to ", " into ", " in ", " on ")
_USELESS_OBJECTS = ("agent", "air")
_DROPPED_KINDS = frozenset({"task", "reset task"})
_STOPWORDS_TEXT = (
    # function words and ScienceWorld's task boilerplate
    "a an and are as at be by can could do first for from has have if in into is it its "
    "made make may of on one or than that the then these this those to use using when where "
    "which will with your you task focus thing things located around after before part way "
    "done completely take actions cause change also "
    # rooms: where things are, never what a task focuses on
    "kitchen bathroom workshop art studio greenhouse hallway bedroom living room outside "
    "foundry"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


_KINDS_LONGEST_FIRST = tuple(sorted((*_KINDS, *_DROPPED_KINDS), key=len, reverse=True))


def _kind(action: str) -> str:
    """The action's template family: ``"look at"``, ``"pick up"``, ``"move"``, ..."""
    for kind in _KINDS_LONGEST_FIRST:
        if action == kind or action.startswith(kind + " "):
            return kind
    return action.split(" ", 1)[0]


def _objects_text(action: str, kind: str) -> str:
    return action[len(kind) :].strip()


def _is_self_pair(rest: str) -> bool:
    """``X to X``, ``X into X``, ``X on X``: an object acting on itself."""
    for sep in _TWO_OBJECT_SEPARATORS:
        n = len(rest) - len(sep)
        if n > 0 and n % 2 == 0 and rest == rest[: n // 2] + sep + rest[: n // 2]:
            return True
    return False


def _names_useless_object(rest: str) -> bool:
    """The agent itself or the ambient air as an action's first or last object."""
    return any(
        rest == o or rest.startswith(o + " ") or rest.endswith(" " + o) for o in _USELESS_OBJECTS
    )


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z-]*", text.lower())
    return {w for w in words if len(w) > 2 and w not in _STOPWORDS}


_FOCUS_PHRASE = re.compile(r"focus on (?:the |a |an |a\(n\) )?([^.,;:]+)", re.IGNORECASE)
_NOT_A_NAME_TEXT = (
    # words in a focus phrase that describe the target without naming an object
    "thing things animal animals plant plants object objects life span longest shortest "
    "stage stages earliest latest starting shallowest steepest angle most least friction "
    "intermediate secondary tertiary color colour created grown"
)
_NOT_A_NAME = frozenset(_NOT_A_NAME_TEXT.split())


def focus_targets(task_description: str) -> set[str] | None:
    """The words naming what a task says to focus on, or None when it does not name it.

    ``"... First, focus on the substance."`` -> ``{"substance"}``; ``"... focus on the red light
    bulb"`` -> ``{"red", "light", "bulb"}``; ``"First, focus on the thing."`` or ``"Focus on the
    animal with the longest life span"`` -> None (the task leaves it to the agent to find).
    """
    words: set[str] = set()
    for phrase in _FOCUS_PHRASE.findall(task_description):
        words |= _content_words(phrase) - _NOT_A_NAME
    return words or None


_ROOMS = frozenset(
    {
        "kitchen",
        "bathroom",
        "workshop",
        "art studio",
        "greenhouse",
        "hallway",
        "bedroom",
        "living room",
        "outside",
        "foundry",
        "inventory",
    }
)


def _never_a_focus(obj: str) -> bool:
    """A room, a door or the inventory: no task is about them."""
    return obj in _ROOMS or "door" in obj.split()


def curate_actions(
    raw: Iterable[str],
    task_description: str,
    *,
    max_per_kind: int | None = 20,
    focus_on_named: bool = True,
) -> list[str]:
    """The action list :meth:`ScienceWorldEnv.valid_actions` returns, from ScienceWorld's raw
    valid action-object combinations (often 500-1,500, most of them ``move X to Y`` and
    ``pour X into Y`` over every pair of objects in view). Pure function, no JVM.

    1. Duplicates, ``task`` (repeats the instruction) and ``reset task`` (refused) are dropped;
       so are actions on the agent itself or the ambient air, and an object acting on itself
       (``move pot to pot``).
    2. ``focus on X`` ends the episode as a failure when X is the wrong object. Focus on a
       room, a door or the inventory is never listed (no task is about them). With
       ``focus_on_named``, when the task description names what to focus on ("focus on the
       substance", "focus on the red light bulb", see :func:`focus_targets`), only the focus
       actions whose object shares a word with that name are listed, and none while no such
       object is in view; when it does not name it ("focus on the thing", "the animal with the
       longest life span"), all focus actions are listed (capped like any kind, below).
    3. Each kind of action (``move``, ``pour``, ``look at``, ``focus on``, ...) is capped at
       ``max_per_kind`` entries, so that a uniform random choice picks a kind roughly uniformly
       instead of moving objects around 70% of the time: the entries whose objects are named in
       the task description come first, the rest is a fixed pseudo-random sample (a hash of the
       text, the same in every run). ``None`` keeps everything.
    4. The kinds are listed in a fixed order, navigation and focus first, so a prompt that shows
       only the head of the list still sees the actions that matter most.

    The environment accepts any ScienceWorld command, listed or not: this list is a menu, not
    the rules.
    """
    mentioned = _content_words(task_description)
    by_kind: dict[str, list[str]] = collections.defaultdict(list)
    seen: set[str] = set()
    for action in raw:
        action = " ".join(action.split())
        if not action or action in seen:
            continue
        seen.add(action)
        kind = _kind(action)
        rest = _objects_text(action, kind)
        if kind in _DROPPED_KINDS or _names_useless_object(rest) or _is_self_pair(rest):
            continue
        by_kind[kind].append(action)

    def relevance(action: str, kind: str) -> int:
        return len(_content_words(_objects_text(action, kind)) & mentioned)

    focus = [a for a in by_kind.get("focus on", []) if not _never_a_focus(a[len("focus on ") :])]
    targets = focus_targets(task_description) if focus_on_named else None
    if targets is not None:
        focus = [a for a in focus if _content_words(a[len("focus on ") :]) & targets]
    by_kind["focus on"] = focus
    out: list[str] = []
    order = list(_KINDS) + sorted(k for k in by_kind if k not in _KINDS)
    for kind in order:
        actions = by_kind.get(kind, [])
        if max_per_kind is not None and len(actions) > max_per_kind:
            rank = {a: (-relevance(a, kind), zlib.crc32(a.encode("utf-8"))) for a in actions}
            ranked = sorted(actions, key=rank.__getitem__)
            keep = set(ranked[:max_per_kind])
            actions = [a for a in actions if a in keep]
        out.extend(actions)
    return out


# -- the expert (a benchmark stand-in, see ScienceWorldEnv.expert_action) -------------------
_ROOM_NAME = re.compile(r"^This (?:room|outside location) is called the ([^.\n]+)\.", re.MULTILINE)
_DOOR = re.compile(r"door to the ([a-z ]+?) \(that is (open|closed)\)")
_NAVIGATION_KINDS = frozenset({"teleport to", "go to", "open door to", "close door to"})
_READING_KINDS = frozenset({"look around", "look at", "look in", "inventory", "examine", "read"})
_UNDOES = MappingProxyType(
    {"activate": "deactivate", "deactivate": "activate", "open": "close", "close": "open"}
)
_CARRY_AWAY = ("put down", "move", "pour", "dunk", "drop")


def _room_of(text: str) -> str:
    """The room a ``look around`` text describes (``""`` when it names none)."""
    found = _ROOM_NAME.search(text)
    return found.group(1).strip() if found else ""


def _kind_of(action: str) -> str:
    if action.startswith("open door to ") or action.startswith("close door to "):
        return action.rsplit(" to ", 1)[0] + " to"
    return _kind(action)


class _GoldStep(NamedTuple):
    room: str
    """Where the gold path takes the action."""
    action: str


def _gold_plan(gold: Sequence[str], start_room: str) -> list[_GoldStep]:
    """The gold sequence without its navigation, each action tagged with its room.

    Doors and rooms are left to the expert, which walks (or teleports) from wherever the
    episode is; reading actions (``look around``, ``examine`` ...) change nothing and go; so do
    the digits that answer an ambiguity (the environment resolves ambiguities itself).
    """
    room, plan = start_room, []
    for raw in gold:
        action = " ".join(raw.lower().split())
        kind = _kind_of(action)
        if kind in ("teleport to", "go to"):
            room = _objects_text(action, kind)
        elif kind not in _NAVIGATION_KINDS and kind not in _READING_KINDS and not action.isdigit():
            plan.append(_GoldStep(room, action))
    return plan


def _first_object(action: str) -> str:
    """``move X to Y`` -> ``X`` without ``in inventory``; ``pick up X`` -> ``X``."""
    rest = _objects_text(action, _kind_of(action))
    for sep in _TWO_OBJECT_SEPARATORS:
        if sep in rest:
            rest = rest.split(sep, 1)[0]
            break
    return rest.removesuffix(" in inventory")


def _undoes(done: str, later: str) -> bool:
    """Whether ``later`` reverses the effect of the gold action ``done``."""
    kind, later_kind = _kind_of(done), _kind_of(later)
    if _UNDOES.get(kind) == later_kind:
        return _objects_text(done, kind) == _objects_text(later, later_kind)
    thing = _first_object(done)
    if kind == "pick up":  # put down or moved away: it is no longer carried
        return later_kind in _CARRY_AWAY and _first_object(later) == thing
    if kind in ("move", "pour", "dunk"):  # taken back out, or moved elsewhere
        moved = later_kind in ("pick up", *_CARRY_AWAY)
        return later != done and moved and _first_object(later) == thing
    return False


def _similar(a: str, b: str) -> float:
    """Word overlap of two actions of the same kind (0 for different kinds), ignoring ``in
    inventory`` (the gold path says it, ScienceWorld's valid actions do not)."""
    if _kind_of(a) != _kind_of(b):
        return 0.0
    wa, wb = (set(x.replace(" in inventory", "").split()) for x in (a, b))
    return len(wa & wb) / len(wa | wb)


def _retries(action: str, failed: str) -> bool:
    """Whether ``action`` is the expert's retry of the gold action ``failed`` under another
    name: a similar action of the same kind, or for ``focus on``, a name made of fewer of its
    words (the same object, e.g. ``apple tree`` for ``adult apple tree``)."""
    if _kind_of(failed) != "focus on":
        return _similar(action, failed) >= _SIMILAR_ENOUGH
    words = set(_objects_text(failed, "focus on").split())
    return _kind_of(action) == "focus on" and set(_objects_text(action, "focus on").split()) < words


def _skip(plan: Sequence[_GoldStep], p: int) -> int:
    """The first gold step after ``p`` with another action (``len(plan)`` when none)."""
    return next((q for q in range(p + 1, len(plan)) if plan[q].action != plan[p].action), len(plan))


_SIMILAR_ENOUGH = 0.6


class _Progress(NamedTuple):
    next: int
    """The first gold step not achieved (``len(plan)`` when all are)."""
    failed: bool
    """Whether the episode tried that step's exact action in its room and the simulator did
    not take it."""
    redo: _GoldStep | None
    """An achieved step a later action reversed (the earliest), to take again first."""


def _progress(plan: Sequence[_GoldStep], episode: _Episode) -> _Progress:
    """How far the episode's actions went along the gold plan, whoever took them.

    An action equal to the next gold step achieves it; after that step failed, an action of
    the same kind that is similar enough achieves it too (the expert's renamed retry), and the
    next different gold action achieves it and its repeats (they are skipped). A ``focus on``
    equal to a later gold step achieves that step out of turn (focusing twice would waste a
    step). Rooms follow the ``teleport to`` / ``go to`` actions, from the start room.
    """
    p, failed = 0, False
    done_at: dict[int, int] = {}  # gold step -> the last episode action that achieved it
    by_plan: set[int] = set()  # the episode actions that achieved (or redid) a gold step
    room_after: list[str] = []
    room = episode.start_room
    for t, (raw, understood) in enumerate(zip(episode.actions, episode.understood, strict=True)):
        action = " ".join(raw.lower().split())
        kind = _kind_of(action)
        if understood and kind in ("teleport to", "go to"):
            room = _objects_text(action, kind)
        room_after.append(room)
        step = plan[p].action if p < len(plan) else None
        if not understood:  # failed where the gold path takes it (elsewhere proves nothing)
            failed = failed or (action == step and room == plan[p].room)
            continue
        if step is None:
            pass
        elif action == step or (failed and _retries(action, step)):
            done_at[p] = t
        elif failed and _skip(plan, p) < len(plan) and action == plan[_skip(plan, p)].action:
            for i in range(p, _skip(plan, p) + 1):
                done_at[i] = t
        elif kind == "focus on":
            later = next((i for i in range(p + 1, len(plan)) if plan[i].action == action), None)
            if later is not None:
                done_at[later] = t
        if t in done_at.values():
            by_plan.add(t)
            failed = False
            while p in done_at:
                p += 1
            continue
        again = max((i for i in done_at if plan[i].action == action), default=None)
        if again is not None:  # an achieved step done again, e.g. after a reversal
            done_at[again] = t
            by_plan.add(t)
    redo = None
    for i in sorted(done_at):
        undone = [
            t
            for t in range(done_at[i] + 1, len(episode.actions))
            if episode.understood[t]
            and t not in by_plan
            and _undoes(plan[i].action, " ".join(episode.actions[t].lower().split()))
        ]
        if undone:
            where = room_after[undone[-1]] if _kind_of(plan[i].action) == "pick up" else ""
            redo = _GoldStep(where or plan[i].room, plan[i].action)
            break
    return _Progress(p, failed, redo)


def _route(here: str, there: str, look: str, gold: Sequence[str], start_room: str) -> str | None:
    """The next walking action from room ``here`` toward ``there``: the doors the gold path
    went through and the doors in view (``look``), a shortest path; None when none is known."""
    edges: dict[str, set[str]] = collections.defaultdict(set)
    room = start_room
    for raw in gold:
        action = " ".join(raw.lower().split())
        if action.startswith("go to "):
            nxt = action[len("go to ") :]
            edges[room].add(nxt)
            edges[nxt].add(room)
            room = nxt
    doors = dict(_DOOR.findall(look))
    for room in doors:
        edges[here].add(room)
        edges[room].add(here)
    previous: dict[str, str] = {here: here}
    queue = collections.deque([here])
    while queue:
        room = queue.popleft()
        if room == there:
            break
        for nxt in sorted(edges[room]):
            if nxt not in previous:
                previous[nxt] = room
                queue.append(nxt)
    if there not in previous:
        return None
    hop = there
    while previous[hop] != here:
        hop = previous[hop]
    return f"open door to {hop}" if doors.get(hop) == "closed" else f"go to {hop}"


# -- the JVM ---------------------------------------------------------------------------------
@dataclass
class _JVM:
    gateway: Any
    process: subprocess.Popen
    server: Any
    stderr: collections.deque


def _stop_jvm(gateway: Any, process: subprocess.Popen) -> None:
    """Stop a JVM started by :func:`_start_jvm` and reap it. Never raises; safe to repeat."""
    try:
        if process.poll() is None:
            gateway.shutdown()  # stops the py4j server; never raises
        else:
            gateway.close()
    except Exception:  # noqa: BLE001 - a dying gateway may fail in any way; we kill below
        logger.debug("error while shutting down a ScienceWorld gateway", exc_info=True)
    try:
        if process.stdin is not None:
            process.stdin.close()  # --die-on-broken-pipe: the JVM exits when its stdin closes
    except OSError:
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _JVMLost(Exception):
    """The JVM died or stopped answering (internal: triggers restart and replay)."""


_READING = re.compile(r"^(\d+):\s*(.+)$", re.MULTILINE)


def _step_text(server: Any, action: str) -> tuple[str, str | None]:
    """One simulator step; an ambiguous command is resolved to its first reading in
    alphabetical order. The simulator lists the readings in an order that changes from one
    JVM (or JVM thread) to another, so its own first reading would make episodes differ
    between runs of the same seed.

    Returns ``(observation, resolved_as)``.
    """
    observation = str(server.step(action))
    if not observation.startswith(_AMBIGUOUS):
        return observation, None
    readings = sorted((text.strip(), int(number)) for number, text in _READING.findall(observation))
    if not readings:
        return str(server.step("0")), None
    text, number = readings[0]
    return str(server.step(str(number))), text


class _Outcome(NamedTuple):
    observation: str
    resolved_as: str | None
    score: int
    completed: bool
    moves: int


@dataclass
class _Episode:
    task: str
    variation: int
    description: str
    actions: list[str] = field(default_factory=list)
    """Every action sent to the simulator, valid or not, for replay."""
    replay_scores: list[int] = field(default_factory=list)
    """The score after each of ``actions`` (to check a replay)."""
    step_scores: list[int] = field(default_factory=list)
    """The score after each :meth:`ScienceWorldEnv.step` call (refused actions included)."""
    understood: list[bool] = field(default_factory=list)
    """Whether the simulator understood each of ``actions`` (for the expert's progress)."""
    start_room: str = ""
    """The room the episode starts in (for the expert)."""
    score: int = 0
    done: bool = False
    valid_steps: int = 0


class ScienceWorldEnv:
    """ScienceWorld as an :class:`~armap_agents.environments.base.Environment`.

    Args:
        tasks: restrict :meth:`task_ids` to these task names (any accepted spelling, see
            :func:`task_name`); ``None`` lists all 30. :meth:`reset` accepts any task.
        simplification: ScienceWorld's simplification string (see :data:`SIMPLIFICATIONS`);
            ``"easy"`` (the default, as in most papers) adds teleporting, open doors and
            containers, self-watering flower pots, and no electrical actions where a task does
            not need them.
        env_step_limit: an episode ends (``done``) after this many valid actions.
        jvm_heap: the JVM's maximum heap (``-Xmx``), e.g. ``"512m"`` or ``"2g"``.
        java_options: more JVM options. The default (:data:`JAVA_OPTIONS`) picks the serial
            collector (fewer threads on small machines), makes an out-of-memory JVM exit,
            which the crash recovery then reports, and makes episodes reproducible.
        java_path: the ``java`` executable; default ``$JAVA_HOME/bin/java`` or ``java`` on
            ``PATH``.
        max_per_kind: how :meth:`valid_actions` curates ScienceWorld's action list (see
            :func:`curate_actions`).
        focus_on_named: the same (see :func:`curate_actions`).

    Constructing is cheap: it checks the arguments and that Java and the scienceworld package
    are installed; the JVM starts at the first :meth:`reset` (or :meth:`task_ids`).
    """

    name = "scienceworld"
    defaults = EnvironmentDefaults(
        max_steps=15,
        quickstart=QuickstartSizes(
            families=QUICKSTART_FAMILIES,
            full=QuickstartPlan(
                train_tasks=40, episodes=4, max_train=4000, epochs=2, test_tasks=8, n=8
            ),
            tiny=QuickstartPlan(
                train_tasks=4, episodes=2, max_train=200, epochs=1, test_tasks=1, n=2, max_steps=6
            ),
            llm_full=QuickstartPlan(
                train_tasks=12, episodes=1, max_train=None, epochs=2, test_tasks=8, n=4
            ),
            llm_tiny=QuickstartPlan(
                train_tasks=4, episodes=1, max_train=None, epochs=1, test_tasks=1, n=2, max_steps=6
            ),
        ),
    )
    """Its horizon, and quickstart sizes that fit the paper-style table in minutes on a laptop
    (a smoke-level comparison on four families, not the paper's full benchmark)."""
    prompt_guide = PromptGuide(
        action=(
            "ScienceWorld rules: act with one ScienceWorld command per step, e.g. `teleport to "
            "kitchen`, `look around`, `open cupboard`, `pick up metal pot`, `move metal pot to "
            "sink`, `activate sink`, `use thermometer in inventory on substance in metal pot`, "
            "`wait1` (let one time step pass), `inventory`. Refer to objects exactly as the "
            "observations and the valid actions name them. `focus on <object>` tells the game "
            "which object the task is about: focusing on the wrong object ends the episode as "
            "a failure, so focus only on the object the task names, and only when it is in the "
            "state the task asks for (or when the task says to focus first)."
        ),
        synthesis=(
            "ScienceWorld conventions: an intent is a task in ScienceWorld's style, e.g. 'Your "
            "task is to boil water. First, focus on the substance. Then, take actions that will "
            "cause it to change its state of matter.' or 'Your task is to find a(n) animal. "
            "First, focus on the thing. Then, move it to the red box in the kitchen.' A "
            "negative starts from the same room, uses ScienceWorld commands (teleport to, pick "
            "up, move ... to ..., activate, focus on, wait1) and does not achieve the intent: it "
            "focuses on another object, or never brings about the required change."
        ),
    )
    reward_view = TrajectoryView(
        # a room's contents come one per line, tab-indented: one line, the same words
        rewrite=((r"\s*\n\s*", "; "), (r"[ \t]+", " ")),
        max_action_chars=200,
    )
    """What the reward model reads of a ScienceWorld episode (see
    :class:`~armap_agents.reward_view.TrajectoryView`): every action, each observation on one
    line, clipped to share the model's window."""

    def __init__(
        self,
        tasks: Sequence[str] | None = None,
        *,
        simplification: str = "easy",
        env_step_limit: int = 100,
        jvm_heap: str = "512m",
        java_options: Sequence[str] = JAVA_OPTIONS,
        java_path: str | None = None,
        max_per_kind: int | None = 20,
        focus_on_named: bool = True,
    ) -> None:
        _scienceworld()  # fail now, with the install hint, rather than at the first reset
        if isinstance(tasks, str):
            tasks = [tasks]
        self.tasks: list[str] = (
            scienceworld_task_names()
            if tasks is None
            else list(dict.fromkeys(task_name(t) for t in tasks))
        )
        parts = [p for p in simplification.split(",") if p]
        unknown = [p for p in parts if p not in SIMPLIFICATIONS]
        if unknown:
            raise ConfigError(
                f"unknown ScienceWorld simplification(s) {unknown}; known: "
                f"{', '.join(SIMPLIFICATIONS)} (comma-separated; '' for none)"
            )
        if not re.fullmatch(r"\d+[kKmMgG]?", jvm_heap):
            raise ConfigError(f"jvm_heap must look like '512m' or '2g', not {jvm_heap!r}")
        if env_step_limit < 1:
            raise ConfigError(f"env_step_limit must be >= 1, not {env_step_limit}")
        self.simplification = ",".join(parts)
        self.env_step_limit = env_step_limit
        self.jvm_heap = jvm_heap
        self.java_options = list(java_options)
        self.java = self._find_java(java_path)
        self.max_per_kind = max_per_kind
        self.focus_on_named = focus_on_named
        self.restarts = 0
        """How many times a dead JVM was replaced (and the episode replayed)."""
        self._jvm: _JVM | None = None
        self._finalizer: weakref.finalize | None = None
        self._episode: _Episode | None = None
        self._valid_cache: list[str] | None = None
        self._max_variations: dict[str, int] = {}
        self._gold: dict[tuple[str, int], list[str]] = {}
        """Gold action sequences fetched so far (for :meth:`expert_action`), by task."""

    @classmethod
    def factory(
        cls, tasks: Sequence[str] | None = None, *, max_idle: int = 8, **kwargs: Any
    ) -> EnvPool:
        """An environment factory that reuses environments (and their JVMs) across episodes.

        Exploration and planners open one environment per episode or tree operation; with
        this factory they borrow an idle one (its JVM already running) instead of starting a
        JVM each time. The arguments are checked now. Close the pool to stop the idle JVMs.
        """
        cls(tasks, **kwargs)  # checks the arguments; starts no JVM
        return EnvPool(functools.partial(cls, tasks, **kwargs), max_idle=max_idle)

    @staticmethod
    def _find_java(java_path: str | None) -> str:
        if java_path:
            found = shutil.which(java_path)
            if found:
                return found
            raise MissingDependency(f"java_path {java_path!r} is not an executable: {JAVA_INSTALL}")
        candidates = ["java"]
        if os.environ.get("JAVA_HOME"):
            candidates.insert(0, os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
        for candidate in candidates:
            found = shutil.which(candidate)
            if found:
                return found
        raise MissingDependency(f"the ScienceWorld environment needs Java: {JAVA_INSTALL}")

    # -- the JVM -------------------------------------------------------------------------
    @property
    def jvm_pid(self) -> int | None:
        """The process id of this environment's JVM, or None when none is running."""
        return self._jvm.process.pid if self._jvm is not None else None

    def _start_jvm(self) -> _JVM:
        constants, _ = _scienceworld()
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

        stderr: collections.deque = collections.deque(maxlen=40)
        try:
            port, process = launch_gateway(
                classpath=constants.JAR_PATH,
                javaopts=[f"-Xmx{self.jvm_heap}", *self.java_options],
                java_path=self.java,
                die_on_exit=True,  # the JVM exits when this Python process does
                cwd=constants.BASEPATH,
                redirect_stderr=stderr,
                return_proc=True,
            )
        except (ValueError, OSError) as exc:  # the JVM printed no port: it did not start
            raise EnvironmentCrashed(
                f"the ScienceWorld JVM did not start ({self.java} -Xmx{self.jvm_heap} "
                f"{' '.join(self.java_options)}): {exc}"
            ) from exc
        gateway = JavaGateway(
            # no py4j memory management: its weakref finalizers send commands to the JVM from
            # whatever code the garbage collector interrupts, and once the JVM has died one of
            # them can block a worker for minutes (seen while py4j was logging the lost JVM)
            gateway_parameters=GatewayParameters(
                port=port, auto_field=True, enable_memory_management=False
            ),
            java_process=process,
        )
        try:
            server = gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        except Exception as exc:
            _stop_jvm(gateway, process)
            raise EnvironmentCrashed(f"the ScienceWorld JVM did not answer: {exc!r}") from exc
        jvm = _JVM(gateway=gateway, process=process, server=server, stderr=stderr)
        # garbage collection (or interpreter exit) stops the JVM even without close()
        self._finalizer = weakref.finalize(self, _stop_jvm, gateway, process)
        logger.info("started ScienceWorld JVM pid %d on port %d", process.pid, port)
        return jvm

    def _server(self) -> Any:
        if self._jvm is None:
            self._jvm = self._start_jvm()
        return self._jvm.server

    def _release_jvm(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_jvm once; later calls do nothing
        self._finalizer = None
        self._jvm = None

    def close(self) -> None:
        """Stop the JVM (idempotent). A later :meth:`reset` starts a new one."""
        self._release_jvm()
        self._episode = None
        self._valid_cache = None

    def __enter__(self) -> ScienceWorldEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _death_reason(self, exc: BaseException) -> str:
        if self._jvm is None:
            return repr(exc)
        code = self._jvm.process.poll()
        if code is None:
            why = f"it stopped answering ({exc!r})"
        elif code < 0:
            why = f"it was killed by signal {-code}"
        else:
            why = f"it exited with code {code}"
        tail = " | ".join(line.strip() for line in list(self._jvm.stderr)[:3][::-1])
        return why + (f"; its last output: {tail}" if tail else "")

    def _call(self, fn: Callable[[Any], T]) -> T:
        """``fn(server)``; if the JVM is lost, restart it, restore the episode, retry once."""
        from py4j.protocol import Py4JError, Py4JJavaError

        try:
            if self._jvm is not None and self._jvm.process.poll() is not None:
                raise _JVMLost("the JVM process is gone")  # died between calls
            return fn(self._server())
        except Py4JJavaError:
            raise
        except (Py4JError, OSError, _JVMLost) as exc:
            reason = self._death_reason(exc)
        logger.warning("ScienceWorld JVM lost (%s); restarting", reason)
        self._release_jvm()
        self.restarts += 1
        where = (
            f" in episode {format_task_id(self._episode.task, self._episode.variation)} "
            f"after {len(self._episode.actions)} actions"
            if self._episode
            else ""
        )
        try:
            server = self._server()
            if self._episode is not None:
                self._restore(server, self._episode)
            return fn(server)
        except Exception as exc:
            self._release_jvm()
            raise EnvironmentCrashed(
                f"ScienceWorld's JVM died{where} ({reason}); a new JVM could not restore the "
                f"episode: {exc!r}"
            ) from exc

    def _load(self, server: Any, task: str, variation: int, gold: bool = False) -> str:
        error = str(server.load(task, variation, self.simplification, gold) or "")
        if error.startswith("ERROR"):
            raise UnknownName(
                f"ScienceWorld cannot load {format_task_id(task, variation)}: {error}"
            )
        return str(server.step("look around"))

    def _restore(self, server: Any, episode: _Episode) -> None:
        """Reload the episode's task and replay its actions, checking the scores match."""
        self._load(server, episode.task, episode.variation)
        for i, (action, expected) in enumerate(
            zip(episode.actions, episode.replay_scores, strict=True)
        ):
            _step_text(server, action)
            score = int(round(100 * server.getScore()))
            if score != expected:
                raise EnvironmentCrashed(
                    f"replay diverged at action {i + 1} ({action!r}): score {score}, "
                    f"recorded {expected}"
                )

    # -- tasks ---------------------------------------------------------------------------
    def max_variations(self, task: str) -> int:
        """How many variations ScienceWorld has for a task (asks the JVM once per task)."""
        name = task_name(task)
        if name not in self._max_variations:
            self._max_variations[name] = int(
                self._call(lambda server: server.getTaskMaxVariations(name))
            )
        return self._max_variations[name]

    def task_ids(self, split: str = "test") -> list[str]:
        """``"<task>/<variation>"`` for each task of :attr:`tasks` and each variation in its
        ScienceWorld ``split``: ``train``, ``dev`` (or ``valid``) or ``test``. Starts the JVM
        (to count variations) but loads no task."""
        if split not in SPLIT_ALIASES:
            raise UnknownName(f"unknown split {split!r}: use 'train', 'dev' (or 'valid') or 'test'")
        key = SPLIT_ALIASES[split]
        return [
            format_task_id(task, v)
            for task in self.tasks
            for v in variation_splits(self.max_variations(task))[key]
        ]

    # -- episode -------------------------------------------------------------------------
    def _require_started(self) -> _Episode:
        if self._episode is None:
            raise RuntimeError("call reset(task_id) before step()")
        return self._episode

    def reset(self, task_id: str) -> Observation:
        """Load the task's variation; the first observation is ScienceWorld's ``look around``."""
        return self._reset(task_id)[0]

    def _reset(self, task_id: str, gold: bool = False) -> tuple[Observation, list[str]]:
        task, variation = parse_task_id(task_id)
        if "noElectricalAction" in self.simplification.split(",") and (
            "power-component" in task or "conductivity" in task
        ):
            raise ConfigError(f"task {task!r} needs electrical actions: drop noElectricalAction")
        self._episode = None
        self._valid_cache = None

        def load(server: Any) -> tuple[str, str, list[str]]:
            text = self._load(server, task, variation, gold)
            golden = [str(a) for a in server.getGoldActionSequence()] if gold else []
            return text, str(server.getTaskDescription()), golden

        text, description, golden = self._call(load)
        if gold:
            self._gold[(task, variation)] = golden
        self._episode = _Episode(task, variation, description, start_room=_room_of(text))
        return Observation(instruction=description, text=text), golden

    def gold_actions(self, task_id: str) -> list[str]:
        """ScienceWorld's gold action sequence for a task (a demonstration that succeeds, not
        necessarily the shortest). Resets the environment to that task."""
        return self._reset(task_id, gold=True)[1]

    def expert_action(self) -> str | None:
        """What an expert does next from the current state: ScienceWorld's gold path, resumed
        after any detour (the :class:`~armap_agents.environments.base.ExpertHook` of the
        benchmark stand-in :class:`~armap_agents.policies.ExpertPolicy`; no planner reads it).

        What it knows: the task's gold action sequence (fetched from the simulator once per
        task and kept on this instance; fetching reloads the task, so the running episode is
        replayed afterwards: 0.1-3 s once), the room it is in and the doors in view (ScienceWorld's
        free ``look``, which changes nothing: a few ms per call). It drops the gold path's own
        walking and reading and follows its other actions in order, each in the room the gold
        path took it in: it teleports there (with the ``teleportAction`` simplification) or
        walks through the doors the gold path used or it sees. Actions the episode already took,
        by the expert or not, count as done; one that a later action reversed (``deactivate``
        after ``activate``, put down or moved away after ``pick up``, moved elsewhere after
        ``move``) is taken again first. A gold action the simulator did not take (an object
        renamed as time passed) is retried as the most similar valid action of the same kind,
        or skipped; ``focus on`` is only ever the gold path's own. None once the episode is
        over, the gold path is spent, or no route to its room is known.
        """
        episode = self._episode
        if episode is None or episode.done:
            return None
        key = (episode.task, episode.variation)
        if key not in self._gold:

            def fetch(server: Any) -> list[str]:
                self._load(server, episode.task, episode.variation, gold=True)
                gold = [str(a) for a in server.getGoldActionSequence()]
                self._restore(server, episode)
                return gold

            self._gold[key] = self._call(fetch)
        gold = self._gold[key]
        plan = _gold_plan(gold, episode.start_room)
        progress = _progress(plan, episode)
        step = progress.redo
        if step is None:
            if progress.next >= len(plan):
                return None
            step = plan[progress.next]
        look = str(self._call(lambda s: s.freeActionLook()))
        here = _room_of(look)
        if progress.failed and progress.redo is None and here == step.room:
            valid = [" ".join(a.lower().split()) for a in dict.fromkeys(self._raw_valid_actions())]
            wanted = step.action
            retries = [a for a in valid if _retries(a, wanted)]
            if _kind_of(wanted) == "focus on":  # only when no other object fits
                return retries[0] if len(retries) == 1 else None
            if retries:
                return max(retries, key=lambda a: (_similar(a, wanted), a))
            skip = _skip(plan, progress.next)
            if skip >= len(plan):
                return None
            step = plan[skip]
        if step.room and here and step.room != here:
            if "teleportAction" in self._simplifications():
                return f"teleport to {step.room}"
            return _route(here, step.room, look, gold, episode.start_room)
        return step.action

    def _simplifications(self) -> set[str]:
        """The simplifications in effect (``easy`` includes teleporting and open doors)."""
        parts = set(self.simplification.split(","))
        if "easy" in parts:
            parts |= {"teleportAction", "openDoors", "openContainers", "selfWateringFlowerPots"}
        return parts

    def step(self, action: str) -> StepResult:
        """Send one command. Never raises for a bad command: it comes back ``valid=False``.

        ``info`` of a valid step: ``score`` (ScienceWorld's, -100..100), ``scores`` (the score
        after each step of the episode so far, invalid ones included: what the relabeler
        reads), ``moves`` (the simulator's clock) and, for an ambiguous command, the reading
        it was resolved to (``resolved_as``).
        """
        episode = self._require_started()
        result = self._step(episode, " ".join(str(action).split()))
        episode.step_scores.append(episode.score)
        if not result.valid:
            return result
        return result.model_copy(update={"info": {**result.info, "scores": episode.step_scores[:]}})

    def _step(self, episode: _Episode, command: str) -> StepResult:
        if episode.done:
            return self._invalid("The episode is over.")
        if len(command) > MAX_ACTION_CHARS:
            too_long = f"an input of {len(command):,} characters"
            return self._invalid(f"No known action matches {too_long}.")
        if command.lower() in _REFUSED:
            return self._invalid(_REFUSED[command.lower()])

        def do_step(server: Any) -> _Outcome | None:
            from py4j.protocol import Py4JJavaError

            try:
                observation, resolved = _step_text(server, command)
            except Py4JJavaError as exc:  # the simulator choked on this input
                logger.debug("ScienceWorld rejected %r: %s", command, exc)
                return None
            return _Outcome(
                observation=observation,
                resolved_as=resolved,
                score=int(round(100 * server.getScore())),
                completed=bool(server.getCompleted()),
                moves=int(server.getNumMoves()),
            )

        outcome = self._call(do_step)
        self._valid_cache = None
        if outcome is None:
            return self._invalid(f"No known action matches that input ({command!r}).")
        episode.actions.append(command)  # replayed after a crash, valid or not
        episode.replay_scores.append(outcome.score)
        episode.understood.append(not outcome.observation.startswith(_NOT_UNDERSTOOD))
        if outcome.observation.startswith(_NOT_UNDERSTOOD):
            return self._invalid(outcome.observation)
        episode.score = outcome.score
        episode.valid_steps += 1
        failed = outcome.score < 0
        truncated = episode.valid_steps >= self.env_step_limit
        episode.done = outcome.completed or failed or truncated
        info: dict[str, Any] = {"score": outcome.score, "moves": outcome.moves}
        if outcome.resolved_as:
            info["resolved_as"] = outcome.resolved_as
        if truncated and not (outcome.completed or failed):
            info["truncated"] = True
        return StepResult(observation=outcome.observation, done=episode.done, valid=True, info=info)

    @staticmethod
    def _invalid(why: str) -> StepResult:
        return StepResult(observation=why, done=False, valid=False, info={"error": why})

    def valid_actions(self) -> list[str]:
        """A curated list of ScienceWorld's valid action-object combinations now (see
        :func:`curate_actions` for what is kept and why). Computed on the first call after a
        reset or step (30-150 ms in the simulator) and cached until the next step."""
        episode = self._require_started()
        if self._valid_cache is None:
            # in a fixed order: the simulator's changes from one JVM (or JVM thread) to
            # another, and a seeded random choice from the list must not
            raw = sorted(self._raw_valid_actions())
            self._valid_cache = curate_actions(
                raw,
                episode.description,
                max_per_kind=self.max_per_kind,
                focus_on_named=self.focus_on_named,
            )
        return list(self._valid_cache)

    def _raw_valid_actions(self) -> list[str]:
        """ScienceWorld's own (uncurated) list: the expensive call."""
        return [str(a) for a in self._call(lambda s: s.getValidActionObjectCombinations())]

    def goal_progress(self) -> str:
        """ScienceWorld's subgoal table (for debugging and metrics; not for planners)."""
        self._require_started()
        return str(self._call(lambda s: s.getGoalProgressStr()))

    def evaluate(self) -> Evaluation:
        """Success: ScienceWorld's score reached 100. Score: the game score / 100 in [0, 1]; a
        failed game (a wrong focus, score -100) scores 0."""
        episode = self._require_started()
        return Evaluation(
            success=episode.score >= 100, score=min(max(episode.score / 100, 0.0), 1.0)
        )


# -- hindsight relabeling --------------------------------------------------------------------
def trajectory_scores(trajectory: Trajectory) -> list[int] | None:
    """ScienceWorld's score after each step of a trajectory, from what :meth:`step` recorded.

    ``trajectory.info["env"]`` is the info of the last valid step; its ``scores`` cover every
    action up to it, and later (invalid) actions leave the score unchanged. Falls back to the
    final score alone (a one-element list) when only that is known, and to ``None`` when the
    trajectory carries no ScienceWorld score at all.
    """
    env = trajectory.info.get("env") or {}
    n = len(trajectory.steps)
    scores = env.get("scores")
    if isinstance(scores, list) and all(isinstance(s, int) for s in scores):
        if len(scores) > n:  # e.g. a prefix of a longer trajectory: cut to its length
            return scores[:n]
        return scores + [scores[-1] if scores else 0] * (n - len(scores))
    if isinstance(env.get("score"), int | float):
        return [int(env["score"])]
    if n and not any(step.valid for step in trajectory.steps):
        return [0] * n  # no action took effect: the score never left 0
    if trajectory.evaluation is not None:
        return [int(round(trajectory.evaluation.score * 100))]
    return None


class ScienceWorldRelabeler(OutcomeRelabeler):
    """Hindsight triplets for ScienceWorld, labelled by ScienceWorld's own score: the generic
    :class:`~armap_agents.environments.outcome.OutcomeRelabeler` with ScienceWorld's score after
    every step (:func:`trajectory_scores`).

    Trajectories are grouped by task id (one task variation: the same world and the same
    task description). Within a group:

    * the intent is the task description (``trajectory.intent``): ScienceWorld's tasks are
      fixed goals with graded progress, so the hindsight signal is *how far* a trajectory got
      toward that goal rather than a new goal;
    * outcome pairs: each trajectory whose final score is above another's is the positive
      against up to ``negatives_per_positive`` trajectories of strictly lower final score
      (drawn at random; a failed game, -100, ranks below any live one);
    * prefix pairs (``prefixes``, up to ``prefix_pairs_per_pair`` per outcome pair, see
      :func:`~armap_agents.environments.outcome.prefix_depths`): ``(positive[:k],
      negative[:k])`` of the same step count. With the per-step scores :meth:`step` records,
      ``k`` is first the step at which the positive's score first rises above the negative's
      (e.g. the step at which the negative focused on the wrong object, or the positive
      completed a subgoal the negative had not), never a step at which the negative leads;
      with only a final score (trajectories from elsewhere), ``k`` is drawn from the step at
      which the two part ways and a quarter, half and three quarters of the shorter one,
      labelled by the final outcome.

    Trajectories that failed with an error, or carry no score, are skipped. Labels come from
    the simulator only: no LLM, no replay.
    """

    def __init__(
        self,
        *,
        negatives_per_positive: int = 2,
        prefixes: bool = True,
        prefix_pairs_per_pair: int = 1,
    ) -> None:
        super().__init__(
            negatives_per_positive=negatives_per_positive,
            prefixes=prefixes,
            prefix_pairs_per_pair=prefix_pairs_per_pair,
            truncated=False,  # the per-step scores already rank every prefix
            scores=trajectory_scores,
        )
