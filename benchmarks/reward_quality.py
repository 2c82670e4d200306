"""Reward-model quality against the number of synthesized training triplets, per environment.

``--env game24|webshop|scienceworld`` (default ``game24``). Data: the environment's quickstart
workload (``quickstart_plan(env, "full", llm=False)`` in ``armap_agents/pipeline.py``): its
train tasks explored by the random policy (its episodes per task and step limit, seed 0) and
relabeled in hindsight by the environment's relabeler into ``(intent, positive, negative)``
triplets, split by task into train / validation (10%). These are the same files, with the same
manifests, as ``armap quickstart --env ENV``'s, so ``--run-dir runs/quickstart-ENV`` reuses a
quickstart run's trajectories and triplets.

Scorers: a random pick (the floor); the oracle pick (the best candidate, the ceiling); the
untrained backbone (cosine similarity of the mean-pooled embeddings of the intent and of the
trajectory); an LLM judge with the local model (``LLMJudge(make_chat_model("local:smollm2"))``,
on a capped subset: it takes seconds per call); and reward models trained (one epoch by
default) on nested random subsets of the training triplets (``--sizes``), made as
``RewardModelConfig(backbone, max_length=<the window: 128 tokens for Game of 24, 512
otherwise>, view=<the environment's TrajectoryView>)`` and scored on ``model.render``'s text.
The cosine and the judge read the same text (the view fitted to the window).

Metrics, all on data no reward model trained on:

* validation pairwise accuracy: how often the positive outscores the negative, on a fixed
  sample of triplets of the held-out validation tasks;
* Best-of-N: N random-policy candidates per task (seeded, generated once and cached) for the
  quickstart's test tasks and for the validation-split train tasks (held out from training).
  Each scorer picks its top candidate; ties at the top count as a uniform pick among them (an
  expected, possibly fractional, count).

  - success pick accuracy, on the tasks where at least one candidate succeeds: how often the
    pick succeeds (a random policy succeeds in ~3% of WebShop episodes and ~1% of
    ScienceWorld's, so there are few or no such tasks there);
  - score pick, on the tasks whose candidates' scores differ (``Evaluation.score``, graded in
    WebShop and ScienceWorld, 0/1 in Game of 24): how often the pick has its task's top score,
    the pick's mean score, and the share of the score gap between a random pick and the oracle
    that the pick closes, ``sum(pick - random) / sum(oracle - random)`` over those tasks.

  Rates have 95% Wilson intervals, the gap share a 95% bootstrap interval over tasks; both
  pool the two sets.
* prefix pairwise accuracy by depth (what step-level planners, beam search and live
  reranking, need: a critic that judges unfinished work): pairs of Best-of-N candidates of the
  same task (the real instruction, the environment's own verdict) where one ended better
  (success, then score) than the other, up to ``--prefix-pairs-per-task`` per task (seeded),
  both cut to the same step count ``k = round(f x the shorter one's length)`` (at least 1) for
  f = 25%, 50%, 75%, and whole (100%); a pair whose two prefixes are the same text at that
  depth is left out (counted). The positive is the prefix of the one that ended better: the
  outcome-supervised label the relabelers train on, itself an assumption (a prefix of a
  failure can be the better start), so no scorer need reach 100%.

Run (offline; minutes per environment in benchmarks/README.md, far longer when the cores are
shared)::

    python benchmarks/reward_quality.py                      # Game of 24
    python benchmarks/reward_quality.py --env webshop
    python benchmarks/reward_quality.py --env scienceworld   # needs the [scienceworld] extra
    python benchmarks/reward_quality.py --env webshop --quick   # a smoke test, a few minutes

Defaults: ``--sizes 250,500,1000,2000``, one epoch each (with fewer triplets: the sizes that
fit and all of them, or, when fewer than 3 fit, an eighth, a quarter, a half and all of
them); ``--n`` 32 for Game of 24 (a random policy rarely solves a puzzle), else the
quickstart's N; ``--val-pairs 500``; the judge on ``--judge-pairs 30`` validation triplets and
the first ``--judge-tasks 2`` tasks of each Best-of-N set where the pick matters (all their
candidates; 0 in either: no judge); the table repeats every scorer on that subset.
``--prefix-pairs-per-task 8``;
``--train-tasks`` / ``--test-tasks`` change the quickstart's task counts, ``--backbone`` and
``--max-length`` the reward models'. ``--quick``: 100 and 200 triplets (at most all of
them), N = 8 (Game of 24: 32), 100 validation pairs, no judge, a few tasks, its own run
directory; its table and plot stay in that directory (``benchmarks/results/`` is left
alone).

Every artifact (trajectories, triplets, candidates, trained models, per-scorer results) stays
in the run directory (default ``benchmarks/runs/reward_quality`` for Game of 24,
``benchmarks/runs/reward_quality-ENV`` otherwise); a rerun reuses them and only computes what
is missing. Results are saved as ``benchmarks/results/reward_quality.md`` (Game of 24) or
``reward_quality_ENV.md``, with a plot beside them.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _report
import torch

from armap_agents import RandomPolicy, RewardModel, RewardModelConfig, run_episode
from armap_agents._jsonl import JsonlAppender, iter_jsonl, read_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents._provenance import env_defines
from armap_agents._seeding import stable_seed
from armap_agents.environments.base import EnvFactory
from armap_agents.environments.registry import default_registry, opened_factory
from armap_agents.graphs.explore import ExploreConfig, explore
from armap_agents.graphs.synthesize import (
    TRAIN_FILE,
    VAL_FILE,
    SynthesizeConfig,
    split_of,
    synthesize,
)
from armap_agents.memory import MiniLMEmbedder
from armap_agents.pipeline import quickstart_plan, spread
from armap_agents.reward.train import RewardTrainer, RewardTrainerConfig
from armap_agents.reward_view import TrajectoryView
from armap_agents.synthesizers import RelabelSynthesizer
from armap_agents.types import Trajectory, Triplet, render_trajectory

NAME = "reward_quality"
ENVS = {
    "game24": "Game of 24",
    "webshop": "WebShop",
    "scienceworld": "ScienceWorld",
    "alfworld": "ALFWorld",
}
WINDOWS = {"game24": 128}
"""The reward model's window in tokens (others: ``DEFAULT_WINDOW``): a Game of 24 trajectory
takes ~90 MiniLM tokens, the views of the others are sized to 512."""
DEFAULT_WINDOW = 512
DEFAULT_N = {"game24": 32}
"""Best-of-N candidates per task (others: the quickstart's N): a random policy solves a Game
of 24 test puzzle in 0.4% of its episodes, so N = 32 for enough puzzles with a success."""
DEFAULT_SIZES = (250, 500, 1000, 2000)
VAL_FRACTION = 0.1  # as the quickstart
JUDGE_MODEL = "local:smollm2"
QUICK_TASKS = {
    "game24": (100, 100),
    "webshop": (40, 10),
    "scienceworld": (20, 4),
    "alfworld": (12, 6),
}
"""``--quick``: (train tasks, test tasks)."""
QUICK = {"sizes": (100, 200), "n": 8, "val_pairs": 100}
"""``--quick``: sizes, N (Game of 24 keeps its 32) and validation pairs."""
BOOTSTRAP = 2000
PREFIX_DEPTHS = (0.25, 0.5, 0.75, 1.0)
"""Prefix pairs' depths, as fractions of the shorter trajectory of the pair (1.0: whole)."""
PREFIX_PAIRS_PER_TASK = 8

PairScorer = Callable[[Sequence[str], Sequence[Trajectory]], list[float]]
"""Scores ``(intent, trajectory)`` pairs, one float each, higher is better."""


# -- data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """What is explored and where Best-of-N is measured: the quickstart's tasks and sizes."""

    env: str
    episodes: int
    max_steps: int
    train_tasks: tuple[str, ...]
    test_tasks: tuple[str, ...]


def workload(
    env: str, factory: EnvFactory, train_tasks: int | None, test_tasks: int | None
) -> Workload:
    """The quickstart's workload of ``env`` (``train_tasks`` / ``test_tasks`` override its
    task counts)."""
    plan = quickstart_plan(env, "full", llm=False)
    with closing(factory()) as probe:
        train = spread(probe.task_ids("train"), plan.families, train_tasks or plan.train_tasks)
        test = spread(probe.task_ids("test"), plan.families, test_tasks or plan.test_tasks)
    return Workload(env, plan.episodes, plan.max_steps, tuple(train), tuple(test))


def prepare_triplets(
    run_dir: Path, work: Workload, factory: EnvFactory, seed: int
) -> tuple[list[Triplet], list[Triplet]]:
    """Explore and relabel, as ``armap quickstart`` does (both resume: what the run directory
    has is reused): ``(train, val)`` triplets."""
    trajectories = run_dir / "trajectories.jsonl"
    synthesis = run_dir / "synthesis"
    environment = env_defines(work.env, {})
    explore(
        RandomPolicy(),
        factory,
        trajectories,
        ExploreConfig(
            task_ids=list(work.train_tasks),
            episodes_per_task=work.episodes,
            max_steps=work.max_steps,
            seed=seed,
        ),
        provenance={**environment, "policy": "random"},
    )
    synthesize(
        RelabelSynthesizer(default_registry().relabeler(work.env)),
        trajectories,
        synthesis,
        SynthesizeConfig(val_fraction=VAL_FRACTION, seed=seed),
        provenance={"synthesizer": "relabel", "relabeler": None, **environment},
    )
    return read_jsonl(synthesis / TRAIN_FILE, Triplet), read_jsonl(synthesis / VAL_FILE, Triplet)


def candidate_sets(
    run_dir: Path, work: Workload, factory: EnvFactory, n: int, seed: int
) -> dict[str, dict[str, list[Trajectory]]]:
    """N random-policy candidates per task of the two Best-of-N sets, appended to a JSONL
    file per set as they are made (a rerun makes only the missing ones).

    ``test``: the quickstart's test tasks. ``held-out``: the train tasks of the validation
    split, whose triplets no reward model sees. An episode that fails (the environment
    crashed) is left out and tried again on the next run."""
    sets = {
        "test": list(work.test_tasks),
        "held-out": [t for t in work.train_tasks if split_of(t, VAL_FRACTION, seed) == "val"],
    }
    out: dict[str, dict[str, list[Trajectory]]] = {}
    with closing(factory()) as env:
        for name, tasks in sets.items():
            path = run_dir / f"bon_candidates.{name}.n{n}.seed{seed}.jsonl"
            have = {t.episode_id: t for t in iter_jsonl(path, Trajectory)}
            missing = [(t, i) for t in tasks for i in range(n) if f"{t}#{i}" not in have]
            if missing:
                started, failed = time.perf_counter(), 0
                appender = JsonlAppender(path, Trajectory)
                for task, i in missing:
                    trajectory = run_episode(
                        env,
                        RandomPolicy(),
                        task,
                        seed=stable_seed(seed, "best-of-n", task, i),
                        max_steps=work.max_steps,
                        episode_id=f"{task}#{i}",
                    )
                    if trajectory.failed:
                        failed += 1
                        continue
                    appender.append(trajectory)
                    have[trajectory.episode_id] = trajectory
                print(
                    f"      {name}: {len(missing) - failed} episodes in "
                    f"{time.perf_counter() - started:.0f} s ({failed} failed)"
                )
            out[name] = {
                t: [have[f"{t}#{i}"] for i in range(n) if f"{t}#{i}" in have] for t in tasks
            }
    return out


def outcome(trajectory: Trajectory) -> tuple[bool, float]:
    """The environment's verdict: success and score (0 when it gave none)."""
    evaluation = trajectory.evaluation
    if evaluation is None:
        return False, 0.0
    return bool(evaluation.success), float(evaluation.score)


@dataclass(frozen=True)
class BonTask:
    """One Best-of-N task: its distinct candidates (by rendered text: identical texts get
    identical scores and outcomes) and what a random pick and the oracle get on it."""

    candidates: tuple[Trajectory, ...]
    random: dict[str, float]
    """A uniform pick among all N candidates: expected success, score and top-score rate."""
    best_score: float
    any_success: bool
    graded: bool
    """Its candidates' scores differ: the pick changes the score."""
    binary: bool
    """Every candidate scores 1 when it succeeds, else 0 (the score says no more than success)."""


def bon_tasks(candidates: Mapping[str, Sequence[Trajectory]]) -> dict[str, BonTask]:
    """The tasks where a pick matters (a candidate succeeds or the scores differ)."""
    out = {}
    for task, trajectories in candidates.items():
        outcomes = [outcome(t) for t in trajectories]
        scores = [score for _, score in outcomes]
        any_success = any(success for success, _ in outcomes)
        graded = bool(scores) and max(scores) > min(scores)
        if not (any_success or graded):
            continue
        best = max(scores)
        distinct: dict[str, Trajectory] = {}
        for t in trajectories:
            distinct.setdefault(render_trajectory(t), t)
        out[task] = BonTask(
            candidates=tuple(distinct.values()),
            random={
                "success": statistics.fmean(float(s) for s, _ in outcomes),
                "score": statistics.fmean(scores),
                "top": statistics.fmean(float(s == best) for s in scores),
            },
            best_score=best,
            any_success=any_success,
            graded=graded,
            binary=all(score == float(success) for success, score in outcomes),
        )
    return out


Bon = dict[str, dict[str, BonTask]]
"""Best-of-N set name -> task -> :class:`BonTask`."""


# -- scorers --------------------------------------------------------------------------------
def text_scorer(scorer: Any, render: Callable[[Trajectory], str]) -> PairScorer:
    """Any ``score_texts(intents, texts)`` scorer (a reward model, the LLM judge) reading each
    trajectory as ``render`` writes it (a reward model: ``model.render``, its view)."""

    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        return scorer.score_texts(list(intents), [render(t) for t in trajectories])

    return score


def cosine_scorer(embedder: MiniLMEmbedder, view: TrajectoryView) -> PairScorer:
    """The untrained backbone: cosine of the intent's and the trajectory's embeddings, the
    trajectory rendered by ``view`` (the reward models' text)."""

    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        distinct = list(dict.fromkeys(intents))  # many pairs share an intent: embed it once
        rows = {intent: i for i, intent in enumerate(distinct)}
        a = embedder.embed(distinct)[[rows[intent] for intent in intents]]
        b = embedder.embed([view.render(t) for t in trajectories])
        return (a * b).sum(axis=1).astype(float).tolist()

    return score


# -- metrics --------------------------------------------------------------------------------
def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (``k`` may be an expected count)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pairwise_outcomes(score: PairScorer, triplets: Sequence[Triplet]) -> list[float]:
    """Per triplet: 1 when the positive outscores the negative, 0.5 for a tie, else 0."""
    if not triplets:
        return []
    intents = [t.intent for t in triplets]
    pos = score(intents, [t.positive for t in triplets])
    neg = score(intents, [t.negative for t in triplets])
    return [1.0 if p > q else 0.5 if p == q else 0.0 for p, q in zip(pos, neg, strict=True)]


def pick_outcomes(score: PairScorer, bon: Bon) -> dict[str, dict[str, dict[str, float]]]:
    """Per set and task, the top-scored candidate's expected success, score and top-score
    rate (uniform over ties)."""
    keys, trajectories = [], []
    for name, tasks in bon.items():
        for task, b in tasks.items():
            for t in b.candidates:
                keys.append((name, task))
                trajectories.append(t)
    scores = score([t.intent for t in trajectories], trajectories) if trajectories else []
    top: dict[tuple[str, str], tuple[float, list[Trajectory]]] = {}
    for key, t, s in zip(keys, trajectories, scores, strict=True):
        best, picked = top.get(key, (-math.inf, []))
        if s > best:
            top[key] = (s, [t])
        elif s == best:
            picked.append(t)
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in bon}
    for (name, task), (_, picked) in top.items():
        outcomes = [outcome(t) for t in picked]
        best_score = bon[name][task].best_score
        out[name][task] = {
            "success": statistics.fmean(float(s) for s, _ in outcomes),
            "score": statistics.fmean(value for _, value in outcomes),
            "top": statistics.fmean(float(value == best_score) for _, value in outcomes),
        }
    return out


def reference_results(bon: Bon, val_pairs: int) -> dict[str, dict]:
    """The random pick's and the oracle's outcomes, in the scorers' format."""
    return {
        "random pick": {
            "val": [0.5] * val_pairs,
            "bon": {name: {t: b.random for t, b in tasks.items()} for name, tasks in bon.items()},
        },
        "oracle (best candidate)": {
            "val": [],
            "bon": {
                name: {
                    t: {"success": float(b.any_success), "score": b.best_score, "top": 1.0}
                    for t, b in tasks.items()
                }
                for name, tasks in bon.items()
            },
        },
    }


def _depth_label(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"


def prefix_pairs(bon: Bon, per_task: int, seed: int) -> dict[str, Any]:
    """Prefix pairs by depth from the Best-of-N candidates (see the module docstring):
    ``{"pairs": {depth label: [Triplet]}, "identical": {depth label: count}}``."""
    rng = random.Random(seed)
    pairs: dict[str, list[Triplet]] = {_depth_label(f): [] for f in PREFIX_DEPTHS}
    identical = dict.fromkeys(pairs, 0)
    for name in sorted(bon):
        for task in sorted(bon[name]):
            candidates = bon[name][task].candidates
            ordered = [
                (a, b)
                for a in candidates
                for b in candidates
                if outcome(a) > outcome(b) and a.steps and b.steps
            ]
            for better, worse in rng.sample(ordered, min(per_task, len(ordered))):
                shorter = min(len(better.steps), len(worse.steps))
                for fraction in PREFIX_DEPTHS:
                    label = _depth_label(fraction)
                    if fraction >= 1.0:
                        p, q = better, worse
                    else:
                        k = max(1, int(fraction * shorter + 0.5))
                        p, q = better.prefix(k), worse.prefix(k)
                    if render_trajectory(p) == render_trajectory(q):
                        identical[label] += 1
                        continue
                    pairs[label].append(
                        Triplet(
                            intent=better.intent,
                            positive=p.model_copy(update={"evaluation": None}),
                            negative=q.model_copy(update={"evaluation": None}),
                            task_id=task,
                            source="prefix",
                        )
                    )
    return {"pairs": pairs, "identical": identical}


def prefix_results(score: PairScorer, pairs: Mapping[str, Sequence[Triplet]]) -> dict:
    """Per depth label, the pairwise outcomes (1, 0.5 for a tie, 0) of ``score``."""
    started = time.perf_counter()
    result: dict = {"depths": {label: pairwise_outcomes(score, p) for label, p in pairs.items()}}
    result["eval_seconds"] = time.perf_counter() - started
    return result


def lazy(make: Callable[[], PairScorer]) -> PairScorer:
    """A scorer made on its first call (a reward model loaded only when something is
    computed, not when every result is reused)."""
    made: list[PairScorer] = []

    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        if not made:
            made.append(make())
        return made[0](intents, trajectories)

    return score


def prefix_table(
    results: Mapping[str, dict], prefix: Mapping[str, dict], identical: Mapping[str, int]
) -> list[str]:
    """Markdown rows, one per scorer with prefix results: accuracy at each depth (the 50% one
    with its 95% Wilson interval), beside the validation pairwise accuracy."""
    labels = list(identical)
    head = ["scorer", "val pairwise acc. (whole, relabeled)"]
    head += [f"prefix acc. @{label}" for label in labels]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, r in prefix.items():
        val = results.get(name, {}).get("val") or []
        cells = [name, f"{100 * statistics.fmean(val):.1f}%" if val else "-"]
        for label in labels:
            outcomes = r["depths"].get(label) or []
            if not outcomes:
                cells.append("n/a")
            elif label == "50%":
                cells.append(_rate(sum(outcomes), len(outcomes)))
            else:
                cells.append(f"{100 * statistics.fmean(outcomes):.1f}% ({len(outcomes)})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def evaluate(score: PairScorer, val: Sequence[Triplet], bon: Bon) -> dict:
    """Per-item outcomes: ``val`` (per triplet), ``bon`` (per set, per task), and seconds."""
    started = time.perf_counter()
    result: dict = {"val": pairwise_outcomes(score, val), "bon": pick_outcomes(score, bon)}
    result["eval_seconds"] = time.perf_counter() - started
    return result


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """``compute()`` once; its JSON is kept at ``path`` and read back on reruns."""
    if path.is_file():
        print(f"      reusing {path}")
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


@dataclass(frozen=True)
class Summary:
    """One scorer's Best-of-N numbers, pooled over the sets."""

    success: dict[str, tuple[float, int]]
    """Per set: expected successful picks and tasks with a successful candidate."""
    top: tuple[float, int]
    """Expected top-score picks and graded tasks."""
    mean_score: float
    """The pick's mean score on the graded tasks (nan without any)."""
    gap: float
    """``sum(pick - random) / sum(oracle - random)`` on the graded tasks (nan without any)."""
    gap_ci: tuple[float, float]


def summarize(result: dict, bon: Bon, seed: int = 0) -> Summary:
    """The Best-of-N numbers of ``result`` on the tasks it has outcomes for."""
    success: dict[str, tuple[float, int]] = {}
    top, graded, deltas = 0.0, 0, []
    for name, outcomes in result["bon"].items():
        k, n = 0.0, 0
        for task, o in outcomes.items():
            b = bon[name][task]
            if b.any_success:
                k, n = k + o["success"], n + 1
            if b.graded:
                top, graded = top + o["top"], graded + 1
                deltas.append(
                    (o["score"] - b.random["score"], b.best_score - b.random["score"], o["score"])
                )
        success[name] = (k, n)

    def share(items: Sequence[tuple[float, float, float]]) -> float:
        gap = sum(d[1] for d in items)
        return sum(d[0] for d in items) / gap if gap > 0 else math.nan

    if deltas:
        rng = random.Random(seed)
        draws = sorted(share(rng.choices(deltas, k=len(deltas))) for _ in range(BOOTSTRAP))
        draws = [d for d in draws if not math.isnan(d)]
        ci = (draws[int(0.025 * len(draws))], draws[int(0.975 * len(draws)) - 1])
        mean_score = statistics.fmean(d[2] for d in deltas)
    else:
        ci, mean_score = (math.nan, math.nan), math.nan
    return Summary(success, (top, graded), mean_score, share(deltas), ci)


def pooled_success(summary: Summary) -> tuple[float, int]:
    return (
        sum(k for k, _ in summary.success.values()),
        sum(n for _, n in summary.success.values()),
    )


# -- the benchmark --------------------------------------------------------------------------
def fit_sizes(sizes: Sequence[int], available: int, *, halves: bool) -> list[int]:
    """Default training sizes for ``available`` triplets: those of ``sizes`` that fit, and all
    of them; with ``halves``, when fewer than 3 sizes remain: an eighth, a quarter, a half and
    all of them (a small quickstart, e.g. ScienceWorld's ~230 triplets, still shows a trend)."""
    fitted = sorted({min(s, available) for s in sizes})
    if halves and len(fitted) < 3:
        fitted = sorted({max(1, available // d) for d in (8, 4, 2, 1)})
    return fitted


def digest(data: Any) -> str:
    """A short stable hash of JSON data (names a cache directory)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def trained_model(
    size: int,
    train: Sequence[Triplet],
    model_dir: Path,
    config: RewardModelConfig,
    trainer_config: RewardTrainerConfig,
) -> tuple[RewardModel, float | None]:
    """A reward model trained on the first ``size`` triplets, loaded when an earlier run
    finished it; and its training seconds."""
    path = model_dir / f"rm_{size}"
    if (path / "train_result.json").is_file():
        print(f"      reusing {path}")
        model = RewardModel.load(path)
        history = (model.training or {}).get("history") or []
        return model, sum(e["seconds"] for e in history) if history else None
    model = RewardModel.create(config)
    trainer = RewardTrainer(model, trainer_config)
    started = time.perf_counter()
    trainer.train(train[:size], output_dir=path, progress=False)
    return model, time.perf_counter() - started


def judge_results(val: Sequence[Triplet], bon: Bon, view: TrajectoryView) -> dict:
    """The LLM judge's outcomes, each trajectory rendered by ``view`` (the reward models'
    text, which also fits the local model's context), or ``{"error": why}`` when it cannot run
    (no ``[local]`` extra, a failing model ...). The model is loaded here and released on
    return."""
    try:
        from armap_agents.llm import make_chat_model
        from armap_agents.reward.judge import LLMJudge

        judge = LLMJudge(make_chat_model(JUDGE_MODEL), structured="json_object")
        result = evaluate(text_scorer(judge, view.render), val, bon)
    except Exception as exc:  # noqa: BLE001 - report the missing row, finish the rest
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {**result, "unparsed": judge.unparsed, "rated": judge.judgements}


def restrict(result: dict, pairs: int, tasks: Mapping[str, Sequence[str]]) -> dict:
    """``result`` on its first ``pairs`` validation triplets and the given tasks only."""
    return {
        **result,
        "val": result["val"][:pairs],
        "bon": {
            name: {t: outcomes[t] for t in tasks[name] if t in outcomes}
            for name, outcomes in result["bon"].items()
        },
    }


def _count(k: float) -> str:
    return f"{k:.0f}" if abs(k - round(k)) < 1e-9 else f"{k:.1f}"


def _rate(k: float, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * lo:.0f}-{100 * hi:.0f}%] ({_count(k)}/{n})"


def table(
    results: Mapping[str, dict], bon: Bon, *, success: bool, graded: bool, timings: bool
) -> list[str]:
    """Markdown rows, one per scorer: success columns when a task has a successful
    candidate, score columns when a task has graded candidates."""
    sets = list(bon)
    head = ["scorer", "train triplets", "val pairwise acc. (pairs)"]
    if success:
        head += [f"success pick, {name} (k/n)" for name in sets]
        head.append("success pick, pooled [95% CI]")
    if graded:
        head += ["top-score pick [95% CI] (k/n)", "mean score", "score gap closed [95% CI]"]
    if timings:
        head += ["train (s)", "eval (s)"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, r in results.items():
        s = summarize(r, bon)
        cells = [
            name,
            f"{r['train_triplets']:,}" if r.get("train_triplets") else "-",
            f"{100 * statistics.fmean(r['val']):.1f}% ({len(r['val'])})" if r["val"] else "-",
        ]
        if success:
            cells += [f"{_count(k)}/{n}" for k, n in s.success.values()]
            k, n = pooled_success(s)
            lo, hi = wilson(k, n)
            cells.append(f"{100 * k / n:.1f}% [{100 * lo:.0f}-{100 * hi:.0f}%]" if n else "n/a")
        if graded:
            k, n = s.top
            cells += [
                _rate(k, n) if n else "n/a",
                f"{100 * s.mean_score:.1f}" if n else "n/a",
                f"{100 * s.gap:.0f}% [{100 * s.gap_ci[0]:.0f} to {100 * s.gap_ci[1]:.0f}%]"
                if not math.isnan(s.gap)
                else "n/a",
            ]
        if timings:
            cells += [
                f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-",
                f"{r['eval_seconds']:.0f}" if r.get("eval_seconds") is not None else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


BASELINE_STYLES = {
    "random pick": ("#888", ":"),
    "oracle (best candidate)": ("k", "-"),
    "cosine (untrained)": ("C2", "--"),
    "LLM judge": ("C3", "-."),
}


def plot(
    results: Mapping[str, dict],
    sizes: Sequence[int],
    bon: Bon,
    title: str,
    path: Path,
    *,
    success: bool,
    graded: bool,
) -> Path:
    """Validation accuracy, and with ``success`` the success pick accuracy, with ``graded`` the
    score gap closed, against training triplets (log x); baselines as horizontal lines (the
    LLM judge's on its subset)."""
    summaries = {name: summarize(r, bon) for name, r in results.items()}
    rms = [f"RM@{s}" for s in sizes]

    def val(name: str) -> float:
        v = results[name]["val"]
        return 100 * statistics.fmean(v) if v else math.nan

    def success_rate(name: str) -> tuple[float, float, float]:
        k, n = pooled_success(summaries[name])
        lo, hi = wilson(k, n)
        return (100 * k / n, 100 * lo, 100 * hi) if n else (math.nan,) * 3

    def gap(name: str) -> tuple[float, float, float]:
        s = summaries[name]
        return 100 * s.gap, 100 * s.gap_ci[0], 100 * s.gap_ci[1]

    panels: list[tuple[str, Callable[[str], Any], str]] = [
        ("validation pairwise accuracy", val, "RM")
    ]
    if success:
        panels.append(("Best-of-N success pick accuracy", success_rate, "RM (95% Wilson)"))
    if graded:
        panels.append(
            ("Best-of-N score gap closed (random 0, oracle 100)", gap, "RM (95% bootstrap)")
        )
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (panel, metric, label) in zip(axes[0], panels, strict=True):
        values = [metric(name) for name in rms]
        if panel.startswith("validation"):
            ax.plot(sizes, values, marker="o", label=label)
        else:
            ax.errorbar(
                sizes,
                [v[0] for v in values],
                yerr=[[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]],
                marker="o",
                capsize=3,
                label=label,
            )
        for name, (color, line) in BASELINE_STYLES.items():
            if name not in results:
                continue
            value = metric(name)
            value = value if isinstance(value, float) else value[0]
            if not math.isnan(value):  # (the oracle has no validation accuracy)
                line_label = name + (" (subset)" if name == "LLM judge" else "")
                ax.axhline(value, color=color, linestyle=line, label=line_label)
        ax.set_xscale("log")
        ax.set_xticks(list(sizes))
        ax.set_xticklabels([f"{s:,}" for s in sizes])
        ax.minorticks_off()
        ax.set(xlabel="training triplets", ylabel="%", title=panel)
        if not panel.startswith("Best-of-N score"):
            ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=list(ENVS), default="game24")
    parser.add_argument(
        "--sizes",
        help="training triplets, comma-separated (default 250,500,1000,2000, fitted to the "
        "available triplets)",
    )
    parser.add_argument(
        "--n",
        type=int,
        help="Best-of-N candidates per task (default: 32 for game24, else the quickstart's N)",
    )
    parser.add_argument("--val-pairs", type=int, help="validation triplets (default 500)")
    parser.add_argument(
        "--judge-tasks",
        "--judge-puzzles",
        dest="judge_tasks",
        type=int,
        help="LLM judge: tasks per Best-of-N set (default 2; 0: no judge)",
    )
    parser.add_argument(
        "--judge-pairs", type=int, help="LLM judge: validation triplets (default 30; 0: no judge)"
    )
    parser.add_argument(
        "--prefix-pairs-per-task",
        type=int,
        default=PREFIX_PAIRS_PER_TASK,
        help="prefix accuracy: (better, worse) candidate pairs per Best-of-N task, each cut at "
        f"every depth (default {PREFIX_PAIRS_PER_TASK})",
    )
    parser.add_argument("--train-tasks", type=int, help="train tasks (default: the quickstart's)")
    parser.add_argument("--test-tasks", type=int, help="test tasks (default: the quickstart's)")
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2", help="reward-model backbone")
    parser.add_argument(
        "--max-length",
        type=int,
        help="reward-model window in tokens (default 128 for game24, else 512)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="default benchmarks/runs/reward_quality[-ENV][-quick]; runs/quickstart-ENV "
        "reuses a quickstart's data",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: sizes 100,200, N 8, 100 validation pairs, no judge, a few tasks; "
        "results stay in the run directory",
    )
    args = parser.parse_args()
    quick_train, quick_test = QUICK_TASKS[args.env]
    fill = {
        "n": DEFAULT_N.get(args.env, QUICK["n"]) if args.quick else None,
        "val_pairs": QUICK["val_pairs"] if args.quick else 500,
        "judge_tasks": 0 if args.quick else 2,
        "judge_pairs": 0 if args.quick else 30,
        "train_tasks": quick_train if args.quick else None,
        "test_tasks": quick_test if args.quick else None,
        "max_length": WINDOWS.get(args.env, DEFAULT_WINDOW),
    }
    for key, value in fill.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.default_sizes = args.sizes is None
    try:
        args.sizes = (
            sorted({int(s) for s in args.sizes.split(",") if s.strip()})
            if args.sizes is not None
            else list(QUICK["sizes"] if args.quick else DEFAULT_SIZES)
        )
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    positive = [args.val_pairs, args.epochs, args.max_length, args.prefix_pairs_per_task]
    positive += [v for v in (args.n, args.train_tasks, args.test_tasks) if v is not None]
    if not args.sizes or args.sizes[0] < 1 or min(positive) < 1:
        parser.error(
            "--sizes, --n, --val-pairs, --epochs, --max-length, --prefix-pairs-per-task, "
            "--train-tasks and --test-tasks must be positive"
        )
    if min(args.judge_tasks, args.judge_pairs) < 0:
        parser.error("--judge-tasks and --judge-pairs cannot be negative")
    if args.run_dir is None:
        suffix = ("" if args.env == "game24" else f"-{args.env}") + ("-quick" if args.quick else "")
        args.run_dir = Path(f"benchmarks/runs/{NAME}{suffix}")
    args.parser = parser
    return args


def run() -> int:
    args = parse_args()
    started = time.perf_counter()
    env_title = ENVS[args.env]
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    registry = default_registry()

    print(f"[1/5] triplets ({env_title}): random-policy exploration, hindsight relabeling")
    with opened_factory(args.env) as factory:
        work = workload(args.env, factory, args.train_tasks, args.test_tasks)
        n = args.n or DEFAULT_N.get(args.env) or quickstart_plan(args.env, "full", llm=False).n
        train, val_all = prepare_triplets(run_dir, work, factory, args.seed)
        data_minutes = (time.perf_counter() - started) / 60
        print(
            f"      {len(work.train_tasks)} train tasks x {work.episodes} episodes "
            f"(at most {work.max_steps} steps): {len(train):,} train / {len(val_all):,} "
            "validation triplets"
        )
        print(f"[2/5] Best-of-{n} candidates (random policy) for test and held-out tasks")
        candidates = candidate_sets(run_dir, work, factory, n, args.seed)
    candidates_minutes = (time.perf_counter() - started) / 60 - data_minutes
    sizes = args.sizes
    if args.default_sizes and train:
        sizes = fit_sizes(sizes, len(train), halves=not args.quick)
    if not train or sizes[-1] > len(train):
        args.parser.error(f"--sizes asks for {sizes[-1]} triplets; {run_dir} has {len(train)}")
    random.Random(args.seed).shuffle(train)  # nested subsets: each size extends the last
    val = random.Random(args.seed).sample(val_all, min(args.val_pairs, len(val_all)))
    bon = {name: bon_tasks(c) for name, c in candidates.items()}
    eligible = sum(b.any_success for tasks in bon.values() for b in tasks.values())
    graded = sum(b.graded for tasks in bon.values() for b in tasks.values())
    counts = {
        name: (
            sum(b.any_success for b in bon[name].values()),
            sum(b.graded for b in bon[name].values()),
            len(c),
        )
        for name, c in candidates.items()
    }
    for name, (k, g, total) in counts.items():
        print(f"      {name}: of {total} tasks, {k} have a successful candidate, {g} graded ones")
    kinds = collections.Counter(t.source for t in train)
    kinds_line = ", ".join(f"{kind} {count:,}" for kind, count in sorted(kinds.items()))
    print(f"      train triplets by kind: {kinds_line}")
    made = prefix_pairs(bon, args.prefix_pairs_per_task, args.seed)
    pairs, identical = made["pairs"], made["identical"]
    print(
        "      prefix pairs by depth: "
        + ", ".join(
            f"{label} {len(p)} ({identical[label]} same text)" for label, p in pairs.items()
        )
    )

    view = registry.reward_view(args.env)
    window_view = view.for_window(args.max_length)  # what the reward models read
    config = RewardModelConfig(
        backbone=args.backbone, max_length=args.max_length, view=view, seed=args.seed
    )
    trainer_config = RewardTrainerConfig(epochs=args.epochs, batch_size=32, seed=args.seed)
    model_key = {
        "model": config.model_dump(mode="json"),
        "trainer": trainer_config.model_dump(mode="json"),
        "train_triplets": len(train),
    }
    eval_key = {
        **model_key,
        "val": len(val_all),
        "bon": {name: sorted(tasks) for name, tasks in candidates.items()},
    }
    quality = run_dir / "quality"
    model_dir = quality / f"models-{digest(model_key)}"
    out_dir = quality / f"seed{args.seed}.n{n}.val{args.val_pairs}.{digest(eval_key)}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "settings.json").write_text(json.dumps(eval_key, indent=2))
    prefix_key = {"per_task": args.prefix_pairs_per_task, "depths": PREFIX_DEPTHS}
    prefix_dir = out_dir / f"prefix-{digest(prefix_key)}"
    prefix: dict[str, dict] = {}

    print("[3/5] baselines: random pick, oracle, cosine of the untrained backbone's embeddings")
    results: dict[str, dict] = reference_results(bon, len(val))
    try:
        embedder = MiniLMEmbedder(args.backbone, max_length=args.max_length)
    except Exception as exc:  # noqa: BLE001 - e.g. a decoder backbone: report, finish the rest
        cosine_note = f"cosine (untrained): not run ({type(exc).__name__}: {exc})"
    else:
        cosine_note = ""
        scorer = cosine_scorer(embedder, window_view)
        results["cosine (untrained)"] = cached(
            out_dir / "cosine.json", lambda: evaluate(scorer, val, bon)
        )
        prefix["cosine (untrained)"] = cached(
            prefix_dir / "cosine.json", lambda: prefix_results(scorer, pairs)
        )
        del embedder, scorer
    print(f"[4/5] reward models: {args.epochs} epoch(s) on {', '.join(f'{s:,}' for s in sizes)}")

    def rm_scorer(size: int, seconds: dict[str, float | None]) -> PairScorer:
        def make() -> PairScorer:
            model, seconds["train"] = trained_model(size, train, model_dir, config, trainer_config)
            return text_scorer(model, model.render)

        return lazy(make)  # loaded only when a result below is not cached

    for size in sizes:
        print(f"      {size:,} triplets")
        seconds: dict[str, float | None] = {}
        scorer = rm_scorer(size, seconds)

        def rm_result(
            scorer: PairScorer = scorer, size: int = size, seconds: dict = seconds
        ) -> dict:
            result = evaluate(scorer, val, bon)
            return {**result, "train_triplets": size, "train_seconds": seconds.get("train")}

        results[f"RM@{size}"] = cached(out_dir / f"rm_{size}.json", rm_result)
        prefix[f"RM@{size}"] = cached(
            prefix_dir / f"rm_{size}.json",
            lambda scorer=scorer: prefix_results(scorer, pairs),
        )

    judge_subset: dict[str, list[str]] | None = None
    judge_note = ""
    if args.judge_tasks > 0 and args.judge_pairs > 0:
        judge_val = val[: args.judge_pairs]
        judge_bon = {name: dict(list(p.items())[: args.judge_tasks]) for name, p in bon.items()}
        judge_subset = {name: list(p) for name, p in judge_bon.items()}
        rated = 2 * len(judge_val) + sum(
            len(b.candidates) for tasks in judge_bon.values() for b in tasks.values()
        )
        path = out_dir / f"judge.json_object.p{args.judge_tasks}.v{args.judge_pairs}.json"
        judge_note = (
            f"LLM judge ({JUDGE_MODEL}, 1-10 rating): on the first {len(judge_val)} validation "
            f"triplets and the first {args.judge_tasks} tasks of each set where the pick matters "
            f"({rated} trajectories rated)"
        )
        print(f"[5/5] {judge_note}")
        result = cached(path, lambda: judge_results(judge_val, judge_bon, window_view))
        if "error" in result:
            path.unlink()  # not a result: try again next run
            judge_note = f"LLM judge: not run ({result['error']})"
            judge_subset = None
        else:
            results["LLM judge"] = result
            judge_note += (
                f"; {result['unparsed']} of {result['rated']} replies had no rating (scored 0.5)"
            )
    else:
        print("[5/5] LLM judge: skipped (--judge-tasks or --judge-pairs is 0)")

    minutes = (time.perf_counter() - started) / 60
    baselines = ("random pick", "oracle (best candidate)", "cosine (untrained)", "LLM judge")
    ordered = {
        (name + " (subset)" if name == "LLM judge" else name): results[name]
        for name in [*baselines, *(f"RM@{s}" for s in sizes)]
        if name in results
    }
    binary = all(b.binary for tasks in bon.values() for b in tasks.values())
    shown = {"success": eligible > 0, "graded": graded > 0 and not binary}
    sets_line = "; ".join(
        f"{name}: {k} with a success, {g} graded, of {total}"
        for name, (k, g, total) in counts.items()
    )
    lines = [
        f"## Reward-model quality vs training triplets ({env_title})",
        "",
        _report.header(("llama-cpp-python",)),
        "",
        f"{len(work.train_tasks)} train tasks x {work.episodes} random-policy episodes (at most "
        f"{work.max_steps} steps), relabeled: {len(train):,} train triplets (nested random "
        f"subsets, {args.epochs} epoch(s) each) and {len(val)} of {len(val_all):,} validation "
        f"triplets of held-out tasks. Reward models: {args.backbone}, window {args.max_length} "
        f"tokens, view budget {window_view.max_chars} characters. Best-of-{n} random-policy "
        f"candidates per task; tasks where the pick matters ({sets_line}). A tie at the top "
        "counts as a uniform pick among the tied candidates (hence fractional k). Success pick: "
        "on the tasks with a successful candidate, 95% Wilson interval pooled over the sets. "
        "Top-score pick, mean score (x100) and score gap closed ((pick - random) / (oracle - "
        "random), 95% bootstrap interval over tasks): on the graded tasks.",
    ]
    if not shown["success"]:
        lines += ["", "No task has a successful candidate: success pick accuracy is undefined."]
    if not graded:
        lines += ["", "No task has candidates of different scores: no score pick metric."]
    elif binary:
        lines += ["", "Every score is the success (1 or 0): the score columns would repeat these."]
    lines += ["", *table(ordered, bon, **shown, timings=True)]
    n_pairs = ", ".join(f"{label} {len(p)}" for label, p in pairs.items())
    same = ", ".join(f"{label} {k}" for label, k in identical.items())
    lines += [
        "",
        "### Prefix pairwise accuracy by depth",
        "",
        f"Training triplets by kind: {kinds_line}. Prefix pairs: up to "
        f"{args.prefix_pairs_per_task} (better, worse) pairs of Best-of-{n} candidates per task "
        "where the pick matters (the task's own instruction; better: success, then score), "
        "both cut to k = round(depth x the shorter one's steps), at least 1; 100% is the whole "
        f"pair. Pairs per depth: {n_pairs}; left out as the same text at that depth: {same}. "
        "The 50% column has a 95% Wilson interval. The label (the prefix of the one that ended "
        "better is better) is outcome-supervised, not verified.",
        "",
        *prefix_table(results, prefix, identical),
    ]
    if cosine_note:
        lines += ["", cosine_note + "."]
    if "LLM judge" in results and judge_subset is not None:
        subset = {
            name.removesuffix(" (subset)"): restrict(r, args.judge_pairs, judge_subset)
            for name, r in ordered.items()
        }
        lines += ["", f"The same scorers on the LLM judge's subset. {judge_note}.", ""]
        lines += table(subset, bon, **shown, timings=False)
    elif judge_note:
        lines += ["", judge_note + "."]
    trained = sum(r.get("train_seconds") or 0.0 for r in results.values()) / 60
    scored = sum(r.get("eval_seconds") or 0.0 for r in results.values()) / 60
    lines += [
        "",
        f"Training took {trained:.1f} min and scoring {scored:.1f} min in the runs that made "
        f"these results (kept in {run_dir}, reused on reruns); this invocation took "
        f"{minutes:.1f} min (data {data_minutes:.1f}, candidates {candidates_minutes:.1f}). "
        f"torch threads: {torch.get_num_threads()}.",
    ]
    name = NAME if args.env == "game24" else f"{NAME}_{args.env}"
    title = f"Reward-model quality ({env_title})"
    if args.quick:  # a smoke test: its table and plot stay in the run directory
        figure = plot(results, sizes, bon, title, run_dir / f"{name}.png", **shown)
        lines.append(f"\n![reward-model quality]({figure.name})")
        markdown = "\n".join(lines)
        print(markdown)
        (run_dir / f"{name}.md").write_text(markdown + "\n", encoding="utf-8")
        print(f"\nsaved {run_dir / f'{name}.md'}")
    else:
        figure = plot(results, sizes, bon, title, _report.figure_path(name), **shown)
        lines.append(f"\n![reward-model quality]({figure.name})")
        _report.save_results(name, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run())
