"""Game of 24: combine four numbers with + - * / into 24, two numbers at a time.

The 1,362 puzzles ship with the package in their standard difficulty order (see
``data/NOTICE``). Split ``test`` is ranks 901-1000 (the usual 100), ``train`` the rest.
Arithmetic is exact (fractions). Actions look like ``4 + 8 = 12``; the ``= result`` part is
optional, and when present it must be right.
"""

from __future__ import annotations

import csv
import functools
import itertools
import random
import re
from collections.abc import Sequence
from fractions import Fraction
from importlib import resources

from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan, QuickstartSizes
from armap_agents.errors import UnknownName
from armap_agents.prompts import PromptGuide
from armap_agents.types import Evaluation, Observation, Step, StepResult, Trajectory, Triplet

__all__ = [
    "Game24Env",
    "Game24Relabeler",
    "format_number",
    "game24_intent",
    "load_puzzles",
    "reachable_values",
]

TARGET = Fraction(24)
TEST_RANKS = range(901, 1001)
_OPS = "+-*/"
MAX_ACTION_CHARS = 1_000
"""The longest action :meth:`Game24Env.step` reads; a longer one is invalid unread (a real
action, ``a op b = result``, is a few dozen characters)."""
_NUM = r"-?\d+(?:\.\d+)?(?:/\d+)?"
# matched against the action without its surrounding spaces and final period (_match_action):
# no two neighbouring quantifiers take the same characters, so matching takes linear time
_ACTION_RE = re.compile(
    rf"(?P<a>{_NUM})\s*(?P<op>[-+*/x×÷])\s*(?P<b>{_NUM})(?:\s*=\s*(?P<c>{_NUM}))?"
)
_OP_ALIASES = {"x": "*", "×": "*", "÷": "/"}


@functools.cache
def load_puzzles() -> tuple[tuple[int, ...], ...]:
    """The 1,362 puzzles in rank order (index 0 is rank 1). Read once per process (immutable)."""
    text = resources.files("armap_agents.environments").joinpath("data/game24.csv").read_text()
    rows = csv.DictReader(text.splitlines())
    return tuple(tuple(int(x) for x in row["Puzzles"].split()) for row in rows)


def format_number(x: Fraction) -> str:
    """``12``, ``-3`` or ``7/3``: the one way numbers are written in actions and observations."""
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _match_action(action: str) -> re.Match[str] | None:
    """``a op b [= c]`` in ``action`` (spaces around it and one final period allowed)."""
    text = action.replace("−", "-").strip().removesuffix(".").rstrip()
    return _ACTION_RE.fullmatch(text)


def _parse_number(text: str) -> Fraction:
    return Fraction(text)


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def _numbers_text(numbers: Sequence[Fraction]) -> str:
    return " ".join(format_number(x) for x in sorted(numbers))


def game24_intent(numbers: Sequence[int | Fraction], target: Fraction | int = TARGET) -> str:
    """The instruction for reaching ``target`` from ``numbers`` (the test intent uses 24)."""
    nums = " ".join(format_number(Fraction(x)) for x in numbers)
    return (
        f"Use the numbers {nums} and basic arithmetic (+ - * /) to obtain "
        f"{format_number(Fraction(target))}. Each step combines two of the numbers left."
    )


def _successors(numbers: Sequence[Fraction]) -> list[tuple[str, list[Fraction]]]:
    """Every legal action on ``numbers`` and the multiset it leaves, in a fixed order."""
    out: list[tuple[str, list[Fraction]]] = []
    seen: set[str] = set()
    for i, j in itertools.combinations(range(len(numbers)), 2):
        a, b = numbers[i], numbers[j]
        rest = [numbers[k] for k in range(len(numbers)) if k not in (i, j)]
        for x, op, y in (
            (a, "+", b),
            (a, "*", b),
            (a, "-", b),
            (b, "-", a),
            (a, "/", b),
            (b, "/", a),
        ):
            result = _apply(x, op, y)
            if result is None:
                continue
            action = f"{format_number(x)} {op} {format_number(y)} = {format_number(result)}"
            if action not in seen:
                seen.add(action)
                out.append((action, [*rest, result]))
    return out


def reachable_values(numbers: Sequence[Fraction]) -> set[Fraction]:
    """Every value a complete play from ``numbers`` can end at (exhaustive, exact)."""
    if len(numbers) == 1:
        return {numbers[0]}
    values: set[Fraction] = set()
    for _, rest in _successors(numbers):
        values |= reachable_values(rest)
    return values


class Game24Env:
    """Game of 24 as an :class:`~armap_agents.environments.base.Environment`.

    Cheap to copy: :meth:`clone` returns an independent copy of the current state.
    """

    name = "game24"
    defaults = EnvironmentDefaults(
        max_steps=10,  # a game takes 3 moves; invalid moves count as steps
        max_length=128,  # a game renders to ~90 tokens
        quickstart=QuickstartSizes(
            full=QuickstartPlan(
                train_tasks=None, episodes=4, max_train=4000, epochs=1, test_tasks=None, n=16
            ),
            tiny=QuickstartPlan(
                train_tasks=40, episodes=4, max_train=200, epochs=1, test_tasks=5, n=16
            ),
            llm_full=QuickstartPlan(
                train_tasks=8, episodes=1, max_train=None, epochs=3, test_tasks=3, n=4, max_steps=4
            ),
            llm_tiny=QuickstartPlan(
                train_tasks=3, episodes=1, max_train=None, epochs=1, test_tasks=1, n=2, max_steps=4
            ),
        ),
    )
    prompt_guide = PromptGuide(
        action=(
            "Game of 24 rules: each action takes two of the numbers left, combines them with "
            "one of + - * / and replaces them by the result, written as `a op b = result`. "
            "Three actions leave one number; the task is solved when it is 24. Prefer steps "
            "from which 24 is still reachable.\n"
            "Example with the numbers 4 4 6 8:\n"
            "Action: 4 + 8 = 12   (left: 4 6 12)\n"
            "Action: 6 - 4 = 2    (left: 2 12)\n"
            "Action: 12 * 2 = 24  (left: 24, solved)"
        ),
        synthesis=(
            "Game of 24 conventions: an intent reads 'Use the numbers <the four starting "
            "numbers> and basic arithmetic (+ - * /) to obtain <the number the trajectory "
            "ended with>. Each step combines two of the numbers left.' A negative starts from "
            "the same numbers, uses actions of the form `a op b = result` with correct "
            "arithmetic, and ends at a different number; its observations read 'Numbers left: "
            "...'."
        ),
    )

    def __init__(self, puzzles: Sequence[Sequence[int]] | None = None) -> None:
        # the shipped table is cached and immutable: share it rather than copy it per episode
        self._puzzles = load_puzzles() if puzzles is None else tuple(tuple(p) for p in puzzles)
        self._task_id: str | None = None
        self._numbers: list[Fraction] = []

    # -- tasks ---------------------------------------------------------------------------
    def task_ids(self, split: str = "test") -> list[str]:
        """Ranks as strings. ``test``: 901-1000; ``train``: the rest; ``all``: every puzzle."""
        ranks = range(1, len(self._puzzles) + 1)
        if split == "test":
            return [str(r) for r in ranks if r in TEST_RANKS]
        if split == "train":
            return [str(r) for r in ranks if r not in TEST_RANKS]
        if split == "all":
            return [str(r) for r in ranks]
        raise UnknownName(f"unknown split {split!r}: use 'train', 'test' or 'all'")

    def puzzle(self, task_id: str) -> tuple[int, ...]:
        """The four numbers of a task."""
        try:
            rank = int(task_id)
            if rank < 1:
                raise IndexError
            return self._puzzles[rank - 1]
        except (ValueError, IndexError):
            raise UnknownName(
                f"unknown Game of 24 task {task_id!r}: task ids are ranks 1..{len(self._puzzles)}"
            ) from None

    # -- episode -------------------------------------------------------------------------
    def reset(self, task_id: str) -> Observation:
        numbers = self.puzzle(task_id)
        self._task_id = task_id
        self._numbers = [Fraction(x) for x in numbers]
        return Observation(instruction=game24_intent(numbers), text=self._observation())

    def _observation(self) -> str:
        return f"Numbers left: {_numbers_text(self._numbers)}"

    def _require_started(self) -> None:
        if self._task_id is None:
            raise RuntimeError("call reset(task_id) before step()")

    def valid_actions(self) -> list[str]:
        """Every legal combination of two remaining numbers, in a fixed order."""
        self._require_started()
        return [action for action, _ in _successors(self._numbers)]

    def step(self, action: str) -> StepResult:
        self._require_started()
        if len(self._numbers) <= 1:
            return self._invalid("the game is over: no two numbers are left to combine.")
        if len(action) > MAX_ACTION_CHARS:
            return self._invalid(
                f"the action is {len(action):,} characters long; write one operation on two "
                "of the numbers left, like '4 + 8 = 12'."
            )
        m = _match_action(action)
        if not m:
            return self._invalid(
                f"could not parse {action!r}. Write one operation on two of the numbers "
                "left, like '4 + 8 = 12'."
            )
        try:
            a, b = _parse_number(m["a"]), _parse_number(m["b"])
            claimed = _parse_number(m["c"]) if m["c"] else None
        except (ValueError, ZeroDivisionError):
            return self._invalid(f"could not read the numbers in {action!r}.")
        op = _OP_ALIASES.get(m["op"], m["op"])
        remaining = list(self._numbers)
        for x in (a, b):
            if x not in remaining:
                return self._invalid(
                    f"{format_number(x)} is not among the numbers left "
                    f"({_numbers_text(self._numbers)}), or is used twice."
                )
            remaining.remove(x)
        result = _apply(a, op, b)
        if result is None:
            return self._invalid("division by zero is not allowed.")
        if claimed is not None and claimed != result:
            return self._invalid(
                f"{format_number(a)} {op} {format_number(b)} is {format_number(result)}, "
                f"not {format_number(claimed)}."
            )
        self._numbers = [*remaining, result]
        done = len(self._numbers) == 1
        return StepResult(observation=self._observation(), done=done, valid=True)

    def _invalid(self, why: str) -> StepResult:
        return StepResult(
            observation=f"Invalid action: {why} {self._observation()}",
            done=False,
            valid=False,
            info={"error": why},
        )

    def evaluate(self) -> Evaluation:
        """Success: exactly one number left and it equals 24."""
        self._require_started()
        success = len(self._numbers) == 1 and self._numbers[0] == TARGET
        return Evaluation(success=success, score=1.0 if success else 0.0)

    def clone(self) -> Game24Env:
        """An independent copy of this environment in its current state."""
        copy = Game24Env(self._puzzles)
        copy._task_id, copy._numbers = self._task_id, list(self._numbers)
        return copy

    def expert_action(self) -> str | None:
        """What an expert plays now (the :class:`~armap_agents.environments.base.ExpertHook`
        of the benchmark stand-in :class:`~armap_agents.policies.ExpertPolicy`; no planner
        reads it): the first action of :meth:`valid_actions` whose result can still reach 24,
        found by solving the numbers left (so it recovers after any detour that keeps 24
        reachable). ``None`` when no continuation reaches 24 (after a bad step) or the game is
        over. Deterministic; changes nothing."""
        self._require_started()
        for action, rest in _successors(self._numbers):
            if TARGET in reachable_values(rest):
                return action
        return None

    @property
    def numbers(self) -> list[Fraction]:
        """The numbers left now."""
        return list(self._numbers)

    def close(self) -> None:
        """Nothing to release."""


class Game24Relabeler:
    """Hindsight triplets for Game of 24, with labels the game itself verifies.

    For each explored trajectory from numbers N that ends at a value v:

    * intent: "use N to obtain v" (the same template as the real task, with v for 24);
    * negatives: other explored trajectories from N that end elsewhere, and (with probability
      ``corrupt_rate``) a copy of the positive with one step's arithmetic corrupted;
    * partial trajectories: each prefix of the positive (from which v is still reachable)
      against a prefix of equal length from which v can no longer be reached.
    """

    def __init__(
        self,
        env: Game24Env | None = None,
        *,
        negatives_per_positive: int = 2,
        corrupt_rate: float = 0.25,
        prefixes: bool = True,
    ) -> None:
        self._env = env or Game24Env()
        self.negatives_per_positive = negatives_per_positive
        self.corrupt_rate = corrupt_rate
        self.prefixes = prefixes

    def _states(self, trajectory: Trajectory) -> list[list[Fraction]] | None:
        """Numbers left before and after each step (replayed); None if any step is invalid."""
        env = self._env.clone()
        env.reset(trajectory.task_id)
        states = [env.numbers]
        for step in trajectory.steps:
            if not env.step(step.action).valid:
                return None
            states.append(env.numbers)
        return states

    def relabel(self, trajectories: list[Trajectory], seed: int) -> list[Triplet]:
        rng = random.Random(seed)
        played = []
        for t in trajectories:
            states = self._states(t)
            if states is not None and len(states[-1]) == 1 and t.steps:
                played.append((t, states))
        triplets: list[Triplet] = []
        for t, states in played:
            value = states[-1][0]
            numbers = self._env.puzzle(t.task_id)
            intent = game24_intent(numbers, value)
            positive = t.model_copy(update={"intent": intent, "evaluation": None})
            others = [(o, s) for o, s in played if s[-1][0] != value]
            for other, _ in rng.sample(others, min(self.negatives_per_positive, len(others))):
                triplets.append(self._triplet(intent, positive, other, "other-outcome"))
            if rng.random() < self.corrupt_rate:
                corrupted = _corrupt_one_step(positive, states, rng)
                if corrupted is not None:
                    triplets.append(self._triplet(intent, positive, corrupted, "corrupted-step"))
            if self.prefixes:
                for k in range(1, len(t.steps)):
                    dead = [o for o, s in others if value not in reachable_values(s[k])]
                    if dead:
                        negative = rng.choice(dead).prefix(k)
                        triplets.append(
                            self._triplet(intent, positive.prefix(k), negative, "prefix")
                        )
        return triplets

    @staticmethod
    def _triplet(intent: str, positive: Trajectory, negative: Trajectory, source: str) -> Triplet:
        negative = negative.model_copy(update={"intent": intent, "evaluation": None})
        return Triplet(
            intent=intent,
            positive=positive,
            negative=negative,
            task_id=positive.task_id,
            source=source,
        )


def _corrupt_one_step(
    trajectory: Trajectory, states: list[list[Fraction]], rng: random.Random
) -> Trajectory | None:
    """A copy whose step ``i`` writes a false equation (operator swapped, result kept)."""
    i = rng.randrange(len(trajectory.steps))
    m = _match_action(trajectory.steps[i].action)
    if not m or not m["c"]:
        return None
    a, b, c = _parse_number(m["a"]), _parse_number(m["b"]), _parse_number(m["c"])
    wrong_ops = [op for op in _OPS if op != m["op"] and _apply(a, op, b) not in (None, c)]
    if not wrong_ops:
        return None
    op = rng.choice(wrong_ops)
    action = f"{format_number(a)} {op} {format_number(b)} = {format_number(c)}"
    steps = list(trajectory.steps)
    steps[i] = Step(action=action, observation=steps[i].observation)
    return trajectory.model_copy(
        update={"steps": steps, "episode_id": trajectory.episode_id + "~c"}
    )
