"""Prefix pairs: every relabeler pairs unfinished trajectories of the same step count.

A prefix pair is ``(positive[:k], negative[:k])``: the first ``k`` steps of a trajectory that
went on to do better and of one that did not, on the same task, never two prefixes of the same
text. Step-level planners (beam search, live reranking) score such unfinished trajectories.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from armap_agents.environments.alfworld import AlfWorldRelabeler
from armap_agents.environments.game24 import (
    Game24Env,
    Game24Relabeler,
    format_number,
    reachable_values,
)
from armap_agents.environments.outcome import (
    OutcomeRelabeler,
    divergence,
    prefix_depths,
)
from armap_agents.environments.scienceworld import ScienceWorldRelabeler
from armap_agents.environments.webshop import WebShopEnv, WebShopRelabeler, generate_catalog
from armap_agents.errors import ConfigError
from armap_agents.policies import RandomPolicy
from armap_agents.rollout import run_episode
from armap_agents.types import Evaluation, Step, Trajectory, Triplet


def _played(
    actions: list[str],
    success: bool,
    score: float | None = None,
    *,
    task: str = "a",
    name: str = "",
    observe: str = "after {}",
    **info,
) -> Trajectory:
    return Trajectory(
        task_id=task,
        intent=f"solve {task}",
        initial_observation="start",
        steps=[Step(action=a, observation=observe.format(a)) for a in actions],
        episode_id=name or f"{task}#{'-'.join(actions)}",
        done=True,
        evaluation=Evaluation(success=success, score=float(success) if score is None else score),
        info=info,
    )


def _check_prefix_pairs(
    triplets: list[Triplet], better: dict[str, set[str]] | None = None
) -> list[Triplet]:
    """The prefix triplets, checked: same step count, unfinished (at least one is cut), never
    the same text, no verdict; with ``better`` (episode id -> the episodes it beats), the
    positive from the better trajectory."""
    prefixes = [t for t in triplets if t.source == "prefix"]
    for t in prefixes:
        assert len(t.positive.steps) == len(t.negative.steps) >= 1
        assert t.positive.render() != t.negative.render()
        assert t.positive.evaluation is None and t.negative.evaluation is None
        assert t.positive.intent == t.negative.intent == t.intent
        assert t.positive.task_id == t.negative.task_id == t.task_id
        if better is not None:
            assert t.negative.episode_id in better[t.positive.episode_id]
    return prefixes


# -- the generic relabeler --------------------------------------------------------------------
def test_final_verdicts_alone_give_prefix_pairs_of_the_same_length() -> None:
    win = _played(["x", "y", "z", "w"], True, name="win")
    near = _played(["x", "q", "z", "v"], False, 0.5, name="near")
    loss = _played(["r", "s", "t", "u", "u", "u"], False, 0.0, name="loss")
    better = {"win": {"near", "loss"}, "near": {"loss"}, "loss": set()}
    relabeler = OutcomeRelabeler(negatives_per_positive=5, prefix_pairs_per_pair=3)
    triplets = relabeler.relabel([win, near, loss], seed=0)
    assert triplets == relabeler.relabel([win, near, loss], seed=0)
    prefixes = _check_prefix_pairs(triplets, better)
    outcome = Counter((t.positive.episode_id, t.negative.episode_id) for t in triplets)
    per_pair = Counter((t.positive.episode_id, t.negative.episode_id) for t in prefixes)
    assert set(per_pair) == {("win", "near"), ("win", "loss"), ("near", "loss")}
    assert all(n <= 3 for n in per_pair.values())
    for t in prefixes:
        # win and near part ways at step 2: their first steps are the same text
        if t.negative.episode_id == "near":
            assert len(t.positive.steps) >= 2
        # equal lengths: the whole pair is the outcome pair, never a prefix pair
        assert len(t.positive.steps) < 4
    assert outcome[("win", "near")] >= 2  # the outcome pair and its prefixes


def test_identical_prefixes_never_pair_and_the_text_decides() -> None:
    win = _played(["x", "y"], True, name="win")
    stalled = _played(["x"], False, name="stalled")  # win's first step, same text
    unlucky = _played(["x", "y"], False, name="unlucky", observe="then {}")
    relabeler = OutcomeRelabeler(negatives_per_positive=5, prefix_pairs_per_pair=5)
    prefixes = _check_prefix_pairs(relabeler.relabel([win, stalled, unlucky], seed=0))
    assert not any(t.negative.episode_id == "stalled" for t in prefixes)
    # the same actions but other observations: the texts differ from the first step
    assert [len(t.positive.steps) for t in prefixes if t.negative.episode_id == "unlucky"] == [1]
    assert divergence(win, stalled) is None and divergence(win, unlucky) == 1
    moved = unlucky.model_copy(update={"initial_observation": "elsewhere"})
    assert divergence(win, moved) == 1


def test_prefix_pairs_can_be_switched_off_and_are_bounded() -> None:
    data = [
        _played(["a", "b", "c", "d", "e", "f", "g", "h"], True, name="w"),
        *(_played(list("pqrstuvw"), False, name=f"l{i}", observe=f"{i} {{}}") for i in range(3)),
    ]
    off = OutcomeRelabeler(prefixes=False).relabel(data, seed=0)
    none = OutcomeRelabeler(prefix_pairs_per_pair=0).relabel(data, seed=0)
    assert not any(t.source == "prefix" for t in off + none)
    default = OutcomeRelabeler().relabel(data, seed=0)
    counts = Counter(t.source for t in default)
    assert counts["prefix"] == counts["outcome"] == 2  # one per outcome pair by default
    with pytest.raises(ConfigError, match="negative"):
        OutcomeRelabeler(prefix_pairs_per_pair=-1)


def test_depths_spread_over_the_episode_from_the_divergence_on() -> None:
    p = _played(list("abcdefgh"), True)
    n = _played(list("abcdWXYZ"), False)
    seen = set()
    for seed in range(40):
        depths = prefix_depths(p, n, random.Random(seed), limit=2)
        assert len(depths) == 2 and depths == sorted(depths)
        seen.update(depths)
    assert seen == {5, 6}  # from the divergence (5) on: a half (4) is before it, 8 is the whole
    q = _played(list("Zbcdefgh"), False)
    seen = {k for s in range(40) for k in prefix_depths(p, q, random.Random(s), limit=4)}
    assert seen == {1, 2, 4, 6}  # the divergence, a quarter, a half, three quarters


def test_per_step_scores_lead_first_and_the_negative_never_leads() -> None:
    p = _played(list("abcdefgh"), True)
    n = _played(list("ABCDEFGH"), False)
    p_scores = [0, 0, 0, 10, 10, 10, 10, 100]
    n_scores = [0, 5, 5, 5, 20, 20, 20, 20]  # the negative leads at steps 2-3 and 5-7
    for seed in range(20):
        depths = prefix_depths(
            p, n, random.Random(seed), limit=3, p_scores=p_scores, n_scores=n_scores
        )
        assert 4 in depths  # the first lead
        assert all(p_scores[k - 1] >= n_scores[k - 1] for k in depths)
        assert set(depths) <= {1, 4}


# -- the built-in relabelers ----------------------------------------------------------------
def _science(actions: list[str], score: int, name: str, **env) -> Trajectory:
    return Trajectory(
        task_id="boil-0",
        intent="boil water",
        initial_observation="You are in the kitchen.",
        steps=[Step(action=a, observation=f"You {a}.") for a in actions],
        episode_id=name,
        done=True,
        evaluation=Evaluation(success=score >= 100, score=max(score, 0) / 100),
        info={"env": {"score": score, **env}},
    )


def test_scienceworld_makes_prefix_pairs_from_final_scores_alone() -> None:
    good = _science(["open door", "go kitchen", "take pot", "fill pot", "heat"], 60, "good")
    bad = _science(["look", "go hall", "take cup", "drop cup"], 10, "bad")
    worse = _science(["focus on door", "look"], -100, "worse")  # a failed game
    triplets = ScienceWorldRelabeler().relabel([good, bad, worse], seed=0)
    better = {"good": {"bad", "worse"}, "bad": {"worse"}, "worse": set()}
    assert len(_check_prefix_pairs(triplets, better)) == 3  # one per outcome pair
    assert not any(
        t.source == "prefix"
        for t in ScienceWorldRelabeler(prefixes=False).relabel([good, bad, worse], seed=0)
    )
    # with per-step scores: the first lead, still a prefix pair of the same length
    good_steps = _science(good.actions, 60, "good", scores=[0, 0, 20, 40, 60])
    bad_steps = _science(bad.actions, 10, "bad", scores=[0, 10, 10, 10])
    (prefix,) = _check_prefix_pairs(
        ScienceWorldRelabeler().relabel([good_steps, bad_steps], seed=0), better
    )
    assert len(prefix.positive.steps) == 3  # 20 > 10 after step 3


def test_alfworld_without_replay_makes_prefix_pairs() -> None:
    def game(actions: list[str], won: bool, name: str) -> Trajectory:
        return _played(actions, won, task="book", name=name).model_copy(
            update={"intent": "put some book on sidetable."}
        )

    won = game(["go to bed 1", "take book 2 from bed 1", "go to sidetable 1", "put"], True, "w")
    lost = [game(["go to desk 1", "look", "look", "look"], False, f"l{i}") for i in range(2)]
    lost[1] = lost[1].model_copy(update={"steps": lost[1].steps[:3]})  # shorter
    triplets = AlfWorldRelabeler(hindsight=False).relabel([won, *lost], seed=0)
    prefixes = _check_prefix_pairs(triplets, {"w": {"l0", "l1"}})
    assert len(prefixes) == 2 and {t.source for t in triplets} == {"goal", "prefix"}
    assert not any(
        t.source == "prefix"
        for t in AlfWorldRelabeler(hindsight=False, prefixes=False).relabel([won, *lost], 0)
    )


def test_game24_prefixes_keep_the_value_reachable_against_dead_ends() -> None:
    env = Game24Env()
    trajectories = [
        run_episode(env, RandomPolicy(), "5", seed=s, episode_id=f"5#{s}") for s in range(8)
    ]
    triplets = Game24Relabeler().relabel(trajectories, seed=0)
    prefixes = _check_prefix_pairs(triplets)
    assert prefixes
    assert not any(
        t.source == "prefix" for t in Game24Relabeler(prefixes=False).relabel(trajectories, seed=0)
    )
    relabeler = Game24Relabeler()
    for t in prefixes:  # verified labels: the target is reachable after the positive only
        target = t.intent.split("to obtain ")[1].split(".")[0]
        positive, negative = relabeler._states(t.positive), relabeler._states(t.negative)
        assert positive is not None and negative is not None
        assert target in {format_number(v) for v in reachable_values(positive[-1])}
        assert target not in {format_number(v) for v in reachable_values(negative[-1])}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> WebShopEnv:
    cache: Path = tmp_path_factory.mktemp("webshop-index")
    return WebShopEnv(generate_catalog(600, seed=0, cache_dir=cache).warm())


def test_webshop_pairs_prefixes_of_the_purchase_that_fits_the_goal(shop: WebShopEnv) -> None:
    trajectories = [
        run_episode(shop, RandomPolicy(), "5", seed=s, max_steps=15, episode_id=f"5#{s}")
        for s in range(16)
    ]
    relabeler = WebShopRelabeler(shop)
    triplets = relabeler.relabel(trajectories, seed=0)
    prefixes = _check_prefix_pairs(triplets)
    assert prefixes
    whole = {
        (t.intent, t.positive.episode_id, t.negative.episode_id): t
        for t in triplets
        if t.source != "prefix"
    }
    for t in prefixes:  # cut from a pair whose positive bought what the goal asks for
        pair = whole[(t.intent, t.positive.episode_id, t.negative.episode_id)]
        k = len(t.positive.steps)
        assert k < max(len(pair.positive.steps), len(pair.negative.steps))  # one is cut
        assert t.positive.steps == pair.positive.steps[:k]
        assert t.negative.steps == pair.negative.steps[:k]
        assert t.positive.info["hindsight_goal"] == pair.positive.info["hindsight_goal"]
    assert not any(
        t.source == "prefix"
        for t in WebShopRelabeler(shop, prefixes=False).relabel(trajectories, seed=0)
    )
