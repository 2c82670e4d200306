"""The sizes of a quickstart run and where it lives: :func:`quickstart_plan`, :func:`spread`,
:func:`default_run_dir`.

The sizes are the environment's own declaration (``EnvironmentDefaults.quickstart``, see
:mod:`armap_agents.environments.defaults`): Game of 24 uses its standard splits, ScienceWorld
and ALFWorld a fixed subset of task families spread evenly, WebShop the generated catalog's
goals in order, and an environment that declares nothing generic sizes (the first tasks of its
``train`` and ``test`` splits, in order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan

__all__ = ["QuickstartPlan", "default_run_dir", "quickstart_plan", "spread"]


def quickstart_plan(
    env: str | EnvironmentDefaults,
    size: str,
    *,
    llm: bool,
    n: int | None = None,
    max_steps: int | None = None,
) -> QuickstartPlan:
    """The plan of a quickstart on ``env`` (a name or import path, or the environment's
    :class:`EnvironmentDefaults`) at ``size`` (``full`` or ``tiny``); ``llm``: with a chat
    model (smaller runs). ``n`` and ``max_steps`` override the plan's where given. The plan's
    ``max_steps`` and ``max_length`` are filled in from the environment's horizon and window
    where the sizes leave them to it."""
    if isinstance(env, str):
        from armap_agents.environments.registry import default_registry

        env = default_registry().defaults(env)
    plan = env.quickstart.plan(size, llm=llm)
    update: dict[str, Any] = {
        "max_steps": max_steps or plan.max_steps or env.max_steps,
        # an environment that declares no window gets one from its data, at training
        "max_length": plan.max_length
        or (env.max_length if "max_length" in env.model_fields_set else None),
    }
    if n is not None:
        update["n"] = n
    return QuickstartPlan.model_validate({**plan.model_dump(), **update})


def spread(task_ids: Sequence[str], families: Sequence[str] | None, k: int | None) -> list[str]:
    """``k`` ids (None: all), taken round-robin over ``families`` (see
    :func:`~armap_agents.environments.base.select_tasks`); no families: the first ``k``."""
    from armap_agents.environments.base import select_tasks

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
