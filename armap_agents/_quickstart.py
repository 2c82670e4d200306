"""What ``armap quickstart`` runs for each environment and size: fixed, documented subsets.

Game of 24 uses its standard splits. ScienceWorld and ALFWorld use a fixed subset of task
families (the first variations / games of each, spread evenly over the families) so that the
paper-style table fits in minutes on a laptop; the numbers are a smoke-level comparison, not
the paper's full benchmark. Any other environment (one given by import path) gets generic
sizes: the first tasks of its ``train`` and ``test`` splits, in order.

Each environment, LLM and size has its own default run directory (:func:`default_run_dir`),
so a quickstart on another environment never resumes (or reuses the reward model of) another
one's run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from armap_agents.environments.base import select_tasks

__all__ = ["QuickstartPlan", "default_run_dir", "quickstart_plan", "spread"]

# ScienceWorld's "find" family: navigate, focus on the right thing, move it to a box; partial
# scores along the way give the relabeler something to compare.
SCIENCEWORLD_SUBSET = ("find-living-thing", "find-non-living-thing", "find-plant", "find-animal")
ALFWORLD_SUBSET = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)


class QuickstartPlan(BaseModel):
    """Sizes of one quickstart run."""

    train_tasks: int | None
    """Train tasks explored (None: the whole split)."""
    episodes: int
    max_train: int | None
    """Training triplets used at most."""
    epochs: int
    test_tasks: int | None
    n: int
    max_steps: int
    max_length: int = 512
    """The reward model's window in tokens (it reads trajectories through the environment's
    :class:`~armap_agents.reward_view.TrajectoryView`, fitted to this window)."""
    families: tuple[str, ...] | None = None
    """Task families the tasks are spread over (None: the split in order)."""
    planners: tuple[str, ...] = ("best_of_n", "reflexion", "mcts")


def quickstart_plan(env: str, size: str, *, llm: bool, n: int | None = None) -> QuickstartPlan:
    """The plan for ``env`` at ``size`` (``full`` or ``tiny``); ``llm`` shrinks it (every step
    is an LLM call) and keeps Best-of-N only; ``n`` overrides N where given. An environment
    other than the built-in ones gets generic sizes."""
    if size not in ("full", "tiny"):
        raise ValueError(f"unknown quickstart size {size!r}: use 'full' or 'tiny'")
    tiny = size == "tiny"
    if env == "game24":
        if llm:
            plan = QuickstartPlan(
                train_tasks=3 if tiny else 8,
                episodes=1,
                max_train=None,
                epochs=1 if tiny else 3,
                test_tasks=1 if tiny else 3,
                n=2 if tiny else 4,
                max_steps=4,  # a game takes 3 moves; invalid moves count as steps
                max_length=128,
            )
        else:
            plan = QuickstartPlan(
                train_tasks=40 if tiny else None,
                episodes=4,
                max_train=200 if tiny else 4000,
                epochs=1,
                test_tasks=5 if tiny else None,
                n=16,
                max_steps=10,
                max_length=128,  # a game renders to ~90 tokens
            )
    elif env in ("scienceworld", "alfworld"):
        families = SCIENCEWORLD_SUBSET if env == "scienceworld" else ALFWORLD_SUBSET
        per_family = len(families)
        # an ALFWorld step costs 0.1-0.2 s on a train game (TextWorld renders every observation
        # from its grammar): 6 train games per task type keep the full run under 20 minutes
        full = 6 if env == "alfworld" else 10
        plan = QuickstartPlan(
            train_tasks=(1 if tiny else 3 if llm else full) * per_family,
            episodes=1 if llm else (2 if tiny else 4),
            max_train=None if llm else (200 if tiny else 4000),
            epochs=1 if tiny else 2,
            test_tasks=1 if tiny else 2 * per_family,
            n=2 if tiny else (4 if llm else 8),
            max_steps=6 if tiny else (15 if env == "scienceworld" else 20),
            families=families,
        )
    elif env == "webshop":
        # the generated catalog's goals, in order (the test split is WebShop's first 500)
        plan = QuickstartPlan(
            train_tasks=(10 if tiny else 40 if llm else 300),
            episodes=1 if llm else (2 if tiny else 4),
            max_train=None if llm else (200 if tiny else 2000),
            epochs=1,
            test_tasks=2 if tiny else (10 if llm else 50),
            n=2 if tiny else (4 if llm else 8),
            max_steps=15,  # WebShop's usual episode length
        )
    else:
        # an environment we know nothing about: small enough for a slow one, the splits in order
        plan = QuickstartPlan(
            train_tasks=(3 if llm else 20) if tiny else (10 if llm else 200),
            episodes=1 if llm else 4,
            max_train=None if llm else (300 if tiny else 2000),
            epochs=2,
            test_tasks=(2 if llm else 3) if tiny else (5 if llm else 20),
            n=(2 if llm else 4) if tiny else (4 if llm else 8),
            max_steps=10 if tiny else 20,
        )
    if llm:
        plan.planners = ("best_of_n",)
    if n is not None:
        plan.n = n
    return plan


def spread(task_ids: Sequence[str], families: Sequence[str] | None, k: int | None) -> list[str]:
    """``k`` ids (None: all), taken round-robin over ``families`` (see :func:`select_tasks`)."""
    if not families:
        return list(task_ids[:k] if k else task_ids)
    queues = [select_tasks(list(task_ids), [family]) for family in families]
    picked: list[str] = []
    while any(queues) and (k is None or len(picked) < k):
        for queue in queues:
            if queue and (k is None or len(picked) < k):
                picked.append(queue.pop(0))
    return picked


def default_run_dir(env: str, llm: str | None = None, size: str = "full") -> Path:
    """``runs/quickstart-<env>[-<llm>][-tiny]``, each name made file-name safe: e.g.
    ``runs/quickstart-game24``, ``runs/quickstart-webshop-local-smollm2-tiny``."""
    parts = [env, llm] if llm else [env]
    if size != "full":
        parts.append(size)
    return Path("runs") / "-".join(["quickstart", *map(_slug, parts)])


def _slug(text: str) -> str:
    """``text`` as a file-name part: lowercase letters, digits, ``_`` and ``.``; other runs of
    characters become ``-`` (``examples/shop.py:make`` -> ``examples-shop.py-make``)."""
    return re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-.") or "env"
