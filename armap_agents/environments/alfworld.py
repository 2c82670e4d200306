"""ALFWorld (text): household tasks in a TextWorld game compiled from a PDDL problem.

Each task is one ALFWorld game, a ``game.tw-pddl`` file (keys ``pddl_domain``, ``grammar``,
``pddl_problem``, ``solvable``, ``walkthrough``) played by TextWorld's PDDL backend with
ALFWorld's demangler (objects are called ``book 2``, ``sidetable 1`` ...). The six task types
are :data:`TASK_TYPES`; the instruction is the game's "Your task is to: ..." line, e.g.
``put some book on sidetable.``, and success is the PDDL goal holding.

Data is not shipped with the package (it is the ALFWorld data release). Point the environment
at it with ``data_dir=...`` or the ``ALFWORLD_DATA`` environment variable, in ALFWorld's usual
layout: ``$ALFWORLD_DATA/json_2.1.1/<split>/<task>/<trial>/game.tw-pddl``.
``alfworld-download`` (``pip install alfworld``) fetches it on a machine with internet access;
only the ``game.tw-pddl`` files are needed (no ``traj_data.json``).
Install the engine with ``pip install 'armap-agents[alfworld]'`` (``alfworld``, which brings
``textworld[pddl]`` and ``fast-downward-textworld``); it is imported on the first
:meth:`AlfWorldEnv.reset`, so importing this module needs none of them.

Task ids are game directories relative to ``json_2.1.1``, e.g.
``valid_seen/pick_and_place_simple-Book-None-SideTable-329/trial_T20190908_050633_745514``.
Splits: ``train``, ``valid_seen`` (alias ``dev``), ``valid_unseen`` (alias ``test``; the usual
134-game evaluation set). As in ALFWorld's own loader, unsolvable games and the ``movable`` /
``Sliced`` task variants are not listed.

Actions are the game's *admissible commands* (``go to bed 1``, ``take book 2 from bed 1``,
``move book 2 to sidetable 1``, ``heat egg 1 with microwave 1``, ``use desklamp 1`` ...),
including ALFWorld's informational ``look``, ``inventory``, ``examine X`` and ``help``, which
are kept so that the action space is the one published baselines use. Matching ignores case,
repeated spaces and a final period, and ``put X in/on Y`` (the phrasing of ReAct-style prompts)
is read as ``move X to Y``. Anything else is invalid: the game is not touched and the
observation says so.

Costs and engine notes (see ``benchmarks/alfworld_costs.py`` for measurements):

* Loading a game translates its PDDL problem with fast-downward (a few hundred ms). Each
  environment keeps its loaded game and a snapshot of the initial state, so :meth:`reset` of
  the same game *rewinds* to the snapshot (tens of ms) instead of translating again; that is
  what keeps MCTS, which replays action prefixes from ``reset()``, affordable.
* Every engine is a private copy of fast-downward's 34 MB shared library that can never be
  unloaded (unloading it crashes the process at exit), so each engine holds ~34 MB of
  (deleted) temporary file until the process ends. Planners make one environment per node
  operation: give them :meth:`AlfWorldEnv.factory`, whose environments share a bounded
  :class:`AlfWorldEnginePool` of engines (and their loaded games) instead of creating one each.
* TextWorld's PDDL backend is not thread-safe (module-level parsers, and a translator that
  swaps ``sys.stdout`` and ``sys.argv``), so every engine call in the process takes one lock:
  concurrent episodes are correct but run one engine step at a time.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import os
import random
import re
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan, QuickstartSizes
from armap_agents.environments.outcome import prefix_triplets
from armap_agents.errors import ConfigError, MissingDependency, UnknownName
from armap_agents.prompts import PromptGuide
from armap_agents.types import Evaluation, Observation, StepResult, Trajectory, Triplet

__all__ = [
    "DATA_ENV_VAR",
    "SPLITS",
    "TASK_TYPES",
    "AlfWorldEnginePool",
    "AlfWorldEnv",
    "AlfWorldRelabeler",
    "HindsightGoal",
    "find_data_dir",
    "resolve_task_types",
    "satisfied_goals",
    "task_type",
]

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "ALFWORLD_DATA"
DATA_VERSION = "json_2.1.1"
GAME_FILE = "game.tw-pddl"

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
"""ALFWorld's six task types, in ALFWorld's numbering (1-6)."""

SPLITS: dict[str, str] = {
    "train": "train",
    "valid_seen": "valid_seen",
    "dev": "valid_seen",
    "valid_unseen": "valid_unseen",
    "test": "valid_unseen",
}
"""Split names (and aliases) -> directory under ``json_2.1.1``."""

MAX_ACTION_CHARS = 1_000
"""The longest action :meth:`AlfWorldEnv.step` reads; a longer one is invalid unread (a
command is a few words)."""

_INSTALL_HINT = "pip install 'armap-agents[alfworld]'"
_INTRO_BANNER = "-= Welcome to TextWorld, ALFRED! =-"
_TASK_LINE = re.compile(r"\n*Your task is to: (?P<goal>.*?)\s*$", re.DOTALL)
_UNSOLVABLE = re.compile(rb'"solvable"\s*:\s*false')
_PUT_ALIAS = re.compile(r"^put (?P<obj>.+?) (?:in|on|in/on|into|onto) (?P<recep>.+)$")

# TextWorld's PDDL backend keeps process-global state that is not thread-safe: the TatSu
# parsers behind every reset/step are module-level objects, and fast-downward's translator
# rebinds ``sys.argv`` and swaps ``sys.stdout`` while it runs. Four threads playing four games
# at once fail most episodes (and lose the process's stdout), so every engine call in this
# process goes through this one lock. It guards process-wide state, hence module level.
_ENGINE_LOCK = threading.RLock()


def _cached_parser(parse: Callable[..., Any], maxsize: int = 16_384) -> Callable[..., Any]:
    """``parse`` (a pure function of its arguments) computed once per distinct call; every
    caller gets its own deep copy, since TextWorld's callers mutate what a parse returns."""

    @functools.lru_cache(maxsize=maxsize)
    def parsed(args: tuple, kwargs: tuple) -> Any:
        return parse(*args, **dict(kwargs))

    def cached(*args: Any, **kwargs: Any) -> Any:
        return copy.deepcopy(parsed(args, tuple(sorted(kwargs.items()))))

    cached.uncached = parse  # type: ignore[attr-defined]
    return cached


def _cache_textworld_parsers() -> None:
    """Make TextWorld parse each grammar and query string once per process.

    At every step TextWorld renders the observation from its text grammar and re-parses the
    same few grammar expansions and rule conditions with TatSu, thousands of times per
    episode: two thirds of a step's time (0.44 s per step on a 2-core EPYC, 0.15 s with the
    cache; the trajectories are identical). Both module-level parsers are pure functions of
    their text, so they are wrapped, once per process, in :func:`_cached_parser`. Call with
    ``_ENGINE_LOCK`` held.
    """
    from textworld import logic
    from textworld.envs.pddl import textgen

    for module in (logic, textgen):
        if not hasattr(module._parse_and_convert, "uncached"):
            module._parse_and_convert = _cached_parser(module._parse_and_convert)


# -- data and names -----------------------------------------------------------------------
def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``json_2.1.1`` directory of an ALFWorld data release.

    ``data_dir`` (or ``$ALFWORLD_DATA`` when it is None) may be the release root that holds
    ``json_2.1.1``, or ``json_2.1.1`` itself. Raises :class:`MissingDependency` saying how to
    supply the data when neither holds a split directory.
    """
    source = "data_dir" if data_dir is not None else f"${DATA_ENV_VAR}"
    raw = data_dir if data_dir is not None else os.environ.get(DATA_ENV_VAR)
    how = (
        f"Pass data_dir=... or set {DATA_ENV_VAR} to a directory holding "
        f"{DATA_VERSION}/<split>/<task>/<trial>/{GAME_FILE} (the ALFWorld data release; "
        "`alfworld-download` fetches it on a machine with internet access)."
    )
    if raw is None or str(raw).strip() == "":
        raise MissingDependency(
            f"ALFWorld data not configured: {DATA_ENV_VAR} is not set (or empty). {how}"
        )
    root = Path(raw).expanduser()
    for candidate in (root / DATA_VERSION, root):
        if candidate.is_dir() and any((candidate / d).is_dir() for d in set(SPLITS.values())):
            return candidate
    state = "does not exist" if not root.exists() else "has no ALFWorld splits"
    raise MissingDependency(f"ALFWorld data directory {str(root)!r} (from {source}) {state}. {how}")


def task_type(task_id: str) -> str:
    """The task type of a game from its directory name, e.g. ``pick_and_place_simple``."""
    parts = PurePosixPath(task_id.replace("\\", "/")).parts
    for part in reversed(parts):
        head = part.split("-", 1)[0]
        if head in TASK_TYPES or head.startswith("pick_") or head.startswith("look_"):
            return head
    raise UnknownName(
        f"cannot read a task type from {task_id!r}: ALFWorld task ids look like "
        "'valid_seen/pick_and_place_simple-Book-None-SideTable-329/trial_...'"
    )


def resolve_task_types(names: Iterable[str | int] | None) -> tuple[str, ...]:
    """Full task-type names for ``names`` (None: all six).

    Accepts full names, unambiguous parts of one (``pick_and_place``, ``clean``, ``heat``,
    ``cool``, ``two``, ``look``) and ALFWorld's numbers 1-6. Raises :class:`ConfigError` for an
    unknown or ambiguous name, listing the known ones.
    """
    if names is None:
        return TASK_TYPES
    if isinstance(names, str | int):
        names = [names]
    resolved: list[str] = []
    for name in names:
        query = str(name).strip().lower().replace("-", "_").replace(" ", "_")
        if query.isdigit() and 1 <= int(query) <= len(TASK_TYPES):
            match = [TASK_TYPES[int(query) - 1]]
        elif query in TASK_TYPES:
            match = [query]
        else:
            match = [t for t in TASK_TYPES if query and query in t]
        if len(match) != 1:
            why = f"is ambiguous ({', '.join(match)})" if match else "is unknown"
            raise ConfigError(
                f"ALFWorld task type {name!r} {why}; known task types: {', '.join(TASK_TYPES)} "
                "(or their numbers 1-6)"
            )
        if match[0] not in resolved:
            resolved.append(match[0])
    return tuple(resolved)


def _require_engine_packages() -> None:
    """Fail early (without importing them) when the engine's packages are missing."""
    missing = [m for m in ("textworld", "alfworld", "fast_downward") if not _has_module(m)]
    if missing:
        raise MissingDependency(
            f"the ALFWorld environment needs {', '.join(missing)}: {_INSTALL_HINT}"
        )


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _normalize(action: str) -> str:
    """Case, spacing and a trailing period do not matter; ``put X in Y`` is ``move X to Y``."""
    text = " ".join(action.strip().lower().split()).rstrip(".").strip()
    m = _PUT_ALIAS.match(text)
    return f"move {m['obj']} to {m['recep']}" if m else text


def _split_intro(feedback: str) -> tuple[str, str]:
    """``(goal, room description)`` from the game's opening text."""
    text = feedback.replace(_INTRO_BANNER, "").strip()
    m = _TASK_LINE.search(text)
    if m is None:
        return "", text
    return m["goal"].strip(), text[: m.start()].strip()


@dataclass(frozen=True)
class _GameInfo:
    """What the game file says without starting it."""

    goal: str
    walkthrough: tuple[str, ...]


def _read_game_info(path: Path) -> _GameInfo:
    import json

    data = json.loads(path.read_text())
    m = re.search(r"Your task is to: ([^\"\\]*)", data.get("grammar", ""))
    return _GameInfo(
        goal=m[1].strip() if m else "", walkthrough=tuple(data.get("walkthrough") or ())
    )


# -- the engine ---------------------------------------------------------------------------
Fact = tuple[str, tuple[str, ...]]
"""A true PDDL fact: ``(predicate, (argument ids ...))``, names lowercase as the engine has them."""


@dataclass(frozen=True)
class _FactSnapshot:
    """The mutable containers of a ``textworld.logic.State`` (as its ``copy()`` lists them)."""

    facts: dict[Any, frozenset[Any]]
    vars_by_name: dict[str, Any]
    vars_by_type: dict[Any, frozenset[Any]]
    var_counts: dict[str, int]


def _snapshot_facts(state: Any) -> _FactSnapshot:
    return _FactSnapshot(
        facts={k: frozenset(v) for k, v in state._facts.items()},
        vars_by_name=dict(state._vars_by_name),
        vars_by_type={k: frozenset(v) for k, v in state._vars_by_type.items()},
        var_counts=dict(state._var_counts),
    )


def _restore_facts(state: Any, snapshot: _FactSnapshot) -> None:
    state._facts = defaultdict(set, {k: set(v) for k, v in snapshot.facts.items()})
    state._vars_by_name = dict(snapshot.vars_by_name)
    state._vars_by_type = defaultdict(set, {k: set(v) for k, v in snapshot.vars_by_type.items()})
    state._var_counts = Counter(snapshot.var_counts)


# -- the expert ----------------------------------------------------------------------------
_MAX_PLANS = 4096
"""Searched plans the expert keeps per game (each keyed by a state's few changed facts)."""
_MAX_UNDO = 8
"""The longest detour the expert walks back instead of searching again."""


def _relevant(facts: frozenset[Fact]) -> frozenset[Fact]:
    """A state's facts without ``checked`` (what look/examine/open record), which no action
    or goal reads: two states with the same relevant facts have the same plans."""
    return frozenset(f for f in facts if f[0] != "checked")


_StateKey = frozenset[Fact]
"""A state as the expert keys it: the relevant facts that differ from the initial state's."""


def _undo(command: str, were_at: str | None) -> str | None:
    """The command that reverses ``command`` (None when there is none), ``were_at`` the
    receptacle the agent stood at before it."""
    verb, _, rest = command.partition(" ")
    if command.startswith("go to "):
        return f"go to {were_at}" if were_at else None
    if verb in ("open", "close"):
        return f"{'close' if verb == 'open' else 'open'} {rest}"
    m = re.fullmatch(r"take (?P<obj>.+) from (?P<recep>.+)", command)
    if m:
        return f"move {m['obj']} to {m['recep']}"
    m = re.fullmatch(r"move (?P<obj>.+) to (?P<recep>.+)", command)
    return f"take {m['obj']} from {m['recep']}" if m else None


@dataclass(frozen=True)
class _Visit:
    """A state on the current episode's path: its key, the command that undoes the step into
    it, whether that step was a ``go to``, and the receptacle the agent stands at."""

    state: _StateKey
    undo: str | None
    went: bool
    at: str | None


class _ExpertMemory:
    """The ALFWorld expert of one game: the episode's path and the plans known along it.

    ``plan(state, ...)`` answers, cheapest first: the plan known for this state in this
    episode (the stored walkthrough from the initial state, or the rest of a known plan after
    following its first command); after a detour of up to :data:`_MAX_UNDO` reversible
    commands (``go to``, ``open``/``close``, ``take``/``move``) from a state with a known plan,
    the commands that undo it (a ``go to`` needs no undo when the plan goes on with a ``go
    to``: only the agent's location differs, which that command sets); else a search from
    the state. A search's plan is an admissible command's and reaches the goal, so the expert
    is never stuck. Searches (fast-downward: milliseconds in a bedroom, seconds in a kitchen)
    happen only after irreversible detours (``heat``, ``clean``, ``use`` ...) or long ones,
    and are remembered across episodes (a pure function of the state); everything else is
    a function of the episode's path, so the expert does not depend on which episodes ran
    before on this engine.
    """

    def __init__(self, walkthrough: tuple[str, ...]) -> None:
        self.walkthrough = walkthrough
        self.searched: dict[_StateKey, tuple[str, ...]] = {}
        self.plans: dict[_StateKey, tuple[str, ...]] = {}
        self.path: list[_Visit] = []
        self.restart()

    def restart(self, state: _StateKey = frozenset()) -> None:
        """A new episode (or a path that starts at ``state``): nothing known but the
        walkthrough from the initial state."""
        self.plans = {frozenset(): self.walkthrough} if self.walkthrough else {}
        self.path = [_Visit(state, None, False, None)]

    def moved(self, command: str, state: _StateKey) -> None:
        """The episode played ``command`` and is now in ``state``."""
        here = self.path[-1]
        plan = self.plans.get(here.state)
        if plan and len(plan) > 1 and plan[0] == command and state not in self.plans:
            self.plans[state] = plan[1:]  # the rest of a known plan holds from here
        went = command.startswith("go to ")
        at = command[len("go to ") :] if went else here.at
        for i, visit in enumerate(self.path):
            if visit.state == state:  # back where the episode was (an undo, or a no-op)
                del self.path[i + 1 :]
                return
        # an undo that did not lead back is not undone in turn (that would go round in circles)
        undo = None if command == here.undo else _undo(command, here.at)
        self.path.append(_Visit(state, undo, went, at))

    def plan(
        self,
        state: _StateKey,
        admissible: set[str],
        search: Callable[[], tuple[str, ...]],
    ) -> tuple[str, ...]:
        """A plan from ``state`` (the current one) to the goal; see the class docstring."""
        if self.path[-1].state != state:  # not followed from the start (cannot happen)
            self.restart(state)
        known = self.plans.get(state)
        if known is not None and (not known or known[0] in admissible):
            return known
        repair = self._walk_back()
        if repair and repair[0] in admissible:
            return repair
        found = self.searched.get(state)
        if found is None:
            found = search()
            if len(self.searched) >= _MAX_PLANS:
                del self.searched[next(iter(self.searched))]  # the oldest
            self.searched[state] = found
        self.plans[state] = found
        return found

    def _walk_back(self) -> tuple[str, ...] | None:
        """The undo commands back to the latest state on the path with a known plan, then
        that plan (None when the detour is too long or not reversible)."""
        undos: list[str] = []
        for back in range(1, min(_MAX_UNDO, len(self.path) - 1) + 1):
            visit = self.path[-back]
            plan = self.plans.get(self.path[-back - 1].state)
            if plan and visit.went and plan[0].startswith("go to "):
                # from there, only the agent's location differs, which plan[0] sets anew
                if not undos:
                    self.plans[visit.state] = plan
                return _skip_passing_go_tos((*undos, *plan))
            if visit.undo is None:
                return None
            undos.append(visit.undo)
            if plan:
                return _skip_passing_go_tos((*undos, *plan))
        return None


def _skip_passing_go_tos(commands: tuple[str, ...]) -> tuple[str, ...]:
    """``commands`` without each ``go to`` that another ``go to`` follows (only the last of
    them decides where the agent stands)."""
    go = [c.startswith("go to ") for c in commands]
    return tuple(c for i, c in enumerate(commands) if not (go[i] and i + 1 < len(go) and go[i + 1]))


class _Engine:
    """One TextWorld PDDL game engine (with its own fast-downward copy), one game at a time.

    ``load`` translates a game once and snapshots its initial state; ``reset`` rewinds to the
    snapshot (reloads the translated task into fast-downward and restores the fact sets), which
    is what TextWorld's own reset does minus the translation. ``reset(fast=False)`` uses
    TextWorld's own reset instead (the reference behaviour, for tests and measurements).
    """

    def __init__(self) -> None:
        _require_engine_packages()
        with _ENGINE_LOCK:  # first import of textworld: module-level state is built here
            import textworld
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
            from textworld.envs.pddl import PddlEnv

            _cache_textworld_parsers()

        infos = textworld.EnvInfos(won=True, lost=True, admissible_commands=True)
        self._pddl = PddlEnv(infos)  # copies and loads fast-downward's library (~0.1 s)
        env: Any = self._pddl
        for wrapper in (AlfredDemangler(shuffle=False), AlfredInfos):
            env = wrapper(env)
        self._env = env
        self.game_file: str | None = None
        self._initial: _FactSnapshot | None = None  # the facts right after loading
        self._initial_facts: frozenset[Fact] = frozenset()  # ... as _relevant() keeps them
        self.state: Any = None  # the last textworld GameState
        self.closed = False
        self._expert: _ExpertMemory | None = None  # the expert's plans for this game

    def load(self, game_file: str) -> None:
        with _ENGINE_LOCK:
            self.game_file = None
            argv = sys.argv
            try:
                self._env.load(game_file)  # parses the game and translates the problem once
            finally:
                sys.argv = argv  # fast-downward's translator rebinds it
            self._initial = _snapshot_facts(self._pddl._pddl_state)
            self._initial_facts = _relevant(self.facts())
            self.game_file = game_file
            self.state = None
            self._expert = _ExpertMemory(tuple(getattr(self._pddl, "walkthrough", None) or ()))

    def reset(self, *, fast: bool = True) -> Any:
        if self.game_file is None or self._initial is None:
            raise RuntimeError("load a game before reset")
        with _ENGINE_LOCK:
            if self._expert is not None:
                self._expert.restart()
            if not fast:
                argv = sys.argv
                try:
                    self.state = self._env.reset()
                finally:
                    sys.argv = argv
                return self.state
            self.state = self._rewind(self._initial)
            return self.state

    def _rewind(self, initial: _FactSnapshot) -> Any:
        """TextWorld's ``PddlEnv.reset`` (textworld 1.6-1.7) with the translated task reused."""
        from textworld.core import GameState

        env = self._pddl
        pddl_state = env._pddl_state
        env.downward_lib.load_sas(pddl_state.sas.encode("utf-8"))
        env.downward_lib.load_sas_replan(pddl_state.sas_replan.encode("utf-8"))
        _restore_facts(pddl_state, initial)
        env.prev_state = None
        env.state = GameState()
        env._last_action = None
        env._moves = 0
        context = {
            "state": pddl_state,
            "facts": list(pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": env._entity_infos,
        }
        env.state.feedback = env._logic.grammar.derive("#intro#", context)
        env.state.raw = env.state.feedback
        env._gather_infos()
        return env.state

    def step(self, command: str) -> Any:
        with _ENGINE_LOCK:
            self.state, _, _ = self._env.step(command)
            if self._expert is not None:  # followed always: the expert may be asked later
                self._expert.moved(command, self._state())
            return self.state

    def plan(self) -> tuple[str, ...]:
        """Commands that reach the goal from the current state, by :class:`_ExpertMemory`
        (empty when there are none). Does not change the game's state."""
        with _ENGINE_LOCK:
            if self._expert is None:
                raise RuntimeError("load a game before asking for a plan")
            admissible = set(self.state["admissible_commands"])
            return self._expert.plan(self._state(), admissible, self._search)

    def _state(self) -> _StateKey:
        return _relevant(self.facts()) ^ self._initial_facts

    def _search(self) -> tuple[str, ...]:
        """Fast-downward's plan from the current state (TextWorld's ``replan``): 5 ms on a
        small game, up to several seconds in a kitchen."""
        pddl = self._pddl
        return tuple(pddl._pddl_state.replan(pddl._entity_infos))

    def facts(self) -> frozenset[Fact]:
        """The true positive facts of the current state."""
        with _ENGINE_LOCK:
            return frozenset(
                (p.name, tuple(v.name for v in p.arguments))
                for p in self._pddl._pddl_state.facts
                if not p.name.startswith("not_")
            )

    def close(self) -> None:
        """Free fast-downward's search state (the library itself cannot be unloaded)."""
        if self.closed:
            return
        self.closed = True
        with _ENGINE_LOCK:
            try:
                self._pddl.downward_lib.cleanup()
            except Exception:  # noqa: BLE001 - nothing useful to do about a failed cleanup
                logger.debug("fast-downward cleanup failed", exc_info=True)


class AlfWorldEnginePool:
    """Idle game engines shared by the environments of one factory (thread-safe).

    An environment takes an engine on :meth:`AlfWorldEnv.reset` (preferring one that already
    has the game loaded, so the reset is a cheap rewind) and gives it back on
    :meth:`AlfWorldEnv.close`. At most ``max_idle`` engines wait here; more are closed. Engines
    in use are not counted, so size ``max_idle`` to the concurrency of the planner.
    """

    def __init__(self, max_idle: int = 16) -> None:
        if max_idle < 1:
            raise ConfigError(f"max_idle must be at least 1, got {max_idle}")
        self.max_idle = max_idle
        self._idle: list[_Engine] = []  # least recently released first
        self._lock = threading.Lock()
        self.created = 0
        """How many engines this pool has started (each holds a fast-downward copy)."""

    def acquire(self, game_file: str) -> _Engine:
        """An engine with ``game_file`` loaded, taken out of the pool (or a new one)."""
        engine = None
        with self._lock:
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i].game_file == game_file:
                    engine = self._idle.pop(i)
                    break
            if engine is None and self._idle:
                engine = self._idle.pop(0)
            if engine is None:
                self.created += 1
        if engine is None:
            engine = _Engine()
        if engine.game_file != game_file:
            try:
                engine.load(game_file)
            except BaseException:
                self.release(engine)
                raise
        return engine

    def release(self, engine: _Engine) -> None:
        """Give an engine back for reuse."""
        if engine.closed:
            return
        with self._lock:
            self._idle.append(engine)
            evicted = self._idle[: -self.max_idle]
            del self._idle[: -self.max_idle]
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close every idle engine."""
        with self._lock:
            idle, self._idle = self._idle, []
        for engine in idle:
            engine.close()

    def __len__(self) -> int:
        return len(self._idle)


# -- the environment ----------------------------------------------------------------------
class AlfWorldEnv:
    """ALFWorld's text games as an :class:`~armap_agents.environments.base.Environment`.

    Construction is cheap (it checks that the data directory and the engine's packages are
    there); games are loaded on :meth:`reset`. No state copies: planners replay prefixes from
    :meth:`reset`, which rewinds a loaded game in tens of milliseconds.

    Args:
        data_dir: the data release (see :func:`find_data_dir`); default ``$ALFWORLD_DATA``.
        task_types: list only these task types (see :func:`resolve_task_types`).
        max_episode_steps: end the episode (``done``, ``info["truncated"]``) after this many
            :meth:`step` calls, valid or not; None (default) leaves the limit to the caller.
        pool: share engines with other environments (see :meth:`factory`); None gives this
            environment its own engine, released by :meth:`close`.
        fast_reset: rewind a loaded game on reset (default) instead of TextWorld's own reset,
            which translates the PDDL problem again (slower, the reference behaviour).
    """

    name = "alfworld"
    defaults = EnvironmentDefaults(
        max_steps=20,
        # an ALFWorld step costs 0.1-0.2 s on a train game (TextWorld renders every observation
        # from its grammar): 6 train games per task type keep the full run under 20 minutes
        quickstart=QuickstartSizes(
            families=TASK_TYPES,
            full=QuickstartPlan(
                train_tasks=36, episodes=4, max_train=4000, epochs=2, test_tasks=12, n=8
            ),
            tiny=QuickstartPlan(
                train_tasks=6, episodes=2, max_train=200, epochs=1, test_tasks=1, n=2, max_steps=6
            ),
            llm_full=QuickstartPlan(
                train_tasks=18, episodes=1, max_train=None, epochs=2, test_tasks=12, n=4
            ),
            llm_tiny=QuickstartPlan(
                train_tasks=6, episodes=1, max_train=None, epochs=1, test_tasks=1, n=2, max_steps=6
            ),
        ),
    )
    """Its horizon, and quickstart sizes spread over all six task types."""
    prompt_guide = PromptGuide(
        action=(
            "ALFWorld rules: you are in a household; act with one command per step, exactly as "
            "the valid actions write it: `go to <receptacle>`, `open <receptacle>`, `close "
            "<receptacle>`, `take <object> from <receptacle>`, `move <object> to <receptacle>`, "
            "`heat <object> with microwave 1`, `cool <object> with fridge 1`, `clean <object> "
            "with sinkbasin 1`, `use desklamp 1`, `examine <object>`, `look`, `inventory`. You "
            "carry one object at a time; go to a receptacle before acting on or in it; open a "
            "closed receptacle to see inside. Example for 'put a clean mug in coffeemachine':\n"
            "Action: go to countertop 1\nAction: take mug 1 from countertop 1\n"
            "Action: go to sinkbasin 1\nAction: clean mug 1 with sinkbasin 1\n"
            "Action: go to coffeemachine 1\nAction: move mug 1 to coffeemachine 1"
        ),
        synthesis=(
            "ALFWorld conventions: an intent is a household task in ALFWorld's wording, e.g. "
            "'put a clean mug in coffeemachine.', 'put some cd on desk.', 'heat some egg and "
            "put it in garbagecan.', 'look at book under the desklamp.', 'find two pillow and "
            "put them in sofa.' A negative starts from the same room, uses ALFWorld commands "
            "(go to, take ... from ..., move ... to ..., open, heat/cool/clean ... with ...) "
            "and leaves the intent unachieved: the wrong object or receptacle, or a missing "
            "step such as never cleaning the object."
        ),
    )

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        task_types: Sequence[str | int] | None = None,
        max_episode_steps: int | None = None,
        pool: AlfWorldEnginePool | None = None,
        fast_reset: bool = True,
    ) -> None:
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps must be at least 1, got {max_episode_steps}")
        self.task_types = resolve_task_types(task_types)
        self.root = find_data_dir(data_dir)
        _require_engine_packages()
        self.max_episode_steps = max_episode_steps
        self.fast_reset = fast_reset
        self._pool = pool
        self._engine: _Engine | None = None
        self._infos: dict[str, _GameInfo] = {}
        self._listings: dict[str, list[str]] = {}
        self._task_id: str | None = None
        self._admissible: list[str] = []
        self._by_normal: dict[str, str] = {}
        self._won = False
        self._steps = 0
        self._done = False

    @classmethod
    def factory(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        task_types: Sequence[str | int] | None = None,
        max_episode_steps: int | None = None,
        max_idle: int = 16,
    ) -> Callable[[], AlfWorldEnv]:
        """An environment factory whose environments share one :class:`AlfWorldEnginePool`.

        Use it for planners and exploration (which make one environment per episode or node
        operation): engines are reused with their loaded games instead of being started
        again, which saves the load and bounds memory. The data directory is checked now.
        """
        find_data_dir(data_dir)
        resolve_task_types(task_types)
        return functools.partial(
            cls,
            data_dir=data_dir,
            task_types=task_types,
            max_episode_steps=max_episode_steps,
            pool=AlfWorldEnginePool(max_idle),
        )

    # -- tasks ---------------------------------------------------------------------------
    def task_ids(self, split: str = "test") -> list[str]:
        """Game directories of ``split`` relative to ``json_2.1.1``, sorted.

        Splits: ``train``, ``valid_seen`` (``dev``), ``valid_unseen`` (``test``). Only the
        task types given at construction; no unsolvable, ``movable`` or ``Sliced`` games.
        """
        try:
            folder = SPLITS[split]
        except KeyError:
            raise ConfigError(
                f"unknown ALFWorld split {split!r}; use one of {', '.join(SPLITS)}"
            ) from None
        if folder not in self._listings:
            self._listings[folder] = self._list(folder)
        return list(self._listings[folder])

    def _list(self, folder: str) -> list[str]:
        split_dir = self.root / folder
        games = sorted(split_dir.glob(f"*/*/{GAME_FILE}")) if split_dir.is_dir() else []
        if not games:
            raise MissingDependency(
                f"ALFWorld split {folder!r} has no games under {str(split_dir)!r}: expected "
                f"{folder}/<task>/<trial>/{GAME_FILE} (`alfworld-download` fetches the data)."
            )
        wanted = set(self.task_types)
        out = []
        for game in games:
            task_dir = game.parent.parent.name
            if "movable" in task_dir or "Sliced" in task_dir:
                continue
            if task_dir.split("-", 1)[0] not in wanted:
                continue
            if _UNSOLVABLE.search(game.read_bytes()):
                continue
            out.append(game.parent.relative_to(self.root).as_posix())
        return out

    @staticmethod
    def task_type(task_id: str) -> str:
        """The task type of a game (see :func:`task_type`)."""
        return task_type(task_id)

    def game_file(self, task_id: str) -> Path:
        """The ``game.tw-pddl`` of a task; ``KeyError`` if there is none."""
        rel = PurePosixPath(task_id.strip().replace("\\", "/").strip("/"))
        if rel.name == GAME_FILE:
            rel = rel.parent
        path = self.root.joinpath(*rel.parts) / GAME_FILE
        if ".." in rel.parts or rel.is_absolute() or not rel.parts or not path.is_file():
            raise UnknownName(
                f"unknown ALFWorld task {task_id!r}: task ids are game directories under "
                f"{str(self.root)!r}, like 'valid_seen/<task>/<trial>' (see task_ids())"
            )
        return path

    def _info(self, task_id: str) -> _GameInfo:
        if task_id not in self._infos:
            self._infos[task_id] = _read_game_info(self.game_file(task_id))
        return self._infos[task_id]

    def goal(self, task_id: str | None = None) -> str:
        """The instruction of a task (default: the current one), read without starting it."""
        return self._info(self._current(task_id)).goal

    def walkthrough(self, task_id: str | None = None) -> list[str]:
        """The expert plan stored with a game (default: the current one): actions that win."""
        return list(self._info(self._current(task_id)).walkthrough)

    def _current(self, task_id: str | None) -> str:
        if task_id is not None:
            return task_id
        self._require_started()
        assert self._task_id is not None
        return self._task_id

    # -- episode -------------------------------------------------------------------------
    def reset(self, task_id: str) -> Observation:
        """Start ``task_id``: the instruction and the room description."""
        path = str(self.game_file(task_id))
        engine = self._engine_for(path)
        state = engine.reset(fast=self.fast_reset)
        self._task_id = task_id
        self._steps = 0
        self._done = False
        self._sync(state)
        goal, text = _split_intro(state.feedback)
        return Observation(instruction=goal or self._info(task_id).goal, text=text)

    def _engine_for(self, game_file: str) -> _Engine:
        if self._engine is not None and self._engine.game_file == game_file:
            return self._engine
        if self._pool is not None:
            if self._engine is not None:
                self._pool.release(self._engine)
                self._engine = None
            self._engine = self._pool.acquire(game_file)
        else:
            if self._engine is None:
                self._engine = _Engine()
            self._engine.load(game_file)
        return self._engine

    def _sync(self, state: Any) -> None:
        self._won = bool(state["won"])
        self._admissible = list(state["admissible_commands"])
        self._by_normal = {_normalize(c): c for c in self._admissible}

    def _require_started(self) -> None:
        if self._task_id is None or self._engine is None:
            raise RuntimeError("call reset(task_id) before using the episode")

    def valid_actions(self) -> list[str]:
        """The game's admissible commands now, sorted (none once the episode is over)."""
        self._require_started()
        return [] if self._done else list(self._admissible)

    def step(self, action: str) -> StepResult:
        """Play one admissible command; anything else is invalid and changes nothing."""
        self._require_started()
        assert self._engine is not None
        if self._done:
            return self._invalid(action, "the episode is over.", hint=False)
        too_long = len(action) > MAX_ACTION_CHARS
        command = None if too_long else self._by_normal.get(_normalize(action))
        self._steps += 1
        if command is None:
            shown = f"an action of {len(action):,} characters" if too_long else repr(action)
            result = self._invalid(action, f"{shown} is not a valid action here.")
        else:
            state = self._engine.step(command)
            self._sync(state)
            self._done = self._won or bool(state["lost"])
            result = StepResult(observation=state.feedback.strip(), done=self._done)
        if not self._done and self.max_episode_steps and self._steps >= self.max_episode_steps:
            self._done = True
            result = result.model_copy(update={"done": True, "info": {"truncated": True}})
        return result

    def _invalid(self, action: str, why: str, *, hint: bool = True) -> StepResult:
        text = f"Nothing happens. Invalid action: {why}"
        if hint and self._admissible:
            example = next((a for a in self._admissible if a.startswith("go to")), None)
            example = example or self._admissible[0]
            text += f" Use one of the valid actions, e.g. {example!r}."
        return StepResult(observation=text, done=self._done, valid=False, info={"error": why})

    def evaluate(self) -> Evaluation:
        """Success when the game's PDDL goal holds now."""
        self._require_started()
        return Evaluation(success=self._won, score=1.0 if self._won else 0.0)

    def expert_action(self) -> str | None:
        """The next command of a plan from the current state to the goal
        (:class:`~armap_agents.environments.base.ExpertHook`); None once the episode is over
        or when no plan reaches the goal from here.

        What the expert knows: everything the game does. It starts from the game's stored
        walkthrough and plans with fast-downward on the full PDDL state (where every object
        is, hidden or not), TextWorld's own ``replan``, from wherever the episode is: after a
        detour it undoes reversible steps (goes back, puts a wrong object down, closes what it
        opened) or searches again, so it recovers from any detour. Plans are kept per state
        (see :class:`_ExpertMemory`): following the expert costs no search, and a search
        (milliseconds in a bedroom, seconds in a kitchen) is paid only after an irreversible
        or long detour. A benchmark stand-in for a competent agent
        (:class:`~armap_agents.policies.ExpertPolicy`), never read by a planner. Deterministic;
        does not change the episode's state.
        """
        self._require_started()
        assert self._engine is not None
        if self._done:
            return None
        plan = self._engine.plan()
        command = self._by_normal.get(_normalize(plan[0])) if plan else None
        if plan and command is None:
            logger.warning("ALFWorld expert: planned %r is not admissible here", plan[0])
        return command

    def _facts(self) -> frozenset[Fact]:
        """The true facts now (for verified relabeling; planners must not read it)."""
        self._require_started()
        assert self._engine is not None
        return self._engine.facts()

    def close(self) -> None:
        """Release the engine (back to the pool, or closed). Idempotent."""
        engine, self._engine = self._engine, None
        self._task_id = None
        if engine is None:
            return
        if self._pool is not None:
            self._pool.release(engine)
        else:
            engine.close()


# -- hindsight goals ----------------------------------------------------------------------
_LAMP_TYPES = ("desklamp", "floorlamp")
_TEMPLATES: dict[str, tuple[str, ...]] = {
    # ALFWorld's own phrasings of each task type's instruction
    "place": ("put a {obj} in {recep}.", "put some {obj} on {recep}."),
    "clean": ("put a clean {obj} in {recep}.", "clean some {obj} and put it in {recep}."),
    "heat": ("put a hot {obj} in {recep}.", "heat some {obj} and put it in {recep}."),
    "cool": ("put a cool {obj} in {recep}.", "cool some {obj} and put it in {recep}."),
    "two": ("put two {obj} in {recep}.", "find two {obj} and put them in {recep}."),
    "look": ("look at {obj} under the {recep}.", "examine the {obj} with the {recep}."),
}
_FAMILY_OF_TASK_TYPE = {
    "pick_and_place_simple": "place",
    "look_at_obj_in_light": "look",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_two_obj_and_place": "two",
}


@dataclass(frozen=True, order=True)
class HindsightGoal:
    """A goal of one of ALFWorld's task types, checkable on a state's PDDL facts.

    ``obj`` is an object type and ``recep`` a receptacle type (for ``look``: the lamp type),
    lowercase without the ``type`` suffix, e.g. ``HindsightGoal("clean", "mug", "coffeemachine")``.
    The checks are ALFWorld's PDDL goals: ``place``: an ``obj`` in a ``recep``; ``clean`` /
    ``heat`` / ``cool``: the same with the object clean / hot / cool; ``two``: two distinct
    ``obj`` in the same ``recep``; ``look``: holding an ``obj`` where a ``recep`` lamp is on.
    """

    family: str
    obj: str
    recep: str

    def intent(self, variant: int = 0) -> str:
        """The instruction in one of ALFWorld's phrasings for this task type."""
        templates = _TEMPLATES[self.family]
        return templates[variant % len(templates)].format(obj=self.obj, recep=self.recep)

    @classmethod
    def of_task(cls, task_id: str) -> HindsightGoal | None:
        """The goal a game's directory name states (``<type>-<Obj>-<Movable>-<Recep>-<scene>``)."""
        parts = PurePosixPath(task_id.replace("\\", "/")).parts
        for part in reversed(parts):
            fields = part.split("-")
            if len(fields) == 5 and fields[0] in _FAMILY_OF_TASK_TYPE:
                return cls(_FAMILY_OF_TASK_TYPE[fields[0]], fields[1].lower(), fields[3].lower())
        return None


def satisfied_goals(facts: Iterable[Fact]) -> frozenset[HindsightGoal]:
    """Every :class:`HindsightGoal` that holds in a state with these facts."""
    otype: dict[str, str] = {}
    rtype: dict[str, str] = {}
    by_pred: dict[str, list[tuple[str, ...]]] = {}
    for pred, args in facts:
        by_pred.setdefault(pred, []).append(args)
        if pred == "objecttype":
            otype[args[0]] = args[1].removesuffix("type")
        elif pred == "receptacletype":
            rtype[args[0]] = args[1].removesuffix("type")
    marks = {p: {a[0] for a in by_pred.get(p, [])} for p in ("isclean", "ishot", "iscool")}
    goals: set[HindsightGoal] = set()
    contents: dict[tuple[str, str], set[str]] = {}
    for o, r in by_pred.get("inreceptacle", []):
        if o not in otype or r not in rtype:
            continue
        obj, recep = otype[o], rtype[r]
        goals.add(HindsightGoal("place", obj, recep))
        for pred, family in (("isclean", "clean"), ("ishot", "heat"), ("iscool", "cool")):
            if o in marks[pred]:
                goals.add(HindsightGoal(family, obj, recep))
        same = contents.setdefault((r, obj), set())
        same.add(o)
        if len(same) >= 2:
            goals.add(HindsightGoal("two", obj, recep))
    held = {o for _, o in by_pred.get("holds", [])}
    if held:
        here = {loc for _, loc in by_pred.get("atlocation", [])}
        receps_here = {r for r, loc in by_pred.get("receptacleatlocation", []) if loc in here}
        toggled = {a[0] for a in by_pred.get("istoggled", [])}
        lamps_on = {
            otype[o]
            for o, r in by_pred.get("inreceptacle", [])
            if o in toggled and r in receps_here and otype.get(o) in _LAMP_TYPES
        }
        for o in held:
            if o in otype:
                goals.update(HindsightGoal("look", otype[o], lamp) for lamp in lamps_on)
    return frozenset(goals)


@dataclass
class _Replay:
    """A trajectory replayed in the game: which goals held after each step."""

    trajectory: Trajectory
    goals: list[frozenset[HindsightGoal]]  # index i: after i steps (0: the start)
    won: list[bool]

    def first(self, goal: HindsightGoal | None) -> int | None:
        """The first step count after which ``goal`` (None: the game's goal) holds."""
        flags = self.won if goal is None else [goal in g for g in self.goals]
        return next((i for i, ok in enumerate(flags) if ok), None)


class AlfWorldRelabeler:
    """Hindsight triplets for ALFWorld whose labels the game verifies.

    Trajectories are grouped by game. Two sources:

    * ``goal``: intent = the game's own instruction; positive = a trajectory that won (ended
      with the goal holding), negative = one of the same game that did not.
    * ``hindsight`` (needs the data, to replay): each trajectory is replayed in the game and
      the PDDL facts after every step are checked against the goals of ALFWorld's six task
      types (:class:`HindsightGoal`: put an X in a Y, a clean/hot/cool X in a Y, two X in a Y,
      look at an X under a lamp) for every object and receptacle type. A goal that is false at
      the start and true after step ``k`` was *achieved*: the intent is that goal in
      ALFWorld's phrasing, the positive is the trajectory cut after step ``k`` (where a real
      episode would have ended with success), and the negatives are other trajectories of
      the same game, cut to at most the same length, in which the goal never held.
    * ``prefix`` (``prefixes``): for each of the pairs above, up to ``prefix_pairs_per_pair``
      pairs of the first ``k`` steps of the positive and of the negative, from the step where
      they part ways on (:func:`~armap_agents.environments.outcome.prefix_depths`: the first
      divergence, or a quarter, half or three quarters of the shorter one), for planners
      that score unfinished trajectories. Neither prefix has reached the goal yet; the label
      is the outcome's (the positive went on to reach it), an assumption: the negative may
      have been on a good track and strayed later.

    With the data available, ``goal`` labels are verified by replay too (the ``won`` flag after
    each step); without it (``hindsight=False``) they come from ``trajectory.evaluation``.
    A trajectory whose replay does not reproduce its recorded observations is skipped.
    """

    def __init__(
        self,
        env_factory: Callable[[], AlfWorldEnv] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        hindsight: bool = True,
        negatives_per_positive: int = 2,
        max_intents_per_trajectory: int = 2,
        prefixes: bool = True,
        prefix_pairs_per_pair: int = 1,
    ) -> None:
        if env_factory is None and hindsight:
            env_factory = AlfWorldEnv.factory(data_dir)  # checks the data now
        self._env_factory = env_factory if hindsight else None
        self.hindsight = hindsight
        self.negatives_per_positive = negatives_per_positive
        self.max_intents_per_trajectory = max_intents_per_trajectory
        self.prefixes = prefixes
        self.prefix_pairs_per_pair = prefix_pairs_per_pair
        self.skipped = 0
        """Trajectories whose replay did not match (cumulative)."""

    def relabel(self, trajectories: list[Trajectory], seed: int) -> list[Triplet]:
        rng = random.Random(seed)
        by_task: dict[str, list[Trajectory]] = {}
        for t in trajectories:
            by_task.setdefault(t.task_id, []).append(t)
        triplets: list[Triplet] = []
        for task_id, group in by_task.items():
            if self._env_factory is None:
                triplets += self._from_evaluations(group, rng)
                continue
            with closing(self._env_factory()) as env:
                replays = [r for r in (self._replay(env, t) for t in group) if r is not None]
            triplets += self._from_replays(task_id, replays, rng)
        return triplets

    # -- without replay ------------------------------------------------------------------
    def _from_evaluations(self, group: list[Trajectory], rng: random.Random) -> list[Triplet]:
        won = [t for t in group if t.evaluation is not None and t.evaluation.success]
        lost = [t for t in group if t.evaluation is not None and not t.evaluation.success]
        out = []
        for positive in won:
            for negative in rng.sample(lost, min(self.negatives_per_positive, len(lost))):
                out.append(_triplet(positive.intent, positive, negative, "goal"))
                out += self._prefixes(positive.intent, positive, negative, rng)
        return out

    def _prefixes(
        self, intent: str, positive: Trajectory, negative: Trajectory, rng: random.Random
    ) -> list[Triplet]:
        if not self.prefixes:
            return []
        return prefix_triplets(intent, positive, negative, rng, limit=self.prefix_pairs_per_pair)

    # -- with replay ---------------------------------------------------------------------
    def _replay(self, env: AlfWorldEnv, trajectory: Trajectory) -> _Replay | None:
        try:
            observation = env.reset(trajectory.task_id)
        except KeyError:
            logger.warning("relabel: unknown ALFWorld task %r, skipped", trajectory.task_id)
            self.skipped += 1
            return None
        if observation.text != trajectory.initial_observation:
            self.skipped += 1
            return None
        goals, won = [satisfied_goals(env._facts())], [env.evaluate().success]
        for step in trajectory.steps:
            result = env.step(step.action)
            if result.observation != step.observation or result.valid != step.valid:
                self.skipped += 1
                return None
            goals.append(satisfied_goals(env._facts()) if result.valid else goals[-1])
            won.append(env.evaluate().success)
        return _Replay(trajectory, goals, won)

    def _from_replays(
        self, task_id: str, replays: list[_Replay], rng: random.Random
    ) -> list[Triplet]:
        out: list[Triplet] = []
        own = HindsightGoal.of_task(task_id)
        for replay in replays:
            t = replay.trajectory
            k = replay.first(None)
            if k is not None and k > 0:
                out += self._with_negatives(t.intent, t.prefix(k), None, replays, replay, rng)
            achieved = sorted(
                g for g in set().union(*replay.goals[1:]) if g not in replay.goals[0] and g != own
            )
            for goal in rng.sample(achieved, min(self.max_intents_per_trajectory, len(achieved))):
                k = replay.first(goal)
                assert k is not None
                intent = goal.intent(rng.randrange(2))
                out += self._with_negatives(intent, t.prefix(k), goal, replays, replay, rng)
        return out

    def _with_negatives(
        self,
        intent: str,
        positive: Trajectory,
        goal: HindsightGoal | None,
        replays: list[_Replay],
        source: _Replay,
        rng: random.Random,
    ) -> list[Triplet]:
        n = len(positive.steps)
        candidates = []
        for other in replays:
            if other is source:
                continue
            m = min(n, len(other.trajectory.steps))
            flags = other.won if goal is None else [goal in g for g in other.goals]
            if m > 0 and not any(flags[: m + 1]):
                candidates.append(other.trajectory.prefix(m))
        picked = rng.sample(candidates, min(self.negatives_per_positive, len(candidates)))
        label = "goal" if goal is None else "hindsight"
        out = []
        for negative in picked:
            if negative.render() != positive.render():
                out.append(_triplet(intent, positive, negative, label))
                out += self._prefixes(intent, positive, negative, rng)
        return out


def _triplet(intent: str, positive: Trajectory, negative: Trajectory, source: str) -> Triplet:
    update = {"intent": intent, "evaluation": None}
    return Triplet(
        intent=intent,
        positive=positive.model_copy(update=update),
        negative=negative.model_copy(update=update),
        task_id=positive.task_id,
        source=source,
    )
