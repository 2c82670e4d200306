"""What a user wrapping their own environment ran into (issue 18, item 6): defaults in
``--help``, sibling imports for ``file.py:Class``, relabeler options and ARMAP-R's threshold on
the command line, and warnings for tiny data sets and trajectories longer than the window."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

import pytest

from armap_agents import _builders as build
from armap_agents._import_path import load_import_path
from armap_agents.cli import build_parser, main
from armap_agents.environments.outcome import OutcomeRelabeler
from armap_agents.errors import ConfigError
from armap_agents.reward.card import data_warnings, render_model_card
from armap_agents.reward.model import RewardModel, RewardModelConfig
from armap_agents.synthesizers import relabeler_options
from armap_agents.testing import ConstantReward
from armap_agents.types import Step, Trajectory, Triplet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GUESS = f"{EXAMPLES / 'guess_number.py'}:GuessNumber"


# -- defaults in --help -----------------------------------------------------------------------
def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _shown(default) -> str:
    return ",".join(map(str, default)) if isinstance(default, list | tuple) else str(default)


def test_help_shows_every_default_and_every_option_has_help(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # one line per option: no wrapping inside a default
    monkeypatch.setenv("ARMAP_RM_TOKEN", "s3cret-token")
    for name, sub in _subcommands().items():
        text = sub.format_help()
        for action in sub._actions:
            if not action.option_strings or action.default == argparse.SUPPRESS:
                continue
            assert action.help, f"armap {name} {action.option_strings[0]} has no help text"
            default = action.default
            if default is None or default is False or default == []:
                assert "(default: None)" not in text and "(default: [])" not in text
            elif "default" not in action.help:
                assert f"(default: {_shown(default)})" in text, (name, action.option_strings)
        # the reward service's token default is said in words, never shown
        assert "s3cret-token" not in text
    evaluate = " ".join(_subcommands()["evaluate"].format_help().split())
    for option, default in [
        ("--n N", "16"),
        ("--planners A,B", "best_of_n,reflexion,mcts"),
        ("--split SPLIT", "test"),
    ]:
        help_text = evaluate.split(f"{option} ", 1)[1].split(" --")[0]
        assert f"(default: {default})" in help_text, help_text
    # ARMAP-R's threshold defaults to the reward model's calibrated one: said in words
    threshold = evaluate.split("--threshold THRESHOLD ", 1)[1].split(" --")[0]
    assert "calibrated" in threshold and "(default: None)" not in threshold, threshold


# -- file.py:Class imports the modules beside it ----------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_import_path_finds_its_sibling_modules_and_leaves_sys_path_alone(
    tmp_path,
) -> None:
    helper, package = f"friction_helpers_{id(tmp_path)}", f"friction_pkg_{id(tmp_path)}"
    _write(tmp_path / "envs" / f"{helper}.py", "SCALE = 3\n")
    _write(tmp_path / "envs" / package / "__init__.py", f"from {package}.parts import OFFSET\n")
    _write(tmp_path / "envs" / package / "parts.py", "OFFSET = 4\n")
    late = _write(tmp_path / "envs" / f"friction_late_{id(tmp_path)}.py", "X = 1\n").stem
    env_file = _write(
        tmp_path / "envs" / "my_env.py",
        f"from {helper} import SCALE\nfrom {package} import OFFSET\n\n"
        "class MyEnv:\n    value = SCALE * 10 + OFFSET\n",
    )
    path_before, meta_before = list(sys.path), list(sys.meta_path)
    try:
        assert load_import_path(f"{env_file}:MyEnv").value == 34
        assert sys.path == path_before and sys.meta_path == meta_before
        # a missing sibling is a clear error, and the finder is gone after it too
        broken = _write(tmp_path / "other" / "env.py", "import friction_no_such_sibling\n")
        with pytest.raises(ConfigError, match="friction_no_such_sibling"):
            load_import_path(f"{broken}:Env")
        assert sys.path == path_before and sys.meta_path == meta_before
        # the directory was importable only while the file loaded
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(late)
    finally:
        for name in [m for m in sys.modules if m.startswith((helper, package))]:
            del sys.modules[name]


# -- relabeler options ------------------------------------------------------------------------
def test_relabel_options_are_checked_and_converted() -> None:
    spec = "armap_agents.environments.outcome:OutcomeRelabeler"
    synthesizer = build.synthesizer(
        "relabel", "game24", relabeler=spec, relabel_options={"truncated": "no", "prefixes": 0}
    )
    relabeler = synthesizer.relabeler
    assert isinstance(relabeler, OutcomeRelabeler)
    assert relabeler.truncated is False and relabeler.prefixes is False
    with pytest.raises(ConfigError, match="has no option 'truncate'; its options are .*truncated"):
        build.synthesizer("relabel", "game24", relabeler=spec, relabel_options={"truncate": 0})
    with pytest.raises(ConfigError, match="truncated='maybe': .*valid boolean"):
        build.synthesizer(
            "relabel", "game24", relabeler=spec, relabel_options={"truncated": "maybe"}
        )
    with pytest.raises(ConfigError, match="negatives_per_positive"):
        build.synthesizer(
            "relabel", "game24", relabeler=spec, relabel_options={"negatives_per_positive": 0}
        )
    with pytest.raises(ConfigError, match="applies to --synthesizer relabel only"):
        build.synthesizer("openai:gpt-4o-mini", "game24", relabel_options={"truncated": False})

    class Loose:  # a relabeler taking **options gets any key, as given
        def __init__(self, **options) -> None:
            self.options = options

    assert relabeler_options(Loose, {"anything": "1"}) == {"anything": "1"}


def _sources(out: Path) -> set[str]:
    from armap_agents import read_jsonl

    triplets = read_jsonl(out / "triplets.train.jsonl", Triplet)
    triplets += read_jsonl(out / "triplets.val.jsonl", Triplet)
    return {t.source for t in triplets}


def test_relabel_option_turns_off_truncated_pairs_from_the_cli(tmp_path, capsys, caplog) -> None:
    trajectories = tmp_path / "t.jsonl"
    common = ["--env", GUESS, "--env-option", "high=8"]
    argv = ["explore", *common, "--out", str(trajectories), "--max-tasks", "4"]
    assert main([*argv, "--episodes-per-task", "4"]) == 0
    synth = ["synthesize", *common, "--trajectories", str(trajectories)]
    assert main([*synth, "--out", str(tmp_path / "all")]) == 0
    assert "truncated" in _sources(tmp_path / "all")  # the generic relabeler's default
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        off = [*synth, "--out", str(tmp_path / "off"), "--relabel-option", "truncated=false"]
        assert main(off) == 0
    assert _sources(tmp_path / "off") and "truncated" not in _sources(tmp_path / "off")
    manifest = json.loads((tmp_path / "off" / "meta.json").read_text())
    assert manifest["defines"]["relabel_options"] == {"truncated": False}
    # a few tasks make a tiny set: the synthesis says so, with the numbers and what to do
    summary = json.loads((tmp_path / "off" / "synthesis_summary.json").read_text())
    said = caplog.text
    assert f"only {summary['train']} training triplets" in said and "explore more" in said
    if summary["val"] == 0:
        assert "no validation triplets" in said and "--val-fraction" in said
    # a wrong key: one line naming the options the relabeler takes, exit status 2
    capsys.readouterr()
    wrong = [*synth, "--out", str(tmp_path / "x"), "--relabel-option", "truncate=false"]
    assert main(wrong) == 2
    err = capsys.readouterr().err
    assert "has no option 'truncate'" in err and "its options are" in err
    parsed = build_parser().parse_args(["quickstart", "--relabel-option", "truncated=false"])
    assert parsed.relabel_option == [("truncated", False)]


# -- ARMAP-R's threshold ----------------------------------------------------------------------
@pytest.fixture
def constant_reward(monkeypatch) -> None:
    """Every reward model the CLI loads scores every trajectory 0.5."""
    monkeypatch.setattr(RewardModel, "load", classmethod(lambda cls, path: ConstantReward(0.5)))


@pytest.mark.parametrize(("threshold", "attempts"), [("0.4", 1), ("0.6", 3)])
def test_threshold_reaches_reflexion_in_plan_and_evaluate(
    tmp_path, capsys, constant_reward, threshold, attempts
) -> None:
    rm = str(tmp_path / "rm")
    # the constant model has no manifest to say its environment
    plan = ["plan", "--planner", "reflexion", "--model", rm, "--env", "game24", "--task", "1"]
    plan.extend(["--max-steps", "3"])
    assert main([*plan, "--trials", "3", "--threshold", threshold]) == 0
    assert f"{attempts} reward-model calls" in capsys.readouterr().out
    out = tmp_path / "eval"
    evaluate = ["evaluate", "--model", rm, "--out", str(out), "--env", "game24"]
    evaluate.extend(["--planners", "reflexion"])
    argv = [*evaluate, "--n", "3", "--max-tasks", "1", "--max-steps", "3"]
    assert main([*argv, "--threshold", threshold]) == 0
    rows = {r["method"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert rows["ARMAP-R"]["reward_model_calls"] == attempts  # ARMAP-R gets N = 3 trials
    manifest = json.loads((out / "meta.json").read_text())
    assert manifest["defines"]["reflexion_threshold"] == float(threshold)


# -- tiny sets and long trajectories: warnings and the model card -----------------------------
def test_data_warnings_give_the_numbers_and_what_to_do() -> None:
    assert data_warnings(5000, 500, at_window=10, pairs=10000, max_length=512) == []
    tiny = data_warnings(2, 0)
    assert "only 2 training triplets" in tiny[0] and "armap explore" in tiny[0]
    assert "no validation triplets" in tiny[1] and "--val-fraction" in tiny[1]
    assert "±16%" in data_warnings(500, 10)[0]
    (long,) = data_warnings(500, 100, at_window=300, pairs=1000, max_length=128)
    assert "300 of 1,000" in long and "(30%)" in long and "128-token window" in long


def test_the_model_card_lists_the_warnings() -> None:
    training = {
        "history": [{"epoch": 1, "train_loss": 0.6, "seconds": 1.0}],
        "best_epoch": 1,
        "train_examples": 2,
        "val_examples": 0,
        "pairs_at_window": 3,
    }
    card = render_model_card(RewardModelConfig(max_length=128), {}, training)
    warnings = card.split("## Warnings")[1].split("##")[0]
    assert "* Only 2 training triplets" in warnings
    assert "* No validation triplets" in warnings
    assert "3 of 4 training (intent, trajectory) pairs (75%)" in warnings
    big = {**training, "train_examples": 1500, "val_examples": 500, "pairs_at_window": 0}
    assert "## Warnings" not in render_model_card(RewardModelConfig(), {}, big)


def _triplet(task: str, steps: int) -> Triplet:
    long = Trajectory(
        task_id=task,
        intent="reach the end",
        initial_observation="You stand at the start. " * 4,
        steps=[Step(action=f"walk {i}", observation="A long corridor. " * 6) for i in range(steps)],
    )
    short = long.model_copy(update={"steps": long.steps[:1], "episode_id": "short"})
    return Triplet(intent="reach the end", positive=long, negative=short, task_id=task)


def test_training_warns_on_a_tiny_set_and_on_pairs_over_the_window(tmp_path, caplog) -> None:
    from armap_agents.reward.train import RewardTrainer, RewardTrainerConfig

    model = RewardModel.create(RewardModelConfig(max_length=32, lora_r=4))
    with caplog.at_level(logging.WARNING, logger="armap_agents.reward.train"):
        result = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=2)).train(
            [_triplet("a", 6), _triplet("b", 6)], [], output_dir=tmp_path, progress=False
        )
    assert result.pairs_at_window is not None and result.pairs_at_window >= 2
    said = caplog.text
    assert "only 2 training triplets" in said and "no validation triplets" in said
    assert "32-token window" in said
    card = (tmp_path / "README.md").read_text()
    assert "## Warnings" in card and "32-token window" in card
