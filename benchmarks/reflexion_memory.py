"""What do Reflexion's reflections and its memory add for a policy that reads them?

ARMAP-R (Reflexion guided by the reward model) retries a task until the critic's score
reaches the threshold; with a ``reflector`` a chat model writes a lesson after each failed
attempt (shown to the next attempt), and with a ``TrajectoryMemory`` the lessons of earlier
tasks are retrieved for a new one (FAISS over MiniLM). This runs ARMAP-R three ways on the same
test tasks with the same seeds, the local LLM as policy and reflector (fully offline):

* ``retries``: no reflector, no memory (what ``armap evaluate`` runs as ARMAP-R);
* ``reflections``: the reflector's lessons within the task;
* ``reflections + memory``: and ``retrieve_k`` lessons of the tasks before it (in task order).

The critic is the environment's tiny quickstart (random exploration). Run::

    python benchmarks/reflexion_memory.py                       # GuessNumber, local:smollm2
    python benchmarks/reflexion_memory.py --env game24 --tasks 10

Resumable per condition and task (``<run-dir>/<condition>.jsonl``; the memory is rebuilt from
the recorded lessons; a run directory with other settings is refused). Saves
``benchmarks/results/reflexion_memory_<env>.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import closing
from pathlib import Path

from _report import header, save_results, slug
from policy_strength import bootstrap

from armap_agents import _builders as build
from armap_agents.graphs.reflexion import ReflexionConfig
from armap_agents.llm import UsageTracker
from armap_agents.memory import TrajectoryMemory
from armap_agents.pipeline import run_pipeline
from armap_agents.pipeline.sources import env_source
from armap_agents.planners import build_planner
from armap_agents.reward.model import RewardModel

CONDITIONS = ("retries", "reflections", "reflections + memory")


def run_condition(condition: str, args, env, model, tasks: list[str], out: Path) -> list[dict]:
    """One record per task (resumed from ``out``): success, score, attempts, calls, lessons."""
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    usage = UsageTracker()
    policy = build.policy(args.llm, usage)
    reflector = build.chat_model(args.llm, usage) if condition != "retries" else None
    memory = TrajectoryMemory() if condition == "reflections + memory" else None
    config = ReflexionConfig(max_trials=args.trials, retrieve_k=args.retrieve_k, seed=0)
    if memory is not None:  # the lessons recorded so far, back in the memory
        for record in done:
            for lesson in record["lessons"]:
                memory.add(lesson["intent"], None, lesson["text"], task_id=record["task_id"])
    for task_id in tasks[len(done) :]:
        extra = {"reflector": reflector} if reflector is not None else {}
        graph = build_planner("reflexion", policy, env, model, config, memory=memory, **extra)
        before, started = usage.usage.model_copy(), time.perf_counter()
        state = graph.invoke({"task_id": task_id})
        best, now = state["best"], usage.usage
        lessons = [{"intent": best.intent, "text": text} for text in state.get("reflections", [])]
        record = {
            "task_id": task_id,
            "success": bool(best.evaluation and best.evaluation.success),
            "score": best.evaluation.score if best.evaluation else 0.0,
            "attempts": len(state["attempts"]),
            "policy_calls": state["policy_calls"],
            "reflection_calls": state.get("reflection_calls", 0),
            "llm_requests": now.calls - before.calls,
            "tokens": now.tokens - before.tokens,
            "seconds": time.perf_counter() - started,
            "lessons": lessons,
        }
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        done.append(record)
        print(
            f"{condition}: task {task_id} success={record['success']} attempts={record['attempts']}"
        )
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="examples/guess_number.py:GuessNumber")
    parser.add_argument("--llm", default="local:smollm2", help="the policy and the reflector")
    parser.add_argument("--tasks", type=int, default=20, help="the first K test tasks")
    parser.add_argument("--trials", type=int, default=4, help="ARMAP-R's attempts at most")
    parser.add_argument("--retrieve-k", type=int, default=3, help="lessons of other tasks shown")
    parser.add_argument(
        "--run-dir", type=Path, help="default: benchmarks/runs/reflexion_memory-<env>"
    )
    args = parser.parse_args()
    run_dir = args.run_dir or Path("benchmarks/runs") / f"reflexion_memory-{slug(args.env)}"
    started = time.perf_counter()
    settings = {"env": args.env, "llm": args.llm, "trials": args.trials, "k": args.retrieve_k}
    recorded = run_dir / "settings.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != settings:
        parser.error(f"{run_dir} holds a run with other settings ({recorded}): give --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings))
    critic = run_pipeline(run_dir / "critic", env=args.env, size="tiny")
    model = RewardModel.load(critic.layout.reward_model)
    with env_source(args.env).opened() as env:
        with closing(env()) as probe:
            tasks = probe.task_ids("test")[: args.tasks]
        results = {
            c: run_condition(c, args, env, model, tasks, run_dir / f"{slug(c)}.jsonl")
            for c in CONDITIONS
        }
    base = {r["task_id"]: r["success"] for r in results["retries"]}
    lines = [
        f"# Reflexion's reflections and memory on {args.env} ({args.llm} as policy and reflector)",
        "",
        header(("llama-cpp-python",)),
        "",
        f"ARMAP-R, at most {args.trials} attempts, on the first {len(tasks)} test tasks, the "
        "same seeds in every condition; the critic: the tiny quickstart's "
        f"({critic.layout.reward_model}); "
        f"the memory shows {args.retrieve_k} lessons of earlier tasks. Success in percent "
        "[95% bootstrap interval over tasks]; paired: the mean per-task difference to "
        "`retries` [95% interval].",
        "",
        "| condition | success % | paired vs retries (points) | mean score | attempts per task "
        "| policy calls | reflections | LLM requests | tokens per task | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for condition, records in results.items():
        success = [float(r["success"]) for r in records]
        low, high = bootstrap(success)
        diffs = [float(r["success"]) - base[r["task_id"]] for r in records]
        d_low, d_high = bootstrap(diffs)
        paired = (
            ""
            if condition == "retries"
            else (f"{100 * statistics.fmean(diffs):+.1f} [{100 * d_low:+.0f}, {100 * d_high:+.0f}]")
        )
        mean = {k: statistics.fmean(r[k] for r in records) for k in ("score", "attempts", "tokens")}
        lines.append(
            f"| {condition} | {100 * statistics.fmean(success):.1f} [{100 * low:.0f}, "
            f"{100 * high:.0f}] | {paired} | {100 * mean['score']:.1f} | {mean['attempts']:.2f} "
            f"| {sum(r['policy_calls'] for r in records):,} | "
            f"{sum(r['reflection_calls'] for r in records):,} | "
            f"{sum(r['llm_requests'] for r in records):,} | {mean['tokens']:,.0f} | "
            f"{sum(r['seconds'] for r in records) / 60:.1f} |"
        )
    lessons = [(r["task_id"], x["text"]) for r in results["reflections"] for x in r["lessons"]]
    if lessons:  # what the policy is shown: judge the lessons by reading one
        task_id, text = lessons[0]
        quoted = " ".join(text.split())[:400]
        lines += ["", f"The first lesson written (task {task_id}), as the next attempt reads it:"]
        lines += ["", f"> {quoted}"]
    minutes = (time.perf_counter() - started) / 60
    lines += [
        "",
        "Minutes: the tasks' own time, on 2 shared cores, when they were run (a resumed run "
        f"adds none for tasks recorded before). This run: {minutes:.1f} min.",
    ]
    save_results(f"reflexion_memory_{slug(args.env)}", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
