"""The trainer says what a training costs before the user waits: its plan before the first
batch, and an estimate from its first timed batches."""

from __future__ import annotations

import pytest

from armap_agents.reward.card import render_model_card
from armap_agents.reward.configs import DEFAULT_MAX_TRAIN, RewardModelConfig, RewardTrainerConfig
from armap_agents.reward.cost import (
    FORWARD_SHARE,
    TIMED_STEPS,
    TrainingEstimate,
    describe_seconds,
    padded_tokens,
    training_plan,
)


def test_durations_read_as_a_person_says_them() -> None:
    assert describe_seconds(0.2) == "1 s"
    assert describe_seconds(40) == "40 s"
    assert describe_seconds(12 * 60) == "12 min"
    assert describe_seconds(2.5 * 3600) == "2.5 h"


def test_padded_tokens_count_every_row_at_the_longest() -> None:
    assert padded_tokens([3, 7, 5]) == 21
    assert padded_tokens([]) == 0


def test_the_plan_names_triplets_epochs_and_batches() -> None:
    capped = training_plan(used=2000, available=15432, cap=2000, epochs=2, batches=63, val=500)
    assert capped == (
        "training the reward model on 2,000 of 15,432 triplets (sampled: max_train 2,000), "
        "2 epochs of 63 batches, validating on 500 triplets after each"
    )
    whole = training_plan(used=40, available=40, cap=2000, epochs=1, batches=1, val=0)
    assert whole == "training the reward model on 40 triplets, 1 epoch of 1 batch"


def test_the_estimate_extrapolates_seconds_per_token_from_batches_two_to_four() -> None:
    """Batch 1 (one-off costs) is left out; the rest are extrapolated per padded token,
    validation at a forward pass's share."""
    tokens = [100, 200, 100, 100, 300, 200]  # one epoch's batches
    estimate = TrainingEstimate(eval_tokens=600)
    said = [
        estimate.record(tokens, number, seconds, epochs_after=1)
        for number, seconds in enumerate([9.0, 2.0, 1.0, 1.0], 1)
    ]
    assert said[:TIMED_STEPS] == [None] * TIMED_STEPS
    assert said[TIMED_STEPS] is not None and "about" in said[TIMED_STEPS]
    per_token = 4.0 / 400  # batches 2-4: 4 s on 400 tokens
    left = (300 + 200) + 1 * sum(tokens)  # this epoch's rest and one more epoch
    expected = 13.0 + per_token * (left + 2 * 600 * FORWARD_SHARE)
    assert estimate.seconds == pytest.approx(expected)
    assert estimate.record(tokens, 5, 3.0, epochs_after=1) is None  # said once


def test_no_estimate_when_the_timing_took_the_whole_training() -> None:
    estimate = TrainingEstimate()
    tokens = [10] * (TIMED_STEPS + 1)
    for number in range(1, TIMED_STEPS + 2):
        assert estimate.record(tokens, number, 1.0, epochs_after=0) is None
    assert estimate.seconds is None


def test_a_first_run_is_capped_and_the_help_says_why() -> None:
    field = RewardTrainerConfig.model_fields["max_train"]
    assert RewardTrainerConfig().max_train == DEFAULT_MAX_TRAIN == 2000
    assert "first run" in (field.description or "")
    assert RewardTrainerConfig(max_train=None).max_train is None


def test_the_command_line_reads_none_for_every_triplet() -> None:
    from armap_agents.cli import build_parser

    parser = build_parser()
    base = ["train", "--data", "d", "--out", "o"]
    assert parser.parse_args(base).max_train == DEFAULT_MAX_TRAIN
    assert parser.parse_args([*base, "--max-train", "none"]).max_train is None
    assert parser.parse_args([*base, "--max-train", "300"]).max_train == 300
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--max-train", "lots"])


def test_the_model_card_says_one_epoch() -> None:
    config = RewardModelConfig()
    card = render_model_card(
        config, {}, {"trainer_config": RewardTrainerConfig(epochs=1).model_dump(mode="json")}
    )
    assert "* Settings: 1 epoch, batch size 32" in card
    card = render_model_card(
        config, {}, {"trainer_config": RewardTrainerConfig().model_dump(mode="json")}
    )
    assert "* Settings: 2 epochs, batch size 32" in card


def test_the_trainer_says_its_plan_and_estimate(capsys, small_reward_model_config) -> None:
    from armap_agents.reward.model import RewardModel
    from armap_agents.reward.train import RewardTrainer
    from armap_agents.testing import game24_triplets

    # 5 batches of 8: batches 2-4 are timed, one is left to forecast
    train = game24_triplets([str(i) for i in range(1, 8)])[:40]
    model = RewardModel.create(small_reward_model_config)
    result = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=8)).train(
        train, progress=False
    )
    printed = capsys.readouterr().out
    assert f"training the reward model on {len(train)} triplets, 1 epoch of 5 batches" in printed
    assert "estimated training time: about" in printed
    assert result.estimated_seconds is not None and result.estimated_seconds > 0
