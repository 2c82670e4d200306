"""Runs know what made them (issue 17, finding 7): every trajectory file and run directory has a
manifest, and resuming with something else is a clear error naming both, never a silent mix."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents._provenance import env_defines, manifest_path, read_manifest
from armap_agents.cli import build_parser, main
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import CheckpointError
from armap_agents.graphs.explore import ExploreConfig, explore
from armap_agents.pipeline import default_run_dir
from armap_agents.policies import RandomPolicy
from armap_agents.types import Trajectory

TINY = ["--max-tasks", "2", "--episodes-per-task", "1"]


def _explore(out, *extra: str) -> int:
    return main(["explore", *TINY, "--out", str(out), *extra])


def test_the_manifest_says_what_made_the_trajectories(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    assert _explore(out, "--max-steps", "5", "--seed", "3") == 0
    manifest = json.loads((tmp_path / "t.jsonl.meta.json").read_text())
    assert manifest["kind"] == "trajectories"
    assert manifest["defines"] == {
        "env": "game24",
        "env_options": {},
        "policy": "random",
        "max_steps": 5,
        "seed": 3,
    }
    assert manifest["settings"]["max_tasks"] == 2 and manifest["settings"]["split"] == "train"


def test_exploring_another_environment_into_the_same_file_is_refused(tmp_path, capsys) -> None:
    """The report's case: WebShop's numeric task ids overlap Game of 24's, so its episodes
    counted as "already done" from Game of 24's file."""
    out = tmp_path / "run" / "trajectories.jsonl"
    assert _explore(out) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert _explore(out, "--env", "webshop") == 2
    err = capsys.readouterr().err
    assert 'env: "game24" recorded, "webshop" asked' in err, err
    assert str(out) in err and err.count("\n") == 1
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["--max-steps", "4"], "max_steps: 10 recorded, 4 asked"),
        (["--seed", "1"], "seed: 0 recorded, 1 asked"),
    ],
)
def test_resuming_with_other_defining_settings_is_refused(tmp_path, capsys, changed, named) -> None:
    out = tmp_path / "t.jsonl"
    assert _explore(out) == 0
    capsys.readouterr()
    assert _explore(out, *changed) == 2
    assert named in capsys.readouterr().err


def test_another_policy_or_other_environment_options_are_refused(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    config = ExploreConfig(max_tasks=1, episodes_per_task=1)
    made = {"env": "game24", "env_options": {}, "policy": "random"}
    explore(RandomPolicy(), Game24Env, out, config, progress=False, provenance=made)
    for other, named in [
        ({**made, "policy": "openai:gpt-4o-mini"}, 'policy: "random" recorded'),
        ({**made, "env_options": {"level": 2}}, 'env_options: {} recorded, {"level": 2} asked'),
    ]:
        with pytest.raises(CheckpointError, match=named):
            explore(RandomPolicy(), Game24Env, out, config, progress=False, provenance=other)
    assert len(read_jsonl(out, Trajectory)) == 1


def test_what_may_change_between_resumes_is_no_mismatch(tmp_path, capsys) -> None:
    out = tmp_path / "t.jsonl"
    assert _explore(out) == 0
    more = ["--max-tasks", "3", "--episodes-per-task", "2", "--concurrency", "1"]
    assert main(["explore", *more, "--max-llm-calls", "10", "--out", str(out)]) == 0
    assert "explored 4 new episodes (2 already done" in capsys.readouterr().out
    assert read_manifest(out, "trajectories")["settings"]["max_tasks"] == 3  # the last run's


def test_options_that_only_say_how_to_run_an_environment_are_no_mismatch(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    config = ExploreConfig(max_tasks=1, episodes_per_task=1)
    for options in ({"tasks": "boil", "jvm_heap": "512m"}, {"tasks": "boil", "jvm_heap": "2g"}):
        made = {**env_defines("scienceworld", options), "policy": "random"}
        assert made["env_options"] == {"tasks": "boil"}
        explore(RandomPolicy(), Game24Env, out, config, progress=False, provenance=made)
    made = {**env_defines("scienceworld", {"tasks": "melt"}), "policy": "random"}
    with pytest.raises(CheckpointError, match='"boil"'):
        explore(RandomPolicy(), Game24Env, out, config, progress=False, provenance=made)


def test_a_file_from_before_manifests_is_adopted_with_a_warning(tmp_path, capsys, caplog) -> None:
    out = tmp_path / "t.jsonl"
    config = ExploreConfig(max_tasks=2, episodes_per_task=1)
    explore(RandomPolicy(), Game24Env, out, config, progress=False)
    manifest_path(out, "trajectories").unlink()  # as an older version left it
    with caplog.at_level(logging.WARNING):
        assert _explore(out) == 0
    assert "explored 0 new episodes (2 already done" in capsys.readouterr().out
    assert "has no manifest" in caplog.text
    assert read_manifest(out, "trajectories")["defines"]["env"] == "game24"


def test_synthesis_records_its_trajectories_and_refuses_others(tmp_path, capsys) -> None:
    a, b, syn = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "syn"
    assert _explore(a) == 0 and _explore(b, "--seed", "1") == 0
    synthesize = ["synthesize", "--out", str(syn), "--trajectories"]
    assert main([*synthesize, str(a)]) == 0
    defines = read_manifest(syn, "synthesis")["defines"]
    assert defines["synthesizer"] == "relabel" and defines["env"] == "game24"
    assert defines["trajectories"] == read_manifest(a, "trajectories")["defines"]
    capsys.readouterr()
    assert main([*synthesize, str(b)]) == 2
    assert "trajectories.seed: 0 recorded, 1 asked" in capsys.readouterr().err
    # trajectories of one environment are not synthesized as another's
    assert main([*synthesize, str(a), "--env", "webshop"]) == 2
    err = capsys.readouterr().err
    assert "--env 'webshop' contradicts the trajectories" in err and "'game24'" in err


def test_synthesis_of_a_file_without_manifest_needs_adopt(tmp_path, capsys) -> None:
    path = tmp_path / "t.jsonl"
    config = ExploreConfig(max_tasks=2, episodes_per_task=2)
    explore(RandomPolicy(), Game24Env, path, config, progress=False)
    write_jsonl(tmp_path / "copy.jsonl", read_jsonl(path, Trajectory))  # no manifest
    out = tmp_path / "syn"
    synthesize = ["synthesize", "--trajectories", str(tmp_path / "copy.jsonl"), "--out", str(out)]
    assert main(synthesize) == 2  # nothing says whose trajectories these are
    assert "--adopt" in capsys.readouterr().err and not out.exists()
    assert main([*synthesize, "--adopt", "--env", "game24"]) == 0
    assert "trajectories" not in read_manifest(out, "synthesis")["defines"]


def test_quickstart_run_directories_are_per_environment_llm_and_size() -> None:
    dirs = {
        default_run_dir("game24"),
        default_run_dir("webshop"),
        default_run_dir("webshop", "local:smollm2"),
        default_run_dir("webshop", "openai:gpt-4o-mini"),
        default_run_dir("webshop", size="tiny"),
        default_run_dir("examples/tool_shop.py:make_shop"),
    }
    assert len(dirs) == 6
    assert str(default_run_dir("game24")) == "runs/quickstart-game24"
    assert str(default_run_dir("webshop", "local:smollm2", "tiny")) == (
        "runs/quickstart-webshop-local-smollm2-tiny"
    )
    assert str(default_run_dir("examples/tool_shop.py:make_shop")) == (
        "runs/quickstart-examples-tool_shop.py-make_shop"
    )
    assert build_parser().parse_args(["quickstart"]).run_dir is None  # computed per run


def test_quickstart_refuses_a_run_directory_another_environment_made(tmp_path, capsys) -> None:
    """Issue 17, finding 7: `armap quickstart --env webshop` reused Game of 24's run."""
    run = tmp_path / "run"
    assert _explore(run / "trajectories.jsonl") == 0
    capsys.readouterr()
    assert main(["quickstart", "--env", "webshop", "--size", "tiny", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert 'env: "game24" recorded, "webshop" asked' in err
    assert sorted(p.name for p in run.iterdir()) == [
        "trajectories.jsonl",
        "trajectories.jsonl.meta.json",
    ]


def test_a_quickstart_run_directory_is_checked_before_any_work(
    tmp_path, capsys, monkeypatch
) -> None:
    from armap_agents.pipeline import run as pipeline_run

    def interrupted(**kwargs) -> None:
        raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr(pipeline_run, "explore_trajectories", interrupted)
    assert main(["quickstart", "--size", "tiny", "--run-dir", str(run)]) == 130
    defines = read_manifest(run, "quickstart")["defines"]
    assert (defines["env"], defines["size"], defines["n"]) == ("game24", "tiny", 16)
    capsys.readouterr()
    for other, named in [
        (["--size", "full"], 'size: "tiny" recorded, "full" asked'),
        (["--size", "tiny", "--n", "4"], "n: 16 recorded, 4 asked"),
        (["--size", "tiny", "--env", "webshop"], 'env: "game24" recorded, "webshop" asked'),
    ]:
        assert main(["quickstart", *other, "--run-dir", str(run)]) == 2
        captured = capsys.readouterr()
        assert named in captured.err and "[1/4]" not in captured.out
    # the same quickstart resumes
    assert main(["quickstart", "--size", "tiny", "--run-dir", str(run)]) == 130


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory laid out as the quickstart's, with a small model trained in it (slow:
    the tests that use it are marked so)."""
    run = tmp_path_factory.mktemp("trained")
    assert (
        main(
            [
                "explore",
                "--max-tasks",
                "3",
                "--episodes-per-task",
                "2",
                "--out",
                str(run / "trajectories.jsonl"),
            ]
        )
        == 0
    )
    synthesis = ["synthesize", "--trajectories", str(run / "trajectories.jsonl")]
    assert main([*synthesis, "--out", str(run / "synthesis")]) == 0
    train = ["train", "--data", str(run / "synthesis"), "--out", str(run / "reward_model")]
    small = ["--epochs", "1", "--max-length", "64", "--max-train", "16", "--max-val", "8"]
    assert main([*train, *small, "--batch-size", "8"]) == 0
    return run


@pytest.mark.slow
def test_the_reward_model_records_what_made_its_data(trained) -> None:
    defines = read_manifest(trained / "reward_model", "reward_model")["defines"]
    assert defines["max_length"] == 64 and defines["epochs"] == 1
    assert defines["data"] == read_manifest(trained / "synthesis", "synthesis")["defines"]
    assert defines["data"]["trajectories"]["env"] == "game24"


@pytest.mark.slow
def test_quickstart_checks_a_reward_model_it_would_reuse(trained, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["quickstart", "--size", "tiny", "--run-dir", str(run)]) == 2
    captured = capsys.readouterr()
    assert "[3/4] train" in captured.out  # exploration resumed, synthesis was checked and reused
    assert "max_length: 64 recorded, 128 asked" in captured.err
    assert not (run / "evaluation").exists()


@pytest.mark.slow
def test_an_evaluation_resumes_only_with_the_same_model_and_settings(
    trained, tmp_path, capsys
) -> None:
    out = tmp_path / "evaluation"
    evaluate = ["evaluate", "--model", str(trained / "reward_model"), "--out", str(out)]
    small = ["--n", "2", "--max-tasks", "1", "--planners", "best_of_n"]
    assert main([*evaluate, *small, "--max-steps", "4"]) == 0
    defines = read_manifest(out, "evaluation")["defines"]
    assert defines["model"]["data"]["env"] == "game24" and defines["n"] == 2
    capsys.readouterr()
    assert main([*evaluate, *small, "--max-steps", "5"]) == 2
    assert "max_steps: 4 recorded, 5 asked" in capsys.readouterr().err
    # a model trained on one environment, evaluated on another: refused, naming both
    other = ["--out", str(tmp_path / "webshop"), "--env", "webshop", "--max-steps", "2"]
    assert main([*evaluate[:3], *other, *small]) == 2
    err = capsys.readouterr().err
    assert "--env 'webshop' contradicts the reward model" in err and "'game24'" in err
    assert not (tmp_path / "webshop").exists()
