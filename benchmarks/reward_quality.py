"""Reward-model quality against the number of synthesized training triplets (Game of 24).

Data: every Game of 24 train puzzle explored by the random policy (4 episodes of at most 10
steps, seed 0) and relabeled in hindsight into ``(intent, positive, negative)`` triplets, split
by puzzle into train / validation (10%) -- the same settings as ``armap quickstart --env
game24``, so ``--run-dir benchmarks/runs/game24`` reuses a quickstart run's artifacts.

Scorers: a random pick (the floor); the untrained backbone (cosine similarity of the
mean-pooled MiniLM embeddings of the intent and of the rendered trajectory); an LLM judge with
the local model (``LLMJudge(make_chat_model("local:smollm2"))``, on a capped subset: it takes
seconds per call); and reward models trained for one epoch on nested random subsets of the
training triplets (``--sizes``).

Metrics, all on data no reward model trained on:

* validation pairwise accuracy: how often the positive outscores the negative, on a fixed
  sample of triplets of the held-out validation puzzles;
* Best-of-N pick accuracy: N random-policy candidates per puzzle (seeded, generated once and
  cached), for the test puzzles (ranks 901-1000) and for the validation-split train puzzles
  (held out from training); among the puzzles where at least one candidate succeeds, how often
  the scorer's top pick succeeds. Ties at the top count as a uniform random pick among them
  (an expected, possibly fractional, count). The 95% interval is Wilson's.

Run (offline; about 13 minutes on 2 idle cores by the estimate in benchmarks/README.md, far
longer when the cores are shared)::

    python benchmarks/reward_quality.py
    python benchmarks/reward_quality.py --sizes 250,500,1000,2000,4000,8000,16000 --n 64

(the second, larger setting takes about an hour on 2 idle cores, mostly training).
Defaults: ``--sizes 250,500,1000,2000`` (one epoch each), ``--n 32``, ``--val-pairs 500``, the
judge on ``--judge-pairs 30`` validation triplets and the first ``--judge-puzzles 2`` eligible
puzzles of each Best-of-N set (all their candidates); the table repeats every scorer on that
subset. ``--run-dir benchmarks/runs/game24`` reuses the data of ``armap quickstart``.
Every artifact (trajectories, triplets, candidates, trained models, per-scorer results) stays
in the run directory; a rerun reuses them and only computes what is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import _report
import torch

from armap_agents import Game24Env, RandomPolicy, RewardModel, RewardModelConfig, run_episode
from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents._seeding import stable_seed
from armap_agents.environments.game24 import Game24Relabeler
from armap_agents.graphs.explore import ExploreConfig, explore
from armap_agents.graphs.synthesize import (
    TRAIN_FILE,
    VAL_FILE,
    SynthesizeConfig,
    split_of,
    synthesize,
)
from armap_agents.memory import MiniLMEmbedder
from armap_agents.reward.train import RewardTrainer, RewardTrainerConfig
from armap_agents.synthesizers import RelabelSynthesizer
from armap_agents.types import Trajectory, Triplet, render_trajectory

NAME = "reward_quality"
MAX_STEPS = 10  # as the quickstart; a random game takes 3 steps
VAL_FRACTION = 0.1
JUDGE_MODEL = "local:smollm2"

PairScorer = Callable[[Sequence[str], Sequence[Trajectory]], list[float]]
"""Scores ``(intent, trajectory)`` pairs, one float each, higher is better."""


# -- data -----------------------------------------------------------------------------------
def prepare_triplets(run_dir: Path, seed: int) -> tuple[list[Triplet], list[Triplet]]:
    """Explore and relabel (or reuse what the run directory has): ``(train, val)`` triplets."""
    trajectories = run_dir / "trajectories.jsonl"
    synthesis = run_dir / "synthesis"
    if not (synthesis / TRAIN_FILE).is_file():
        explore(
            RandomPolicy(),
            Game24Env,
            trajectories,
            ExploreConfig(split="train", episodes_per_task=4, max_steps=MAX_STEPS, seed=seed),
        )
        synthesize(
            RelabelSynthesizer(Game24Relabeler()),
            trajectories,
            synthesis,
            SynthesizeConfig(val_fraction=VAL_FRACTION, seed=seed),
        )
    return read_jsonl(synthesis / TRAIN_FILE, Triplet), read_jsonl(synthesis / VAL_FILE, Triplet)


def candidate_sets(run_dir: Path, n: int, seed: int) -> dict[str, dict[str, list[Trajectory]]]:
    """N random-policy candidates per puzzle of the two Best-of-N sets, cached as JSONL.

    ``test``: ranks 901-1000. ``held-out``: the train puzzles of the validation split, whose
    triplets no reward model sees."""
    env = Game24Env()
    sets = {
        "test": env.task_ids("test"),
        "held-out": [t for t in env.task_ids("train") if split_of(t, VAL_FRACTION, seed) == "val"],
    }
    out: dict[str, dict[str, list[Trajectory]]] = {}
    for name, tasks in sets.items():
        path = run_dir / f"bon_candidates.{name}.n{n}.seed{seed}.jsonl"
        if not path.is_file():
            episodes = [
                run_episode(
                    env,
                    RandomPolicy(),
                    task,
                    seed=stable_seed(seed, "best-of-n", task, i),
                    max_steps=MAX_STEPS,
                    episode_id=f"{task}#{i}",
                )
                for task in tasks
                for i in range(n)
            ]
            write_jsonl(path, episodes)
        by_task: dict[str, list[Trajectory]] = {t: [] for t in tasks}
        for trajectory in read_jsonl(path, Trajectory):
            by_task[trajectory.task_id].append(trajectory)
        out[name] = by_task
    return out


def _success(trajectory: Trajectory) -> bool:
    return bool(trajectory.evaluation and trajectory.evaluation.success)


def eligible(candidates: dict[str, list[Trajectory]]) -> dict[str, list[Trajectory]]:
    """The puzzles where at least one candidate succeeds, each with its distinct candidates
    (by rendered text: identical texts get identical scores and outcomes)."""
    out = {}
    for task, trajectories in candidates.items():
        if any(map(_success, trajectories)):
            distinct: dict[str, Trajectory] = {}
            for t in trajectories:
                distinct.setdefault(render_trajectory(t), t)
            out[task] = list(distinct.values())
    return out


# -- scorers --------------------------------------------------------------------------------
def reward_model_scorer(model: RewardModel) -> PairScorer:
    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        return model.score_texts(intents, [render_trajectory(t) for t in trajectories])

    return score


def cosine_scorer(embedder: MiniLMEmbedder) -> PairScorer:
    """The untrained backbone: cosine of the intent's and the trajectory's embeddings."""

    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        distinct = list(dict.fromkeys(intents))  # many pairs share an intent: embed it once
        rows = {intent: i for i, intent in enumerate(distinct)}
        a = embedder.embed(distinct)[[rows[intent] for intent in intents]]
        b = embedder.embed([render_trajectory(t) for t in trajectories])
        return (a * b).sum(axis=1).astype(float).tolist()

    return score


def grouped_scorer(judge) -> PairScorer:
    """Any ``score(intent, trajectories)`` scorer, called once per distinct intent."""

    def score(intents: Sequence[str], trajectories: Sequence[Trajectory]) -> list[float]:
        groups: dict[str, list[int]] = {}
        for i, intent in enumerate(intents):
            groups.setdefault(intent, []).append(i)
        out = [0.0] * len(intents)
        for intent, idx in groups.items():
            for i, s in zip(idx, judge.score(intent, [trajectories[i] for i in idx]), strict=True):
                out[i] = float(s)
        return out

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
    intents = [t.intent for t in triplets]
    pos = score(intents, [t.positive for t in triplets])
    neg = score(intents, [t.negative for t in triplets])
    return [1.0 if p > q else 0.5 if p == q else 0.0 for p, q in zip(pos, neg, strict=True)]


def pick_outcomes(score: PairScorer, puzzles: dict[str, list[Trajectory]]) -> dict[str, float]:
    """Per puzzle: the chance that the top-scored candidate succeeds (uniform over ties)."""
    if not puzzles:
        return {}
    intents, trajectories, owner = [], [], []
    for task, candidates in puzzles.items():
        for t in candidates:
            intents.append(t.intent)
            trajectories.append(t)
            owner.append(task)
    scores = score(intents, trajectories)
    best: dict[str, tuple[float, list[bool]]] = {}
    for task, t, s in zip(owner, trajectories, scores, strict=True):
        top, outcomes = best.get(task, (-math.inf, []))
        if s > top:
            best[task] = (s, [_success(t)])
        elif s == top:
            outcomes.append(_success(t))
    return {task: statistics.fmean(outcomes) for task, (_, outcomes) in best.items()}


def random_pick_outcomes(candidates: dict[str, list[Trajectory]]) -> dict[str, float]:
    """Per eligible puzzle: the success fraction of its N candidates (a uniform pick)."""
    return {
        task: statistics.fmean(map(_success, ts))
        for task, ts in candidates.items()
        if any(map(_success, ts))
    }


def evaluate(
    score: PairScorer, val: Sequence[Triplet], bon: dict[str, dict[str, list[Trajectory]]]
) -> dict:
    """Per-item outcomes: ``val`` (per triplet), ``bon`` (per set, per puzzle), and seconds."""
    started = time.perf_counter()
    result: dict = {
        "val": pairwise_outcomes(score, val),
        "bon": {name: pick_outcomes(score, puzzles) for name, puzzles in bon.items()},
    }
    result["eval_seconds"] = time.perf_counter() - started
    return result


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """``compute()`` once; its JSON is kept at ``path`` and read back on reruns."""
    if path.is_file():
        print(f"  reusing {path}")
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


# -- the benchmark --------------------------------------------------------------------------
def train_and_evaluate(
    size: int, train: Sequence[Triplet], val, bon, out_dir: Path, seed: int
) -> dict:
    model = RewardModel.create(RewardModelConfig(max_length=128, seed=seed))
    trainer = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=32, seed=seed))
    started = time.perf_counter()
    trainer.train(train[:size], output_dir=out_dir / f"rm_{size}", progress=False)
    seconds = time.perf_counter() - started
    result = evaluate(reward_model_scorer(model), val, bon)
    result.update(train_triplets=size, train_seconds=seconds)
    return result


def judge_results(val: Sequence[Triplet], bon: dict[str, dict[str, list[Trajectory]]]) -> dict:
    """The LLM judge's outcomes (the model is loaded here and released on return), or
    ``{"error": why}`` when it cannot run (no ``[local]`` extra, no judge module ...)."""
    try:
        from armap_agents.llm import make_chat_model
        from armap_agents.reward.judge import LLMJudge

        judge = LLMJudge(make_chat_model(JUDGE_MODEL), structured="json_object")
    except Exception as exc:  # noqa: BLE001 - report the missing row, finish the rest
        return {"error": f"{type(exc).__name__}: {exc}"}
    result = evaluate(grouped_scorer(judge), val, bon)
    return {**result, "unparsed": judge.unparsed, "rated": judge.judgements}


def restrict(result: dict, pairs: int | None, puzzles: dict[str, list[str]] | None) -> dict:
    """``result`` on the first ``pairs`` validation triplets and the given puzzles only."""
    bon = result["bon"]
    return {
        **result,
        "val": result["val"][:pairs] if pairs is not None else result["val"],
        "bon": {
            name: {t: bon[name][t] for t in puzzles[name]} if puzzles else outcomes
            for name, outcomes in bon.items()
        },
    }


def pooled(result: dict) -> tuple[float, int]:
    """Expected successful picks and eligible puzzles over all Best-of-N sets."""
    return (
        sum(sum(o.values()) for o in result["bon"].values()),
        sum(len(o) for o in result["bon"].values()),
    )


def _count(k: float) -> str:
    return f"{k:.0f}" if abs(k - round(k)) < 1e-9 else f"{k:.1f}"


def table(results: dict[str, dict], sets: Sequence[str], *, timings: bool) -> list[str]:
    """Markdown rows: one per scorer."""
    head = (
        "| scorer | train triplets | val pairwise acc. (pairs) | "
        + " | ".join(f"BoN pick, {name} (k/n)" for name in sets)
        + " | BoN pick, pooled [95% CI] |"
    )
    rule = "|---|---:|---:|" + "---:|" * len(sets) + "---:|"
    if timings:
        head += " train (s) | eval (s) |"
        rule += "---:|---:|"
    lines = [head, rule]
    for name, r in results.items():
        k, n = pooled(r)
        lo, hi = wilson(k, n)
        cells = [
            name,
            f"{r['train_triplets']:,}" if r.get("train_triplets") else "-",
            f"{100 * statistics.fmean(r['val']):.1f}% ({len(r['val'])})" if r["val"] else "n/a",
            *(f"{_count(sum(r['bon'][s].values()))}/{len(r['bon'][s])}" for s in sets),
            f"{100 * k / n:.1f}% [{100 * lo:.0f}-{100 * hi:.0f}%]" if n else "n/a",
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
    "cosine (untrained)": ("C2", "--"),
    "LLM judge": ("C3", "-."),
}


def plot(results: dict[str, dict], sizes: Sequence[int], path: Path) -> Path:
    """Validation and Best-of-N pick accuracy against training triplets (log x); baselines
    as horizontal lines (the LLM judge's on its subset)."""
    plt = pyplot()
    fig, (ax_val, ax_bon) = plt.subplots(1, 2, figsize=(11, 4))
    rms = [results[f"RM@{s}"] for s in sizes]
    ax_val.plot(sizes, [100 * statistics.fmean(r["val"]) for r in rms], marker="o", label="RM")
    points = []
    for r in rms:
        k, n = pooled(r)
        lo, hi = wilson(k, n)
        points.append((100 * k / n, 100 * lo, 100 * hi) if n else (math.nan,) * 3)
    ax_bon.errorbar(
        sizes,
        [p[0] for p in points],
        yerr=[[p[0] - p[1] for p in points], [p[2] - p[0] for p in points]],
        marker="o",
        capsize=3,
        label="RM (95% Wilson)",
    )
    for name, (color, line) in BASELINE_STYLES.items():
        if name not in results:
            continue
        r = results[name]
        label = name + (" (subset)" if name == "LLM judge" else "")
        ax_val.axhline(100 * statistics.fmean(r["val"]), color=color, linestyle=line, label=label)
        k, n = pooled(r)
        if n:
            ax_bon.axhline(100 * k / n, color=color, linestyle=line, label=label)
    titles = {ax_val: "validation pairwise accuracy", ax_bon: "Best-of-N pick accuracy"}
    for ax, title in titles.items():
        ax.set_xscale("log")
        ax.set_xticks(list(sizes))
        ax.set_xticklabels([f"{s:,}" for s in sizes])
        ax.minorticks_off()
        ax.set(xlabel="training triplets (one epoch)", ylabel="%", title=title)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="250,500,1000,2000", help="training triplets, comma-separated"
    )
    parser.add_argument("--n", type=int, default=32, help="Best-of-N candidates per puzzle")
    parser.add_argument("--val-pairs", type=int, default=500, help="validation triplets")
    parser.add_argument(
        "--judge-puzzles", type=int, default=2, help="LLM judge: puzzles per set (0: no judge)"
    )
    parser.add_argument("--judge-pairs", type=int, default=30, help="LLM judge: val triplets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=Path("benchmarks/runs/reward_quality"))
    args = parser.parse_args()
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    if not sizes or sizes[0] < 1 or args.n < 1 or args.val_pairs < 1:
        parser.error("--sizes, --n and --val-pairs must be positive")
    started = time.perf_counter()
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = run_dir / "quality" / f"seed{args.seed}.n{args.n}.val{args.val_pairs}"

    print("[1/5] triplets: random-policy exploration of the train puzzles, hindsight relabeling")
    train, val_all = prepare_triplets(run_dir, args.seed)
    if sizes[-1] > len(train):
        parser.error(f"--sizes asks for {sizes[-1]} triplets; {run_dir} has {len(train)}")
    random.Random(args.seed).shuffle(train)  # nested subsets: each size extends the last
    val = random.Random(args.seed).sample(val_all, min(args.val_pairs, len(val_all)))
    print(f"      {len(train):,} train / {len(val_all):,} validation triplets")

    print(f"[2/5] Best-of-{args.n} candidates (random policy) for test and held-out puzzles")
    candidates = candidate_sets(run_dir, args.n, args.seed)
    bon = {name: eligible(c) for name, c in candidates.items()}
    sets = list(bon)
    for name, c in candidates.items():
        print(f"      {name}: {len(bon[name])} of {len(c)} puzzles have a successful candidate")

    print("[3/5] baselines: random pick, cosine of the untrained MiniLM embeddings")
    results: dict[str, dict] = {
        "random pick": {
            "val": [0.5] * len(val),
            "bon": {name: random_pick_outcomes(c) for name, c in candidates.items()},
        }
    }
    results["cosine (untrained)"] = cached(
        out_dir / "cosine.json", lambda: evaluate(cosine_scorer(MiniLMEmbedder()), val, bon)
    )
    print(f"[4/5] reward models: one epoch on {', '.join(f'{s:,}' for s in sizes)} triplets")
    for size in sizes:
        print(f"      {size:,} triplets")
        results[f"RM@{size}"] = cached(
            out_dir / f"rm_{size}.json",
            lambda size=size: train_and_evaluate(size, train, val, bon, out_dir, args.seed),
        )

    judge_subset = None
    judge_note = ""
    if args.judge_puzzles > 0:
        judge_val = val[: args.judge_pairs]
        judge_bon = {name: dict(list(p.items())[: args.judge_puzzles]) for name, p in bon.items()}
        judge_subset = {name: list(p) for name, p in judge_bon.items()}
        scored = 2 * len(judge_val) + sum(len(ts) for p in judge_bon.values() for ts in p.values())
        path = out_dir / f"judge.json_object.p{args.judge_puzzles}.v{args.judge_pairs}.json"
        judge_note = (
            f"LLM judge ({JUDGE_MODEL}, 1-10 rating): on the first {len(judge_val)} validation "
            f"triplets and the first {args.judge_puzzles} eligible puzzles of each set "
            f"({scored} trajectories rated)"
        )
        print(f"[5/5] {judge_note}")
        result = cached(path, lambda: judge_results(judge_val, judge_bon))
        if "error" in result:
            path.unlink()  # not a result: try again next run
            judge_note = f"LLM judge: not run ({result['error']})"
            judge_subset = None
        else:
            results["LLM judge"] = result
            judge_note += (
                f"; {result['unparsed']} of {result['rated']} replies had no rating (scored 0.5)"
            )

    minutes = (time.perf_counter() - started) / 60
    baselines = ("random pick", "cosine (untrained)", "LLM judge")
    ordered = {
        (name + " (subset)" if name == "LLM judge" else name): results[name]
        for name in [*baselines, *(f"RM@{s}" for s in sizes)]
        if name in results
    }
    lines = [
        "## Reward-model quality vs training triplets (Game of 24)",
        "",
        _report.header(("llama-cpp-python",)),
        "",
        f"{len(train):,} relabeled train triplets (nested random subsets, one epoch each); "
        f"{len(val)} validation triplets of held-out puzzles; Best-of-{args.n} random-policy "
        "candidates, puzzles with at least one success: "
        + ", ".join(f"{name} {len(bon[name])} of {len(candidates[name])}" for name in sets)
        + ". A tie at the top counts as a uniform pick among the tied candidates (hence "
        "fractional k); the interval is the 95% Wilson interval of the pooled sets.",
        "",
        *table(ordered, sets, timings=True),
    ]
    if "LLM judge" in results and judge_subset is not None:
        subset = {
            name.removesuffix(" (subset)"): restrict(r, args.judge_pairs, judge_subset)
            for name, r in ordered.items()
        }
        lines += ["", f"The same scorers on the LLM judge's subset. {judge_note}.", ""]
        lines += table(subset, sets, timings=False)
    elif judge_note:
        lines += ["", judge_note + "."]
    trained = sum(r.get("train_seconds", 0.0) for r in results.values()) / 60
    scored = sum(r.get("eval_seconds", 0.0) for r in results.values()) / 60
    lines += [
        "",
        f"Training took {trained:.1f} min and scoring {scored:.1f} min in the runs that made "
        f"these results (kept in {run_dir}, reused on reruns); this invocation took "
        f"{minutes:.1f} min. torch threads: {torch.get_num_threads()}.",
    ]
    figure = plot(results, sizes, _report.figure_path(NAME))
    lines.append(f"\n![reward-model quality]({figure.name})")
    _report.save_results(NAME, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run())
