"""What every benchmark prints and saves beside its table: the command, the machine, the
versions, and a copy of the table (and plots) under ``benchmarks/results/``.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``_report``
(Python puts the script's own folder first on the path).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import re
import shlex
import sys
from pathlib import Path

import armap_agents
from armap_agents.evaluation import machine_description

RESULTS = Path(__file__).resolve().parent / "results"

_PACKAGES = ("torch", "transformers", "peft", "langgraph")


def versions(extra: tuple[str, ...] = ()) -> str:
    """``name version`` of the packages that decide the numbers (missing ones are skipped)."""
    found = [f"armap-agents {armap_agents.__version__}"]  # the code run, not an install's record
    for name in (*_PACKAGES, *extra):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def header(extra_packages: tuple[str, ...] = ()) -> str:
    """Three lines: the command as typed, the machine, the versions."""
    command = shlex.join(["python", *sys.argv])
    return (
        f"command: `{command}`  \n"
        f"machine: {machine_description()}  \n"
        f"versions: {versions(extra_packages)}  \n"
        f"date: {_dt.date.today().isoformat()}"
    )


def save_results(name: str, markdown: str) -> Path:
    """Print ``markdown`` and write it to ``benchmarks/results/NAME.md``; returns the path.
    Plots go beside it (see :func:`figure_path`)."""
    print(markdown)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    print(f"\nsaved {path.relative_to(RESULTS.parent.parent)}")
    return path


def figure_path(name: str) -> Path:
    """Where a benchmark's PNG goes: ``benchmarks/results/NAME.png``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}.png"


def slug(text: str) -> str:
    """An environment or policy spec as a file-name part: ``examples/courier.py:Courier`` ->
    ``courier``, ``expert:0.5`` -> ``expert-0.5``."""
    stem = Path(text.split(":")[0]).stem if "/" in text else text
    return re.sub(r"[^A-Za-z0-9.]+", "-", stem)
