"""Reward-model training on several processes (DistributedDataParallel through accelerate, gloo
on CPU) takes the steps one process takes, saves the same model format, and only rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents.cli import build_parser, main
from armap_agents.errors import ConfigError
from armap_agents.layout import TRAIN_TRIPLETS_FILE, VAL_TRIPLETS_FILE
from armap_agents.pipeline import train_reward_model
from armap_agents.reward.distributed import (
    Processes,
    check_devices,
    launched_processes,
    run_on_devices,
)
from armap_agents.reward.model import RewardModel, resolve_device
from armap_agents.reward.train import pairwise_metrics
from armap_agents.testing import game24_triplets
from armap_agents.types import Triplet

_TRAINING = {  # 48 triplets, 6 optimizer steps of 8 pairs, one epoch: the cheapest that learns
    "env": "game24",
    "max_length": 48,
    "epochs": 1,
    "batch_size": 8,
    "learning_rate": 5e-3,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory) -> Path:
    """A synthesis directory: triplets of 6 puzzles to train on, of 2 others to validate."""
    data = tmp_path_factory.mktemp("synthesis")
    write_jsonl(data / TRAIN_TRIPLETS_FILE, game24_triplets([str(i) for i in range(1, 7)]))
    write_jsonl(data / VAL_TRIPLETS_FILE, game24_triplets(["400", "401"]))
    return data


def test_devices_are_checked_before_anything_starts(monkeypatch, tmp_path, capsys) -> None:
    assert check_devices(None, "cpu") == 1 and check_devices(2, "cpu") == 2
    with pytest.raises(ConfigError, match="at least 1, got 0"):
        check_devices(0, "cpu")
    with pytest.raises(ConfigError, match="device 'cuda:1' with several processes"):
        check_devices(2, "cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="2 processes on CUDA need 2 GPUs; torch sees 1"):
        check_devices(2, "auto")
    monkeypatch.setenv("WORLD_SIZE", "4")  # under torchrun / accelerate launch
    assert check_devices(None) == 4 and check_devices(4) == 4
    with pytest.raises(ConfigError, match="started 4 processes .WORLD_SIZE. but devices is 2"):
        check_devices(2)
    monkeypatch.delenv("WORLD_SIZE")
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--devices", "8"])
    assert args.devices == 8
    out = tmp_path / "rm"
    assert main(["train", "--data", str(tmp_path), "--out", str(out), "--devices", "0"]) != 0
    assert "devices must be at least 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_each_process_takes_a_contiguous_share_of_each_batch() -> None:
    cpu = torch.device("cpu")
    shares = [Processes(cpu, rank=r, count=3).share(list(range(7))) for r in range(3)]
    assert shares == [[0, 1], [2, 3], [4, 5, 6]]
    assert [Processes(cpu, rank=r, count=3).share([9]) for r in range(3)] == [[], [], [9]]
    assert Processes(cpu).share([1, 2]) == [1, 2] and Processes(cpu).is_main
    assert Processes(cpu).sum([1, 2.5]) == [1.0, 2.5]


def test_a_mistake_in_a_spawned_process_is_one_error_here() -> None:
    """Two processes start and import torch (~6 s on 2 cores). Rank 0's result coming back
    is tested by the slow trainings below."""
    assert launched_processes() == 1
    with pytest.raises(ConfigError, match="unknown device 'abacus'"):
        run_on_devices(resolve_device, {"device": "abacus"}, 2)


@pytest.mark.slow
def test_two_processes_take_the_steps_of_one_and_save_the_same_model(synthesis, tmp_path) -> None:
    """The same batches from the same seed, each split in two, gradients all-reduced: the same
    optimizer steps as one process, equal up to float rounding."""
    one = train_reward_model(data=synthesis, out=tmp_path / "one", echo=None, **_TRAINING)
    two = train_reward_model(
        data=synthesis, out=tmp_path / "two", devices=2, echo=None, **_TRAINING
    )
    assert (one.processes, two.processes, len(two.step_losses)) == (1, 2, 6)
    losses = two.step_losses
    assert sum(losses[-2:]) / 2 < losses[0] - 0.05, losses  # it learns
    assert losses == pytest.approx(one.step_losses, abs=1e-4)
    # the same files, in the same format; the checkpoints gone
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    assert not (tmp_path / "two" / "checkpoints").exists()
    single, double = RewardModel.load(tmp_path / "one"), RewardModel.load(tmp_path / "two")
    triplets = read_jsonl(synthesis / VAL_TRIPLETS_FILE, Triplet)
    (acc_one, margin_one), (acc_two, margin_two) = (
        pairwise_metrics(single, triplets),
        pairwise_metrics(double, triplets),
    )
    # weights equal up to rounding that Adam's steps magnify (as for micro-batches in
    # test_reward): one validation pair whose margin is ~0 could flip, no more
    assert abs(acc_two - acc_one) <= 1 / len(triplets)
    assert acc_two == two.history[0].val_accuracy  # scored in shares during training
    assert margin_two == pytest.approx(margin_one, rel=5e-3, abs=1e-3)
    assert double.training is not None and double.training["processes"] == 2


@pytest.mark.slow
def test_under_torchrun_rank_0_alone_writes(synthesis, tmp_path) -> None:
    """``torchrun -m armap_agents.cli train``: the trainer finds the group; each process is
    given its own --out here, and only rank 0's is written."""
    script = tmp_path / "rank_out.py"
    script.write_text(
        "import os, sys\n"
        "from armap_agents.cli import main\n"
        "out = os.path.join(sys.argv[1], 'rank' + os.environ['RANK'])\n"
        "sys.exit(main(['train', '--out', out] + sys.argv[2:]))\n"
    )
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in _TRAINING.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node=2", str(script), str(tmp_path), "--data", str(synthesis)]
    done = subprocess.run(
        command + flags,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "rank1").exists()
    model = RewardModel.load(tmp_path / "rank0")
    assert model.training is not None and model.training["processes"] == 2
    assert done.stdout.count("trained on 48 triplets") == 1  # rank 0 reports
