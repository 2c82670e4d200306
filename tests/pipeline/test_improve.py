"""The self-improving critic (``armap improve``, ``improve_critic``): rounds of exploration
guided by the previous round's critic, every candidate kept, a critic per round trained on all
rounds' data. Two rounds on Game of 24 (interrupted mid-round and resumed to the files an
uninterrupted run makes) and on a user environment from the command line with ARMAP-M; test
tasks never explored; manifests naming the guiding critic; an LLM policy on a user's
environment factory, stopped by its budget mid-round and resumed.

The critics are real (MiniLM, tiny: one epoch on a few dozen triplets at 128 tokens)."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest

from armap_agents._import_path import load_import_path
from armap_agents._jsonl import read_jsonl
from armap_agents.cli import main
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import BudgetExceeded, CheckpointError, ConfigError
from armap_agents.layout import ImproveLayout
from armap_agents.pipeline import improve_critic
from armap_agents.pipeline.guided import GuidedSearch
from armap_agents.policies import ActionChoice, LLMPolicy, PolicyContext, RandomPolicy
from armap_agents.testing import ScriptedChatModel
from armap_agents.types import Trajectory

CORRIDOR = str(Path(__file__).resolve().parents[1] / "support" / "corridor_env.py") + ":Corridor"
TINY_CRITIC = {"epochs": 1, "max_train": 24, "max_val": 32, "max_length": 64}
"""A critic trained in seconds: one batch, one epoch, a 64-token window."""


class StopAfter:
    """A random policy with a budget of decisions (None: no limit): the next one raises
    :class:`BudgetExceeded`, as a spent LLM budget does, stopping the run resumably."""

    def __init__(self, limit: int | None = None) -> None:
        self.inner = RandomPolicy()
        self.limit = limit
        self.calls = 0
        self._lock = threading.Lock()

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        with self._lock:
            self.calls += 1
            if self.limit is not None and self.calls > self.limit:
                raise BudgetExceeded(f"test budget of {self.limit} decisions spent")
        return self.inner.act(context, seed=seed, greedy=greedy)


def _game24(run: Path, policy: StopAfter) -> object:
    return improve_critic(
        run,
        env="game24",
        policy=policy,
        rounds=2,
        planner="best_of_n",
        max_tasks=6,
        episodes_per_task=2,
        n=4,
        synthesis={"val_fraction": 0.3},  # tasks 1 and 4 of the 6 are validation tasks
        echo=None,
        **TINY_CRITIC,
    )


def _weights(model_dir: Path) -> dict[str, str]:
    return json.loads((model_dir / "armap_reward.json").read_text())["weights_sha256"]


def _explored(layout: ImproveLayout, rounds: int) -> set[str]:
    """Every task id that any file of the run's exploration holds."""
    seen: set[str] = set()
    for k in range(rounds):
        r = layout.round(k)
        for path in (r.trajectories, layout.pool(k)):
            seen |= {t.task_id for t in read_jsonl(path, Trajectory)}
        seen |= {s.task_id for s in read_jsonl(layout.searches(k), GuidedSearch)}
    return seen


def test_two_rounds_on_game24_resume_mid_round_and_name_the_guiding_critic(tmp_path) -> None:
    run = tmp_path / "run"
    layout = ImproveLayout(run)
    # round 0 spends 6 tasks x 2 episodes x 3 moves = 36 decisions; round 1's Best-of-4
    # spends 12 per task: the budget runs out on its third or fourth task
    with pytest.raises(BudgetExceeded):
        _game24(run, StopAfter(36 + 40))
    assert layout.round(0).train_result.is_file()  # round 0 finished
    interrupted = read_jsonl(layout.searches(1), GuidedSearch)
    assert 1 <= len(interrupted) < 6, "the budget did not run out mid-round"
    assert not layout.round(1).reward_model.exists()
    round_manifest = json.loads((layout.round_dir(1) / "meta.json").read_text())
    assert round_manifest["settings"]["status"] == "running"

    resumed = StopAfter()
    result = _game24(run, resumed)
    # the resume searched only the tasks left: 12 decisions per task, none for round 0
    assert resumed.calls == 12 * (6 - len(interrupted))
    searches = read_jsonl(layout.searches(1), GuidedSearch)
    assert [s.task_id for s in searches[: len(interrupted)]] == [s.task_id for s in interrupted]
    assert Counter(s.task_id for s in searches) == Counter({str(t): 1 for t in range(1, 7)})
    round1 = read_jsonl(layout.round(1).trajectories, Trajectory)
    assert len(round1) == 6 * 4 == len({t.episode_id for t in round1})  # every candidate, once
    for task in {t.task_id for t in round1}:  # one pick per task, every candidate evaluated
        candidates = [t for t in round1 if t.task_id == task]
        assert sum(t.info["picked"] for t in candidates) == 1
        assert all(t.evaluation is not None and t.policy_calls == 3 for t in candidates)
    # round 1 synthesized rounds 0 and 1 together
    pool = read_jsonl(layout.pool(1), Trajectory)
    assert Counter(t.info["round"] for t in pool) == {0: 12, 1: 24}

    # the manifests name what guided each round: round 0's critic, by its weights
    r0 = json.loads((layout.round_dir(0) / "meta.json").read_text())
    r1 = json.loads((layout.round_dir(1) / "meta.json").read_text())
    assert r0["defines"]["guided_by"] is None
    guided = r1["defines"]["guided_by"]
    assert guided["critic"] == "round-0/reward_model" and guided["round"] == 0
    assert guided["weights_sha256"] == _weights(layout.round(0).reward_model)
    assert r1["settings"]["status"] == "done"
    assert r1["settings"]["critic"]["weights_sha256"] == _weights(layout.round(1).reward_model)
    assert r1["settings"]["data"]["synthesized"] == "round-1/pool.jsonl"
    made = json.loads(
        (layout.round(1).trajectories.parent / "trajectories.jsonl.meta.json").read_text()
    )
    assert made["defines"]["critic"]["weights_sha256"] == guided["weights_sha256"]

    # test tasks never entered exploration, in any round
    explored = _explored(layout, 2)
    assert explored == {str(t) for t in range(1, 7)}
    assert not explored & set(Game24Env().task_ids("test"))

    # one row per round, every critic on the same held-out set
    rows = json.loads(layout.report_json.read_text())["rounds"]
    assert [r["round"] for r in rows] == [0, 1] == [r.round for r in result.rounds]
    assert rows[0]["heldout_triplets"] == rows[1]["heldout_triplets"] > 0
    assert rows[0]["pick_success"] is None and rows[1]["pick_success"] is not None
    assert rows[1]["trajectories"] == 24 and rows[1]["synthesized"] == 36
    assert rows[1]["policy_calls"] == 6 * 12
    assert len([ln for ln in layout.report.read_text().splitlines() if ln.startswith("| ")]) == 3
    # each round records which critic it keeps (its own unless the one before picked better)
    kept = json.loads(layout.kept(1).read_text())
    assert [r["kept"] for r in rows] == [0, kept["kept"]] and kept["previous_round"] == 0
    assert kept["critic"]["weights_sha256"] == _weights(layout.round(1).reward_model)
    assert result.critic == layout.round(kept["kept"]).reward_model

    # the same files as a run that was never interrupted (round 0 reused: it is the same)
    clean = ImproveLayout(tmp_path / "clean")
    shutil.copytree(layout.round_dir(0), clean.round_dir(0))
    shutil.copy(run / "meta.json", clean.root / "meta.json")
    _game24(clean.root, StopAfter())
    for name in ("trajectories.jsonl", "pool.jsonl", "synthesis/triplets.train.jsonl"):
        assert (clean.round_dir(1) / name).read_bytes() == (layout.round_dir(1) / name).read_bytes()
    assert _weights(clean.round(1).reward_model) == _weights(layout.round(1).reward_model)

    # a rerun is all reuse; a round guided by another critic is refused, never mixed
    again = StopAfter(0)
    assert _game24(run, again).rounds == result.rounds and again.calls == 0
    r1["defines"]["guided_by"]["weights_sha256"]["adapter_model.safetensors"] = "0" * 64
    (layout.round_dir(1) / "meta.json").write_text(json.dumps(r1))
    with pytest.raises(CheckpointError, match="guided_by.weights_sha256"):
        _game24(run, again)


def test_two_mcts_rounds_on_a_user_environment_from_the_command_line(tmp_path, capsys) -> None:
    run = tmp_path / "corridor"
    args = [
        "improve",
        "--env",
        CORRIDOR,
        "--run-dir",
        str(run),
        "--rounds",
        "2",
        "--planner",
        "mcts",
        "--n",
        "3",
        "--episodes-per-task",
        "4",
        "--max-tasks",
        "3",
        "--val-fraction",
        "0.5",  # train-0 is the validation task
        "--epochs",
        "1",
        "--max-train",
        "24",
        "--max-length",
        "64",
        "--max-val",
        "32",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ARMAP-M with round 0's critic" in out and "improve finished" in out
    layout = ImproveLayout(run)
    round1 = read_jsonl(layout.round(1).trajectories, Trajectory)
    assert round1 and all(t.info["planner"] == "mcts" and t.info["nodes"] for t in round1)
    assert all(t.evaluation is not None for t in round1)
    # each kept trajectory is a distinct evaluated leaf; the search's pick is among them
    for task in ("train-0", "train-1", "train-2"):
        leaves = [t for t in round1 if t.task_id == task]
        assert len({tuple(t.actions) for t in leaves}) == len(leaves) >= 2
        assert sum(t.info["picked"] for t in leaves) == 1
    searches = read_jsonl(layout.searches(1), GuidedSearch)
    assert all(s.policy_calls >= 3 * 14 for s in searches)  # MCTS spent N x the horizon
    explored = _explored(layout, 2)
    assert explored == {"train-0", "train-1", "train-2"}  # never test-*
    rows = json.loads(layout.report_json.read_text())["rounds"]
    assert len(rows) == 2 and rows[1]["guided_by"] == "ARMAP-M with round 0's critic"
    assert rows[0]["heldout_triplets"] == rows[1]["heldout_triplets"] > 0
    r1 = json.loads((layout.round_dir(1) / "meta.json").read_text())
    assert r1["defines"]["guided_by"]["weights_sha256"] == _weights(layout.round(0).reward_model)
    # rerun: nothing to do; another planner in the same run directory: one line, exit 2
    assert main(args) == 0
    assert "[round 1] already done" in capsys.readouterr().out
    assert main([*args, "--planner", "best_of_n"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'planner: "mcts" recorded, "best_of_n" asked' in err


Corridor = load_import_path(CORRIDOR, "environment")


class RecordingCorridor(Corridor):
    """The corridor of tests/support (a user's environment), recording each task it is reset
    to."""

    name = "recording-corridor"

    def __init__(self, resets: list[str]) -> None:
        super().__init__()
        self.resets = resets

    def reset(self, task_id: str):
        self.resets.append(task_id)
        return super().reset(task_id)


def _llm_policy(tracker) -> LLMPolicy:
    """A scripted chat model as the policy, one request a step, cycling through five replies:
    each 6-step episode starts elsewhere in the cycle, so the episodes of a task differ (round
    0's end at cells 3 and 2, 1 and 2, 2 and 3) and so do the tasks' (the corridor's tasks
    are alike: identical triplets of two tasks would be one)."""
    replies = [f"Action: {a}" for a in ("right", "left", "left", "right", "right")]
    return LLMPolicy(ScriptedChatModel(replies=replies, callbacks=[tracker]))


def test_an_llm_policy_improves_a_user_environment_and_resumes_after_its_budget(
    tmp_path,
) -> None:
    from armap_agents.llm import UsageLimits, UsageTracker

    resets: list[str] = []
    factory = lambda: RecordingCorridor(resets)  # noqa: E731 - a user's factory object
    run = tmp_path / "run"

    def improve(calls: int | None):
        tracker = UsageTracker(UsageLimits(max_calls=calls) if calls else None)
        result = improve_critic(
            run,
            env=factory,
            policy=_llm_policy(tracker),
            rounds=2,
            planner="best_of_n",
            max_tasks=3,
            episodes_per_task=2,
            n=3,
            max_steps=6,
            max_concurrency=1,
            synthesis={"val_fraction": 0.5},  # train-0 is the validation task
            usage=tracker,
            echo=None,
            **TINY_CRITIC,
        )
        return result, tracker

    # round 0: 3 tasks x 2 episodes x 6 steps = 36 requests; round 1: 18 a task. The budget
    # runs out on round 1's second task (an LLM budget stops a run, resumably)
    with pytest.raises(BudgetExceeded):
        improve(36 + 18 + 5)
    layout = ImproveLayout(run)
    assert [s.task_id for s in read_jsonl(layout.searches(1), GuidedSearch)] == ["train-0"]
    result, tracker = improve(None)
    assert tracker.usage.calls == 2 * 18  # only the two tasks left, nothing twice
    assert [s.task_id for s in read_jsonl(layout.searches(1), GuidedSearch)] == [
        "train-0",
        "train-1",
        "train-2",
    ]
    kept = read_jsonl(layout.round(1).trajectories, Trajectory)
    assert len(kept) == 9 == len({t.episode_id for t in kept})
    for task in ("train-0", "train-1", "train-2"):  # the pick: the critic's highest score
        candidates = [t for t in kept if t.task_id == task]
        best = max(candidates, key=lambda t: (t.info["score"], -t.info["candidate"]))
        assert best.info["picked"] and sum(t.info["picked"] for t in candidates) == 1
    assert set(resets) == {"train-0", "train-1", "train-2"}  # never reset to a test task
    assert _explored(layout, 2) == {"train-0", "train-1", "train-2"}
    r1 = json.loads((layout.round_dir(1) / "meta.json").read_text())
    assert (
        r1["defines"]["explorer"] == "best_of_n over policy object:armap_agents.policies.LLMPolicy"
    )
    assert r1["defines"]["guided_by"]["weights_sha256"] == _weights(layout.round(0).reward_model)
    assert [r.round for r in result.rounds] == [0, 1] and result.critic == layout.round(
        1
    ).reward_model


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"round": 2}, "did you mean 'rounds'"),
        ({"planner": "reflexion"}, "planner"),
        ({"tasks": ["no-such-task"]}, "no train task to explore"),
        ({"epoch": 1}, "did you mean 'epochs'"),
        ({"relabel_options": {"nope": 1}}, "has no option 'nope'"),
    ],
)
def test_mistakes_are_refused_before_anything_is_written(tmp_path, settings, message) -> None:
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        improve_critic(run, env="game24", echo=None, **settings)
    assert not run.exists()


def test_a_new_critic_replaces_the_kept_one_only_when_it_picks_better_where_it_can_tell() -> None:
    from armap_agents.pipeline.improve import keeps_previous
    from armap_agents.reward.planning_metrics import MIN_DECISIVE_TASKS, PickMetrics

    def picks(success: float, decisive: int = MIN_DECISIVE_TASKS) -> PickMetrics:
        return PickMetrics(
            tasks=14,
            candidates=56,
            decisive=decisive,
            pick_success=success,
            mean_success=0.05,
            oracle_success=0.4,
            gap_closed=None,
            pick_score=success,
            mean_score=0.05,
            oracle_score=0.4,
        )

    assert keeps_previous(new=picks(0.0), before=picks(0.14))  # measured on courier, round 1
    assert keeps_previous(new=picks(0.07), before=picks(0.07))  # a tie: the earlier one
    assert not keeps_previous(new=picks(0.2), before=picks(0.1))
    assert not keeps_previous(new=picks(0.0, decisive=2), before=picks(0.5, decisive=2))
