"""Does the critic lift a competent agent? The paper's table shape: Sampling, ARMAP-B, ARMAP-R,
ARMAP-M and oracle Best-of-N, and the step-level planners (beam search, live reranking), for
reference policies of three strengths, with the reward model the quickstart trains (random
exploration, as the paper explores), and the environment episodes each method executed (live
reranking: one per task; MCTS and beam search replay prefixes from ``reset()``). Run::

    python benchmarks/policy_strength.py --env game24
    python benchmarks/policy_strength.py --env webshop
    python benchmarks/policy_strength.py --env scienceworld
    python benchmarks/policy_strength.py --env alfworld --data-dir ../shared/data/alfworld
    python benchmarks/policy_strength.py --env webshop --explorer expert:0.5   # + one row

The policies are :class:`~armap_agents.policies.ExpertPolicy` at ``--epsilons`` (the expert's
action from the current state with probability 1 - epsilon, else a random valid action): a
benchmark stand-in for LLM agents of graded strength, the defaults chosen so that Sampling
lands near 10%, 30% and 50% success on the quickstart's test tasks. Every method runs at
Best-of-N's policy-call budget on the quickstart's test tasks, N and episode length as in the
quickstart; Greedy is left out (a reference policy's most likely action is the expert's).

``--explorer expert:0.5`` adds one row per strength: ARMAP-B with a reward model trained the
same way on that policy's exploration instead of the random policy's (the stages resume in
``<run-dir>/explorer-<policy>``).

Intervals are 95% bootstrap intervals over test tasks. The run directory (default
``benchmarks/runs/<env>``, shared with ``paper_table.py``) keeps every artifact and resumes.
Saves ``benchmarks/results/policy_strength_<env>.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _report import figure_path, header, save_results

from armap_agents._jsonl import iter_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents.evaluation import (
    EvaluationReport,
    TaskOutcome,
    _method_color,
    _total,
    read_outcomes,
)
from armap_agents.layout import OUTCOMES_FILE, RunLayout
from armap_agents.pipeline import (
    QuickstartPlan,
    evaluate_and_report,
    explore_trajectories,
    run_pipeline,
    synthesize_triplets,
    train_reward_model,
)
from armap_agents.planners import PLANNERS, PlannerSpec
from armap_agents.types import Trajectory

# Sampling near 10%, 30% and 50% success on each environment's quickstart test tasks (one
# episode per task at each epsilon, measured when these defaults were chosen)
DEFAULT_EPSILONS = {
    "game24": (0.65, 0.4, 0.25),
    "webshop": (0.8, 0.6, 0.5),
    "scienceworld": (0.8, 0.7, 0.6),
    "alfworld": (0.75, 0.65, 0.6),
}
# test tasks evaluated (None: the quickstart's); WebShop's first 30 of 50 keep a run under 20 min
DEFAULT_TEST_TASKS = {"webshop": 30}
# the paper's three, then the step-level planners (beam search; live reranking, one episode)
PLANNERS_RUN = ("best_of_n", "reflexion", "mcts", "beam_search", "live_rerank")
BOOTSTRAP = 2000

Row = Callable[[TaskOutcome], float]


def _label(name: str, n: int) -> str:
    spec: PlannerSpec = PLANNERS[name]
    return spec.row_label(n)


def _rows(n: int) -> list[tuple[str, Row, Row]]:
    """(method, success of a task, score of a task) for the table's methods."""

    def method(label: str) -> tuple[str, Row, Row]:
        return (
            label,
            lambda o: float(o.methods[label].success),
            lambda o: o.methods[label].score,
        )

    return [
        (
            "Sampling",
            lambda o: statistics.fmean(o.candidates),
            lambda o: statistics.fmean(o.candidate_scores or [0.0]),
        ),
        *(method(_label(p, n)) for p in PLANNERS_RUN),
        (
            f"oracle Best-of-{n}",
            lambda o: float(any(o.candidates)),
            lambda o: max(o.candidate_scores or [0.0]),
        ),
    ]


def bootstrap(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """A 95% percentile interval of the mean of ``values`` over resampled tasks."""
    rng = random.Random(seed)
    k = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=k)) for _ in range(BOOTSTRAP))
    return means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]


def summarize(outcomes: list[TaskOutcome], n: int) -> dict[str, dict[str, float]]:
    """Per method that ran on every task: success (mean and interval), mean score, the
    policy calls and the episodes executed per task (Sampling: one candidate's; the oracle:
    Best-of-N's; NaN where an outcome did not count them)."""
    armap_b = _label("best_of_n", n)
    bon_calls = sum(o.methods[armap_b].policy_calls for o in outcomes)
    bon_episodes = _episodes(outcomes, armap_b)
    out = {}
    for method, success, score in _rows(n):
        ran = method not in _planner_rows(n) or all(method in o.methods for o in outcomes)
        if not ran:
            continue
        s = [success(o) for o in outcomes]
        low, high = bootstrap(s)
        if method == "Sampling":
            calls, episodes = bon_calls / n, bon_episodes / n
        elif method in _planner_rows(n):
            calls = sum(o.methods[method].policy_calls for o in outcomes)
            episodes = _episodes(outcomes, method)
        else:
            calls, episodes = bon_calls, bon_episodes
        out[method] = {
            "success": statistics.fmean(s),
            "low": low,
            "high": high,
            "score": statistics.fmean(score(o) for o in outcomes),
            "policy_calls": calls,
            "episodes": episodes / len(outcomes),
        }
    return out


def _episodes(outcomes: list[TaskOutcome], method: str) -> float:
    """The episodes ``method`` executed over ``outcomes`` (NaN if any was not counted)."""
    total = _total(o.methods[method].episodes for o in outcomes)
    return math.nan if total is None else float(total)


def _planner_rows(n: int) -> set[str]:
    return {_label(p, n) for p in PLANNERS_RUN}


def gap_closed(value: float, sampling: float, oracle: float) -> str:
    """(value - Sampling) / (oracle - Sampling) as a percentage, or "-" with no gap."""
    if oracle - sampling <= 1e-9:
        return "-"
    return f"{(value - sampling) / (oracle - sampling):.0%}"


def explorer_model(
    args: argparse.Namespace, run_dir: Path, plan: QuickstartPlan, train_ids: list[str]
) -> Path:
    """A reward model trained as the quickstart's, on ``args.explorer``'s exploration of the
    same train tasks (each stage resumes in its own run directory)."""
    layout = RunLayout(run_dir / f"explorer-{args.explorer.replace(':', '-')}")
    common = {"env": args.env, "env_options": _env_options(args), "seed": 0}
    explore_trajectories(
        **common,
        out=layout.trajectories,
        policy=args.explorer,
        split="train",
        episodes_per_task=plan.episodes,
        tasks=train_ids,
        max_steps=plan.max_steps,
    )
    if not layout.train_triplets.is_file():
        synthesize_triplets(
            **common,
            trajectories=layout.trajectories,
            out=layout.synthesis,
            synthesizer="relabel",
        )
    if not layout.train_result.is_file():  # the quickstart's training settings
        window = {} if plan.max_length is None else {"max_length": plan.max_length}
        train_reward_model(
            env=args.env,
            data=layout.synthesis,
            out=layout.reward_model,
            epochs=plan.epochs,
            seed=0,
            max_train=plan.max_train,
            **window,  # unset: the window follows the data, as the quickstart's
        )
    return layout.reward_model


def _env_options(args: argparse.Namespace) -> dict | None:
    return {"data_dir": args.data_dir} if args.data_dir else None


def plot(name: str, env: str, table: dict[float, dict[str, dict[str, float]]], n: int) -> Path:
    """Success rate per method against the policy's strength (Sampling's success)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    epsilons = sorted(table, reverse=True)  # weakest first
    x = [100 * table[e]["Sampling"]["success"] for e in epsilons]
    styles = {"Sampling": ("#7f7f7f", "o"), "oracle": ("#bbbbbb", "s")}
    for method in table[epsilons[0]]:
        color, marker = next(
            (v for k, v in styles.items() if method.startswith(k)),
            ("#8c564b" if ", RM from " in method else _method_color(method), "^"),
        )
        y = [100 * table[e][method]["success"] for e in epsilons if method in table[e]]
        err = [
            [100 * (table[e][method]["success"] - table[e][method]["low"]) for e in epsilons],
            [100 * (table[e][method]["high"] - table[e][method]["success"]) for e in epsilons],
        ]
        pale = method.startswith("oracle")  # drawn wide and below, so a method on it shows
        ax.errorbar(
            x[: len(y)],
            y,
            yerr=err,
            label=method,
            color=color,
            marker=marker,
            capsize=3,
            linewidth=5 if pale else 1.5,
            alpha=0.7 if pale else 1.0,
            zorder=1 if pale else 3,
        )
    ax.set_xlabel("policy strength: Sampling success rate (%)")
    ax.set_ylabel("success rate (%)")
    ax.set_title(f"{env}: methods vs policy strength (N = {n}, 95% intervals)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, figure_path(name))


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env", choices=["game24", "scienceworld", "alfworld", "webshop"], required=True
    )
    parser.add_argument("--epsilons", help="three comma-separated epsilons, weakest first")
    parser.add_argument(
        "--test-tasks",
        type=int,
        help="the first K of the quickstart's test tasks (default: all; WebShop 30)",
    )
    parser.add_argument("--data-dir", help="ALFWorld data (default: $ALFWORLD_DATA)")
    parser.add_argument("--run-dir", type=Path, help="default: benchmarks/runs/<env>")
    parser.add_argument("--explorer", help="also ARMAP-B with an RM from this policy's exploration")
    args = parser.parse_args()
    epsilons = (
        tuple(float(e) for e in args.epsilons.split(","))
        if args.epsilons
        else DEFAULT_EPSILONS[args.env]
    )
    run_dir = args.run_dir or Path("benchmarks/runs") / args.env
    started = time.perf_counter()
    # the quickstart's reward model (random exploration); resumes, or reuses a finished run
    result = run_pipeline(run_dir, env=args.env, env_options=_env_options(args))
    quickstart_minutes = result.seconds / 60
    plan, layout = result.plan, result.layout
    k = args.test_tasks or DEFAULT_TEST_TASKS.get(args.env)
    test_ids = list(read_outcomes(layout.outcomes))[:k]
    extra = None
    if args.explorer:  # the train tasks the quickstart explored
        explored = (t.task_id for t in iter_jsonl(layout.trajectories, Trajectory))
        extra = explorer_model(args, run_dir, plan, list(dict.fromkeys(explored)))
    eval_started = time.perf_counter()
    table: dict[float, dict[str, dict[str, float]]] = {}

    def outcomes(model: Path, out: Path, policy: str, planners: tuple[str, ...]) -> list:
        """The per-task outcomes of ``policy`` with ``model`` (evaluated, or resumed)."""
        evaluate_and_report(
            model=model,
            out=out,
            env=args.env,
            env_options=_env_options(args),
            policy=policy,
            tasks=test_ids,
            n=plan.n,
            max_steps=plan.max_steps,
            planners=planners,
        )
        return [o for t, o in read_outcomes(out / OUTCOMES_FILE).items() if t in test_ids]

    for eps in epsilons:
        policy = f"expert:{eps:g}"
        out = run_dir / "policy_strength" / f"expert-{eps:g}"
        table[eps] = summarize(outcomes(layout.reward_model, out, policy, PLANNERS_RUN[1:]), plan.n)
        if extra is not None:
            extra_out = out.with_name(out.name + f"-rm-{args.explorer.replace(':', '-')}")
            label = _label("best_of_n", plan.n)
            rows = summarize(outcomes(extra, extra_out, policy, ()), plan.n)
            table[eps][f"{label}, RM from {args.explorer}"] = rows[label]
    eval_minutes = (time.perf_counter() - eval_started) / 60
    name = f"policy_strength_{args.env}"
    png = plot(name, args.env, table, plan.n)
    lines = [
        f"# Policy strength on {args.env}: Sampling, ARMAP-B/R/M, beam search, live reranking "
        f"and oracle Best-of-{plan.n}",
        "",
        header(),
        "",
        f"Reward model: the quickstart's ({run_dir}; random exploration, validation pairwise "
        f"accuracy {_accuracy(result.report)}), never tuned on test tasks. Policies: "
        "`ExpertPolicy` (`--policy expert:EPSILON`), a benchmark stand-in for agents of graded "
        f"strength. {len(test_ids)} test tasks (the quickstart's), N = {plan.n}, at most "
        f"{plan.max_steps} steps; ARMAP-R, ARMAP-M and ARMAP-Beam at most at Best-of-N's "
        "policy-call budget per task (Beam: W = sqrt(N) beams, K = N / W samples each per step); "
        "ARMAP-Live samples N actions per step of the one episode it executes. "
        "Episodes per task: the environment episodes a method executed (resets followed by a "
        "step; MCTS and beam search replay prefixes). "
        "Success in percent with its 95% bootstrap interval over tasks; mean score on 0-100; "
        "gap closed = (method - Sampling) / (oracle - Sampling), on success and on mean score.",
        "",
        f"Evaluation {eval_minutes:.1f} min in this run (the quickstart: "
        f"{quickstart_minutes:.1f} min in this run, 0 when reused).",
        "",
        "| policy | method | success % [95% interval] | mean score | gap closed (success / "
        "score) | policy calls | episodes per task |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for eps in epsilons:
        rows = table[eps]
        sampling = rows["Sampling"]
        oracle = next(v for k, v in rows.items() if k.startswith("oracle"))
        for method, r in rows.items():
            gap = (
                ""
                if method == "Sampling" or method.startswith("oracle")
                else f"{gap_closed(r['success'], sampling['success'], oracle['success'])} / "
                f"{gap_closed(r['score'], sampling['score'], oracle['score'])}"
            )
            lines.append(
                f"| expert:{eps:g} | {method} | {100 * r['success']:.1f} "
                f"[{100 * r['low']:.0f}, {100 * r['high']:.0f}] | {100 * r['score']:.1f} "
                f"| {gap} | {r['policy_calls']:,.0f} | {r['episodes']:.1f} |"
            )
    total = (time.perf_counter() - started) / 60
    lines += ["", f"Whole run: {total:.1f} min.", "", f"![policy strength]({png.name})"]
    save_results(name, "\n".join(lines))
    return 0


def _accuracy(report: EvaluationReport) -> str:
    accuracy = report.reward_model_val_accuracy
    return f"{accuracy:.1%}" if accuracy is not None else "unknown"


if __name__ == "__main__":
    sys.exit(run())
