"""The synthesis graph: trajectories -> triplets, one ``Send`` per task, deduplicated and split.

::

    START -> load --Send(task) x pending--> synthesize_task -> finalize -> END

Each task's triplets are appended to ``raw_triplets.jsonl`` and the task is then marked done in
``synthesis_progress.jsonl``; a rerun skips marked tasks, so an interrupted LLM synthesis
resumes without paying twice. ``finalize`` deduplicates (by the texts the reward model sees)
and splits train / validation *by task*, so no puzzle leaks across, into
``triplets.train.jsonl`` and ``triplets.val.jsonl``; the validation tasks' trajectories (with
the environment's verdicts) go to ``trajectories.val.jsonl``, where training measures how well
the critic picks among a task's candidates
(:mod:`armap_agents.reward.planning_metrics`).

The output directory records what made it in ``meta.json``: the ``provenance`` the caller
gives (the CLI: the synthesizer, the relabeler, the environment and its options), the config's
``seed``, and what made the trajectories (their manifest's ``defines``, see
:mod:`armap_agents.graphs.explore`). Resuming with other values is refused (a
:class:`~armap_agents.errors.CheckpointError` naming both), never mixed in.
"""

from __future__ import annotations

import json
import logging
import operator
import re
import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._jsonl import AppenderPool, iter_jsonl, write_jsonl
from armap_agents._progress import run_with_progress
from armap_agents._provenance import record_manifest, recorded_defines
from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.layout import RAW_TRIPLETS_FILE as RAW_FILE  # a run's files: RunLayout
from armap_agents.layout import SYNTHESIS_PROGRESS_FILE as PROGRESS_FILE
from armap_agents.layout import TRAIN_TRIPLETS_FILE as TRAIN_FILE
from armap_agents.layout import VAL_TRAJECTORIES_FILE
from armap_agents.layout import VAL_TRIPLETS_FILE as VAL_FILE
from armap_agents.synthesizers import Synthesizer
from armap_agents.types import Trajectory, Triplet

__all__ = [
    "SynthesizeConfig",
    "SynthesizeResult",
    "build_synthesize_graph",
    "synthesize",
    "split_of",
]

logger = logging.getLogger(__name__)


class SynthesizeConfig(StrictConfig):
    """How triplets are split into train and validation files, and how many tasks at once."""

    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """The share of tasks held out for validation (split by task)."""
    seed: int = 0
    """Random seed of the run."""
    max_concurrency: int = Field(4, ge=1)
    """Synthesizer calls (tasks) at once."""


class _TaskDone(BaseModel):
    task_id: str
    triplets: int
    skipped: int


class _TaskJob(TypedDict):
    task_id: str
    trajectories: list[Trajectory]
    output_dir: str


class SynthesizeState(TypedDict, total=False):
    trajectories_path: str
    output_dir: str
    pending: list[_TaskJob]
    tasks: int
    failed_tasks: Annotated[int, operator.add]
    skipped: int
    train: int
    val: int
    duplicates: int


class SynthesizeResult(BaseModel):
    """Counts of one synthesis run (over all tasks done so far, resumed ones included)."""

    output_dir: str
    tasks: int
    failed_tasks: int
    skipped_trajectories: int
    duplicates: int
    train: int
    val: int


def _natural_key(text: str) -> list[int | str]:
    """Sort key that puts ``"9#2"`` before ``"10#0"`` and ``"5#2"`` before ``"5#10"``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _episode_order(trajectory: Trajectory) -> tuple[list[int | str], list[int | str]]:
    return _natural_key(trajectory.task_id), _natural_key(trajectory.episode_id)


def split_of(task_id: str, val_fraction: float, seed: int = 0) -> str:
    """``"val"`` or ``"train"`` for a task, deterministically (splits are by task)."""
    return (
        "val" if stable_seed("split", seed, task_id) % 10_000 < val_fraction * 10_000 else "train"
    )


def synthesis_defines(
    config: SynthesizeConfig,
    provenance: Mapping[str, Any] | None,
    trajectories_path: str | Path,
) -> dict[str, Any]:
    """What makes a synthesis output, as its manifest records it: ``provenance``, ``config``'s
    ``seed`` and, when the trajectory file has a manifest, what made the trajectories."""
    defines = {**(provenance or {}), "seed": config.seed}
    trajectories = recorded_defines(trajectories_path, "trajectories")
    if trajectories is not None:
        defines["trajectories"] = trajectories
    return defines


def build_synthesize_graph(
    synthesizer: Synthesizer,
    config: SynthesizeConfig | None = None,
    *,
    provenance: Mapping[str, Any] | None = None,
):
    """A compiled synthesis graph. Invoke with ``{"trajectories_path": ..., "output_dir": ...}``.

    ``provenance``: what made the triplets besides ``config`` and the trajectories (JSON values
    naming the synthesizer, the environment ...), recorded in the output directory's manifest
    and compared when a run resumes (see the module's docstring)."""
    config = config or SynthesizeConfig()
    appenders = AppenderPool()
    # at most max_concurrency synthesizer calls at once (LangGraph's pool has a slot more)
    slots = threading.BoundedSemaphore(config.max_concurrency)

    def load(state: SynthesizeState) -> dict[str, Any]:
        out = Path(state["output_dir"])
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out} is a file: the synthesis output is a directory")
        groups: dict[str, list[Trajectory]] = defaultdict(list)
        for t in iter_jsonl(state["trajectories_path"], Trajectory):
            groups[t.task_id].append(t)
        if not groups:
            raise FileNotFoundError(
                f"no trajectories in {state['trajectories_path']}: run exploration first"
            )
        record_manifest(  # a mismatch with what made the directory is refused
            out,
            "synthesis",
            synthesis_defines(config, provenance, state["trajectories_path"]),
            {
                "trajectories_path": str(state["trajectories_path"]),
                "val_fraction": config.val_fraction,
                "max_concurrency": config.max_concurrency,
            },
        )
        appenders.get(out / RAW_FILE, Triplet)  # opening repairs a torn tail, before workers
        appenders.get(out / PROGRESS_FILE, _TaskDone)
        done = {d.task_id for d in iter_jsonl(out / PROGRESS_FILE, _TaskDone)}
        # files fill in completion order; sort so a synthesizer sees the same input every run
        pending = [
            _TaskJob(
                task_id=task,
                trajectories=sorted(ts, key=lambda t: _natural_key(t.episode_id)),
                output_dir=str(out),
            )
            for task, ts in sorted(groups.items(), key=lambda kv: _natural_key(kv[0]))
            if task not in done
        ]
        get_stream_writer()(
            {"event": "start", "total": len(groups), "done": len(groups) - len(pending)}
        )
        return {"pending": pending, "tasks": len(groups)}

    def fan_out(state: SynthesizeState) -> list[Send] | str:
        return [Send("synthesize_task", job) for job in state["pending"]] or "finalize"

    def synthesize_task(job: _TaskJob) -> dict[str, Any]:
        out = Path(job["output_dir"])
        try:
            with slots:
                result = synthesizer.synthesize(
                    job["trajectories"], seed=stable_seed(config.seed, job["task_id"])
                )
        except BudgetExceeded:  # a spent budget stops the run; a rerun resumes
            raise
        except Exception as exc:  # noqa: BLE001 - one task's failure must not end the run
            logger.warning("synthesis of task %s failed: %r", job["task_id"], exc)
            get_stream_writer()({"event": "task", "failed": True})
            return {"failed_tasks": 1}
        raw = appenders.get(out / RAW_FILE, Triplet)
        for triplet in result.triplets:
            raw.append(triplet)
        appenders.get(out / PROGRESS_FILE, _TaskDone).append(
            _TaskDone(task_id=job["task_id"], triplets=len(result.triplets), skipped=result.skipped)
        )
        get_stream_writer()({"event": "task", "success": bool(result.triplets)})
        return {"failed_tasks": 0}

    def finalize(state: SynthesizeState) -> dict[str, Any]:
        out = Path(state["output_dir"])
        progress = {d.task_id: d for d in iter_jsonl(out / PROGRESS_FILE, _TaskDone)}
        by_task: dict[str, list[Triplet]] = defaultdict(list)
        for triplet in iter_jsonl(out / RAW_FILE, Triplet):
            if triplet.task_id in progress:  # else written by a task that crashed before its marker
                by_task[triplet.task_id].append(triplet)
        for task, rows in by_task.items():
            # a task killed after appending rows but before its marker was synthesized again:
            # its rows are the last ones, as many as its marker says (the others are left over)
            by_task[task] = rows[max(0, len(rows) - progress[task].triplets) :]
        seen: set[tuple[str, str, str]] = set()
        splits: dict[str, list[Triplet]] = {"train": [], "val": []}
        duplicates = 0
        ordered = (t for task in sorted(by_task, key=_natural_key) for t in by_task[task])
        for triplet in ordered:  # task order, not completion order: the same files every run
            key = triplet.key()
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            splits[split_of(triplet.task_id, config.val_fraction, config.seed)].append(triplet)
        write_jsonl(out / TRAIN_FILE, splits["train"])
        write_jsonl(out / VAL_FILE, splits["val"])
        held_out: list[Trajectory] = [
            t
            for t in iter_jsonl(state["trajectories_path"], Trajectory)
            if split_of(t.task_id, config.val_fraction, config.seed) == "val"
        ]
        held_out.sort(key=_episode_order)
        write_jsonl(out / VAL_TRAJECTORIES_FILE, held_out)
        counts = {
            "tasks": state.get("tasks", 0),
            "skipped": sum(d.skipped for d in progress.values()),
            "train": len(splits["train"]),
            "val": len(splits["val"]),
            "duplicates": duplicates,
        }
        (out / "synthesis_summary.json").write_text(json.dumps(counts, indent=2))
        return counts

    graph = StateGraph(SynthesizeState)
    graph.add_node("load", load)
    # a Send target: it takes the Send's payload, which LangGraph's annotations cannot type
    graph.add_node("synthesize_task", synthesize_task)  # type: ignore[arg-type]
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "load")
    graph.add_conditional_edges("load", fan_out, ["synthesize_task", "finalize"])
    graph.add_edge("synthesize_task", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile(name="armap-synthesize")


def synthesize(
    synthesizer: Synthesizer,
    trajectories_path: str | Path,
    output_dir: str | Path,
    config: SynthesizeConfig | None = None,
    *,
    progress: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> SynthesizeResult:
    """Run (or resume) synthesis with a progress bar; returns the counts. ``provenance`` as
    for :func:`build_synthesize_graph`."""
    config = config or SynthesizeConfig()
    graph = build_synthesize_graph(synthesizer, config, provenance=provenance)
    state = run_with_progress(
        graph,
        {
            "trajectories_path": str(trajectories_path),
            "output_dir": str(output_dir),
            "failed_tasks": 0,
        },
        desc="synthesize",
        unit="task",
        max_concurrency=config.max_concurrency,
        progress=progress,
    )
    result = SynthesizeResult(
        output_dir=str(output_dir),
        tasks=state.get("tasks", 0),
        failed_tasks=state.get("failed_tasks", 0),
        skipped_trajectories=state.get("skipped", 0),
        duplicates=state.get("duplicates", 0),
        train=state.get("train", 0),
        val=state.get("val", 0),
    )
    from armap_agents.reward.card import data_warnings  # here: the reward package is heavy

    for warning in data_warnings(result.train, result.val):
        logger.warning("%s: %s", output_dir, warning)
    return result
