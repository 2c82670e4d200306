"""A saved reward model carries a model card (README.md) that says what it is and how it did."""

from __future__ import annotations

from pathlib import Path

from armap_agents.reward.card import render_model_card
from armap_agents.reward.model import RewardModel, RewardModelConfig, resolve_backbone
from armap_agents.types import Trajectory

TRAINING = {
    "history": [
        {"epoch": 1, "train_loss": 0.61, "val_accuracy": 0.7, "val_margin": 0.4, "seconds": 3.0},
        {"epoch": 2, "train_loss": 0.42, "val_accuracy": 0.81, "val_margin": 0.9, "seconds": 3.1},
    ],
    "best_epoch": 2,
    "best_val_accuracy": 0.81,
    "train_examples": 1500,
    "val_examples": 500,
    "data_source": "runs/quickstart/synthesis",
    "triplet_sources": {"outcome": 900, "prefix": 600},
    "trainer_config": {
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 0.001,
        "warmup_ratio": 0.06,
        "seed": 0,
    },
}


def test_card_has_a_hub_header_settings_data_and_metrics() -> None:
    config = RewardModelConfig()
    card = render_model_card(
        config, {"pooling": "mean", "parameters": 23_000_000, "trainable": 600_000}, TRAINING
    )
    header = card.split("---")[1]
    assert "library_name: peft" in header
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in header
    assert "- reward-model" in header
    for text in (
        "`all-MiniLM-L6-v2`",
        "| pooling | mean |",
        "512 tokens",
        "r = 16, alpha = 32",
        "1,500 training and 500 validation `(intent, positive, negative)` triplets from "
        "`runs/quickstart/synthesis`",
        "outcome: 900, prefix: 600",
        "| 2 | 0.4200 | 81.0% | 0.900 | 3.1 |",
        "Validation pairwise accuracy **81.0%**",
        "epoch 2 of 2",
        'RewardModel.load("path/to/this/directory")',
        "armap serve-rm --model DIR",
        "Intended use and limits",
    ):
        assert text in card, text
    # a local backbone directory is named, but is no hub id
    local = render_model_card(RewardModelConfig(backbone="/models/my-encoder"), {}, None)
    assert "base_model" not in local and "`/models/my-encoder`" in local


def test_saving_an_untrained_model_writes_a_card_and_reloads_identically(
    tmp_path, small_reward_model_config, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
    model = RewardModel.create(small_reward_model_config)
    out = model.save(tmp_path / "rm")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n")
    assert "No training record" in card and "## Metrics" not in card
    home = str(Path.home())
    assert "sk-test-SECRET" not in card and (home == "/" or home not in card)
    assert resolve_backbone("all-MiniLM-L6-v2") not in card  # the name, not the wheel's path
    assert not (out / "train_result.json").exists()
    reloaded = RewardModel.load(out)
    assert reloaded.training is None
    trajectory = Trajectory(task_id="1", intent="reach 24", initial_observation="1 2 3 4")
    assert reloaded.score("reach 24", [trajectory]) == model.score("reach 24", [trajectory])
    # a training record travels with the model when it is loaded and saved elsewhere
    reloaded.training = TRAINING
    reloaded.save(tmp_path / "copy")
    again = RewardModel.load(tmp_path / "copy")
    assert again.training == TRAINING
    assert "81.0%" in (tmp_path / "copy" / "README.md").read_text()
