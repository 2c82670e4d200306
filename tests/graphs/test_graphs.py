"""Every graph runs, with RandomPolicy and with a scripted fake chat model."""

from __future__ import annotations

import json
import random
import re
import threading
import time

import pytest

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents.environments.game24 import Game24Env, Game24Relabeler
from armap_agents.errors import BudgetExceeded, ConfigError
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.explore import ExploreConfig, explore, failures_path
from armap_agents.graphs.synthesize import (
    TRAIN_FILE,
    VAL_FILE,
    SynthesizeConfig,
    split_of,
    synthesize,
)
from armap_agents.llm import RetryPolicy
from armap_agents.policies import LLMPolicy, RandomPolicy
from armap_agents.synthesizers import LLMSynthesizer, RelabelSynthesizer, parse_synthesis
from armap_agents.testing import FunctionReward, ScriptedChatModel
from armap_agents.types import Trajectory, Triplet

NO_WAIT = RetryPolicy(max_attempts=2, initial_wait=0.0, max_wait=0.0, jitter=0.0)


def first_valid_action(messages) -> str:
    """A fake LLM that answers with the last listed valid action."""
    listed = re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)
    return f"Action: {listed[-1]}"


def test_explore_writes_and_resumes(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    config = ExploreConfig(max_tasks=3, episodes_per_task=2, seed=1)
    first = explore(RandomPolicy(), Game24Env, out, config, progress=False)
    assert (first.finished, first.already_done) == (6, 0)
    more = explore(
        RandomPolicy(),
        Game24Env,
        out,
        config.model_copy(update={"episodes_per_task": 3}),
        progress=False,
    )
    assert (more.finished, more.already_done) == (3, 6)
    records = read_jsonl(out, Trajectory)
    ids = [t.episode_id for t in records]
    assert len(ids) == 9 == len(set(ids))
    # seeded: a fresh run writes the same trajectories
    fresh = tmp_path / "fresh.jsonl"
    explore(
        RandomPolicy(),
        Game24Env,
        fresh,
        config.model_copy(update={"episodes_per_task": 3}),
        progress=False,
    )
    by_id = {t.episode_id: t for t in read_jsonl(fresh, Trajectory)}
    assert all(by_id[t.episode_id] == t for t in records)


def test_explore_with_a_scripted_llm_policy(tmp_path) -> None:
    model = ScriptedChatModel(responder=first_valid_action)
    config = ExploreConfig(task_ids=["1", "2"], episodes_per_task=1)
    result = explore(LLMPolicy(model), Game24Env, tmp_path / "t.jsonl", config, progress=False)
    assert result.finished == 2
    for t in read_jsonl(tmp_path / "t.jsonl", Trajectory):
        assert len(t.steps) == 3 and all(s.valid for s in t.steps)
        assert t.policy_calls == 3
    assert len(model.calls) == 6


class _BrokenPolicy:
    def act(self, context, *, seed, greedy=False):
        raise RuntimeError("the API is down")


def test_failed_episodes_are_counted_not_recorded(tmp_path) -> None:
    result = explore(
        _BrokenPolicy(),
        Game24Env,
        tmp_path / "t.jsonl",
        ExploreConfig(task_ids=["1"], episodes_per_task=2),
        progress=False,
    )
    assert (result.finished, result.failed) == (0, 2)
    assert read_jsonl(tmp_path / "t.jsonl", Trajectory) == []
    # ... but their reasons are kept
    failures = [json.loads(line) for line in (tmp_path / "t.failures.jsonl").open()]
    assert sorted(f["episode_id"] for f in failures) == ["1#0", "1#1"]
    assert all(f["error"] for f in failures)


@pytest.fixture
def explored(tmp_path):
    path = tmp_path / "t.jsonl"
    explore(
        RandomPolicy(),
        Game24Env,
        path,
        ExploreConfig(max_tasks=30, episodes_per_task=4),
        progress=False,
    )
    return path


class _Counting:
    def __init__(self, inner) -> None:
        self.inner, self.tasks = inner, []

    def synthesize(self, trajectories, *, seed):
        self.tasks.append(trajectories[0].task_id)
        return self.inner.synthesize(trajectories, seed=seed)


def test_synthesis_splits_by_task_dedupes_and_resumes(tmp_path, explored) -> None:
    out = tmp_path / "syn"
    counting = _Counting(RelabelSynthesizer(Game24Relabeler()))
    config = SynthesizeConfig(val_fraction=0.3)
    result = synthesize(counting, explored, out, config, progress=False)
    assert result.tasks == 30 and len(counting.tasks) == 30
    train = read_jsonl(out / TRAIN_FILE, Triplet)
    val = read_jsonl(out / VAL_FILE, Triplet)
    assert (len(train), len(val)) == (result.train, result.val) and train and val
    assert not {t.task_id for t in train} & {t.task_id for t in val}
    assert all(split_of(t.task_id, 0.3) == "val" for t in val)
    keys = [t.key() for t in train + val]
    assert len(keys) == len(set(keys))
    # a rerun synthesizes nothing again and writes the same files
    again = synthesize(counting, explored, out, config, progress=False)
    assert len(counting.tasks) == 30 and (again.train, again.val) == (result.train, result.val)
    assert again.duplicates == result.duplicates
    # the validation tasks' explored trajectories are kept, verdicts included, for training
    held_out = read_jsonl(out / "trajectories.val.jsonl", Trajectory)
    assert {t.task_id for t in held_out} == {
        t.task_id for t in read_jsonl(explored, Trajectory) if split_of(t.task_id, 0.3) == "val"
    }
    assert all(t.evaluation is not None for t in held_out)


def test_a_task_killed_before_its_marker_is_not_counted_twice(tmp_path, explored) -> None:
    """A task whose triplets were appended but whose marker was not (a kill in between) is
    synthesized again on the rerun: its first rows are left over, not duplicates."""
    out = tmp_path / "syn"
    config = SynthesizeConfig(val_fraction=0.3)
    result = synthesize(
        RelabelSynthesizer(Game24Relabeler()), explored, out, config, progress=False
    )
    progress = (out / "synthesis_progress.jsonl").read_text().splitlines()
    killed = json.loads(progress[-1])
    assert killed["triplets"] > 1
    (out / "synthesis_progress.jsonl").write_text("\n".join(progress[:-1]) + "\n")
    again = synthesize(RelabelSynthesizer(Game24Relabeler()), explored, out, config, progress=False)
    assert (again.train, again.val, again.duplicates) == (
        result.train,
        result.val,
        result.duplicates,
    )


def _synthesis_json(intent: str) -> str:
    return json.dumps(
        {
            "intent": intent,
            "negative": [{"action": "1 + 1 = 2", "observation": "Numbers left: 2 3 4"}],
        }
    )


def test_llm_synthesizer_validates_retries_and_skips(tmp_path, explored) -> None:
    replies = iter(["not json at all", _synthesis_json("reach the value shown at the end")] * 1000)
    model = ScriptedChatModel(responder=lambda messages: next(replies))
    synthesizer = LLMSynthesizer(model, max_per_task=1, max_attempts=2, retry=NO_WAIT)
    result = synthesize(
        synthesizer, explored, tmp_path / "syn", SynthesizeConfig(max_concurrency=1), progress=False
    )
    assert result.train + result.val == 30 and result.skipped_trajectories == 30 * 3
    triplet = read_jsonl(tmp_path / "syn" / TRAIN_FILE, Triplet)[0]
    assert triplet.source == "llm" and triplet.negative.actions == ["1 + 1 = 2"]
    # the retry showed the model why its first reply was rejected
    assert "no JSON object" in str(model.calls[1][0][-1].content)

    hopeless = LLMSynthesizer(
        ScriptedChatModel(replies=['{"intent": "x"}']), max_attempts=3, retry=NO_WAIT
    )
    trajectories = read_jsonl(explored, Trajectory)[:2]
    out = hopeless.synthesize(trajectories, seed=0)
    assert out.triplets == [] and out.skipped == 2 and "schema" in out.errors[0]


def test_parse_synthesis_accepts_fenced_json() -> None:
    out = parse_synthesis("Sure!\n```json\n" + _synthesis_json("obtain 10 from 1 2 3 4") + "\n```")
    assert out.intent == "obtain 10 from 1 2 3 4" and len(out.negative) == 1


def step_count_reward() -> FunctionReward:
    """A fake reward model for graph tests: prefers trajectories with more valid steps."""
    return FunctionReward(lambda intent, t: sum(s.valid for s in t.steps))


def test_best_of_n_with_a_scripted_llm_policy() -> None:
    replies = iter(["Action: 4 + 8 = 12", "Action: 6 - 4 = 2", "Action: 12 * 2 = 24"] * 4)
    model = ScriptedChatModel(responder=lambda messages: next(replies))
    env_factory = lambda: Game24Env(puzzles=[(4, 4, 6, 8)])  # noqa: E731
    graph = build_best_of_n_graph(
        LLMPolicy(model, retry=NO_WAIT),
        env_factory,
        step_count_reward(),
        BestOfNConfig(n=1, max_steps=3),
    )
    state = graph.invoke({"task_id": "1"})
    assert state["best"].evaluation.success and state["policy_calls"] == 3


def test_best_of_n_selects_by_reward_and_by_oracle() -> None:
    graph = build_best_of_n_graph(
        RandomPolicy(), Game24Env, step_count_reward(), BestOfNConfig(n=8, seed=3)
    )
    state = graph.invoke({"task_id": "950"}, {"max_concurrency": 4})
    assert [c.info["candidate"] for c in state["candidates"]] == list(range(8))
    assert state["scores"][state["best_index"]] == max(state["scores"])
    assert state["reward_model_calls"] == 8
    # the same seed gives the same candidates
    again = graph.invoke({"task_id": "950"})
    assert [c.actions for c in again["candidates"]] == [c.actions for c in state["candidates"]]
    oracle = build_best_of_n_graph(
        RandomPolicy(), Game24Env, None, BestOfNConfig(n=64, selection="oracle")
    )
    state = oracle.invoke({"task_id": "901"})
    successes = [c.evaluation.success for c in state["candidates"]]
    assert state["best"].evaluation.success == any(successes)


def test_reward_selection_needs_a_reward_model() -> None:
    with pytest.raises(ConfigError, match="needs a reward_model"):
        build_best_of_n_graph(RandomPolicy(), Game24Env, None, BestOfNConfig())


def test_greedy_is_deterministic() -> None:
    graph = build_best_of_n_graph(
        RandomPolicy(), Game24Env, None, BestOfNConfig(n=1, greedy=True, selection="random")
    )
    a, b = graph.invoke({"task_id": "901", "seed": 1}), graph.invoke({"task_id": "901", "seed": 2})
    assert a["best"].actions == b["best"].actions


def test_synthesis_output_does_not_depend_on_file_order(tmp_path, explored) -> None:
    """Exploration appends in completion order; synthesis must not care."""
    shuffled = read_jsonl(explored, Trajectory)
    random.Random(7).shuffle(shuffled)
    write_jsonl(tmp_path / "shuffled.jsonl", shuffled)
    synthesizer = RelabelSynthesizer(Game24Relabeler())
    synthesize(synthesizer, explored, tmp_path / "a", progress=False)
    synthesize(synthesizer, tmp_path / "shuffled.jsonl", tmp_path / "b", progress=False)
    for name in (TRAIN_FILE, VAL_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_usage_budget_stops_the_run_and_keeps_what_was_done(tmp_path) -> None:
    from armap_agents.llm import UsageLimits, UsageTracker

    tracker = UsageTracker(UsageLimits(max_calls=7))
    model = ScriptedChatModel(responder=first_valid_action, callbacks=[tracker])
    out = tmp_path / "t.jsonl"
    config = ExploreConfig(task_ids=["1", "2", "3", "4"], episodes_per_task=1, max_concurrency=1)
    with pytest.raises(BudgetExceeded, match="7 LLM calls"):
        explore(LLMPolicy(model, retry=NO_WAIT), Game24Env, out, config, progress=False)
    assert tracker.usage.calls == 7 and len(model.calls) == 7  # the 8th call never went out
    # 3 calls per game, one game at a time: two games saved, the cut one is no failed episode
    assert len(read_jsonl(out, Trajectory)) == 2 and not failures_path(out).exists()
    # a larger budget resumes the rest
    tracker.limits = UsageLimits(max_calls=100)
    again = explore(LLMPolicy(model, retry=NO_WAIT), Game24Env, out, config, progress=False)
    assert (again.already_done, again.finished) == (2, 2)


def test_the_call_budget_holds_under_concurrency(tmp_path) -> None:
    from armap_agents.llm import UsageLimits, UsageTracker

    tracker = UsageTracker(UsageLimits(max_calls=7))
    model = ScriptedChatModel(responder=first_valid_action, callbacks=[tracker])
    config = ExploreConfig(
        task_ids=[str(i) for i in range(1, 9)], max_concurrency=4, episodes_per_task=1
    )
    with pytest.raises(BudgetExceeded):
        explore(
            LLMPolicy(model, retry=NO_WAIT), Game24Env, tmp_path / "t.jsonl", config, progress=False
        )
    assert len(model.calls) == 7 and tracker.usage.calls == 7


class _PeakCounter:
    """Counts how many calls are inside ``during()`` at once (each holds for 20 ms)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def during(self, call):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.02)
            return call()
        finally:
            with self.lock:
                self.active -= 1


class _SlowRandomPolicy(RandomPolicy):
    """A random policy whose every action passes through a :class:`_PeakCounter`."""

    def __init__(self, counter: _PeakCounter) -> None:
        super().__init__()
        self.counter = counter

    def act(self, context, *, seed, greedy=False):
        return self.counter.during(lambda: super(_SlowRandomPolicy, self).act(context, seed=seed))


@pytest.mark.parametrize("concurrency", [1, 2])
def test_at_most_max_concurrency_episodes_and_synthesis_calls_run_at_once(
    tmp_path, concurrency
) -> None:
    # LangGraph's pool has a slot more than max_concurrency while a progress bar streams
    episodes = _PeakCounter()
    config = ExploreConfig(
        max_tasks=8, episodes_per_task=1, max_steps=2, max_concurrency=concurrency
    )
    out = tmp_path / "t.jsonl"
    assert (
        explore(_SlowRandomPolicy(episodes), Game24Env, out, config, progress=False).finished == 8
    )
    assert episodes.peak == concurrency

    calls = _PeakCounter()
    relabel = RelabelSynthesizer(Game24Relabeler())

    class Slow:
        def synthesize(self, trajectories, *, seed):
            return calls.during(lambda: relabel.synthesize(trajectories, seed=seed))

    synthesize(
        Slow(), out, tmp_path / "syn", SynthesizeConfig(max_concurrency=concurrency), progress=False
    )
    assert calls.peak == concurrency
