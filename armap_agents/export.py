"""Export synthesized triplets for other trainers: TRL's preference format, as JSONL.

Each triplet becomes one record whose texts are the ones our reward model reads: the intent
as :func:`~armap_agents.types.render_intent` writes it, each trajectory through a
:class:`~armap_agents.reward_view.TrajectoryView` (a trained model's, ``RewardModel.render``;
without one, the canonical :func:`~armap_agents.types.render_trajectory` text):

* ``"trl"`` (explicit prompt, the default): ``{"prompt": "Task: <intent>\\n", "chosen":
  <positive trajectory text>, "rejected": <negative trajectory text>}``. TRL's
  ``RewardTrainer`` concatenates ``prompt + chosen``, which (with the canonical text) is
  exactly :func:`~armap_agents.types.render_example` of the positive.
* ``"trl-implicit"``: ``{"chosen": prompt + chosen, "rejected": prompt + rejected}``, for TRL
  versions whose ``RewardTrainer`` wants the prompt folded into each answer.

The files are plain JSONL (UTF-8, one object per line), so ``datasets.load_dataset("json",
data_files=...)`` reads them; nothing here needs ``datasets`` or ``trl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, get_args

from armap_agents._jsonl import read_jsonl
from armap_agents.errors import ConfigError
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Triplet, render_intent

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "export_preferences",
    "export_synthesis",
    "to_preference_record",
    "to_preference_records",
]

ExportFormat = Literal["trl", "trl-implicit"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
SPLIT_FILES = {"train": "preferences.train.jsonl", "val": "preferences.val.jsonl"}
"""File names :func:`export_synthesis` writes in its output directory."""


def _check_format(format: str) -> None:
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose from {EXPORT_FORMATS}")


def to_preference_record(
    triplet: Triplet, format: ExportFormat = "trl", view: TrajectoryView | None = None
) -> dict[str, str]:
    """One triplet as a TRL preference record (see the module docstring for the formats);
    ``view``: how trajectories are read (None: the canonical text)."""
    _check_format(format)
    view = view or TrajectoryView.identity()
    prompt = render_intent(triplet.intent)
    chosen, rejected = view.render(triplet.positive), view.render(triplet.negative)
    if format == "trl-implicit":
        return {"chosen": prompt + chosen, "rejected": prompt + rejected}
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def to_preference_records(
    triplets: Iterable[Triplet], format: ExportFormat = "trl", view: TrajectoryView | None = None
) -> list[dict[str, str]]:
    """Every triplet as a TRL preference record, in order."""
    _check_format(format)
    return [to_preference_record(t, format, view) for t in triplets]


def _write_records(path: Path, records: list[dict[str, str]]) -> None:
    """JSONL, written to a temporary file and renamed, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def export_preferences(
    triplets_path: str | Path,
    out_path: str | Path,
    format: ExportFormat = "trl",
    view: TrajectoryView | None = None,
) -> int:
    """Convert one triplets JSONL file (from synthesis) to a preference JSONL file.

    Returns the number of records written. A missing input file is an error.
    """
    _check_format(format)
    triplets_path = Path(triplets_path)
    if not triplets_path.is_file():
        raise FileNotFoundError(f"no triplets file at {triplets_path}: run `armap synthesize`")
    records = to_preference_records(read_jsonl(triplets_path, Triplet), format, view)
    _write_records(Path(out_path), records)
    return len(records)


def export_synthesis(
    data_dir: str | Path,
    out_dir: str | Path,
    format: ExportFormat = "trl",
    view: TrajectoryView | None = None,
) -> dict[str, tuple[Path, int]]:
    """Export the train and validation triplets of a synthesis directory, trajectories read
    through ``view`` (None: the canonical text).

    Writes ``preferences.train.jsonl`` and ``preferences.val.jsonl`` in ``out_dir`` (a split
    whose triplets file is absent is skipped; no training triplets at all is an error) and
    returns ``{split: (path, records)}``.
    """
    from armap_agents.graphs.synthesize import TRAIN_FILE, VAL_FILE

    _check_format(format)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not (data_dir / TRAIN_FILE).is_file():
        raise FileNotFoundError(
            f"no {TRAIN_FILE} in {data_dir}: give the directory `armap synthesize` wrote"
        )
    written: dict[str, tuple[Path, int]] = {}
    for split, source in (("train", TRAIN_FILE), ("val", VAL_FILE)):
        if (data_dir / source).is_file():
            target = out_dir / SPLIT_FILES[split]
            count = export_preferences(data_dir / source, target, format, view)
            written[split] = (target, count)
    return written
