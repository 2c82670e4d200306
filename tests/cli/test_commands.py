"""The `armap` command: help, clear errors, crash-safe exploration, quickstart end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from armap_agents._jsonl import read_jsonl
from armap_agents.cli import main
from armap_agents.types import Trajectory

ARMAP = [sys.executable, "-m", "armap_agents.cli"]


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("explore", "synthesize", "train", "plan", "evaluate", "quickstart"):
        assert command in out


def test_errors_are_clear_not_tracebacks(tmp_path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "rm")]) == 2
    assert "no training triplets" in capsys.readouterr().err
    assert main(["explore", "--env", "nope", "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "unknown environment 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "not a saved reward model" in capsys.readouterr().err


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_killing_explore_midway_loses_and_duplicates_nothing(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    explore_args = ["explore", "--max-tasks", "1000", "--episodes-per-task", "4", "--seed", "3"]
    args = [*ARMAP, *explore_args, "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _lines(out) < 100 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _lines(out)
    assert 100 <= partial < 4000, "the kill did not land midway"
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = read_jsonl(out, Trajectory)
    ids = [t.episode_id for t in resumed]
    assert len(ids) == 4000 == len(set(ids))
    # identical to an uninterrupted run
    clean = tmp_path / "clean.jsonl"
    assert main([*explore_args, "--out", str(clean)]) == 0
    by_id = {t.episode_id: t for t in read_jsonl(clean, Trajectory)}
    assert all(by_id[t.episode_id] == t for t in resumed)


@pytest.mark.slow
def test_quickstart_end_to_end_at_reduced_size(
    game24_quickstart, tmp_path, capsys, monkeypatch
) -> None:
    import shutil

    from armap_agents.pipeline import RunLayout, run_pipeline
    from armap_agents.pipeline import run as pipeline_run

    finished, out = game24_quickstart
    run = tmp_path / "run"
    shutil.copytree(finished, run)  # this test resumes it: a copy of the session's run
    assert "| ARMAP-B (N=16) |" in out and "| oracle Best-of-16 |" in out
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["tasks"] == 5
    assert [r["method"] for r in report["rows"]] == [
        "Sampling",
        "Greedy",
        "ARMAP-B (N=16)",
        "ARMAP-R",
        "ARMAP-M",
        "oracle Best-of-16",
    ]
    for path in (
        "trajectories.jsonl",
        "synthesis/triplets.train.jsonl",
        "reward_model/armap_reward.json",
        "reward_model/training_curve.png",
        "evaluation/results.png",
        "evaluation/report.md",
    ):
        assert (run / path).is_file(), path
    # every stage resumes: a second run redoes nothing and prints the same table
    assert main(["quickstart", "--size", "tiny", "--run-dir", str(run)]) == 0
    again = capsys.readouterr().out
    assert "already done" in again
    table = lambda text: [ln for ln in text.splitlines() if ln.startswith("|")]  # noqa: E731
    assert table(again) == table(out)
    # the CLI's run directory is run_pipeline's (RunLayout): the same run, no new work
    layout = RunLayout(run)
    for path in (layout.train_result, layout.outcomes, layout.report_json, layout.plot):
        assert path.is_file(), path

    def no_new_work(**kwargs):
        raise AssertionError("a stage that was done ran again")

    monkeypatch.setattr(pipeline_run, "synthesize_triplets", no_new_work)
    monkeypatch.setattr(pipeline_run, "train_reward_model", no_new_work)
    said: list[str] = []
    result = run_pipeline(run, size="tiny", echo=said.append)
    assert result.layout == layout and result.report.tasks == 5
    assert any(line.startswith("explored 0 new episodes") for line in said)
    assert result.report.to_markdown() + "\n" == layout.report.read_text()
    # plan with the trained model, by each planner
    plan = ["plan", "--model", str(run / "reward_model"), "--task", "950"]
    assert main([*plan, "--n", "4"]) == 0
    assert "picked candidate" in capsys.readouterr().out
    tree = tmp_path / "tree.html"
    assert main([*plan, "--planner", "mcts", "--tree-html", str(tree)]) == 0
    assert "search tree:" in capsys.readouterr().out and tree.stat().st_size > 1000
    paper = ["--no-widen", "--no-normalize-values", "--max-policy-calls", "9"]
    assert main([*plan, "--planner", "mcts", *paper]) == 0
    assert "search tree:" in capsys.readouterr().out
    assert main([*plan, "--planner", "reflexion", "--memory", str(tmp_path / "mem")]) == 0
    assert "reflexion:" in capsys.readouterr().out


def _checkpoints(path: Path) -> int:
    """How many checkpoints the search has committed (read-only: never creates the file)."""
    import sqlite3

    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        try:
            return db.execute("select count(*) from checkpoints").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _trajectory_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(("Observation:", "Action:"))]


@pytest.mark.slow
def test_killing_mcts_midway_resumes_to_the_same_answer(tmp_path) -> None:
    from armap_agents.reward.model import RewardModel, RewardModelConfig

    model = tmp_path / "rm"
    RewardModel.create(RewardModelConfig(max_length=64)).save(model)
    plan = [
        *ARMAP,
        "plan",
        "--planner",
        "mcts",
        "--model",
        str(model),
        "--env",  # a model saved without a manifest does not say its environment
        "game24",
        "--task",
        "950",
        "--iterations",
        "2000",
        "--max-policy-calls",
        "100000",
    ]
    reference = subprocess.run(plan, check=True, capture_output=True, text=True).stdout
    checkpoint = tmp_path / "mcts.sqlite"
    proc = subprocess.Popen(
        [*plan, "--checkpoint", str(checkpoint)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while _checkpoints(checkpoint) < 20 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    killed_at = _checkpoints(checkpoint)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the search finished before it could be killed"
    resumed = subprocess.run(
        [*plan, "--checkpoint", str(checkpoint)], check=True, capture_output=True, text=True
    ).stdout
    assert "resumed the interrupted run" in resumed, (killed_at, resumed[-300:])
    assert _trajectory_lines(resumed) == _trajectory_lines(reference)
    assert resumed.splitlines()[-1] == reference.splitlines()[-1]  # same call counts, same verdict


def test_env_options_parse_numbers_strings_and_repeated_keys() -> None:
    from armap_agents.cli import _env_options

    options = _env_options(
        ["tasks=boil", "tasks=melt", "jvm-heap=1g", "num_products=500", "data_dir=/d/alf"]
    )
    assert options == {
        "tasks": ["boil", "melt"],
        "jvm_heap": "1g",
        "num_products": 500,
        "data_dir": "/d/alf",
    }
    assert main(["explore", "--out", "x.jsonl", "--env-option", "no-equals-sign"]) == 2


BROKEN_ENV = '''
from armap_agents.environments.game24 import Game24Env


class BrokenAtReset(Game24Env):
    """A test environment whose every episode fails at reset."""

    def reset(self, task_id):
        raise RuntimeError("the simulator is down")
'''


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err  # progress bars may come before it
    errors = [line for line in err.splitlines() if line.startswith("armap ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_user_errors_are_one_line_on_stderr_with_exit_2(tmp_path, capsys, monkeypatch) -> None:
    out = str(tmp_path / "t.jsonl")
    # an option the environment does not take (was: TypeError)
    assert main(["explore", "--out", out, "--env-option", "colour=red"]) == 2
    err = _one_line_error(capsys)
    assert "unexpected keyword argument 'colour'" in err and "options are" in err
    # a value out of range: pydantic's 4-line error on one line
    assert main(["explore", "--out", out, "--episodes-per-task", "0"]) == 2
    assert "episodes_per_task: Input should be greater than or equal to 1" in _one_line_error(
        capsys
    )
    # a chat model without its API key
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["explore", "--out", out, "--policy", "openai:gpt-4o-mini"]) == 2
    assert "needs an API key: set OPENAI_API_KEY" in _one_line_error(capsys)
    # an unknown split
    assert main(["explore", "--out", out, "--split", "nope"]) == 2
    assert "unknown split 'nope'" in _one_line_error(capsys)
    assert not Path(out).exists()


def test_plan_on_an_unknown_task_is_an_error_not_a_pick(capsys) -> None:
    plan = ["plan", "--env", "game24", "--selection", "random", "--n", "2", "--task", "99999"]
    assert main(plan) == 2
    assert "no task '99999' in game24" in _one_line_error(capsys)
    assert capsys.readouterr().out == ""  # no candidate printed


def test_plan_refuses_a_checkpoint_that_is_not_a_database(tmp_path, capsys) -> None:
    from armap_agents.cli import _sqlite_checkpointer
    from armap_agents.errors import CheckpointError

    garbage = tmp_path / "run.sqlite"
    garbage.write_bytes(b"not a database, but a user's file\n" * 100)
    before = garbage.read_bytes()
    refused = pytest.raises(CheckpointError, match="is not a LangGraph SQLite checkpoint")
    with refused, _sqlite_checkpointer(garbage):
        pass
    assert garbage.read_bytes() == before
    with _sqlite_checkpointer(tmp_path / "new.sqlite") as saver:  # a new file is fine
        assert saver is not None
    # a refused plan makes no checkpoint file: the corrected rerun starts clean
    checkpoint = tmp_path / "refused.sqlite"
    plan = ["plan", "--planner", "mcts", "--env", "game24", "--task", "1"]
    assert main([*plan, "--iterations", "0", "--checkpoint", str(checkpoint)]) == 2
    assert "iterations" in capsys.readouterr().err and not checkpoint.exists()


def test_explore_where_every_episode_failed_exits_non_zero(tmp_path, capsys) -> None:
    env_file = tmp_path / "broken_env.py"
    env_file.write_text(BROKEN_ENV)
    out = tmp_path / "t.jsonl"
    args = ["explore", "--env", f"{env_file}:BrokenAtReset", "--out", str(out)]
    assert main([*args, "--max-tasks", "2", "--episodes-per-task", "1"]) == 2
    err = _one_line_error(capsys)
    assert "all 2 episodes of this run failed" in err and "failures.jsonl" in err


def test_internal_errors_keep_their_traceback(monkeypatch, tmp_path) -> None:
    import armap_agents.cli as cli

    def buggy(args):
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(cli, "run_explore", buggy)
    with pytest.raises(KeyError, match="a bug"):
        main(["explore", "--out", str(tmp_path / "t.jsonl")])
