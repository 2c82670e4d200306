"""WebShop's "buy cheaper": a price objective combined with the reward model's score.

The paper's controllable-generation result: Best-of-N picks by ``score - weight * price``
instead of ``score`` alone; the average price paid drops while the success rate holds. Run
after ``armap quickstart --env webshop --run-dir RUN`` (which trains the reward model)::

    python benchmarks/webshop_buy_cheaper.py --run-dir runs/quickstart-webshop [--n 8]

The same N candidates per goal (same seeds) are re-ranked for every weight, so the rows differ
only in the pick. Prints the command, the machine, the versions and the table, saved as
``benchmarks/results/webshop_buy_cheaper.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _report import header, save_results
from tqdm.auto import tqdm

from armap_agents import (
    BestOfNConfig,
    RandomPolicy,
    RewardModel,
    WeightedObjective,
    build_best_of_n_graph,
    make_env_factory,
)
from armap_agents.reward.objectives import combined_value, numeric_attribute

# minus the price paid; bought nothing counts as $1,000 (not as free)
minus_price_paid = numeric_attribute("price", sign=-1, default=1000.0, only_if="purchased")


def _paid(trajectory) -> float | None:
    info = trajectory.info.get("env") or {}
    return float(info["price"]) if info.get("purchased") else None


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=50, help="test goals")
    parser.add_argument("--max-steps", type=int, default=15)
    parser.add_argument("--weights", default="0,0.005,0.02,0.1", help="per dollar")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    reward_model = RewardModel.load(args.run_dir / "reward_model")
    factory = make_env_factory("webshop")
    tasks = factory().task_ids("test")[: args.tasks]
    graph = build_best_of_n_graph(
        RandomPolicy(), factory, reward_model, BestOfNConfig(n=args.n, max_steps=args.max_steps)
    )
    picks: dict[float, list] = {w: [] for w in weights}
    for task_id in tqdm(tasks, desc="buy cheaper", unit="goal"):
        state = graph.invoke({"task_id": task_id}, {"max_concurrency": 4})
        candidates, scores = state["candidates"], state["scores"]
        for w in weights:
            objectives = [WeightedObjective(minus_price_paid, weight=w)] if w else []
            values = {  # a failed candidate has no score: never picked
                i: combined_value(s, t, objectives)
                for i, (s, t) in enumerate(zip(scores, candidates, strict=True))
                if s is not None
            }
            picks[w].append(candidates[max(values, key=values.__getitem__)])
    lines = [
        "# WebShop: buy cheaper with a price objective",
        "",
        header(),
        "",
        f"{len(tasks)} test goals, Best-of-{args.n} with the random policy, reward model "
        f"{args.run_dir / 'reward_model'}.",
        "",
        "| price weight (per $) | success rate | mean score | bought | mean price paid ($) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for w in weights:
        chosen = picks[w]
        paid = [p for p in map(_paid, chosen) if p is not None]
        success = statistics.fmean(bool(t.evaluation and t.evaluation.success) for t in chosen)
        score = statistics.fmean(t.evaluation.score if t.evaluation else 0.0 for t in chosen)
        mean_paid = f"{statistics.fmean(paid):.2f}" if paid else "-"
        lines.append(f"| {w:g} | {success:.1%} | {100 * score:.1f} | {len(paid)} | {mean_paid} |")
    save_results("webshop_buy_cheaper", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run())
