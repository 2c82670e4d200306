"""A saved reward model is verified when it loads: its weight files and the settings that
change scores are what ``save`` wrote, and non-finite weights are never saved."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from armap_agents.errors import ArmapError, CheckpointError
from armap_agents.reward.configs import CONFIG_FILE
from armap_agents.reward.model import RewardModel
from armap_agents.reward.train import CHECKPOINT_DIR, RewardTrainer, RewardTrainerConfig
from armap_agents.testing import game24_triplets

WEIGHTS = "adapter_model.safetensors"
HEAD = "base_model.model.score_head.weight"
INTENTS = ["obtain 24", "obtain 24"]
TEXTS = ["Observation: Numbers left: 24", "Action: 3 * 8 = 24\nObservation: Numbers left: 24"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small_reward_model_config) -> tuple[Path, list[float]]:
    """An untrained model saved once (``(directory, its scores of TEXTS)``); tests copy it."""
    model = RewardModel.create(small_reward_model_config, device="cpu")
    path = model.save(tmp_path_factory.mktemp("weights") / "rm")
    return path, model.score_texts(INTENTS, TEXTS)


def _copy(saved: tuple[Path, list[float]], tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved[0], tmp_path / "rm"))


def _edit_config(path: Path, **changes) -> dict:
    record = json.loads((path / CONFIG_FILE).read_text())
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    (path / CONFIG_FILE).write_text(json.dumps(record, indent=2))
    return record


def _set_head_bytes(path: Path, change) -> None:
    """Change, with ``change(raw, start)``, the bytes of the head's first weight on disk."""
    raw = bytearray((path / WEIGHTS).read_bytes())
    size = struct.unpack("<Q", raw[:8])[0]
    start = 8 + size + json.loads(raw[8 : 8 + size])[HEAD]["data_offsets"][0]
    change(raw, start)
    (path / WEIGHTS).write_bytes(bytes(raw))


def _flip_head_exponent(path: Path) -> None:
    """Set the top exponent bits of the head's first weight: a finite float near 1e38."""

    def flip(raw: bytearray, start: int) -> None:
        raw[start + 3] = 0x7E  # little-endian float32: sign + exponent high bits

    _set_head_bytes(path, flip)


def test_save_records_the_digests_and_a_saved_model_loads_with_its_scores(saved) -> None:
    path, scores = saved
    record = json.loads((path / CONFIG_FILE).read_text())
    assert set(record["weights_sha256"]) == {WEIGHTS, "adapter_config.json"}
    assert all(len(digest) == 64 for digest in record["weights_sha256"].values())
    settings = set(record["settings_sha256"])
    assert {"backbone", "pooling", "lora_r", "lora_alpha", "max_length", "view"} <= settings
    assert not settings & {"seed", "lora_dropout", "format_version"}  # they change no score
    assert RewardModel.load(path, device="cpu").score_texts(INTENTS, TEXTS) == scores


def test_a_flipped_byte_in_the_head_is_refused_naming_the_file(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    _flip_head_exponent(path)
    with pytest.raises(CheckpointError, match=f"{WEIGHTS} is not the file saved") as err:
        RewardModel.load(path, device="cpu")
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    # what the digest guards against: unchecked, the altered head loads and scores ~1e38
    _edit_config(path, weights_sha256=None, settings_sha256=None)
    assert max(map(abs, RewardModel.load(path, device="cpu").score_texts(INTENTS, TEXTS))) > 1e30


def test_an_edited_adapter_config_is_refused_naming_the_file(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    adapter = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**adapter, "lora_alpha": 64}))
    with pytest.raises(CheckpointError, match="adapter_config.json is not the file saved"):
        RewardModel.load(path, device="cpu")
    (path / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"{WEIGHTS}, recorded in {CONFIG_FILE}, is missing"):
        RewardModel.load(path, device="cpu")


@pytest.mark.parametrize(
    ("setting", "value"), [("pooling", "cls"), ("lora_r", 16), ("max_length", 64)]
)
def test_an_edited_scoring_setting_is_refused_naming_it(saved, tmp_path, setting, value) -> None:
    path = _copy(saved, tmp_path)
    _edit_config(path, **{setting: value})
    with pytest.raises(CheckpointError, match=f"its {setting} \\({json.dumps(value)}\\) is not"):
        RewardModel.load(path, device="cpu")


def test_settings_that_change_no_score_may_be_edited(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    _edit_config(path, seed=7, lora_dropout=0.1)
    assert RewardModel.load(path, device="cpu").score_texts(INTENTS, TEXTS) == saved[1]


def test_a_corrupt_digest_record_is_a_checkpoint_error(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    _edit_config(path, weights_sha256=["not", "a", "mapping"])
    with pytest.raises(CheckpointError, match="weights_sha256: should be an object"):
        RewardModel.load(path, device="cpu")


def test_a_model_saved_before_the_digests_still_loads_with_the_same_scores(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    record = _edit_config(path, weights_sha256=None, settings_sha256=None)
    assert "weights_sha256" not in record and "settings_sha256" not in record
    assert RewardModel.load(path, device="cpu").score_texts(INTENTS, TEXTS) == saved[1]


def test_nan_written_into_the_head_file_is_refused_at_load(saved, tmp_path) -> None:
    """Caught by the digest; in a directory without digests, by load's finite check."""
    path = _copy(saved, tmp_path)

    def nan(raw: bytearray, start: int) -> None:
        raw[start : start + 4] = struct.pack("<f", float("nan"))

    _set_head_bytes(path, nan)
    with pytest.raises(CheckpointError, match=f"{WEIGHTS} is not the file saved"):
        RewardModel.load(path, device="cpu")
    _edit_config(path, weights_sha256=None, settings_sha256=None)
    with pytest.raises(CheckpointError, match="rm is corrupt: .*score_head.* NaN"):
        RewardModel.load(path, device="cpu")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["score_head", "lora_A"])
def test_save_refuses_non_finite_weights(small_reward_model_config, tmp_path, bad, where) -> None:
    model = RewardModel.create(small_reward_model_config, device="cpu")
    with torch.no_grad():
        name, param = next(
            (n, p) for n, p in model.module.named_parameters() if where in n and p.requires_grad
        )
        param.view(-1)[0] = bad
    with pytest.raises(ArmapError, match=f"refusing to save .*{name}.* NaN or infinite"):
        model.save(tmp_path / "rm")
    assert not (tmp_path / "rm").exists()  # nothing written


def test_training_that_ends_with_non_finite_weights_saves_no_model(
    small_reward_model_config, tmp_path
) -> None:
    """One step with an absurd weight decay: its loss and gradient are finite, the weights it
    leaves are not, and no later loss reads them (they were once saved as the finished model)."""
    model = RewardModel.create(small_reward_model_config, device="cpu")
    config = RewardTrainerConfig(epochs=1, batch_size=8, weight_decay=1e45, device="cpu")
    trainer = RewardTrainer(model, config)
    out = tmp_path / "out"
    with pytest.raises(ArmapError, match="training diverged: after epoch 1, .* NaN or infinite"):
        trainer.train(game24_triplets(["3"]), output_dir=out, progress=False)
    assert not (out / CONFIG_FILE).exists() and not (out / WEIGHTS).exists()
    assert not (out / CHECKPOINT_DIR).exists()
