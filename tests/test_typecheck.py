"""The type checker: ``mypy`` over ``armap_agents/`` (settings in ``[tool.mypy]`` of
pyproject.toml) is clean, and a scorer of the user's own is accepted by every planner."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# a user's own scorer: any class with score(intent, trajectories) -> list[float]
CUSTOM_SCORER = """
from collections.abc import Sequence

from armap_agents import BestOfNConfig, Game24Env, RandomPolicy, Trajectory, build_planner
from armap_agents.graphs.best_of_n import build_best_of_n_graph
from armap_agents.graphs.mcts import build_mcts_graph
from armap_agents.graphs.reflexion import build_reflexion_graph
from armap_agents.reward import LLMJudge, RemoteRewardModel, RewardModel, RewardScorer
from armap_agents.testing import ConstantReward, FunctionReward


class LengthPenalty:
    def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]:
        return [-float(len(t.steps)) for t in trajectories]


scorer: RewardScorer = LengthPenalty()
build_planner("best_of_n", RandomPolicy(), Game24Env, LengthPenalty(), BestOfNConfig(n=4))
build_best_of_n_graph(RandomPolicy(), Game24Env, LengthPenalty())
build_reflexion_graph(RandomPolicy(), Game24Env, LengthPenalty())
build_mcts_graph(RandomPolicy(), Game24Env, LengthPenalty())
shipped: list[RewardScorer] = [ConstantReward(1.0), FunctionReward(lambda intent, t: 0.0)]


def any_scorer(model: RewardModel, remote: RemoteRewardModel, judge: LLMJudge) -> None:
    for each in (model, remote, judge):
        build_best_of_n_graph(RandomPolicy(), Game24Env, each)
"""

# not a scorer: it scores one trajectory, not a batch
NOT_A_SCORER = """
from armap_agents import Game24Env, RandomPolicy, Trajectory
from armap_agents.graphs.best_of_n import build_best_of_n_graph


class OneAtATime:
    def score(self, intent: str, trajectory: Trajectory) -> float:
        return 0.0


build_best_of_n_graph(RandomPolicy(), Game24Env, OneAtATime())  # line 11
"""


@pytest.mark.slow  # about a minute on 2 cores without mypy's cache, seconds with it
@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it comes with the dev extra: pip install -e '.[dev]')",
)
def test_mypy_finds_no_error_in_the_package_and_checks_scorers(tmp_path) -> None:
    (tmp_path / "custom_scorer.py").write_text(textwrap.dedent(CUSTOM_SCORER))
    (tmp_path / "not_a_scorer.py").write_text(textwrap.dedent(NOT_A_SCORER))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "armap_agents", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    # (by file name: mypy's cache may repeat the path of an earlier run's identical file)
    expected = [e for e in errors if "not_a_scorer.py:11: error:" in e]
    unexpected = [e for e in errors if e not in expected]
    assert not unexpected, result.stdout + result.stderr
    assert len(expected) == 1 and "OneAtATime" in expected[0], result.stdout + result.stderr
