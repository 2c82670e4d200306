"""Environments declare their own defaults (horizon, reward-model window, quickstart sizes);
commands use them, take the environment from their inputs' manifests, refuse a contradicting
one, and write nothing before their arguments are checked. The stages take objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from armap_agents import ConfigError
from armap_agents._import_path import load_import_path
from armap_agents.cli import main
from armap_agents.environments.defaults import EnvironmentDefaults, environment_defaults
from armap_agents.environments.registry import default_registry
from armap_agents.pipeline import evaluate_and_report, explore_trajectories, quickstart_plan
from armap_agents.testing import FunctionReward
from armap_agents.types import Trajectory

CORRIDOR = f"{Path(__file__).resolve().parents[1] / 'support' / 'corridor_env.py'}:Corridor"
Corridor = load_import_path(CORRIDOR, "environment")
LENGTH = Corridor.defaults.max_steps  # 14
PIPELINE = Path(__file__).resolve().parents[2] / "armap_agents" / "pipeline"


def _trajectories(path: Path) -> list[Trajectory]:
    return [Trajectory.model_validate_json(line) for line in path.read_text().splitlines()]


def test_built_in_environments_declare_their_horizons_and_windows() -> None:
    registry = default_registry()
    assert registry.defaults("game24").max_steps == 10
    assert registry.defaults("game24").max_length == 128
    assert registry.defaults("webshop").max_steps == 15
    assert registry.defaults(CORRIDOR).max_steps == LENGTH
    assert environment_defaults(object()) == EnvironmentDefaults()  # declares nothing


def test_a_wrong_declaration_is_a_clear_error() -> None:
    class Odd:
        defaults = 14

    with pytest.raises(ConfigError, match="make it an EnvironmentDefaults"):
        environment_defaults(Odd)


def test_quickstart_sizes_come_from_the_environment() -> None:
    plan = quickstart_plan(CORRIDOR, "tiny", llm=False)
    assert (plan.train_tasks, plan.n, plan.max_steps, plan.max_length) == (4, 2, LENGTH, 256)
    generic = quickstart_plan(EnvironmentDefaults(), "full", llm=False)
    assert generic.max_steps == EnvironmentDefaults().max_steps
    assert quickstart_plan("game24", "tiny", llm=True).planners == ("best_of_n",)
    # no environment is special-cased in the pipeline: each declares its own
    for module in PIPELINE.glob("*.py"):
        assert 'env == "' not in module.read_text(), module


@pytest.mark.slow
def test_a_declared_horizon_holds_from_exploration_to_evaluation(tmp_path, capsys) -> None:
    """The corridor takes 14 steps: explored, trained and evaluated with no --max-steps."""
    run = tmp_path
    explore = ["explore", "--env", CORRIDOR, "--out", str(run / "t.jsonl")]
    assert main([*explore, "--episodes-per-task", "3"]) == 0
    explored = _trajectories(run / "t.jsonl")
    assert max(len(t.steps) for t in explored) == LENGTH
    meta = json.loads((run / "t.jsonl.meta.json").read_text())
    assert meta["defines"]["max_steps"] == LENGTH
    # the synthesis and the training read the environment from the manifests
    assert (
        main(["synthesize", "--trajectories", str(run / "t.jsonl"), "--out", str(run / "s")]) == 0
    )
    train = ["train", "--data", str(run / "s"), "--out", str(run / "rm"), "--epochs", "1"]
    assert main(train) == 0
    model = json.loads((run / "rm" / "armap_reward.json").read_text())
    assert model["max_length"] == 256  # the window the corridor declared
    capsys.readouterr()
    # a reward model of the corridor planning in Game of 24: refused, naming both
    wrong = ["evaluate", "--model", str(run / "rm"), "--out", str(run / "wrong"), "--env", "game24"]
    assert main(wrong) == 2
    err = capsys.readouterr().err
    assert "'game24'" in err and "corridor_env.py:Corridor'" in err
    assert not (run / "wrong").exists()
    # a rejected setting leaves no trace, and the corrected rerun is not refused
    evaluate = ["evaluate", "--model", str(run / "rm"), "--out", str(run / "e"), "--env", CORRIDOR]
    assert main([*evaluate, "--n", "0"]) == 2
    assert not (run / "e").exists()
    assert main([*evaluate, "--n", "2", "--max-tasks", "2", "--planners", "best_of_n"]) == 0
    assert json.loads((run / "e" / "meta.json").read_text())["defines"]["max_steps"] == LENGTH


def test_synthesis_refuses_trajectories_without_a_manifest_unless_adopted(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    explore_trajectories(out=path, env="game24", max_tasks=2, episodes_per_task=2, echo=None)
    (tmp_path / "t.jsonl.meta.json").unlink()
    synthesize = ["synthesize", "--trajectories", str(path), "--out", str(tmp_path / "s")]
    assert main(synthesize) == 2
    assert "--adopt" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main([*synthesize, "--adopt"]) == 2
    assert "give --env" in capsys.readouterr().err
    assert main([*synthesize, "--adopt", "--env", "game24"]) == 0


def test_evaluate_and_report_takes_a_scorer_object_and_a_factory(tmp_path) -> None:
    """A user's own scorer and environment factory reach the evaluation (no model directory)."""
    scorer = FunctionReward(lambda intent, trajectory: float(len(trajectory.steps)))
    with pytest.raises(ConfigError, match="give --env"):
        evaluate_and_report(model=scorer, out=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    report = evaluate_and_report(
        model=scorer,
        out=tmp_path / "e",
        env=Corridor,
        split="test",
        max_tasks=2,
        n=3,
        planners=["best_of_n"],
    )
    assert report.env == "corridor" and report.tasks == 2
    meta = json.loads((tmp_path / "e" / "meta.json").read_text())
    assert meta["defines"]["max_steps"] == LENGTH
    assert meta["defines"]["model_object"].endswith("FunctionReward")


def test_a_misspelt_stage_setting_is_a_config_error_before_any_write(tmp_path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'episodes_per_task'"):
        explore_trajectories(out=tmp_path / "t.jsonl", episodes_per_tasks=2, echo=None)
    assert not (tmp_path / "t.jsonl").exists()
