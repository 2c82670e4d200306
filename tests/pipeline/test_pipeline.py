"""The pipeline module: one run-directory layout, the quickstart sizes, one planner registry
and evaluate_planners driven by planner configs (run_pipeline end to end and resumed on the
CLI's run directory: tests/cli/test_commands.py's quickstart test)."""

from __future__ import annotations

import pytest

from armap_agents.environments.defaults import DEFAULT_PLANNERS
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import ConfigError
from armap_agents.evaluation import evaluate_planners
from armap_agents.graphs.best_of_n import BestOfNConfig
from armap_agents.graphs.mcts import MCTSConfig
from armap_agents.pipeline import RunLayout, quickstart_plan
from armap_agents.planners import PLANNER_NAMES, PLANNERS, build_planner
from armap_agents.policies import RandomPolicy
from armap_agents.testing import ConstantReward


def test_the_layout_names_the_files_each_stage_writes(tmp_path) -> None:
    from armap_agents.graphs import synthesize
    from armap_agents.reward.model import TRAINING_FILE

    layout = RunLayout(str(tmp_path))
    assert layout.root == tmp_path and layout == RunLayout(tmp_path)
    assert layout.trajectories == tmp_path / "trajectories.jsonl"
    assert layout.train_triplets == tmp_path / "synthesis" / synthesize.TRAIN_FILE
    assert layout.val_triplets == tmp_path / "synthesis" / synthesize.VAL_FILE
    # the trainer writes this name itself: the layout must agree with it
    assert layout.train_result == tmp_path / "reward_model" / TRAINING_FILE
    assert layout.report == tmp_path / "evaluation" / "report.md"
    assert {layout.outcomes.parent, layout.plot.parent, layout.report_json.parent} == {
        layout.evaluation
    }
    with pytest.raises(AttributeError):
        layout.root = tmp_path / "elsewhere"  # type: ignore[misc]


def test_quickstart_plan_overrides_and_refuses_unknown_sizes() -> None:
    plan = quickstart_plan("game24", "tiny", llm=False, n=2, max_steps=4)
    assert (plan.n, plan.max_steps, plan.planners) == (2, 4, DEFAULT_PLANNERS)
    # the quickstart's planners are the registry's first ones, in its order (the step-level
    # planners come after them and are not run by a quickstart)
    assert PLANNER_NAMES[: len(DEFAULT_PLANNERS)] == DEFAULT_PLANNERS
    assert quickstart_plan("game24", "tiny", llm=True).planners == ("best_of_n",)
    with pytest.raises(ConfigError, match="unknown quickstart size"):
        quickstart_plan("game24", "huge", llm=False)


def test_one_planner_registry() -> None:
    assert PLANNER_NAMES == ("best_of_n", "reflexion", "mcts", "beam_search", "live_rerank")
    assert [PLANNERS[p].row_label(8) for p in PLANNER_NAMES] == [
        "ARMAP-B (N=8)",
        "ARMAP-R",
        "ARMAP-M",
        "ARMAP-Beam",
        "ARMAP-Live",
    ]
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        build_planner("mcts", RandomPolicy(), Game24Env, ConstantReward(), {"iteration": 5})


def _evaluate(planners, reward, outcomes_path=None):
    return evaluate_planners(
        RandomPolicy(),
        Game24Env,
        reward,
        planners,
        task_ids=["1", "2"],
        outcomes_path=outcomes_path,
        progress=False,
    )


def test_evaluate_planners_takes_planner_configs(tmp_path) -> None:
    configs = {
        "mcts": MCTSConfig(iterations=2, max_policy_calls=4, max_steps=3),
        "best_of_n": BestOfNConfig(n=2, max_steps=3),
        "reflexion": {"threshold": 100.0},  # never satisfied: every trial runs
    }
    report = _evaluate(configs, ConstantReward(), tmp_path / "outcomes.jsonl")
    assert [r.method for r in report.rows] == [
        "Sampling",
        "Greedy",
        "ARMAP-B (N=2)",
        "ARMAP-R",
        "ARMAP-M",
        "oracle Best-of-2",
    ]
    # Reflexion is matched to Best-of-N: N trials of Best-of-N's episode length (a random
    # Game of 24 episode is 3 moves), with the threshold given
    assert report.row("ARMAP-R").policy_calls == report.row("ARMAP-B (N=2)").policy_calls == 12
    assert report.row("Greedy").policy_calls == 2 * 3
    # the outcomes resume: the same evaluation again scores nothing
    reward = ConstantReward()
    again = _evaluate(configs, reward, tmp_path / "outcomes.jsonl")
    assert [r.success_rate for r in again.rows] == [r.success_rate for r in report.rows]
    assert reward.calls == 0


def test_evaluate_planners_takes_names_alone() -> None:
    report = _evaluate(["best_of_n"], ConstantReward())  # BestOfNConfig(): N = 16
    assert [r.method for r in report.rows] == [
        "Sampling",
        "Greedy",
        "ARMAP-B (N=16)",
        "oracle Best-of-16",
    ]


@pytest.mark.parametrize(
    ("planners", "message"),
    [
        ({"beam": None}, "unknown planner 'beam'"),
        ({"mcts": {"iteration": 5}}, "did you mean 'iterations'"),
        ({"best_of_n": {"selection": "oracle"}}, "selection must be 'reward'"),
        ({"reflexion": MCTSConfig()}, "takes a ReflexionConfig"),
        ("mcts", "not the string"),
    ],
)
def test_evaluate_planners_refuses_bad_configs_before_any_work(planners, message) -> None:
    reward = ConstantReward()
    with pytest.raises(ConfigError, match=message):
        evaluate_planners(RandomPolicy(), Game24Env, reward, planners, task_ids=["1"])
    assert reward.calls == 0
