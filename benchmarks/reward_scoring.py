"""Reward-model scoring throughput: ``RewardModel.score`` against a naive baseline.

``score`` sorts the pairs by token length and pads each batch only to its longest member
(dynamic padding). The naive baseline scores the same pairs in their given order, each batch
padded to ``max_length`` — what a straightforward implementation does. Both run side by side
in one process on the same texts (real trajectories: random-policy episodes of Game of 24 and
of the generated WebShop catalog), and must return the same scores. Run::

    python benchmarks/reward_scoring.py [--episodes 256] [--max-length 256] [--repeats 3]

Prints the command, the machine, the versions and a markdown table, saved with a bar chart as
``benchmarks/results/reward_scoring.md`` / ``.png``. (There is no prefix/score cache in the
planners: MCTS scores every new node once, so there is no hit rate to report.)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch
from _report import figure_path, header, save_results

from armap_agents import Game24Env, RandomPolicy, RewardModel, RewardModelConfig, run_episode
from armap_agents._plotting import pyplot, save_figure
from armap_agents.environments.registry import make_env_factory
from armap_agents.types import render_trajectory


def _episodes(env_factory, count: int, max_steps: int) -> list[tuple[str, str]]:
    env = env_factory()
    tasks = env.task_ids("train")
    pairs = []
    for i in range(count):
        t = run_episode(env, RandomPolicy(), tasks[i % len(tasks)], seed=i, max_steps=max_steps)
        pairs.append((t.intent, render_trajectory(t)))
    env.close()
    return pairs


def _naive(model: RewardModel, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
    out: list[float] = []
    model.module.eval()
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = model.encode([p[0] for p in chunk], [p[1] for p in chunk], pad="max_length")
            out += model.forward_batch(batch).tolist()
    return out


def _best_of(repeats: int, fn) -> tuple[float, list[float]]:
    times, result = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def plot(rates: dict[str, tuple[float, float]]) -> Path:
    """Texts per second, ours beside the naive scorer, per environment."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(6, 3.5))
    names = list(rates)
    xs = range(len(names))
    axis.bar([x - 0.2 for x in xs], [rates[n][0] for n in names], 0.4, label="RewardModel.score")
    axis.bar([x + 0.2 for x in xs], [rates[n][1] for n in names], 0.4, label="pad to max_length")
    axis.set_xticks(list(xs), names)
    axis.set_ylabel("texts per second")
    axis.set_title("Reward-model scoring throughput (CPU)")
    axis.legend()
    return save_figure(fig, figure_path("reward_scoring"))


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = RewardModel.create(RewardModelConfig(max_length=args.max_length))
    sets = {
        "Game of 24": _episodes(Game24Env, args.episodes, 10),
        "WebShop": _episodes(make_env_factory("webshop"), args.episodes, 15),
    }
    lines = [
        "| trajectories | pairs | mean tokens | `score` (texts/s) | naive (texts/s) | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rates: dict[str, tuple[float, float]] = {}
    for name, pairs in sets.items():
        intents, texts = [p[0] for p in pairs], [p[1] for p in pairs]
        lengths = [len(ids) for ids in model.encode(intents, texts, pad=False)["input_ids"]]
        ours, scores = _best_of(
            args.repeats,
            functools.partial(model.score_texts, intents, texts, batch_size=args.batch_size),
        )
        naive, baseline = _best_of(
            args.repeats, functools.partial(_naive, model, pairs, args.batch_size)
        )
        worst = max(abs(a - b) for a, b in zip(scores, baseline, strict=True))
        assert worst < 1e-4, f"the two scorings disagree by {worst}"
        rates[name] = (len(pairs) / ours, len(pairs) / naive)
        lines.append(
            f"| {name} | {len(pairs)} | {statistics.fmean(lengths):.0f} | "
            f"{len(pairs) / ours:,.0f} | {len(pairs) / naive:,.0f} | {naive / ours:.2f}x |"
        )
    png = plot(rates)
    markdown = "\n".join(
        [
            "# Reward-model scoring throughput (table 4)",
            "",
            header(),
            "",
            f"Backbone {model.config.backbone}, max_length {args.max_length}, batches of "
            f"{args.batch_size}, {torch.get_num_threads()} torch threads, best of "
            f"{args.repeats}; {args.episodes} random-policy trajectories per environment.",
            "",
            *lines,
            "",
            f"![scoring throughput]({png.name})",
        ]
    )
    save_results("reward_scoring", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(run())
