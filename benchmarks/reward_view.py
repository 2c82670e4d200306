"""What the reward model sees of a trajectory, per environment: tokens, and how much is cut.

For random-policy episodes of each environment (the quickstart's explorer, step limit and task
subset), the script renders every ``(intent, trajectory)`` pair twice, as the reward model
tokenizes it (all-MiniLM-L6-v2's tokenizer, the pair truncated to the window, oldest tokens
first):

* **canonical**: the whole text (:func:`~armap_agents.types.render_trajectory`), what reward
  models saw before views;
* **view**: the environment's :class:`~armap_agents.reward_view.TrajectoryView` set for the
  window (every action kept, observations rewritten and clipped to fit).

and reports the untruncated token length (median, p90, max), the share of pairs longer than
the window, the share of tokens the tokenizer cuts, and the share of actions that survive in
what the model actually reads. Run::

    python benchmarks/reward_view.py [--envs game24,webshop,scienceworld,alfworld]
        [--episodes 40] [--alfworld-data ../shared/data/alfworld]

Prints the command, the machine, the versions and a markdown table, saved as
``benchmarks/results/reward_view.md``. ALFWorld needs its game files (skipped without them).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from _report import header, save_results

from armap_agents import RandomPolicy, run_episode
from armap_agents.environments.registry import default_registry
from armap_agents.pipeline import quickstart_plan, spread
from armap_agents.reward.model import resolve_backbone
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Trajectory

# the reward model's window per environment in the quickstart (see armap_agents/pipeline.py)
WINDOWS = {"game24": 128, "webshop": 512, "scienceworld": 512, "alfworld": 512}


def _episodes(env_name: str, count: int, options: dict) -> list[Trajectory]:
    registry = default_registry()
    plan = quickstart_plan(env_name, "full", llm=False)
    factory = registry.factory(env_name, **options)
    env = factory()
    try:
        tasks = spread(env.task_ids("train"), plan.families, count)
        return [
            run_episode(
                env, RandomPolicy(), tasks[i % len(tasks)], seed=i, max_steps=plan.max_steps
            )
            for i in range(count)
        ]
    finally:
        env.close()
        close = getattr(factory, "close", None)
        if close is not None:
            close()


def _measure(tokenizer, trajectories: list[Trajectory], view: TrajectoryView, window: int) -> dict:
    intents = [t.intent for t in trajectories]
    texts = [view.render(t) for t in trajectories]
    full = tokenizer(intents, texts, truncation=False, return_token_type_ids=False)["input_ids"]
    kept = tokenizer(
        intents, texts, truncation="longest_first", max_length=window, return_token_type_ids=False
    )["input_ids"]
    lengths = sorted(len(ids) for ids in full)
    actions_total = sum(len(t.steps) for t in trajectories)
    # what the model reads: count the action lines that survive truncation
    seen = sum(tokenizer.decode(ids).lower().count("action :") for ids in kept)
    cut = sum(len(f) - len(k) for f, k in zip(full, kept, strict=True))
    return {
        "median": statistics.median(lengths),
        "p90": lengths[int(0.9 * (len(lengths) - 1))],
        "max": lengths[-1],
        "over": sum(n > window for n in lengths) / len(lengths),
        "cut": cut / sum(len(f) for f in full),
        "actions": min(1.0, seen / actions_total) if actions_total else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default="game24,webshop,scienceworld,alfworld")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--alfworld-data", default=os.environ.get("ALFWORLD_DATA"))
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("all-MiniLM-L6-v2"))
    tokenizer.truncation_side = "left"  # as the reward model cuts: oldest tokens first
    tokenizer.model_max_length = 1_000_000  # measuring, not feeding the model
    registry = default_registry()
    rows = []
    for env_name in args.envs.split(","):
        options = {}
        if env_name == "alfworld":
            if not args.alfworld_data or not Path(args.alfworld_data).is_dir():
                print("alfworld: skipped (no --alfworld-data)")
                continue
            options = {"data_dir": args.alfworld_data}
        trajectories = _episodes(env_name, args.episodes, options)
        window = WINDOWS[env_name]
        views = {
            "canonical": TrajectoryView.identity(),
            "view": registry.reward_view(env_name).for_window(window),
        }
        for label, view in views.items():
            m = _measure(tokenizer, trajectories, view, window)
            rows.append(
                f"| {env_name} | {label} | {window} | {m['median']:.0f} | {m['p90']} | {m['max']} "
                f"| {m['over']:.0%} | {m['cut']:.0%} | {m['actions']:.0%} |"
            )
    table = "\n".join(
        [
            "| environment | text | window | tokens median | p90 | max | pairs over the window "
            "| tokens cut | actions the model reads |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    save_results(
        "reward_view",
        f"# What the reward model sees ({args.episodes} random-policy episodes per environment)"
        f"\n\n{header()}\n\n{table}\n",
    )


if __name__ == "__main__":
    main()
