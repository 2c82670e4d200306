"""The model card (``README.md``) written beside a saved reward model.

Hugging Face model-card style: a YAML header (``library_name``, ``base_model`` when the
backbone is a hub id, ``tags``) and sections on the model, its training data and metrics, how
to load it, and what it is for. It holds only what the model knows about itself: its config,
parameter counts and, when :class:`~armap_agents.reward.train.RewardTrainer` trained it, the
training record (paths as the user gave them, never keys or environment variables).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILE",
    "MAX_SHARE_AT_WINDOW",
    "MIN_TRAIN_TRIPLETS",
    "MIN_VAL_TRIPLETS",
    "data_warnings",
    "render_model_card",
]

CARD_FILE = "README.md"
MIN_TRAIN_TRIPLETS = 100
"""Fewer training triplets than this teach a reward model little: a warning says so."""
MIN_VAL_TRIPLETS = 30
"""Below this, a validation accuracy is off by more than ±9 points (one standard error)."""
MAX_SHARE_AT_WINDOW = 0.1
"""A larger share of training pairs that reach the model's window gets a warning."""
_FEW_SUCCESSES = 10
_HUB_ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def _hub_id(backbone: str) -> str | None:
    """``backbone`` as a Hugging Face hub id, or None for a local path or an unknown name."""
    if backbone in _HUB_ALIASES:
        return _HUB_ALIASES[backbone]
    looks_like_id = backbone.count("/") == 1 and not backbone.startswith((".", "/", "~"))
    return backbone if looks_like_id and not Path(backbone).exists() else None


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return f"{value:.1%}"


def _num(value: Any, digits: int = 3) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return f"{value:.{digits}f}"


def _header(backbone: str) -> list[str]:
    lines = ["---", "library_name: peft"]
    hub_id = _hub_id(backbone)
    if hub_id is not None:
        lines.append(f"base_model: {hub_id}")
    lines += [
        "tags:",
        "- armap-agents",
        "- reward-model",
        "- lora",
        "- bradley-terry",
        "---",
        "",
    ]
    return lines


def _model_section(config: Any, description: dict[str, Any]) -> list[str]:
    targets = ", ".join(config.target_modules) if config.target_modules else "every linear layer"
    total, trainable = description.get("parameters"), description.get("trainable")
    rows = [
        ("backbone", f"`{config.backbone}`"),
        ("pooling", str(description.get("pooling", config.pooling))),
        (
            "max length",
            f"{config.max_length} tokens (intent + trajectory; oldest tokens cut first)",
        ),
        ("what it reads", _describe_view(getattr(config, "view", None))),
        (
            "LoRA",
            f"r = {config.lora_r}, alpha = {config.lora_alpha}, dropout = {config.lora_dropout}, "
            f"targets: {targets}; the scalar head is trained in full",
        ),
        ("seed", str(config.seed)),
    ]
    if isinstance(total, int) and isinstance(trainable, int):
        rows.append(("parameters", f"{total:,} ({trainable:,} trainable)"))
    rows.append(
        (
            "files",
            "`armap_reward.json` (config, format version "
            f"{config.format_version}), `adapter_model.safetensors` + `adapter_config.json` "
            "(LoRA weights and the head); no pickle",
        )
    )
    lines = ["## Model", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return [*lines, ""]


def _describe_view(view: Any) -> str:
    """One table cell: what the model reads of a trajectory."""
    if view is None or view.is_identity:
        return "the whole trajectory text (`render_trajectory`), cut to the window"
    parts = ["every action"]
    if view.max_action_chars is not None:
        parts[0] += f" (each up to {view.max_action_chars} characters)"
    if view.rewrite:
        parts.append(f"observations rewritten by {len(view.rewrite)} rules of the environment")
    if view.max_chars is not None:
        final = f"the final one up to {view.final_weight}x longer"
        if view.final_share:
            final += f", and never under {view.final_share:.0%} of them: the end state stays"
        parts.append(
            f"observations clipped to one common length so that the text fits "
            f"{view.max_chars:,} characters ({final})"
        )
    for cap, what in (
        (view.max_observation_chars, "each observation"),
        (view.max_final_observation_chars, "the final observation"),
    ):
        if cap is not None:
            parts.append(f"{what} at most {cap} characters")
    return "; ".join(parts) + " (`TrajectoryView` in `armap_reward.json`)"


def data_warnings(
    train: int,
    val: int,
    *,
    at_window: int | None = None,
    pairs: int | None = None,
    max_length: int | None = None,
) -> list[str]:
    """What to know about a reward model's training data before trusting it, one sentence
    each, with the numbers and what to do: no or few training triplets (under
    :data:`MIN_TRAIN_TRIPLETS`), no or few validation triplets (under
    :data:`MIN_VAL_TRIPLETS`), and, given ``at_window`` of ``pairs`` training
    ``(intent, trajectory)`` pairs whose tokens reach the ``max_length``-token window after the
    model's view, a share of them above :data:`MAX_SHARE_AT_WINDOW` (the tokenizer cuts their
    oldest tokens). The synthesis, the trainer (as log warnings) and the model card say them."""
    more = "explore more tasks or episodes (`armap explore`) and synthesize again"
    found = []
    if train == 0:
        found.append(f"no training triplets: nothing to train on; {more}")
    elif train < MIN_TRAIN_TRIPLETS:
        found.append(
            f"only {train:,} training triplets (a reward model learns little from fewer than "
            f"{MIN_TRAIN_TRIPLETS}): {more}"
        )
    where = "raise `--val-fraction` (validation is split by task) or explore more tasks"
    if val == 0:
        found.append(
            "no validation triplets: the saved epoch is the one of lowest training loss and the "
            f"model's accuracy on held-out data is unknown; {where}"
        )
    elif val < MIN_VAL_TRIPLETS:
        error = 0.5 / math.sqrt(val)  # the standard error of an accuracy near 50%
        found.append(
            f"only {val:,} validation triplets: the validation accuracy is uncertain by about "
            f"±{error:.0%}; {where}"
        )
    if at_window and pairs and at_window / pairs > MAX_SHARE_AT_WINDOW:
        window = f"{max_length}-token window" if max_length else "window"
        found.append(
            f"{at_window:,} of {pairs:,} training (intent, trajectory) pairs "
            f"({at_window / pairs:.0%}) reach the reward model's {window} after its view: the "
            "tokenizer cuts their oldest tokens, so the model never reads how they begin; give "
            "a longer `--max-length` (a backbone with a longer window) or an environment view "
            "that shortens observations (its `reward_view`, a `TrajectoryView`)"
        )
    return found


def _warnings_section(config: Any, training: dict[str, Any] | None) -> list[str]:
    if not training:
        return []
    found = data_warnings(
        training.get("train_examples", 0),
        training.get("val_examples", 0),
        at_window=training.get("pairs_at_window"),
        pairs=2 * training.get("train_examples", 0),
        max_length=config.max_length,
    )
    if not found:
        return []
    return ["## Warnings", "", *(f"* {line[0].upper()}{line[1:]}." for line in found), ""]


def _training_section(training: dict[str, Any] | None) -> list[str]:
    lines = ["## Training", ""]
    if not training:
        return [
            *lines,
            "No training record: this model was saved without a `RewardTrainer` run (an untrained "
            "model, or one trained by other code). Its scores have not been validated.",
            "",
        ]
    source = training.get("data_source")
    train_n, val_n = training.get("train_examples", 0), training.get("val_examples", 0)
    data = f"{train_n:,} training and {val_n:,} validation `(intent, positive, negative)` triplets"
    data += f" from `{source}`" if source else ""
    lines.append(f"* Data: {data}, synthesized from environment trajectories in hindsight (ARMAP).")
    kinds = training.get("triplet_sources") or {}
    if kinds:
        parts = ", ".join(f"{name or 'unlabelled'}: {count:,}" for name, count in kinds.items())
        lines.append(f"* Training triplets by kind: {parts}.")
    lines.append(
        "* Objective: the pairwise Bradley-Terry loss `-log sigmoid(r(intent, positive) - "
        "r(intent, negative))`; only the LoRA weights and the scalar head are trained."
    )
    trainer = training.get("trainer_config") or {}
    if trainer:
        epochs = trainer.get("epochs")
        lines.append(
            f"* Settings: {epochs} epoch{'' if epochs == 1 else 's'}, batch size "
            f"{trainer.get('batch_size')}, "
            f"learning rate {trainer.get('learning_rate')}, warmup ratio "
            f"{trainer.get('warmup_ratio')}, seed {trainer.get('seed')}."
        )
    history = training.get("history") or []
    picks = any(m.get("planning") for m in history)
    if history:
        lines += [
            "",
            "| epoch | train loss | validation accuracy | validation margin |"
            + (" held-out picks succeed |" if picks else "")
            + " seconds |",
            "|---:|---:|---:|---:|" + ("---:|" if picks else "") + "---:|",
        ]
        for m in history:
            lines.append(
                f"| {m.get('epoch')} | {_num(m.get('train_loss'), 4)} | "
                f"{_pct(m.get('val_accuracy'))} | {_num(m.get('val_margin'))} | "
                + (f"{_pct((m.get('planning') or {}).get('pick_success'))} | " if picks else "")
                + f"{_num(m.get('seconds'), 1)} |"
            )
    return [*lines, ""]


def _metrics_section(training: dict[str, Any] | None) -> list[str]:
    if not training:
        return []
    best = training.get("best_epoch")
    history = training.get("history") or []
    chosen = next((m for m in history if m.get("epoch") == best), None)
    lines = ["## Metrics", ""]
    planning = training.get("planning")
    if chosen is not None and planning:
        gap = planning.get("gap_closed")
        by_picks = training.get("selected_by") == "held-out picks"
        lines.append(
            f"Saved weights: epoch {best} of {len(history)}, "
            + (
                "the one whose picks were best on held-out tasks"
                if by_picks
                else f"the best on validation ({planning.get('decisive', 0)} held-out tasks "
                "tell picks apart: too few to choose by)"
            )
            + f". Among the explored candidates of each of {planning['tasks']} tasks that "
            "training never saw, its top-scored candidate succeeded on "
            f"**{_pct(planning['pick_success'])}** of them (a random candidate: "
            f"{_pct(planning['mean_success'])}; the best candidate: "
            f"{_pct(planning['oracle_success'])}"
            + (f"; {_pct(gap)} of the gap closed" if gap is not None else "")
            + "): Best-of-N's choice, measured without playing an episode. Validation "
            f"pairwise accuracy {_pct(chosen.get('val_accuracy'))}, mean margin "
            f"{_num(chosen.get('val_margin'))}."
        )
    elif chosen is not None and chosen.get("val_accuracy") is not None:
        lines.append(
            f"Saved weights: epoch {best} of {len(history)}, the best on validation. "
            f"Validation pairwise accuracy **{_pct(chosen.get('val_accuracy'))}** (how often "
            "the positive outscores the negative on held-out triplets), mean margin "
            f"{_num(chosen.get('val_margin'))}."
        )
    else:
        lines.append(
            f"No validation set: the saved weights are those of epoch {best} (lowest training "
            "loss); accuracy on held-out data is unknown."
        )
    return [*lines, "", *_calibration_section(training.get("calibration"))]


def _calibration_section(calibration: dict[str, Any] | None) -> list[str]:
    """ARMAP-R's default threshold and the precision / recall curve it was chosen on."""
    if not calibration:
        return []
    lines = ["## Calibration (ARMAP-R's threshold)", ""]
    counts = (
        f"{calibration.get('successes', 0):,} successful and {calibration.get('failures', 0):,} "
        "failed trajectories of held-out tasks"
    )
    if calibration.get("threshold") is None:
        return [
            *lines,
            f"Not calibrated: {counts}; ARMAP-R stops at 0.0 unless given `--threshold`.",
            "",
        ]
    lines += [
        f"Scored on {counts}. ARMAP-R stops retrying once an attempt scores at least "
        f"**{_num(calibration['threshold'])}** (`success_threshold`): the score that maximises "
        "F0.5 (precision weighs more than recall: a wrong stop loses the task, a needless "
        f"retry costs one attempt). There, precision {_pct(calibration.get('precision'))}, "
        f"recall {_pct(calibration.get('recall'))}. `--threshold` overrides it. "
        "Curve: `calibration.png`."
        + (
            " Few held-out successes: the threshold is uncertain (explore more tasks)."
            if calibration.get("successes", 0) < _FEW_SUCCESSES
            else ""
        ),
        "",
        "| stop at score >= | precision | recall |",
        "|---:|---:|---:|",
    ]
    curve = calibration.get("curve") or []
    step = max(1, len(curve) // 8)
    for point in curve[::step]:
        mark = " (chosen)" if point["threshold"] == calibration["threshold"] else ""
        lines.append(
            f"| {_num(point['threshold'])}{mark} | {_pct(point['precision'])} | "
            f"{_pct(point['recall'])} |"
        )
    return [*lines, ""]


_USAGE = """## How to use

```python
from armap_agents import RewardModel

rm = RewardModel.load("path/to/this/directory")
scores = rm.score(intent, trajectories)  # one float per trajectory; higher is better
```

From the command line: `armap plan --model DIR --task ID` (Best-of-N, `--planner reflexion` or
`--planner mcts`), `armap evaluate --model DIR --out EVAL_DIR`, or serve it over HTTP with
`armap serve-rm --model DIR` (extra `[serve]`) for `RemoteRewardModel`.

## Intended use and limits

* Ranks trajectories **of the same intent** (Best-of-N, Reflexion, MCTS) in the environment(s)
  it was trained on. Scores are relative, not probabilities: compare them only within one
  intent (the calibrated threshold above is a score, not a probability).
* It reads a trajectory through its view (`RewardModel.render`: the row "what it reads" above),
  and never the environment's evaluator; it was trained on synthetic, hindsight-relabeled
  data, so it can reward surface patterns of those trajectories. Check it on your own tasks
  (`armap evaluate`).
* What still exceeds the max length after the view is cut by the tokenizer, oldest tokens
  first.
* Not for decisions about people or for safety-critical use.
"""


def render_model_card(
    config: Any, description: dict[str, Any], training: dict[str, Any] | None = None
) -> str:
    """The model card's markdown for a reward model's ``config`` (a ``RewardModelConfig``),
    ``description`` (``RewardModel.describe()``) and training record (``TrainResult`` as a
    dict, or None when the model was not trained by ``RewardTrainer``)."""
    lines = _header(config.backbone)
    lines += [
        "# ARMAP reward model",
        "",
        "Scores how well an agent's trajectory fulfils a task intent, to guide planning "
        "(ARMAP: *Scaling Autonomous Agents via Automatic Reward Modeling And Planning*, "
        "ICLR 2025). Made with the `armap-agents` Python package: "
        "a transformers backbone with LoRA and a scalar head on the pooled hidden state.",
        "",
    ]
    lines += _model_section(config, description)
    lines += _training_section(training)
    lines += _warnings_section(config, training)
    lines += _metrics_section(training)
    return "\n".join(lines) + "\n" + _USAGE
