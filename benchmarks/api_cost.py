"""API cost of the value function (table 6): ARMAP-M (the local reward model as the value of a
leaf) against the same MCTS with the LLM as its own value function (LATS-style
self-evaluation, :class:`~armap_agents.LLMJudge`), at equal policy budget. Run::

    python benchmarks/api_cost.py                                  # random policy, SmolLM2 judge
    python benchmarks/api_cost.py --puzzles test --tasks 100 --iterations 16
    python benchmarks/api_cost.py --policy llm --llm openai:gpt-4o-mini --puzzles test --tasks 50
    python benchmarks/api_cost.py --model runs/quickstart-game24/reward_model

Both searches run the same :class:`~armap_agents.MCTSConfig` (rounds, ``expansion_k``, seed)
on the same Game of 24 puzzles; only the value differs. LLM calls and tokens are counted
by a :class:`~armap_agents.UsageTracker` on each chat model, the policy's apart from the
judge's. The reward model is trained here (random-policy exploration of train puzzles ranked
101 onwards, relabeled triplets, one epoch, cached in ``--run-dir``) unless ``--model DIR``
names one.

"Per solved task" needs solved tasks. A random policy solves a test puzzle (ranks 901-1000,
the hard end) in under 1% of its episodes, so by default (``--puzzles easy``) both searches
run on the easiest puzzles of the standard order, ranks 1 to ``--tasks``, which the reward
model never trains on (it sees ranks 101 onwards); ``--puzzles test`` uses the test split.

By default the policy is :class:`~armap_agents.RandomPolicy` (valid moves, no LLM), so every
LLM call in the table is a value estimate: SmolLM2-135M (``local:smollm2``, offline) cannot
solve Game of 24 as a policy, but as a judge it costs what any judge costs, one request per
evaluated node. ``--policy llm`` makes ``--llm`` the policy too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from _report import figure_path, header, save_results

from armap_agents import (
    Game24Env,
    LLMJudge,
    LLMPolicy,
    MCTSConfig,
    RandomPolicy,
    RewardModel,
    RewardModelConfig,
    RewardTrainer,
    RewardTrainerConfig,
    UsageTracker,
    build_mcts_graph,
    make_chat_model,
)
from armap_agents._jsonl import read_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents.environments.game24 import Game24Relabeler
from armap_agents.graphs.explore import ExploreConfig, explore
from armap_agents.graphs.synthesize import TRAIN_FILE, VAL_FILE, SynthesizeConfig, synthesize
from armap_agents.llm import auto_structured
from armap_agents.synthesizers import RelabelSynthesizer
from armap_agents.types import Triplet

NAME = "api_cost"
HELD_OUT_EASY = 100  # the easiest train puzzles (ranks 1-100): never in the training data


def train_reward_model(
    run_dir: Path, train_tasks: int, max_triplets: int, seed: int
) -> tuple[Any, str]:
    """A reward model trained on relabeled random-policy triplets (reused when saved)."""
    model_dir = run_dir / "reward_model"
    if (model_dir / "armap_reward.json").is_file():
        return RewardModel.load(model_dir), f"{model_dir} (reused)"
    trajectories = run_dir / "trajectories.jsonl"
    synthesis = run_dir / "synthesis"
    tasks = Game24Env().task_ids("train")[HELD_OUT_EASY : HELD_OUT_EASY + train_tasks]
    if not (synthesis / TRAIN_FILE).is_file():
        explore(
            RandomPolicy(),
            Game24Env,
            trajectories,
            ExploreConfig(
                split="train", task_ids=tasks, episodes_per_task=4, max_steps=10, seed=seed
            ),
            progress=False,
        )
        synthesize(
            RelabelSynthesizer(Game24Relabeler()),
            trajectories,
            synthesis,
            SynthesizeConfig(val_fraction=0.1, seed=seed),
            progress=False,
        )
    train = read_jsonl(synthesis / TRAIN_FILE, Triplet)[:max_triplets]
    val = read_jsonl(synthesis / VAL_FILE, Triplet)[:200]
    model = RewardModel.create(RewardModelConfig(max_length=128, seed=seed))
    result = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=32, seed=seed)).train(
        train, val, output_dir=model_dir, progress=False
    )
    accuracy = result.best_val_accuracy
    shown = f"{accuracy:.1%}" if accuracy is not None else "n/a"
    return model, (
        f"trained here on {len(train)} relabeled triplets from {len(tasks)} train puzzles "
        f"(ranks {HELD_OUT_EASY + 1}-{HELD_OUT_EASY + len(tasks)}; validation pairwise "
        f"accuracy {shown}), saved in {model_dir}"
    )


def run_method(
    label: str, policy: Any, value: Any, config: MCTSConfig, tasks: list[str], trackers: dict
) -> dict:
    """Run MCTS with ``value`` on every task; success, calls, tokens and time."""
    before = {k: t.usage.model_copy() for k, t in trackers.items()}
    solved = reward_calls = policy_decisions = 0
    started = time.perf_counter()
    graph = build_mcts_graph(policy, Game24Env, value, config)
    for i, task in enumerate(tasks, 1):
        state = graph.invoke({"task_id": task}, {"max_concurrency": 8})
        best = state["best"]
        solved += bool(best.evaluation and best.evaluation.success)
        reward_calls += state["reward_model_calls"]
        policy_decisions += state["policy_calls"]
        print(f"  {label}: {i}/{len(tasks)} puzzles, {solved} solved", file=sys.stderr)
    seconds = time.perf_counter() - started
    used = {k: t.usage.model_copy() for k, t in trackers.items()}
    delta = {
        k: {
            "calls": used[k].calls - before[k].calls,
            "tokens": used[k].tokens - before[k].tokens,
        }
        for k in trackers
    }
    return {
        "label": label,
        "tasks": len(tasks),
        "solved": solved,
        "policy_decisions": policy_decisions,
        "policy_llm": delta["policy"],
        "value_llm": delta["value"],
        "value_evaluations": reward_calls,
        "unparsed": getattr(value, "unparsed", 0),
        "seconds": seconds,
    }


def _per_solved(total: float, solved: int) -> str:
    if total == 0:
        return "0"
    return f"{total / solved:,.1f}" if solved else "∞ (none solved)"


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| value function | success rate | policy decisions | nodes valued "
        "| policy LLM calls / tokens | value LLM calls / tokens | LLM calls per solved task "
        "| LLM tokens per solved task | unparsable judge replies | wall time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        calls = r["policy_llm"]["calls"] + r["value_llm"]["calls"]
        tokens = r["policy_llm"]["tokens"] + r["value_llm"]["tokens"]
        lines.append(
            f"| {r['label']} | {r['solved'] / r['tasks']:.0%} ({r['solved']}/{r['tasks']}) "
            f"| {r['policy_decisions']:,} | {r['value_evaluations']:,} "
            f"| {r['policy_llm']['calls']:,} / {r['policy_llm']['tokens']:,} "
            f"| {r['value_llm']['calls']:,} / {r['value_llm']['tokens']:,} "
            f"| {_per_solved(calls, r['solved'])} | {_per_solved(tokens, r['solved'])} "
            f"| {r['unparsed']} | {r['seconds']:.0f} |"
        )
    return lines


def plot(rows: list[dict]) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [r["label"] for r in rows]
    per_task = [
        (r["policy_llm"]["calls"] / r["tasks"], r["value_llm"]["calls"] / r["tasks"]) for r in rows
    ]
    left.bar(labels, [p for p, _ in per_task], label="policy", color="#1f77b4")
    left.bar(labels, [v for _, v in per_task], bottom=[p for p, _ in per_task], label="value")
    left.set_ylabel("LLM calls per puzzle")
    left.set_title("LLM calls: policy + value")
    left.legend()
    right.bar(labels, [100 * r["solved"] / r["tasks"] for r in rows], color="#2ca02c")
    right.set_ylabel("success rate (%)")
    right.set_title("success at equal policy budget")
    for axis in (left, right):
        axis.tick_params(axis="x", labelsize=8)
    return save_figure(fig, figure_path(NAME))


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default="local:smollm2", help="the LLM (judge, and policy)")
    parser.add_argument("--policy", choices=["random", "llm"], default="random")
    parser.add_argument("--model", type=Path, help="a trained reward model directory")
    parser.add_argument(
        "--puzzles",
        choices=["easy", "test"],
        default="easy",
        help="easy: ranks 1..tasks (held out from training); test: ranks 901-1000",
    )
    parser.add_argument("--tasks", type=int, default=20, help="Game of 24 puzzles")
    parser.add_argument("--iterations", type=int, default=8, help="MCTS rounds")
    parser.add_argument("--expansion-k", type=int, default=2)
    parser.add_argument("--train-tasks", type=int, default=300)
    parser.add_argument("--max-triplets", type=int, default=1000)
    parser.add_argument("--run-dir", type=Path, default=Path("benchmarks/runs/api_cost"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.tasks < 1 or args.iterations < 1 or args.expansion_k < 1:
        parser.error("--tasks, --iterations and --expansion-k must be at least 1")
    if args.puzzles == "easy" and args.tasks > HELD_OUT_EASY:
        parser.error(f"--puzzles easy has {HELD_OUT_EASY} puzzles; use --puzzles test for more")
    if args.model is not None and not (args.model / "armap_reward.json").is_file():
        parser.error(f"--model {args.model}: no reward model there (armap_reward.json missing)")
    started = time.perf_counter()
    if args.model is not None:
        reward_model, origin = RewardModel.load(args.model), str(args.model)
    else:
        print("training the reward model ...", file=sys.stderr)
        reward_model, origin = train_reward_model(
            args.run_dir, args.train_tasks, args.max_triplets, args.seed
        )
    # separate model objects, each with its own tracker: policy and value counted apart
    trackers = {"policy": UsageTracker(), "value": UsageTracker()}
    judge_model = make_chat_model(args.llm)
    judge_model.callbacks = [trackers["value"]]
    judge = LLMJudge(judge_model)
    if args.policy == "llm":
        policy_model = make_chat_model(args.llm)
        policy_model.callbacks = [trackers["policy"]]
        policy: Any = LLMPolicy(policy_model, structured=auto_structured(policy_model))
    else:
        policy = RandomPolicy()
    config = MCTSConfig(
        iterations=args.iterations,
        expansion_k=args.expansion_k,
        max_policy_calls=None,
        max_steps=6,
        seed=args.seed,
    )
    env = Game24Env()
    tasks = (env.task_ids("train") if args.puzzles == "easy" else env.task_ids("test"))[
        : args.tasks
    ]
    where = (
        f"the {len(tasks)} easiest puzzles (ranks 1-{len(tasks)}, held out from the reward "
        "model's training data)"
        if args.puzzles == "easy"
        else f"{len(tasks)} test puzzles (ranks 901-{900 + len(tasks)})"
    )
    rows = [
        run_method("ARMAP-M (reward model)", policy, reward_model, config, tasks, trackers),
        run_method("MCTS + LLM self-evaluation", policy, judge, config, tasks, trackers),
    ]
    png = plot(rows)
    rm, llm = rows
    policy_text = (
        f"LLMPolicy over `{args.llm}`" if args.policy == "llm" else "RandomPolicy (no LLM)"
    )
    judged = llm["value_llm"]["calls"]
    summary = (
        f"At the same policy budget the self-evaluating search sends {judged:,} more LLM "
        f"requests ({judged / len(tasks):.1f} per puzzle, "
        f"{llm['value_llm']['tokens']:,} tokens): one per valued node, where ARMAP-M scores "
        f"each round's nodes in one local batch ({rm['value_evaluations']:,} nodes, no API "
        f"call). Wall time per judged node here: {llm['seconds'] / max(judged, 1):.1f} s."
    )
    markdown = "\n".join(
        [
            "# API cost: reward model vs LLM self-evaluation as the MCTS value (table 6)",
            "",
            header(("llama-cpp-python", "langchain-core")),
            "",
            f"Game of 24: {where}; MCTS {args.iterations} rounds, "
            f"expansion_k={args.expansion_k}, rollouts to the end, seed {args.seed} (the same "
            f"policy budget for both). Policy: {policy_text}. Judge: LLMJudge over "
            f"`{args.llm}` (structured output: {judge.structured or 'none, text parsed'}). "
            f"Reward model: {origin}. Total run time {time.perf_counter() - started:.0f} s.",
            "",
            *table(rows),
            "",
            summary,
            "",
            f"![api cost]({png.name})",
        ]
    )
    save_results(NAME, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(run())
