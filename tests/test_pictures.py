"""The pictures: training curve and results PNGs, and the MCTS tree page from `armap plan`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from armap_agents.evaluation import EvaluationReport, MethodRow, plot_report
from armap_agents.reward.train import EpochMetrics, TrainResult, plot_training_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 5000


@pytest.mark.parametrize("with_val", [True, False])
def test_training_curve_is_a_png(tmp_path, with_val) -> None:
    history = [
        EpochMetrics(
            epoch=e,
            train_loss=0.7 - 0.1 * e,
            val_accuracy=0.6 + 0.1 * e if with_val else None,
            val_margin=0.2 * e if with_val else None,
            seconds=1.0,
        )
        for e in (1, 2, 3)
    ]
    result = TrainResult(
        history=history,
        best_epoch=3,
        best_val_accuracy=history[-1].val_accuracy,
        step_losses=[0.7 * 0.99**i for i in range(90)],
        train_examples=2880,
        val_examples=500 if with_val else 0,
    )
    assert _is_png(plot_training_curve(result, tmp_path / "curve.png"))


def test_results_plot_is_a_png(tmp_path) -> None:
    rows = [
        MethodRow(method=m, success_rate=s, mean_score=s + 0.1, policy_calls=c)
        for m, s, c in [
            ("Sampling", 0.05, 30),
            ("Greedy", 0.06, 30),
            ("ARMAP-B (N=16)", 0.2, 480),
            ("ARMAP-R", 0.15, 470),
            ("ARMAP-M", 0.25, 460),
            ("oracle Best-of-16", 0.3, 480),
        ]
    ]
    report = EvaluationReport(
        env="game24", split="test", tasks=10, n=16, rows=rows, reward_model_val_accuracy=0.83
    )
    assert _is_png(plot_report(report, tmp_path / "results.png"))


@pytest.mark.slow
def test_plan_with_mcts_writes_the_tree_page_and_prints_a_link(tmp_path, capsys) -> None:
    from armap_agents.cli import main
    from armap_agents.reward.model import RewardModel, RewardModelConfig

    model = RewardModel.create(RewardModelConfig(max_length=64)).save(tmp_path / "rm")
    checkpoint = tmp_path / "search.sqlite"
    args = ["plan", "--planner", "mcts", "--model", str(model), "--env", "game24"]
    args += ["--task", "950"]
    small = ["--iterations", "6", "--max-policy-calls", "12"]
    assert main([*args, *small, "--checkpoint", str(checkpoint)]) == 0
    page = tmp_path / "search.tree.html"  # by default, next to the checkpoint
    assert f"search tree: {page.resolve().as_uri()}" in capsys.readouterr().out
    text = page.read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert '"chosen_path"' in text


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("", "agg"),  # nothing chosen: Agg, which needs no screen
        ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot", "svg"),
    ],
)
def test_plots_keep_a_backend_the_user_chose(setup, expected) -> None:
    """A notebook picks its inline backend before training; our plots must not switch it to
    Agg, or `plt.show()` shows nothing afterwards."""
    code = (
        f"{setup}\nimport matplotlib\nfrom armap_agents._plotting import pyplot\n"
        "pyplot()\nprint(matplotlib.get_backend().lower())"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == expected
