"""Pairwise (Bradley-Terry) training of a :class:`RewardModel` on triplets.

Loss ``-logsigmoid(r(intent, positive) - r(intent, negative))``. Inputs are tokenized once;
batches are drawn from length buckets and padded dynamically, so little compute goes to
padding. After each epoch the validation pairwise accuracy and mean margin are measured and,
given held-out tasks' explored trajectories (``candidates``), how well the critic picks among
each task's candidates (:mod:`armap_agents.reward.planning_metrics`): the epoch whose picks are
best is kept (its validation accuracy breaks ties; without candidates, the best validation
accuracy). The kept model's scores of those trajectories calibrate ARMAP-R's threshold.
``metrics.jsonl``, ``training_curve.png`` and the model card (``README.md``, with
``train_result.json``) record the run.

With an output directory, the state after each finished epoch (trainable weights, the best
epoch's weights, optimizer and scheduler state, RNG states, metrics so far) is saved in
``checkpoints/epoch-N/`` there, as safetensors + JSON (no pickle); training the same model
config on the same data with the same settings into that directory again continues from
it, with the same result as an uninterrupted run. The checkpoints are removed once the
model is saved.

Where and how the gradients are computed does not change what is learnt: ``device`` ("auto":
CUDA, then Apple MPS, else CPU; bf16 autocast on CUDA), ``gradient_accumulation_steps`` and
``max_tokens_per_batch`` (a batch of ``batch_size`` pairs is split into micro-batches whose
gradients add up to the batch's before its one optimizer step) and ``gradient_checkpointing``
only trade memory for time; a run interrupted on one machine resumes on another.

Several processes train one model with DistributedDataParallel (through ``accelerate``) when
a launcher started them: ``armap train --devices N``, ``torchrun --nproc-per-node N -m
armap_agents.cli train ...`` or, on GPUs, ``accelerate launch --multi_gpu --num_processes N
-m armap_agents.cli train ...`` (see :mod:`armap_agents.reward.distributed`). Every process
draws the same batches from ``seed`` and computes the gradients of its contiguous share of
each (``batch_size / N`` pairs, the last ones one more where it does not divide), which are
all-reduced: ``batch_size`` stays the pairs of one optimizer step across all processes, so a
training on N processes takes the same steps as on one, equal up to float rounding, and its
checkpoints resume on any number of processes. The validation pairs are scored in shares too
and added up. Rank 0 alone writes the checkpoints, the model, its card, the metrics and the
curve; every process reads a checkpoint to resume (several machines: a shared ``output_dir``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from tqdm.std import tqdm

from armap_agents._plotting import pyplot, save_figure
from armap_agents._progress import progress_bar
from armap_agents.errors import ArmapError, CheckpointError, ConfigError
from armap_agents.reward.card import data_warnings
from armap_agents.reward.configs import RewardTrainerConfig, subsample
from armap_agents.reward.cost import TrainingEstimate, padded_tokens, training_plan
from armap_agents.reward.distributed import Processes, join_processes
from armap_agents.reward.model import RewardModel, _pack_by_tokens
from armap_agents.reward.planning_metrics import (
    Calibration,
    PickMetrics,
    calibrate,
    candidate_groups,
    judged,
    pick_metrics,
    plot_calibration,
)
from armap_agents.types import Trajectory, Triplet

logger = logging.getLogger(__name__)

__all__ = [
    "EpochMetrics",
    "RewardTrainer",
    "RewardTrainerConfig",
    "TrainResult",
    "pairwise_metrics",
]


_HOW_NOT_WHAT = frozenset(
    {
        "device",
        "precision",
        "gradient_accumulation_steps",
        "max_tokens_per_batch",
        "gradient_checkpointing",
    }
)
"""Trainer settings that change where and how gradients are computed, not the training: a
checkpoint resumes under other values of these."""


class EpochMetrics(BaseModel):
    epoch: int
    train_loss: float
    val_accuracy: float | None = None
    val_margin: float | None = None
    planning: PickMetrics | None = None
    """How the epoch's critic picks among held-out tasks' candidates (None: no candidates)."""
    seconds: float

    def selection_key(self) -> tuple[float, ...]:
        """What the kept epoch has most of: picks' success on held-out tasks (when enough of
        them are decisive), then validation accuracy (else the negated training loss)."""
        last = self.val_accuracy if self.val_accuracy is not None else -self.train_loss
        picks = self.planning is not None and self.planning.selects
        return (*(self.planning.key() if picks and self.planning else ()), last)


CALIBRATION_PLOT = "calibration.png"
"""Where a trained model's calibration curve is drawn, in its directory."""
CHECKPOINT_DIR = "checkpoints"
"""Where :class:`RewardTrainer` keeps its per-epoch checkpoints inside the output directory."""
_STATE_FILE = "state.json"
_TENSORS_FILE = "state.safetensors"
_EPOCH_DIR = re.compile(r"epoch-(\d+)")


class TrainResult(BaseModel):
    history: list[EpochMetrics]
    best_epoch: int
    best_val_accuracy: float | None
    step_losses: list[float] = Field(default_factory=list, repr=False)
    train_examples: int
    val_examples: int
    data_source: str | None = None
    """Where the triplets came from, as the caller named it (for the model card)."""
    triplet_sources: dict[str, int] = Field(default_factory=dict)
    """Training triplets per kind (``Triplet.source``: outcome, corrupted step, prefix, llm ...)."""
    trainer_config: RewardTrainerConfig | None = None
    device: str | None = None
    """The device it trained on (``trainer_config.device`` resolved, e.g. ``"cuda"``)."""
    pairs_at_window: int | None = None
    """Training ``(intent, trajectory)`` pairs (two per triplet) whose tokens reach the model's
    window after its view, so the tokenizer cuts their oldest tokens (None: not counted)."""
    processes: int = 1
    """How many processes trained it (DistributedDataParallel, each on a share of each batch)."""
    estimated_seconds: float | None = None
    """The run's duration as estimated from its first timed batches, said while it trained
    (:mod:`armap_agents.reward.cost`; None: too few batches to time). The epochs' ``seconds``
    say what it took."""
    planning: PickMetrics | None = None
    """The kept model's picks among held-out tasks' candidates (None: no candidates given)."""
    calibration: Calibration | None = None
    """The kept model's scores of held-out successes and failures, and ARMAP-R's default
    threshold (None: no held-out trajectory with a verdict)."""
    selected_by: str = "validation accuracy"
    """What chose the kept epoch: ``held-out picks`` (when enough held-out tasks are decisive,
    :data:`~armap_agents.reward.planning_metrics.MIN_DECISIVE_TASKS`), ``validation
    accuracy`` or ``training loss``."""


def pairwise_metrics(
    model: RewardModel, triplets: Sequence[Triplet], batch_size: int = 128
) -> tuple[float, float]:
    """``(accuracy, mean margin)``: how often and by how much positive outscores negative."""
    if not triplets:
        return float("nan"), float("nan")
    margins = _margins(model, triplets, batch_size)
    n = len(triplets)
    return sum(m > 0 for m in margins) / n, sum(margins) / n


def _scores(
    model: RewardModel, intents: Sequence[str], trajectories: Sequence[Trajectory], batch_size: int
) -> list[float]:
    """The model's score of each trajectory against its intent, read through the model's view."""
    if not trajectories:
        return []
    texts = [model.render(t) for t in trajectories]
    return model.score_texts(list(intents), texts, batch_size=batch_size)


def _margins(model: RewardModel, triplets: Sequence[Triplet], batch_size: int) -> list[float]:
    """``r(intent, positive) - r(intent, negative)`` of each triplet."""
    intents = [t.intent for t in triplets] * 2
    trajectories = [t.positive for t in triplets] + [t.negative for t in triplets]
    scores, n = _scores(model, intents, trajectories, batch_size), len(triplets)
    return [scores[i] - scores[n + i] for i in range(n)]


class _Rewards(torch.nn.Module):
    """:meth:`RewardModel.forward_batch` as a module over the model's weights, the shape
    DistributedDataParallel wraps (its forward prepares the gradients' all-reduce)."""

    def __init__(self, model: RewardModel) -> None:
        super().__init__()
        self.scorer = model.module
        self.forward_batch = model.forward_batch

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_batch(batch)


class RewardTrainer:
    """Trains a reward model in place; see the module docstring for the recipe."""

    def __init__(self, model: RewardModel, config: RewardTrainerConfig | None = None) -> None:
        self.model = model
        self.config = config or RewardTrainerConfig()

    def _tokenize(self, triplets: Sequence[Triplet]) -> list[tuple[list[int], list[int]]]:
        intents = [t.intent for t in triplets]
        pos = self.model.encode(
            intents, [self.model.render(t.positive) for t in triplets], pad=False
        )
        neg = self.model.encode(
            intents, [self.model.render(t.negative) for t in triplets], pad=False
        )
        return list(zip(pos["input_ids"], neg["input_ids"], strict=True))

    def _batches(
        self, examples: list[tuple[list[int], list[int]]], rng: random.Random
    ) -> list[list[int]]:
        """Shuffled batches of example indices, each drawn from one length bucket."""
        bs = self.config.batch_size
        order = list(range(len(examples)))
        rng.shuffle(order)
        bucket = bs * self.config.bucket_batches
        batches = []
        for start in range(0, len(order), bucket):
            chunk = sorted(order[start : start + bucket], key=lambda i: max(map(len, examples[i])))
            batches += [chunk[j : j + bs] for j in range(0, len(chunk), bs)]
        rng.shuffle(batches)
        return batches

    def _micro_batches(
        self, examples: list[tuple[list[int], list[int]]], batch: list[int]
    ) -> list[list[int]]:
        """``batch`` in ``gradient_accumulation_steps`` parts of near-equal size, each cut
        further to ``max_tokens_per_batch`` (padded, two rows per pair)."""
        cfg, n = self.config, len(batch)
        steps = min(cfg.gradient_accumulation_steps, n)
        parts = [batch[k * n // steps : (k + 1) * n // steps] for k in range(steps)]
        if cfg.max_tokens_per_batch is None:
            return parts
        return [
            [part[position] for position in group]
            for part in parts
            for group in _pack_by_tokens(
                [max(map(len, examples[i])) for i in part], cfg.max_tokens_per_batch, rows=2
            )
        ]

    def _collate(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        width = max(map(len, rows))
        pad = self.model.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def train(
        self,
        train: Sequence[Triplet],
        val: Sequence[Triplet] = (),
        *,
        candidates: Sequence[Trajectory] = (),
        output_dir: str | Path | None = None,
        progress: bool = True,
        data_source: str | Path | None = None,
    ) -> TrainResult:
        """Train; with ``output_dir``, save the best epoch's model, metrics and curve there.

        With ``output_dir``, a checkpoint is saved there after every epoch, and an interrupted
        training of the same model config, data and settings continues from its last finished
        epoch (another run's checkpoint there is a :class:`ConfigError`). A loss or gradient
        that is NaN or infinite stops the training with :class:`ArmapError`, as do weights
        left NaN or infinite at the end of an epoch: nothing of such an epoch is saved.

        ``candidates``: explored trajectories of held-out tasks (the synthesis's
        ``trajectories.val.jsonl``), with the environment's verdicts: each epoch is judged by
        how often the critic's pick among a task's candidates succeeded, the best kept, and
        the kept model's scores of them calibrate ARMAP-R's threshold (module docstring).

        ``data_source`` (e.g. the synthesis directory) is recorded in the model card; the
        training record is kept as ``model.training`` and saved with the model.

        Under a launcher (``torchrun``, ``accelerate launch``, ``armap train --devices N``)
        the processes train together (module docstring); every process returns the same
        result and holds the same weights, and rank 0 alone writes to ``output_dir``."""
        if not train:
            raise ConfigError("no training triplets: run exploration and synthesis first")
        cfg = self.config
        available = len(train)
        train, val = (
            subsample(train, cfg.max_train, cfg.seed),
            subsample(val, cfg.max_val, cfg.seed),
        )
        processes = join_processes(cfg.device)
        device = processes.device
        self.model.to(device, precision=cfg.precision)
        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        groups = candidate_groups(candidates)
        held_out = judged(candidates)
        examples = self._tokenize(train)
        window = self.model.config.max_length
        at_window = sum(len(row) >= window for pair in examples for row in pair)
        for warning in data_warnings(
            len(train), len(val), at_window=at_window, pairs=2 * len(train), max_length=window
        ):
            if processes.is_main:
                logger.warning("reward-model training data: %s", warning)
        module = self.model.module
        named = {n: p for n, p in module.named_parameters() if p.requires_grad}
        params = list(named.values())
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        warmup = int(total * cfg.warmup_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: (
                (s + 1) / max(1, warmup)
                if s < warmup
                else max(0.0, (total - s) / max(1, total - warmup))
            ),
        )
        out = Path(output_dir) if output_dir is not None else None
        identity = self._identity(train, val, held_out) if out is not None else {}
        run = _Checkpoint(identity, named, optimizer, scheduler, rng)
        if out is not None and run.restore(out / CHECKPOINT_DIR) and processes.is_main:
            tqdm.write(
                f"resuming from the checkpoint of epoch {run.epoch} of {cfg.epochs} in "
                f"{out / CHECKPOINT_DIR}"
            )
        if processes.is_main:
            tqdm.write(
                training_plan(
                    used=len(train),
                    available=available,
                    cap=cfg.max_train,
                    epochs=cfg.epochs,
                    batches=steps_per_epoch,
                    val=len(val),
                )
            )
        mean_row = sum(len(row) for pair in examples for row in pair) / (2 * len(examples))
        scored_rows = 2 * len(val) + sum(len(group) for group in groups)
        estimate = TrainingEstimate(eval_tokens=round(scored_rows * mean_row))
        bar = progress_bar(
            total=total,
            initial=run.epoch * steps_per_epoch,
            desc=f"train reward model ({device.type}"
            + (f" x {processes.count} processes)" if processes.count > 1 else ")"),
            progress=progress and processes.is_main,
            unit="batch",
        )
        self.model.set_gradient_checkpointing(cfg.gradient_checkpointing)
        net = processes.wrap(_Rewards(self.model))
        try:
            for epoch in range(run.epoch + 1, cfg.epochs + 1):
                _train_mode(module, cfg.dropout)
                started, losses = time.perf_counter(), []
                batches = self._batches(examples, rng)
                tokens = [padded_tokens([len(r) for i in b for r in examples[i]]) for b in batches]
                for number, batch_idx in enumerate(batches, 1):
                    step_started = time.perf_counter()
                    value, norm = self._step(examples, batch_idx, optimizer, params, net, processes)
                    if not (math.isfinite(value) and math.isfinite(norm)):
                        what = "loss" if not math.isfinite(value) else "gradient norm"
                        raise ArmapError(
                            f"training diverged: the {what} of batch {number} in epoch {epoch} "
                            f"is not finite; lower the learning rate (now "
                            f"{cfg.learning_rate:g}) or check the model's weights"
                        )
                    optimizer.step()
                    scheduler.step()
                    losses.append(value)
                    said = estimate.record(
                        tokens, number, time.perf_counter() - step_started, cfg.epochs - epoch
                    )
                    if said is not None and processes.is_main:
                        bar.write(said)
                    bar.update(1)
                    recent = losses[-50:]
                    bar.set_postfix(
                        epoch=epoch, loss=f"{sum(recent) / len(recent):.3f}", refresh=False
                    )
                # the last step's update is read by no later loss: check the weights it left,
                # before they are validated, checkpointed or saved as the finished model
                broken = self.model.non_finite_weight()
                if broken is not None:
                    raise ArmapError(
                        f"training diverged: after epoch {epoch}, {broken} holds NaN or "
                        "infinite values; lower the learning rate (now "
                        f"{cfg.learning_rate:g}) or the weight decay"
                    )
                module.eval()
                acc, margin = self._validate(val, processes) if val else (None, None)
                metrics = EpochMetrics(
                    epoch=epoch,
                    train_loss=sum(losses) / len(losses),
                    val_accuracy=acc,
                    val_margin=margin,
                    planning=self._picks(groups) if groups else None,
                    seconds=time.perf_counter() - started,
                )
                run.history.append(metrics)
                run.step_losses += losses
                if processes.is_main:
                    bar.write(
                        f"epoch {epoch}: train loss {metrics.train_loss:.4f}"
                        + (
                            f", val accuracy {acc:.3f}, val margin {margin:.3f}"
                            if acc is not None
                            else ""
                        )
                        + (
                            f", held-out picks {metrics.planning.pick_success:.1%} "
                            f"(random {metrics.planning.mean_success:.1%}, best "
                            f"{metrics.planning.oracle_success:.1%})"
                            if metrics.planning is not None
                            else ""
                        )
                    )
                score = metrics.selection_key()
                if run.best_epoch == 0 or score > run.best_score:
                    run.best_epoch, run.best_score = epoch, score
                    run.best_state = {n: p.detach().to("cpu", copy=True) for n, p in named.items()}
                run.epoch = epoch
                if out is not None and processes.is_main:
                    run.save(out / CHECKPOINT_DIR)
        finally:
            self.model.set_gradient_checkpointing(False)
            module.eval()
            bar.close()
        if run.best_epoch != cfg.epochs:  # keep the best epoch's weights, in memory and on disk
            module.load_state_dict(run.best_state, strict=False)
        history = run.history
        kept = history[run.best_epoch - 1]
        scores = self._held_out_scores(held_out)
        result = TrainResult(
            history=history,
            best_epoch=run.best_epoch,
            best_val_accuracy=history[run.best_epoch - 1].val_accuracy,
            step_losses=run.step_losses,
            train_examples=len(train),
            val_examples=len(val),
            data_source=str(data_source) if data_source is not None else None,
            triplet_sources=dict(Counter(t.source for t in train).most_common()),
            trainer_config=cfg,
            device=str(device),
            pairs_at_window=at_window,
            processes=processes.count,
            estimated_seconds=estimate.seconds,
            planning=kept.planning,
            calibration=(
                calibrate(scores, [bool(t.evaluation and t.evaluation.success) for t in held_out])
                if held_out
                else None
            ),
            selected_by=(
                "held-out picks"
                if kept.planning is not None and kept.planning.selects
                else "validation accuracy"
                if kept.val_accuracy is not None
                else "training loss"
            ),
        )
        self.model.training = result.model_dump(mode="json", exclude={"step_losses"})
        if out is not None and processes.is_main:
            self.model.save(out)  # weights, config, model card, train_result.json
            with (out / "metrics.jsonl").open("w") as fh:
                for m in history:
                    fh.write(m.model_dump_json() + "\n")
            plot_training_curve(result, out / "training_curve.png")
            if result.calibration is not None and result.calibration.threshold is not None:
                plot_calibration(result.calibration, out / CALIBRATION_PLOT)
            shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
        processes.wait()  # on every process, ``output_dir`` is complete once this returns
        return result

    def _step(
        self,
        examples: list[tuple[list[int], list[int]]],
        batch: list[int],
        optimizer: torch.optim.Optimizer,
        params: list[torch.nn.Parameter],
        net: torch.nn.Module,
        processes: Processes,
    ) -> tuple[float, float]:
        """The gradients of ``batch``'s mean loss, accumulated over this process's
        micro-batches, all-reduced across processes and clipped: ``(loss, gradient norm)``
        before clipping, the same in every process, for the caller to check and step."""
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.model.device)
        share = processes.share(batch)
        # DDP averages the processes' gradients: each scales its sum by N to give the mean's
        scale = processes.count
        if not share:  # fewer pairs than processes: a pair at weight 0 joins the all-reduce
            share, scale = batch[:1], 0
        parts = self._micro_batches(examples, share)
        for number, part in enumerate(parts, 1):
            rows = [examples[i][0] for i in part] + [examples[i][1] for i in part]
            last = number == len(parts)  # its backward all-reduces the accumulated gradients
            with contextlib.nullcontext() if last else processes.no_sync(net):
                rewards = net(self._collate(rows))
                margins = rewards[: len(part)] - rewards[len(part) :]
                loss = -F.logsigmoid(margins).sum() * scale / len(batch)  # share of the mean
                loss.backward()
            total += loss.detach()
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        (value,) = processes.sum([total.item() / processes.count])
        return value, norm.item()

    def _validate(self, val: Sequence[Triplet], processes: Processes) -> tuple[float, float]:
        """Pairwise accuracy and mean margin on ``val``, each process scoring its share."""
        margins = _margins(self.model, processes.share(val), self.config.eval_batch_size)
        wins, total = processes.sum([sum(m > 0 for m in margins), sum(margins)])
        return wins / len(val), total / len(val)

    def _held_out_scores(self, trajectories: Sequence[Trajectory]) -> list[float]:
        """The model's score of each held-out trajectory against its own intent."""
        intents = [t.intent for t in trajectories]
        return _scores(self.model, intents, trajectories, self.config.eval_batch_size)

    def _picks(self, groups: Sequence[Sequence[Trajectory]]) -> PickMetrics:
        """How the model, as it is now, picks among each group of candidates."""
        flat = [t for group in groups for t in group]
        scores, start, per_group = self._held_out_scores(flat), 0, []
        for group in groups:
            per_group.append(scores[start : start + len(group)])
            start += len(group)
        return pick_metrics(groups, per_group)

    def _identity(
        self,
        train: Sequence[Triplet],
        val: Sequence[Triplet],
        held_out: Sequence[Trajectory] = (),
    ) -> dict[str, Any]:
        """What makes two trainings the same run: model config, trainer settings, data."""
        digest = hashlib.sha256()
        for part in (train, val, *([held_out] if held_out else [])):
            for record in part:
                digest.update(record.model_dump_json().encode())
                digest.update(b"\n")
            digest.update(b"\x00")
        return {
            "model_config": self.model.config.model_dump(mode="json"),
            "trainer_config": self.config.model_dump(mode="json", exclude=set(_HOW_NOT_WHAT)),
            "data": f"sha256:{digest.hexdigest()} ({len(train)} train, {len(val)} validation"
            + (f", {len(held_out)} held-out trajectories)" if held_out else ")"),
        }


@dataclass
class _Checkpoint:
    """The state of a training between epochs, and its safetensors + JSON form on disk."""

    identity: dict[str, Any]
    params: dict[str, torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    rng: random.Random
    epoch: int = 0
    history: list[EpochMetrics] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_score: tuple[float, ...] = (-math.inf,)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def save(self, root: Path) -> Path:
        """Write this state to ``root/epoch-N`` (atomically: written beside it, then renamed)
        and remove older checkpoints."""
        from safetensors.torch import save_file

        tensors = {f"param/{n}": p.detach().cpu().contiguous() for n, p in self.params.items()}
        tensors |= {f"best/{n}": t.cpu().contiguous() for n, t in self.best_state.items()}
        optimizer = self.optimizer.state_dict()
        scalars: dict[str, Any] = {}
        for index, slots in optimizer["state"].items():
            for key, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer/{index}/{key}"] = value.cpu().contiguous()
                else:
                    scalars[f"{index}/{key}"] = value
        tensors["rng/torch"] = torch.get_rng_state()
        state = {
            **self.identity,
            "epoch": self.epoch,
            "history": [m.model_dump(mode="json") for m in self.history],
            "step_losses": self.step_losses,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "optimizer": {"param_groups": optimizer["param_groups"], "scalars": scalars},
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.getstate(),
        }
        final = root / f"epoch-{self.epoch}"
        partial = root / f"epoch-{self.epoch}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        save_file(tensors, str(partial / _TENSORS_FILE))
        (partial / _STATE_FILE).write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        for other in root.iterdir():
            if other != final:
                shutil.rmtree(other, ignore_errors=True)
        return final

    def restore(self, root: Path) -> bool:
        """Load the latest checkpoint under ``root`` into this state, if there is one;
        ``ConfigError`` when it is another run's."""
        done = [
            (int(m.group(1)), p)
            for p in (root.iterdir() if root.is_dir() else ())
            if (m := _EPOCH_DIR.fullmatch(p.name)) and (p / _STATE_FILE).is_file()
        ]
        if not done:
            return False
        _, path = max(done)
        try:
            state = json.loads((path / _STATE_FILE).read_text())
            from safetensors.torch import load_file

            tensors = load_file(str(path / _TENSORS_FILE))
        except Exception as exc:  # a torn or foreign file: JSON, safetensors, OS errors
            raise CheckpointError(
                f"the training checkpoint {path} is unreadable ({type(exc).__name__}: "
                f"{exc}); delete {root} to start the training afresh"
            ) from exc
        differences = _differences(state, self.identity)
        if differences:
            raise ConfigError(
                f"{root.parent} holds an interrupted training (epoch {state.get('epoch')} "
                f"done) of another run: {'; '.join(differences)}. Rerun with its settings to "
                f"resume it, or delete {root} to start afresh"
            )
        try:
            with torch.no_grad():
                for name, param in self.params.items():
                    param.copy_(tensors[f"param/{name}"])
            self.best_state = {n: tensors[f"best/{n}"] for n in self.params}
            optimizer: dict[str, Any] = {
                "state": {},
                "param_groups": state["optimizer"]["param_groups"],
            }
            for key, value in tensors.items():
                if key.startswith("optimizer/"):
                    _, index, slot = key.split("/", 2)
                    optimizer["state"].setdefault(int(index), {})[slot] = value
            for key, value in state["optimizer"]["scalars"].items():
                index, slot = key.split("/", 1)
                optimizer["state"].setdefault(int(index), {})[slot] = value
            for group in optimizer["param_groups"]:
                if isinstance(group.get("betas"), list):
                    group["betas"] = tuple(group["betas"])
            self.optimizer.load_state_dict(optimizer)
            self.scheduler.load_state_dict(state["scheduler"])
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))
            torch.set_rng_state(tensors["rng/torch"])
            self.epoch = int(state["epoch"])
            self.history = [EpochMetrics.model_validate(m) for m in state["history"]]
            self.step_losses = [float(x) for x in state["step_losses"]]
            self.best_epoch = int(state["best_epoch"])
            saved = state["best_score"]  # a number before selection keys had parts
            self.best_score = tuple(map(float, saved if isinstance(saved, list) else [saved]))
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(
                f"the training checkpoint {path} does not fit this model "
                f"({type(exc).__name__}: {exc}); delete {root} to start the training afresh"
            ) from exc
        return True


def _train_mode(module: torch.nn.Module, dropout: bool) -> None:
    """Training mode with dropout (``dropout``), else eval mode (no dropout; gradients flow
    either way) except for the layers that checkpoint their activations: transformers
    recomputes a layer in the backward pass only while it is in training mode, and a layer's
    own mode switches no dropout (its attention and dropout modules have theirs)."""
    module.train(dropout)
    if not dropout:
        for layer in module.modules():
            if getattr(layer, "gradient_checkpointing", None) is True:
                layer.training = True


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's identity and this run's, one phrase each."""
    out = []
    for part in ("model_config", "trainer_config"):
        before, after = saved.get(part) or {}, now[part]
        if part == "trainer_config":  # recorded by an older version, or how, not what
            before = {k: v for k, v in before.items() if k not in _HOW_NOT_WHAT}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                out.append(f"{key} {before.get(key)!r} there, {after.get(key)!r} now")
    if saved.get("data") != now["data"]:
        out.append(f"its data {saved.get('data')}, now {now['data']}")
    return out


def plot_training_curve(result: TrainResult, path: str | Path) -> Path:
    """A PNG with the per-batch training loss (and its running mean) and the per-epoch
    validation pairwise accuracy; chance levels are drawn as dashed lines."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    losses = result.step_losses
    window = max(1, len(losses) // 30)
    few = window == 1  # a short run: every batch is its own point, no running mean
    ax_loss.plot(
        range(1, len(losses) + 1),
        losses,
        color="C0" if few else "#c8c8c8",
        linewidth=1.5 if few else 0.8,
        marker="o" if few else None,
        markersize=4,
        label="batch",
    )
    if not few:
        smooth = [sum(losses[i - window : i]) / window for i in range(window, len(losses) + 1)]
        ax_loss.plot(
            range(window, len(losses) + 1), smooth, color="C0", label=f"mean of {window} batches"
        )
    ax_loss.axhline(math.log(2), color="#888", linestyle="--", linewidth=1, label="chance (ln 2)")
    per_epoch = len(losses) // max(1, len(result.history))
    for k in range(1, len(result.history)):  # epoch boundaries
        ax_loss.axvline(k * per_epoch + 0.5, color="#ddd", linestyle=":", linewidth=1)
    ax_loss.set(
        xlabel="training step (batch)",
        ylabel="Bradley-Terry loss",
        title=f"Training loss ({result.train_examples:,} triplets)",
    )
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(loc="best", fontsize=9)

    epochs = [m.epoch for m in result.history]
    accs = [m.val_accuracy for m in result.history]
    ax_acc.axhline(0.5, color="#888", linestyle="--", linewidth=1, label="chance")
    if accs and all(a is not None for a in accs):
        ax_acc.plot(epochs, accs, marker="o", color="C1", label="validation accuracy")
        for epoch, acc in zip(epochs, accs, strict=True):
            ax_acc.annotate(
                f"{acc:.1%}",
                (epoch, acc),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=9,
            )
        best = result.history[result.best_epoch - 1]
        ax_acc.plot(
            [best.epoch],
            [best.val_accuracy],
            marker="*",
            markersize=14,
            color="C3",
            linestyle="none",
            label=f"kept: epoch {best.epoch}",
        )
        title = f"Validation pairwise accuracy ({result.val_examples:,} triplets)"
    else:
        ax_acc.text(0.5, 0.6, "no validation set", ha="center", transform=ax_acc.transAxes)
        title = "Validation pairwise accuracy"
    ax_acc.set(xlabel="epoch", ylabel="positive scored above negative", title=title)
    ax_acc.set_ylim(0.0, 1.05)
    ax_acc.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax_acc.set_xticks(epochs or [1])
    ax_acc.set_xlim(min(epochs or [1]) - 0.4, max(epochs or [1]) + 0.4)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right", fontsize=9)
    return save_figure(fig, path)
