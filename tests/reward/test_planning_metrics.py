"""The critic judged by what planning needs: picks among held-out candidates, ARMAP-R's
calibrated threshold, the window from the data, on a user-written environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from armap_agents import Evaluation, Trajectory
from armap_agents.graphs.reflexion import ReflexionConfig, stop_threshold
from armap_agents.reward.planning_metrics import (
    calibrate,
    candidate_groups,
    pick_metrics,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _candidate(task: str, episode: int, success: bool, score: float | None = None) -> Trajectory:
    return Trajectory(
        task_id=task,
        intent=f"solve {task}",
        initial_observation="start",
        episode_id=f"{task}#{episode}",
        evaluation=Evaluation(success=success, score=float(success) if score is None else score),
    )


def test_groups_keep_judged_candidates_of_tasks_with_a_choice():
    failed = _candidate("a", 2, False).model_copy(update={"error": "RuntimeError: boom"})
    unjudged = _candidate("b", 1, True).model_copy(update={"evaluation": None})
    groups = candidate_groups(
        [
            _candidate("a", 1, True),
            _candidate("a", 0, False),
            failed,
            _candidate("b", 0, True),
            unjudged,
            _candidate("c", 0, False),
            _candidate("c", 1, False),
        ]
    )
    assert [[t.episode_id for t in g] for g in groups] == [["a#0", "a#1"], ["c#0", "c#1"]]


def test_picks_against_chance_and_the_oracle():
    groups = [
        [_candidate("a", 0, False), _candidate("a", 1, True)],  # decisive: the critic is right
        [_candidate("b", 0, True), _candidate("b", 1, False)],  # decisive: the critic is wrong
        [_candidate("c", 0, False), _candidate("c", 1, False)],  # nothing to win
        [_candidate("d", 0, False), _candidate("d", 1, True)],  # tie: the first is taken
    ]
    metrics = pick_metrics(groups, [[0.1, 0.9], [0.2, 0.8], [0.0, 1.0], [0.5, 0.5]])
    assert metrics.tasks == 4 and metrics.candidates == 8 and metrics.decisive == 3
    assert metrics.pick_success == pytest.approx(1 / 4)
    assert metrics.mean_success == pytest.approx(1.5 / 4)
    assert metrics.oracle_success == pytest.approx(3 / 4)
    assert metrics.gap_closed == pytest.approx((1 - 1.5) / (3 - 1.5))
    assert not metrics.selects  # 3 decisive tasks are too few to choose an epoch by
    with pytest.raises(ValueError):
        pick_metrics([], [])


def test_the_threshold_maximises_f05_and_needs_both_outcomes():
    # successes score high, one failure among them: the threshold keeps precision up
    scores = [3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -1.0]
    outcomes = [True, True, False, True, False, False, False, False]
    calibration = calibrate(scores, outcomes)
    assert calibration.successes == 3 and calibration.failures == 5
    # at 2.5: precision 1, recall 2/3 (F0.5 0.91); at 1.5: 3/4 and 1 (F0.5 0.79)
    assert calibration.threshold == 2.5
    assert (calibration.precision, calibration.recall) == (1.0, pytest.approx(2 / 3))
    assert calibration.curve[0].threshold == 3.0 and calibration.curve[-1].recall == 1.0
    assert calibrate([1.0, 2.0], [False, False]).threshold is None
    assert calibrate([1.0, 1.0, 0.0], [True, False, False]).curve[0].precision == 0.5  # tie


class _Scorer:
    def __init__(self, threshold: float | None) -> None:
        self.success_threshold = threshold

    def score(self, intent, trajectories):  # pragma: no cover - not called
        return [0.0] * len(trajectories)


def test_reflexion_stops_at_the_calibrated_threshold_unless_told():
    assert stop_threshold(ReflexionConfig(), _Scorer(1.25)) == 1.25
    assert stop_threshold(ReflexionConfig(threshold=-0.5), _Scorer(1.25)) == -0.5
    assert stop_threshold(ReflexionConfig(), _Scorer(None)) == 0.0
    assert stop_threshold(ReflexionConfig(), object()) == 0.0  # any RewardScorer


def test_a_user_environment_gets_a_critic_judged_by_its_picks(tmp_path):
    """examples/guess_number.py declares no window, view or relabeler: the generic ones. The
    critic trained with the defaults must pick better than chance among held-out tasks'
    candidates, keep the epoch by those picks, calibrate ARMAP-R, and fit its window to the
    data (the guesses render to ~90 tokens: far under the 512 of an undeclared window)."""
    from armap_agents import RewardModel
    from armap_agents.pipeline import (
        explore_trajectories,
        synthesize_triplets,
        train_reward_model,
    )

    env = f"{EXAMPLES / 'guess_number.py'}:GuessNumber"
    trajectories, synthesis, model = tmp_path / "t.jsonl", tmp_path / "syn", tmp_path / "rm"
    explore_trajectories(out=trajectories, env=env, episodes_per_task=4, max_tasks=100, echo=None)
    synthesize_triplets(trajectories=trajectories, out=synthesis, val_fraction=0.2, echo=None)
    held_out = [json.loads(line) for line in (synthesis / "trajectories.val.jsonl").open()]
    assert held_out and all(record["evaluation"] is not None for record in held_out)
    lines: list[str] = []
    result = train_reward_model(data=synthesis, out=model, echo=lines.append)
    assert result.planning is not None and result.planning.selects
    assert result.selected_by == "held-out picks"
    assert result.planning.pick_success > result.planning.mean_success + 0.1
    assert result.calibration is not None and result.calibration.threshold is not None
    loaded = RewardModel.load(model)
    assert 64 <= loaded.config.max_length <= 160
    # the view's budget follows the same texts: those that fit the window are read whole
    from armap_agents import TrajectoryView
    from armap_agents.types import Triplet

    triplets = [
        Triplet.model_validate_json(line) for line in (synthesis / "triplets.train.jsonl").open()
    ]
    whole = [TrajectoryView.identity().render(t.positive) for t in triplets]
    clipped = sum(
        loaded.render(t.positive) != text for t, text in zip(triplets, whole, strict=True)
    )
    assert clipped <= 0.1 * len(triplets)
    assert loaded.success_threshold == pytest.approx(result.calibration.threshold)
    assert (model / "calibration.png").stat().st_size > 0
    card = (model / "README.md").read_text()
    assert "the one whose picks were best on held-out tasks" in card
    assert "ARMAP-R stops retrying once an attempt scores at least" in card
    assert any("reward-model window" in line for line in lines)
    # a rerun (quickstart, improve) checks the model's manifest against the settings it
    # would train with, before the data decide the window: they must agree
    from armap_agents._provenance import check_manifest
    from armap_agents.pipeline.stages import model_defines, training_configs

    model_config, trainer_config = training_configs(synthesis, None, None, None, {})
    defines = model_defines(data=synthesis, model=model_config, trainer=trainer_config)
    assert defines["max_length"] == "data"
    check_manifest(model, "reward_model", defines)


def test_long_texts_get_a_short_window_that_keeps_every_action_and_the_end(tmp_path):
    """examples/courier.py renders ~470 tokens an episode: the window from the data stops at
    128 (where user worlds picked best) and the view's budget fills it without overflowing,
    so the tokenizer cuts nothing: every action and the end state are read."""
    from transformers import AutoTokenizer

    from armap_agents import TrajectoryView
    from armap_agents.pipeline import explore_trajectories, synthesize_triplets
    from armap_agents.reward.model import backbone_source
    from armap_agents.reward.window import MAX_DATA_WINDOW, data_window
    from armap_agents.types import Triplet

    env = f"{EXAMPLES / 'courier.py'}:Courier"
    explore_trajectories(
        out=tmp_path / "t.jsonl", env=env, episodes_per_task=2, max_tasks=20, echo=None
    )
    synthesize_triplets(trajectories=tmp_path / "t.jsonl", out=tmp_path / "syn", echo=None)
    triplets = [
        Triplet.model_validate_json(line) for line in (tmp_path / "syn/triplets.train.jsonl").open()
    ]
    window, max_chars, whole = data_window(triplets, "all-MiniLM-L6-v2")
    assert window == MAX_DATA_WINDOW and whole < 0.5
    view = TrajectoryView(max_chars=max_chars).for_new_model()
    tokenizer = AutoTokenizer.from_pretrained(backbone_source("all-MiniLM-L6-v2")[0])
    for triplet in triplets[:40]:
        text = view.render(triplet.positive)
        assert len(tokenizer(triplet.intent, text)["input_ids"]) <= window
        assert [line for line in text.splitlines() if line.startswith("Action: ")] == [
            f"Action: {a}" for a in triplet.positive.actions
        ]
        assert text.endswith(triplet.positive.final_observation[:20]) or (
            triplet.positive.final_observation[:20] in text.rsplit("Observation: ", 1)[1]
        )


def test_a_view_given_without_a_budget_follows_the_window_from_the_data() -> None:
    """A view given as settings (no budget) was fitted to the config's placeholder window when
    the config was made; the window from the data refits it, or the tokenizer cuts the text."""
    from armap_agents import TrajectoryView
    from armap_agents.pipeline.stages import window_from_data
    from armap_agents.reward.model import RewardModelConfig
    from armap_agents.reward_view import window_budget
    from armap_agents.types import Step, Trajectory, Triplet

    def episode(last: str) -> Trajectory:
        steps = [Step(action=f"go room {i}", observation=f"Room {i}. " * 12) for i in range(14)]
        steps.append(Step(action="drop lamp", observation=last))
        return Trajectory(task_id="1", intent="x", initial_observation="A hall.", steps=steps)

    triplets = [
        Triplet(intent="bring the lamp", positive=episode("Here: lamp."), negative=episode("No."))
    ] * 4
    given = RewardModelConfig(view=TrajectoryView(final_share=0.5))
    assert given.view.max_chars == window_budget(512)  # fitted to the placeholder window
    fitted = window_from_data(given, None, triplets, None)
    assert fitted.max_length == 128 and fitted.view.max_chars == window_budget(128)
    assert fitted.view.final_share == 0.5  # what was given stays
    explicit = RewardModelConfig(view=TrajectoryView(max_chars=900))
    assert window_from_data(explicit, None, triplets, None).view.max_chars == 900
