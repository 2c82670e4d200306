"""The reward model really trains, saves, reloads bit-identically and fails clearly."""

from __future__ import annotations

import json
import math

import pytest
import torch

from armap_agents.environments.game24 import Game24Env, Game24Relabeler
from armap_agents.errors import ArmapError, CheckpointError, ConfigError
from armap_agents.policies import RandomPolicy
from armap_agents.reward.model import MAX_CHARS_PER_TOKEN, RewardModel, RewardModelConfig
from armap_agents.reward.train import (
    CHECKPOINT_DIR,
    RewardTrainer,
    RewardTrainerConfig,
    _Checkpoint,
    pairwise_metrics,
)
from armap_agents.rollout import run_episode
from armap_agents.types import render_trajectory


def _triplets(task_ids: list[str]):
    """Outcome triplets: same puzzle, the positive reaches the intent's target, the negative not."""
    env, relabeler = Game24Env(), Game24Relabeler(corrupt_rate=0.0, prefixes=False)
    out = []
    for task_id in task_ids:
        trajectories = [
            run_episode(env, RandomPolicy(), task_id, seed=s, episode_id=f"{task_id}#{s}")
            for s in range(4)
        ]
        out += relabeler.relabel(trajectories, seed=int(task_id))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_reward_model_config):
    train = _triplets([str(i) for i in range(1, 25)])
    val = _triplets([str(i) for i in range(400, 412)])
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
    triplets = _triplets(["3", "4"])
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
    model.save(tmp_path / "nan_model")
    with pytest.raises(CheckpointError, match="nan_model is corrupt: .*score_head.* NaN"):
        RewardModel.load(tmp_path / "nan_model")
    # no validation set: a NaN loss once ended in UnboundLocalError
    with pytest.raises(ArmapError, match="training diverged: the loss of batch 1 in epoch 1"):
        RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=4)).train(
            _triplets(["3"]), progress=False
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
    train, val = _triplets(["1", "2", "3", "4"]), _triplets(["400", "401"])
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
