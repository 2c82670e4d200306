"""Does the critic improve itself over rounds? ``improve_critic`` rounds 0..K, each round's
critic evaluated by what planning gets with it. Run::

    python benchmarks/self_improvement.py --env game24                 # random explorer
    python benchmarks/self_improvement.py --env game24 --explorer expert:0.65
    python benchmarks/self_improvement.py --env examples/guess_number.py:GuessNumber

Round 0 explores the train tasks with ``--explorer`` alone (the paper's random explorer by
default, or the weakest reference policy); each later round explores them with ``--planner``
(ARMAP-M by default, or ARMAP-B) guided by the previous round's critic over the same explorer,
and trains a new critic on everything so far (:mod:`armap_agents.pipeline.improve`). No
stronger policy is used anywhere.

Every round's critic is then evaluated on the same test tasks with the same seeds, with
reference policies of three strengths (``ExpertPolicy`` at ``--epsilons``; an environment
without an expert, e.g. a user's, is evaluated with ``--policies``, default the random policy):
Sampling, ARMAP-B, ARMAP-R (its calibrated default threshold) and, with ``--planners``,
ARMAP-M, at Best-of-N's policy-call budget, and the oracle Best-of-N. Per round: the critic's
pairwise accuracy on one fixed held-out triplet set (round 0's validation triplets), its picks
on held-out train tasks (training's planning metric), the policy calls exploration spent, and
per strength each method's success with a 95% bootstrap interval over tasks, the share of the
Sampling -> oracle gap ARMAP-B closes, and ARMAP-B's paired difference to round 0 (same tasks,
same seeds: a bootstrap interval of the per-task differences).

Everything resumes in ``--run-dir`` (default ``benchmarks/runs/self_improvement/<env>-<explorer>``).
Saves ``benchmarks/results/self_improvement_<env>[_<explorer>].md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from _report import figure_path, header, save_results, slug
from policy_strength import BOOTSTRAP, DEFAULT_EPSILONS, gap_closed, summarize

from armap_agents._plotting import pyplot, save_figure
from armap_agents.evaluation import TaskOutcome, read_outcomes
from armap_agents.layout import OUTCOMES_FILE
from armap_agents.pipeline import evaluate_and_report, improve_critic, quickstart_plan
from armap_agents.pipeline.sources import env_source

BUILT_IN = set(DEFAULT_EPSILONS)


def paired_difference(
    now: list[TaskOutcome], before: list[TaskOutcome], label: str, seed: int = 0
) -> tuple[float, float, float]:
    """``label``'s mean per-task success difference ``now - before`` (the same tasks), with a
    95% bootstrap interval."""
    by_task = {o.task_id: float(o.methods[label].success) for o in before}
    diffs = [float(o.methods[label].success) - by_task[o.task_id] for o in now]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    return statistics.fmean(diffs), means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="a built-in name or a user's import path")
    parser.add_argument("--explorer", default="random", help="round 0's policy (default random)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, round 0 included")
    parser.add_argument(
        "--planner", choices=["mcts", "best_of_n"], default="mcts", help="who explores rounds 1.."
    )
    parser.add_argument("--train-tasks", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=4, help="round 0's episodes per task")
    parser.add_argument("--n", type=int, default=8, help="Best-of-N's N, exploring and testing")
    parser.add_argument("--test-tasks", type=int, default=50)
    parser.add_argument("--epsilons", help="three comma-separated epsilons, weakest first")
    parser.add_argument("--policies", help="comma-separated policies instead of the experts")
    parser.add_argument("--planners", default="best_of_n,reflexion", help="planners tested")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-train", type=int, default=2000)
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    source = env_source(args.env)
    name = source.name
    plan = quickstart_plan(source.defaults(), "full", llm=False)
    if args.policies:
        policies = args.policies.split(",")
    elif name in BUILT_IN:
        epsilons = (
            [float(e) for e in args.epsilons.split(",")]
            if args.epsilons
            else DEFAULT_EPSILONS[name]
        )
        policies = [f"expert:{e:g}" for e in epsilons]
    else:
        policies = ["random"]
    planners = tuple(p for p in args.planners.split(",") if p and p != "best_of_n")
    run_dir = args.run_dir or Path("benchmarks/runs/self_improvement") / (
        f"{slug(name)}-{slug(args.explorer)}-{args.planner}"
    )
    started = time.perf_counter()
    result = improve_critic(
        run_dir,
        env=args.env,
        policy=args.explorer,
        rounds=args.rounds,
        planner=args.planner,
        n=args.n,
        max_tasks=args.train_tasks,
        episodes_per_task=args.episodes,
        epochs=args.epochs,
        max_train=args.max_train,
    )
    improve_minutes = (time.perf_counter() - started) / 60
    with source.opened() as factory:
        env = factory()
        try:
            test_ids = env.task_ids("test")[: args.test_tasks]
        finally:
            env.close()
    label = f"ARMAP-B (N={args.n})"
    table: dict[int, dict[str, dict[str, dict[str, float]]]] = {}
    outcomes: dict[tuple[int, str], list[TaskOutcome]] = {}
    eval_started = time.perf_counter()
    for k in range(len(result.rounds)):
        critic = result.layout.round(k).reward_model
        table[k] = {}
        for policy in policies:
            out = run_dir / "evaluation" / f"round-{k}" / slug(policy)
            evaluate_and_report(
                model=critic,
                out=out,
                env=args.env,
                policy=policy,
                tasks=test_ids,
                n=args.n,
                max_steps=plan.max_steps,
                planners=planners,
            )
            done = read_outcomes(out / OUTCOMES_FILE)
            outcomes[k, policy] = [done[t] for t in test_ids if t in done]
            table[k][policy] = summarize(outcomes[k, policy], args.n)
    eval_minutes = (time.perf_counter() - eval_started) / 60
    result = f"self_improvement_{slug(name)}_{args.planner}" + (
        "" if args.explorer == "random" else f"_{slug(args.explorer)}"
    )
    guide = {"mcts": "ARMAP-M", "best_of_n": f"ARMAP-B (N={args.n})"}[args.planner]
    png = plot(result, name, args.explorer, table, policies, label)
    lines = [
        f"# Self-improvement on {name}: rounds of {guide}-guided exploration from "
        f"`{args.explorer}`",
        "",
        header(),
        "",
        f"Rounds 0-{len(result.rounds) - 1}: round 0 explores {args.train_tasks} train tasks "
        f"({args.episodes} episodes each) with `{args.explorer}`; each later round explores them "
        f"with {guide} guided by the previous critic over the same policy; each "
        f"critic is trained from the backbone on all rounds' triplets ({args.epochs} epochs, at "
        f"most {args.max_train} triplets). Evaluation: {len(test_ids)} test tasks, the same "
        f"seeds every round, N = {args.n}, at most {plan.max_steps} steps; ARMAP-R with its "
        "calibrated default threshold at Best-of-N's budget. Success in percent [95% bootstrap "
        "interval over tasks]; gap closed = (ARMAP-B - Sampling) / (oracle - Sampling); "
        "paired = ARMAP-B's mean per-task difference to round 0 [95% interval].",
        "",
        f"Rounds {improve_minutes:.1f} min, evaluation {eval_minutes:.1f} min in this run "
        "(0 where reused).",
        "",
        "## The critics",
        "",
        result.to_markdown(),
        "",
        "## What planning gets with them",
        "",
        "| round | policy | Sampling | ARMAP-B | gap closed | paired vs round 0 | "
        + " | ".join(m for m in next(iter(table[0].values())) if m not in ("Sampling", label))
        + " |",
        "|---:|---|---:|---:|---:|---:|" + "---:|" * (len(next(iter(table[0].values()))) - 2),
    ]

    def cell(r: dict[str, float]) -> str:
        return f"{100 * r['success']:.1f} [{100 * r['low']:.0f}, {100 * r['high']:.0f}]"

    for policy in policies:
        for k in table:
            rows = table[k][policy]
            oracle = next(v for m, v in rows.items() if m.startswith("oracle"))
            b, sampling = rows[label], rows["Sampling"]
            if k == 0:
                paired = ""
            else:
                mean, low, high = paired_difference(outcomes[k, policy], outcomes[0, policy], label)
                paired = f"{100 * mean:+.1f} [{100 * low:+.0f}, {100 * high:+.0f}]"
            others = " | ".join(cell(v) for m, v in rows.items() if m not in ("Sampling", label))
            lines.append(
                f"| {k} | {policy} | {cell(sampling)} | {cell(b)} | "
                f"{gap_closed(b['success'], sampling['success'], oracle['success'])} | {paired} | "
                f"{others} |"
            )
    total = (time.perf_counter() - started) / 60
    lines += ["", f"Whole run: {total:.1f} min.", "", f"![self-improvement]({png.name})"]
    save_results(result, "\n".join(lines))
    return 0


def plot(
    slug: str,
    env: str,
    explorer: str,
    table: dict[int, dict[str, dict[str, dict[str, float]]]],
    policies: list[str],
    label: str,
) -> Path:
    """ARMAP-B's success per round for each policy, with Sampling and the oracle dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rounds = sorted(table)
    for index, policy in enumerate(policies):
        color = f"C{index}"
        b = [100 * table[k][policy][label]["success"] for k in rounds]
        err = [
            [b[i] - 100 * table[k][policy][label]["low"] for i, k in enumerate(rounds)],
            [100 * table[k][policy][label]["high"] - b[i] for i, k in enumerate(rounds)],
        ]
        ax.errorbar(rounds, b, yerr=err, color=color, marker="o", capsize=3, label=policy)
        for method, style in (("Sampling", ":"), ("oracle", "--")):
            rows = [table[k][policy] for k in rounds]
            values = [
                100 * next(v["success"] for m, v in r.items() if m.startswith(method)) for r in rows
            ]
            ax.plot(rounds, values, color=color, linestyle=style, alpha=0.6)
    ax.set_xticks(rounds)
    ax.set_xlabel("round (critic trained on rounds 0..k)")
    ax.set_ylabel(f"{label} success (%)")
    ax.set_title(
        f"{env}, explorer {explorer}: ARMAP-B per round (dotted Sampling, dashed oracle)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, figure_path(slug))


if __name__ == "__main__":
    raise SystemExit(run())
