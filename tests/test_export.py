"""Triplets export to TRL's preference format and load with ``datasets.load_dataset("json")``."""

from __future__ import annotations

import json

import pytest

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents.cli import main
from armap_agents.environments.game24 import Game24Env, Game24Relabeler
from armap_agents.errors import ConfigError
from armap_agents.export import export_preferences, to_preference_record, to_preference_records
from armap_agents.graphs.synthesize import TRAIN_FILE, VAL_FILE
from armap_agents.policies import RandomPolicy
from armap_agents.rollout import run_episode
from armap_agents.types import Triplet, render_example, render_trajectory


def _triplets(task_ids: list[str]) -> list[Triplet]:
    env, relabeler = Game24Env(), Game24Relabeler()
    out: list[Triplet] = []
    for task_id in task_ids:
        episodes = [
            run_episode(env, RandomPolicy(), task_id, seed=s, episode_id=f"{task_id}#{s}")
            for s in range(3)
        ]
        out += relabeler.relabel(episodes, seed=int(task_id))
    return out


@pytest.fixture(scope="module")
def synthesis_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthesis")
    write_jsonl(out / TRAIN_FILE, _triplets(["1", "2", "3"]))
    write_jsonl(out / VAL_FILE, _triplets(["400"]))
    return out


def test_records_carry_the_texts_the_reward_model_scores(synthesis_dir) -> None:
    triplets = read_jsonl(synthesis_dir / TRAIN_FILE, Triplet)
    assert triplets
    for t, record in zip(triplets, to_preference_records(triplets), strict=True):
        assert set(record) == {"prompt", "chosen", "rejected"}
        assert record["chosen"] == render_trajectory(t.positive)
        assert record["rejected"] == render_trajectory(t.negative)
        # TRL concatenates prompt + answer: the canonical single-string example
        assert record["prompt"] + record["chosen"] == render_example(t.intent, t.positive)
        assert record["prompt"] + record["rejected"] == render_example(t.intent, t.negative)
    implicit = to_preference_record(triplets[0], "trl-implicit")
    assert implicit == {
        "chosen": render_example(triplets[0].intent, triplets[0].positive),
        "rejected": render_example(triplets[0].intent, triplets[0].negative),
    }
    with pytest.raises(ConfigError, match="unknown export format"):
        to_preference_record(triplets[0], "dpo")  # type: ignore[arg-type]


def test_export_loads_with_datasets(synthesis_dir, tmp_path, capsys) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "trl"
    assert main(["export", "--data", str(synthesis_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "preferences.train.jsonl" in printed and "load_dataset" in printed
    files = {
        "train": str(out / "preferences.train.jsonl"),
        "val": str(out / "preferences.val.jsonl"),
    }
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    for split, source in (("train", TRAIN_FILE), ("val", VAL_FILE)):
        triplets = read_jsonl(synthesis_dir / source, Triplet)
        assert loaded[split].column_names == ["prompt", "chosen", "rejected"]
        assert loaded[split].num_rows == len(triplets)
        assert loaded[split][0] == to_preference_record(triplets[0])
    # the implicit-prompt form, through the function
    single = tmp_path / "implicit.jsonl"
    n = export_preferences(synthesis_dir / VAL_FILE, single, "trl-implicit")
    rows = datasets.load_dataset("json", data_files=str(single), cache_dir=str(tmp_path / "c2"))
    assert rows["train"].column_names == ["chosen", "rejected"] and rows["train"].num_rows == n
    assert json.loads(single.read_text().splitlines()[0])["chosen"].startswith("Task: ")


def test_export_needs_a_synthesis_directory(tmp_path, capsys) -> None:
    assert main(["export", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "armap synthesize" in capsys.readouterr().err
