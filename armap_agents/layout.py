"""Where the files of a run live: :class:`RunLayout` and the file names inside its directories.

The one place that names them: :mod:`armap_agents.pipeline` (which re-exports
:class:`RunLayout`), the command line, the synthesis graph, the reward model, the notebooks and
the benchmarks read them from here. Plain data, no dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HELDOUT_FILE",
    "KEPT_FILE",
    "ImproveLayout",
    "OUTCOMES_FILE",
    "PLOT_FILE",
    "RAW_TRIPLETS_FILE",
    "REPORT_FILE",
    "REPORT_JSON_FILE",
    "RunLayout",
    "POOL_FILE",
    "SEARCHES_FILE",
    "SYNTHESIS_PROGRESS_FILE",
    "TRAIN_RESULT_FILE",
    "TRAIN_TRIPLETS_FILE",
    "VAL_TRAJECTORIES_FILE",
    "VAL_TRIPLETS_FILE",
]

RAW_TRIPLETS_FILE = "raw_triplets.jsonl"
"""In a synthesis directory: every triplet as synthesized, before the split."""
SYNTHESIS_PROGRESS_FILE = "synthesis_progress.jsonl"
"""In a synthesis directory: the tasks done (how a synthesis resumes)."""
TRAIN_TRIPLETS_FILE = "triplets.train.jsonl"
"""In a synthesis directory: the training triplets (deduplicated, split by task)."""
VAL_TRIPLETS_FILE = "triplets.val.jsonl"
"""In a synthesis directory: the validation triplets."""
VAL_TRAJECTORIES_FILE = "trajectories.val.jsonl"
"""In a synthesis directory: the explored trajectories of the validation tasks, verdicts
included: the candidates on which training measures the critic's picks."""
TRAIN_RESULT_FILE = "train_result.json"
"""In a trained reward model's directory: its training record (best epoch, accuracy ...)."""
OUTCOMES_FILE = "outcomes.jsonl"
"""In an evaluation directory: the per-task outcomes (how an evaluation resumes)."""
REPORT_FILE = "report.md"
"""In an evaluation directory: the results table."""
REPORT_JSON_FILE = "report.json"
PLOT_FILE = "results.png"
"""In an evaluation directory: the results as a picture."""
POOL_FILE = "pool.jsonl"
"""In a round of ``armap improve``: the trajectories of this round and every earlier one,
what the round's synthesis reads."""
SEARCHES_FILE = "trajectories.searches.jsonl"
"""In a planner round of ``armap improve``: one record per task searched (every trajectory
the planner made on it, its pick, its calls): how the round's exploration resumes."""
HELDOUT_FILE = "heldout.json"
"""In a round of ``armap improve``: its critic's accuracy on round 0's validation triplets."""
KEPT_FILE = "kept.json"
"""In a round of ``armap improve``: which critic the round keeps (its own, or the one kept
before it) and the held-out picks that decided."""


@dataclass(frozen=True)
class RunLayout:
    """Where each stage of a run reads and writes, under ``root`` (the one place that says so:
    the command line, :func:`run_pipeline`, the notebooks and the benchmarks use it)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def trajectories(self) -> Path:
        """The explored episodes, JSONL."""
        return self.root / "trajectories.jsonl"

    @property
    def synthesis(self) -> Path:
        """The synthesis directory."""
        return self.root / "synthesis"

    @property
    def train_triplets(self) -> Path:
        return self.synthesis / TRAIN_TRIPLETS_FILE

    @property
    def val_triplets(self) -> Path:
        return self.synthesis / VAL_TRIPLETS_FILE

    @property
    def reward_model(self) -> Path:
        """The trained reward model's directory."""
        return self.root / "reward_model"

    @property
    def train_result(self) -> Path:
        """Written last by training: the reward model is complete when it is there."""
        return self.reward_model / TRAIN_RESULT_FILE

    @property
    def training_curve(self) -> Path:
        return self.reward_model / "training_curve.png"

    @property
    def evaluation(self) -> Path:
        """The evaluation directory."""
        return self.root / "evaluation"

    @property
    def outcomes(self) -> Path:
        """Per-task outcomes, JSONL (how an evaluation resumes)."""
        return self.evaluation / OUTCOMES_FILE

    @property
    def report(self) -> Path:
        """The results table, markdown."""
        return self.evaluation / REPORT_FILE

    @property
    def report_json(self) -> Path:
        return self.evaluation / REPORT_JSON_FILE

    @property
    def plot(self) -> Path:
        """The results as a PNG."""
        return self.evaluation / PLOT_FILE


@dataclass(frozen=True)
class ImproveLayout:
    """Where ``armap improve`` (:func:`~armap_agents.pipeline.improve.improve_critic`) keeps
    its rounds under ``root``: ``round-K/`` each (a :class:`RunLayout`: ``trajectories.jsonl``,
    ``synthesis/``, ``reward_model/``, with ``pool.jsonl``, ``trajectories.searches.jsonl``,
    ``heldout.json`` and the round's ``meta.json``), and the report of all rounds."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def round_dir(self, k: int) -> Path:
        """The directory of round ``k`` (``round-K``)."""
        return self.root / f"round-{k}"

    def round(self, k: int) -> RunLayout:
        """The files of round ``k``, laid out as a run's."""
        return RunLayout(self.round_dir(k))

    def pool(self, k: int) -> Path:
        """The trajectories of rounds 0..k together (what round k synthesizes)."""
        return self.round_dir(k) / POOL_FILE

    def searches(self, k: int) -> Path:
        """Round k's planner searches, one record per task (how its exploration resumes)."""
        return self.round_dir(k) / SEARCHES_FILE

    def kept(self, k: int) -> Path:
        """Round k's choice between its critic and the one kept before it."""
        return self.round_dir(k) / KEPT_FILE

    def heldout(self, k: int) -> Path:
        """Round k's critic on the fixed held-out set (round 0's validation triplets)."""
        return self.round_dir(k) / HELDOUT_FILE

    @property
    def report(self) -> Path:
        """One row per round, markdown."""
        return self.root / REPORT_FILE

    @property
    def report_json(self) -> Path:
        return self.root / REPORT_JSON_FILE
