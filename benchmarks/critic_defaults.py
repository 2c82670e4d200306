"""What the critic's defaults give planning on environments that declare nothing about it.

For each environment of ``--envs``: explore with the random policy and synthesize with the
environment's relabeler once, then train several reward models on the SAME triplets that
differ only in what they read (or, for ``no prefix pairs``, in how the episodes are labelled):

* ``defaults``: nothing set (the environment's declared window if it declares one, else the
  window from the data, :func:`~armap_agents.reward.window.data_window`; the environment's
  view fitted to it, the end state kept);
* ``window 128`` / ``window 512``: ``max_length`` given, the view fitted to it;
* ``canonical text``: the text of ``render_trajectory`` cut oldest-first by the tokenizer at
  128 tokens (``view.fit_window=False``, the behaviour before views).
* ``every label kept``: the view without ``elide`` (models before 2026-12-08: every
  observation keeps its label, shown or not); ``end state half``: the end state's floor at
  half the budget instead of a quarter; ``6 epochs``: three times the training;
* ``no prefix pairs``: the same episodes relabelled without prefix pairs (its own synthesis).

Each critic is judged by what training reports (validation pairwise accuracy; the picks among
held-out tasks' explored candidates, ``train_result.json``'s ``planning``) and by what a user
gets: Best-of-N with the random policy on the environment's test tasks (the same candidates
for every critic: same policy and seed), Sampling, ARMAP-B and the oracle.

    python benchmarks/critic_defaults.py  # ~50 min on 2 busy cores (--unseen-tasks 0: ~25)
    python benchmarks/critic_defaults.py --quick --envs examples/guess_number.py:GuessNumber

Work files go to ``runs/critic_defaults/`` (resumed: a variant already trained and evaluated
is read back). The table goes to ``benchmarks/results/critic_defaults.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from _report import header, save_results

from armap_agents.layout import OUTCOMES_FILE, TRAIN_RESULT_FILE, TRAIN_TRIPLETS_FILE
from armap_agents.pipeline import (
    evaluate_and_report,
    explore_trajectories,
    synthesize_triplets,
    train_reward_model,
)
from armap_agents.planners import PLANNERS

DEFAULT_ENVS = "examples/courier.py:Courier,examples/guess_number.py:GuessNumber,game24"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "window 128": {"max_length": 128},
    "window 512": {"max_length": 512},
    "canonical text": {"max_length": 128, "model_config": {"view": {"fit_window": False}}},
    "every label kept": {"model_config": {"view": {"elide": False}}},
    "end state half": {"model_config": {"view": {"final_share": 0.5}}},
    "6 epochs": {"epochs": 6},
    "no prefix pairs": {"relabel_options": {"prefixes": False}},
}


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def resolved_model(data: Path, variant: dict[str, Any]) -> str:
    """The reward-model and training configs a variant trains with (window, view, epochs), as
    JSON: variants that resolve to the same configs train the same model (e.g. ``defaults`` =
    ``window 128`` on an environment that declares 128)."""
    from armap_agents._jsonl import read_jsonl
    from armap_agents.pipeline.stages import training_configs, training_env, window_from_data
    from armap_agents.types import Triplet

    settings = {k: v for k, v in variant.items() if k != "model_config"}
    model, trainer = training_configs(data, None, variant.get("model_config"), None, settings)
    if "max_length" not in model.model_fields_set:
        train = read_jsonl(data / TRAIN_TRIPLETS_FILE, Triplet)
        model = window_from_data(model, training_env(data, None), train, None)
    return model.model_dump_json(exclude={"seed"}) + trainer.model_dump_json(exclude={"seed"})


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    z, p = 1.96, successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def run_variant(
    env_dir: Path, data: Path, name: str, variant: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Train one critic and evaluate Best-of-N with it; cached in ``<rm>/bench.json``."""
    rm = env_dir / f"rm-{slug(name)}"
    cache = rm / "bench.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    started = time.perf_counter()
    settings = {"epochs": args.epochs, "max_train": args.max_train, "max_val": args.max_val}
    train_reward_model(data=data, out=rm, seed=args.seed, **{**settings, **variant})
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = evaluate_and_report(
        model=rm,
        out=env_dir / f"eval-{slug(name)}",
        policy="random",
        split="test",
        max_tasks=args.test_tasks,
        n=args.n,
        seed=args.seed,
        planners=("best_of_n",),
        max_concurrency=2,
    )
    eval_seconds = time.perf_counter() - started
    result = json.loads((rm / TRAIN_RESULT_FILE).read_text())
    config = json.loads((rm / "armap_reward.json").read_text())
    label = PLANNERS["best_of_n"].row_label(args.n)
    outcomes = [
        json.loads(line) for line in (env_dir / f"eval-{slug(name)}" / OUTCOMES_FILE).open()
    ]
    train_pairs = 2 * result["train_examples"]
    row = {
        "window": config["max_length"],
        "cut": (result.get("pairs_at_window") or 0) / train_pairs if train_pairs else None,
        "val_accuracy": result["best_val_accuracy"],
        "planning": result.get("planning"),
        "selected_by": result.get("selected_by"),
        "best_epoch": result.get("best_epoch"),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "tasks": report.tasks,
        "sampling": report.row("Sampling").success_rate,
        "armap_b": report.row(label).success_rate,
        "armap_b_score": report.row(label).mean_score,
        "sampling_score": report.row("Sampling").mean_score,
        "oracle": report.row(f"oracle Best-of-{args.n}").success_rate,
        "oracle_score": report.row(f"oracle Best-of-{args.n}").mean_score,
        "b_per_task": {o["task_id"]: o["methods"][label]["success"] for o in outcomes},
    }
    cache.write_text(json.dumps(row, indent=1))
    return row


def run_unseen(env_dir: Path, name: str, unseen: list[str], args: argparse.Namespace) -> dict:
    """Best-of-N with a trained critic on train tasks that exploration never played (more
    tasks than the test split has, for a tighter comparison); cached in ``bench-unseen.json``."""
    rm = env_dir / f"rm-{slug(name)}"
    cache = rm / "bench-unseen.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    started = time.perf_counter()
    out = env_dir / f"eval-{slug(name)}-unseen"
    report = evaluate_and_report(
        model=rm,
        out=out,
        policy="random",
        split="train",
        tasks=unseen,
        n=args.n,
        seed=args.seed,
        planners=("best_of_n",),
        max_concurrency=2,
    )
    label = PLANNERS["best_of_n"].row_label(args.n)
    outcomes = [json.loads(line) for line in (out / OUTCOMES_FILE).open()]
    row = {
        "tasks": report.tasks,
        "sampling": report.row("Sampling").success_rate,
        "armap_b": report.row(label).success_rate,
        "oracle": report.row(f"oracle Best-of-{args.n}").success_rate,
        "b_per_task": {o["task_id"]: o["methods"][label]["success"] for o in outcomes},
        "seconds": time.perf_counter() - started,
    }
    cache.write_text(json.dumps(row, indent=1))
    return row


def unseen_tasks(spec: str, args: argparse.Namespace) -> list[str]:
    """Up to ``--unseen-tasks`` train tasks after the ones exploration played."""
    from contextlib import closing

    from armap_agents.pipeline import env_source

    if args.unseen_tasks <= 0:
        return []
    with env_source(spec).opened() as factory, closing(factory()) as probe:
        ids = probe.task_ids("train")
    return ids[args.train_tasks : args.train_tasks + args.unseen_tasks]


def run_env(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    env_dir = Path(args.work_dir) / slug(spec.rsplit(":", 1)[-1] if ":" in spec else spec)
    started = time.perf_counter()
    trajectories = env_dir / "trajectories.jsonl"
    explore_trajectories(
        out=trajectories,
        env=spec,
        policy="random",
        split="train",
        episodes_per_task=args.episodes,
        max_tasks=args.train_tasks,
        seed=args.seed,
        max_concurrency=2,
    )
    data = env_dir / "synthesis"
    synthesis = synthesize_triplets(
        trajectories=trajectories, out=data, seed=args.seed, val_fraction=0.2, max_concurrency=2
    )
    prepare_seconds = time.perf_counter() - started
    rows: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    unseen = unseen_tasks(spec, args)
    for name, variant in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        relabel = variant.get("relabel_options")
        variant_data = data if relabel is None else env_dir / f"synthesis-{slug(name)}"
        if relabel is not None:  # the same episodes, labelled otherwise
            synthesize_triplets(
                trajectories=trajectories,
                out=variant_data,
                seed=args.seed,
                val_fraction=0.2,
                relabel_options=relabel,
                max_concurrency=2,
            )
        training = {k: v for k, v in variant.items() if k != "relabel_options"}
        key = resolved_model(variant_data, training) + json.dumps(relabel)
        if key in seen:  # the same window and view as an earlier variant: the same model
            rows[name] = {**rows[seen[key]], "same_as": seen[key]}
            print(f"[{spec}] {name}: the same model as {seen[key]}")
            continue
        seen[key] = name
        print(f"[{spec}] training and evaluating the critic '{name}'")
        rows[name] = run_variant(env_dir, variant_data, name, training, args)
        if unseen:
            rows[name]["unseen"] = run_unseen(env_dir, name, unseen, args)
    from armap_agents._jsonl import read_jsonl
    from armap_agents.types import Trajectory

    played = read_jsonl(trajectories, Trajectory)  # this run's and earlier runs' episodes
    return {
        "spec": spec,
        "episodes": len(played),
        "successes": sum(bool(t.evaluation and t.evaluation.success) for t in played),
        "train_triplets": synthesis.train,
        "val_triplets": synthesis.val,
        "prepare_seconds": prepare_seconds,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def closes(b: float, sampling: float, oracle: float) -> str:
    return "-" if oracle - sampling < 1e-9 else f"{100 * (b - sampling) / (oracle - sampling):.0f}%"


def table(envs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| environment | critic | window | train texts at the window | val acc | held-out picks: "
        "pick / random / best (gap closed; decisive / tasks) | kept epoch (by) | train + "
        f"validate (s) | Sampling | ARMAP-B (N={args.n}) [95% CI] | oracle | B closes | "
        "B score | B vs defaults (tasks +/-) | evaluate (s) |",
        "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env in envs:
        base = env["rows"].get("defaults")
        for name, r in env["rows"].items():
            p = r["planning"]
            picks = (
                "-"
                if p is None
                else f"{pct(p['pick_success'])} / {pct(p['mean_success'])} / "
                f"{pct(p['oracle_success'])} ("
                + ("-" if p["gap_closed"] is None else f"{100 * p['gap_closed']:.0f}%")
                + f"; {p['decisive']} / {p['tasks']})"
            )
            tasks = r["tasks"]
            won = round(r["armap_b"] * tasks)
            low, high = wilson(won, tasks)
            versus = "-"
            if base is not None and name != "defaults":
                plus = sum(
                    ok and not base["b_per_task"].get(t, False) for t, ok in r["b_per_task"].items()
                )
                minus = sum(
                    not ok and base["b_per_task"].get(t, False) for t, ok in r["b_per_task"].items()
                )
                versus = f"+{plus} / -{minus}"
            critic = name + (f" (= {r['same_as']})" if r.get("same_as") else "")
            lines.append(
                f"| {env['spec']} | {critic} | {r['window']} | {pct(r['cut'])}% | "
                f"{pct(r['val_accuracy'])} | {picks} | {r['best_epoch']} ({r['selected_by']}) | "
                f"{r['train_seconds']:.0f} | {pct(r['sampling'])} | {pct(r['armap_b'])} "
                f"[{pct(low)}-{pct(high)}] | {pct(r['oracle'])} | "
                f"{closes(r['armap_b'], r['sampling'], r['oracle'])} | "
                f"{r['armap_b_score']:.2f} | {versus} | {r['eval_seconds']:.0f} |"
            )
    return "\n".join(lines)


def pooled_table(envs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """ARMAP-B on the test tasks and the unseen train tasks together (same candidates for
    every critic of an environment)."""
    lines = [
        f"| environment | critic | tasks (test + unseen train) | Sampling | ARMAP-B (N={args.n}) "
        "[95% CI] | oracle | B closes | B vs defaults (tasks +/-) | evaluate unseen (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env in envs:
        pooled: dict[str, dict[str, Any]] = {}
        for name, r in env["rows"].items():
            u = r.get("unseen")
            if u is None:
                continue
            n = r["tasks"] + u["tasks"]
            pooled[name] = {
                "n": n,
                "seconds": u["seconds"],
                **{
                    k: (r[k] * r["tasks"] + u[k] * u["tasks"]) / n
                    for k in ("sampling", "armap_b", "oracle")
                },
                "b_per_task": {**r["b_per_task"], **u["b_per_task"]},
            }
        base = pooled.get("defaults")
        for name, r in pooled.items():
            low, high = wilson(round(r["armap_b"] * r["n"]), r["n"])
            versus = "-"
            if base is not None and name != "defaults":
                mine, theirs = r["b_per_task"], base["b_per_task"]
                plus = sum(ok and not theirs.get(t, False) for t, ok in mine.items())
                minus = sum(not ok and theirs.get(t, False) for t, ok in mine.items())
                versus = f"+{plus} / -{minus}"
            same = env["rows"][name].get("same_as")
            critic = name + (f" (= {same})" if same else "")
            lines.append(
                f"| {env['spec']} | {critic} | {r['n']} | {pct(r['sampling'])} | "
                f"{pct(r['armap_b'])} [{pct(low)}-{pct(high)}] | {pct(r['oracle'])} | "
                f"{closes(r['armap_b'], r['sampling'], r['oracle'])} | {versus} | "
                f"{r['seconds']:.0f} |"
            )
    return "\n".join(lines)


def critic_minutes(env: dict[str, Any]) -> float:
    """Minutes the environment's distinct critics took to train and evaluate (as recorded
    when they ran, so a resumed run reports the same)."""
    total = 0.0
    for r in env["rows"].values():
        if not r.get("same_as"):
            total += r["train_seconds"] + r["eval_seconds"]
            total += (r.get("unseen") or {}).get("seconds", 0.0)
    return total / 60


def markdown(envs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    sizes = (
        f"Random-policy exploration: {args.episodes} episodes on each of the first "
        f"{args.train_tasks} train tasks; the environment's relabeler (the generic "
        f"`OutcomeRelabeler` for the examples), 20% of the tasks held out. Every critic: "
        f"all-MiniLM-L6-v2 + LoRA, {args.epochs} epochs (unless a variant says otherwise) on at "
        f"most {args.max_train} training triplets (the same ones), validation on at most "
        f"{args.max_val}, seed {args.seed}. Test: "
        f"Best-of-{args.n} with the random policy on the first {args.test_tasks} test tasks "
        f"(the same candidates for every critic)."
    )
    prep = "; ".join(
        f"{e['spec']}: {e['episodes']} episodes ({e['successes']} successes), "
        f"{e['train_triplets']} / {e['val_triplets']} train / val triplets, "
        f"critics trained and evaluated in {critic_minutes(e):.1f} min"
        for e in envs
    )
    return (
        "# Critic defaults: what the window and the view give planning\n\n"
        f"{header()}\n\n{sizes}\n\n{prep}\n\n{table(envs, args)}\n\n"
        "window: the reward model's window in tokens (`defaults`: the declared one, else the "
        "data's 95th percentile); train texts at the window: training (intent, trajectory) "
        "texts that still reach the window after the view (cut by the tokenizer); held-out "
        "picks: `train_result.json`'s `planning` (success of the critic's pick among each "
        "held-out task's explored candidates, of a random one, of the best; decisive: tasks "
        "whose candidates differ); B closes: (ARMAP-B - Sampling) / (oracle - Sampling); "
        "[95% CI]: Wilson interval over the test tasks; B vs defaults: test tasks this critic's "
        "pick wins / loses against the defaults' pick (same candidates); B score: mean "
        "environment score of ARMAP-B's pick; seconds: wall time on the shared machine.\n"
        + (
            f"\n## More tasks: the test tasks and up to {args.unseen_tasks} train tasks that "
            "exploration never played\n\n"
            f"{pooled_table(envs, args)}\n"
            if args.unseen_tasks > 0
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default=DEFAULT_ENVS, help="comma-separated names / paths")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=None)
    parser.add_argument("--train-tasks", type=int, default=150)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--max-train", type=int, default=160)
    parser.add_argument("--max-val", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--test-tasks", type=int, default=50)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument(
        "--unseen-tasks",
        type=int,
        default=100,
        help="also evaluate on up to this many train tasks exploration never played",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="runs/critic_defaults")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.train_tasks, args.episodes, args.max_train, args.max_val = 40, 2, 32, 32
        args.test_tasks, args.n, args.unseen_tasks = 10, 4, 10
        args.work_dir = args.work_dir.rstrip("/") + "-quick"
    envs: list[dict[str, Any]] = []
    for spec in [s.strip() for s in args.envs.split(",") if s.strip()]:
        envs.append(run_env(spec, args))
        if args.quick:  # a smoke test: not a result
            print(markdown(envs, args))
            (Path(args.work_dir) / "critic_defaults.md").write_text(markdown(envs, args))
        else:
            save_results("critic_defaults", markdown(envs, args))


if __name__ == "__main__":
    main()
