"""Pairwise (Bradley-Terry) training of a :class:`RewardModel` on triplets.

Loss ``-logsigmoid(r(intent, positive) - r(intent, negative))``. Inputs are tokenized once;
batches are drawn from length buckets and padded dynamically, so little compute goes to
padding. After each epoch the validation pairwise accuracy and mean margin are measured; the
best epoch's weights are kept. ``metrics.jsonl`` and ``training_curve.png`` record the run.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from armap_agents._plotting import pyplot, save_figure
from armap_agents.reward.model import RewardModel
from armap_agents.types import Triplet, render_trajectory

__all__ = [
    "EpochMetrics",
    "RewardTrainer",
    "RewardTrainerConfig",
    "TrainResult",
    "pairwise_metrics",
]


class RewardTrainerConfig(BaseModel):
    """Optimisation settings for :class:`RewardTrainer`."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = 0.0
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    max_grad_norm: float = 1.0
    seed: int = 0
    bucket_batches: int = Field(50, ge=1)
    """How many batches' worth of examples are sorted by length together (1 = no bucketing)."""
    eval_batch_size: int = 128


class EpochMetrics(BaseModel):
    epoch: int
    train_loss: float
    val_accuracy: float | None = None
    val_margin: float | None = None
    seconds: float


class TrainResult(BaseModel):
    history: list[EpochMetrics]
    best_epoch: int
    best_val_accuracy: float | None
    step_losses: list[float] = Field(default_factory=list, repr=False)
    train_examples: int
    val_examples: int


def pairwise_metrics(
    model: RewardModel, triplets: Sequence[Triplet], batch_size: int = 128
) -> tuple[float, float]:
    """``(accuracy, mean margin)``: how often and by how much positive outscores negative."""
    if not triplets:
        return float("nan"), float("nan")
    intents = [t.intent for t in triplets] * 2
    texts = [render_trajectory(t.positive) for t in triplets] + [
        render_trajectory(t.negative) for t in triplets
    ]
    scores = model.score_texts(intents, texts, batch_size=batch_size)
    n = len(triplets)
    margins = [scores[i] - scores[n + i] for i in range(n)]
    return sum(m > 0 for m in margins) / n, sum(margins) / n


class RewardTrainer:
    """Trains a reward model in place; see the module docstring for the recipe."""

    def __init__(self, model: RewardModel, config: RewardTrainerConfig | None = None) -> None:
        self.model = model
        self.config = config or RewardTrainerConfig()

    def _tokenize(self, triplets: Sequence[Triplet]) -> list[tuple[list[int], list[int]]]:
        intents = [t.intent for t in triplets]
        pos = self.model.encode(
            intents, [render_trajectory(t.positive) for t in triplets], pad=False
        )
        neg = self.model.encode(
            intents, [render_trajectory(t.negative) for t in triplets], pad=False
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
        output_dir: str | Path | None = None,
        progress: bool = True,
    ) -> TrainResult:
        """Train; with ``output_dir``, save the best epoch's model, metrics and curve there."""
        if not train:
            raise ValueError("no training triplets: run exploration and synthesis first")
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        examples = self._tokenize(train)
        module = self.model.module
        params = [p for p in module.parameters() if p.requires_grad]
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
        history: list[EpochMetrics] = []
        step_losses: list[float] = []
        best_epoch, best_acc = 0, -1.0
        bar = tqdm(total=total, desc="train reward model", disable=not progress, unit="batch")
        for epoch in range(1, cfg.epochs + 1):
            module.train()
            started, losses = time.perf_counter(), []
            for batch_idx in self._batches(examples, rng):
                rows = [examples[i][0] for i in batch_idx] + [examples[i][1] for i in batch_idx]
                rewards = self.model.forward_batch(self._collate(rows))
                r_pos, r_neg = rewards[: len(batch_idx)], rewards[len(batch_idx) :]
                loss = -F.logsigmoid(r_pos - r_neg).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
            module.eval()
            acc, margin = (
                pairwise_metrics(self.model, val, cfg.eval_batch_size) if val else (None, None)
            )
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=sum(losses) / len(losses),
                val_accuracy=acc,
                val_margin=margin,
                seconds=time.perf_counter() - started,
            )
            history.append(metrics)
            step_losses += losses
            bar.write(
                f"epoch {epoch}: train loss {metrics.train_loss:.4f}"
                + (f", val accuracy {acc:.3f}, val margin {margin:.3f}" if acc is not None else "")
            )
            score = acc if acc is not None else -metrics.train_loss
            if score > best_acc:
                best_epoch, best_acc = epoch, score
                best_state = {
                    n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad
                }
        bar.close()
        if best_epoch != cfg.epochs:  # keep the best epoch's weights, in memory and on disk
            module.load_state_dict(best_state, strict=False)
        result = TrainResult(
            history=history,
            best_epoch=best_epoch,
            best_val_accuracy=history[best_epoch - 1].val_accuracy,
            step_losses=step_losses,
            train_examples=len(train),
            val_examples=len(val),
        )
        if out is not None:
            self.model.save(out)
            with (out / "metrics.jsonl").open("w") as fh:
                for m in history:
                    fh.write(m.model_dump_json() + "\n")
            (out / "train_result.json").write_text(
                json.dumps(result.model_dump(exclude={"step_losses"}), indent=2)
            )
            plot_training_curve(result, out / "training_curve.png")
        return result


def plot_training_curve(result: TrainResult, path: str | Path) -> Path:
    """A PNG with the per-batch training loss and the per-epoch validation accuracy."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    losses = result.step_losses
    ax_loss.plot(losses, color="#bbb", linewidth=0.8, label="batch")
    window = max(1, len(losses) // 30)
    if len(losses) >= window:
        smooth = [sum(losses[i - window : i]) / window for i in range(window, len(losses) + 1)]
        ax_loss.plot(range(window - 1, len(losses)), smooth, color="C0", label=f"mean of {window}")
    ax_loss.set(xlabel="batch", ylabel="Bradley-Terry loss", title="training loss")
    ax_loss.legend()
    epochs = [m.epoch for m in result.history]
    accs = [m.val_accuracy for m in result.history]
    if all(a is not None for a in accs):
        ax_acc.plot(epochs, accs, marker="o", color="C1")
        ax_acc.set_ylim(0.0, 1.0)
    ax_acc.set(xlabel="epoch", ylabel="pairwise accuracy", title="validation accuracy")
    ax_acc.set_xticks(epochs)
    return save_figure(fig, path)
