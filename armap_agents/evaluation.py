"""Evaluate planners on a split: Sampling, Greedy, ARMAP-B and oracle Best-of-N side by side.

For each task the Best-of-N graph draws N candidates once; the same candidates give

* **ARMAP-B**: the reward model's pick;
* **oracle Best-of-N**: a success if any candidate succeeds (the ceiling for any selector);
* **Sampling**: the expected success of one candidate drawn at random, i.e. the mean over the N
  candidates (far less noisy than a single draw);

and **Greedy** is one more episode with ``greedy=True``. Per-task outcomes are appended to a
JSONL file as they finish, so an interrupted evaluation resumes.
"""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from armap_agents._jsonl import JsonlAppender, iter_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents.environments.base import EnvFactory
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.policies import Policy
from armap_agents.reward.model import RewardModel

__all__ = ["EvaluationReport", "TaskOutcome", "evaluate_planners", "plot_report"]


class TaskOutcome(BaseModel):
    """What happened on one task."""

    task_id: str
    successes: list[bool]
    """Per Best-of-N candidate, by the environment's evaluator."""
    scores: list[float]
    """Per candidate, by the reward model."""
    picked: int
    greedy_success: bool
    policy_calls: int
    greedy_policy_calls: int
    reward_model_calls: int


class MethodRow(BaseModel):
    method: str
    success_rate: float
    policy_calls: int
    reward_model_calls: int = 0


class EvaluationReport(BaseModel):
    """The aggregate table."""

    env: str
    split: str
    tasks: int
    n: int
    rows: list[MethodRow]
    reward_model_val_accuracy: float | None = None
    notes: dict[str, str] = Field(default_factory=dict)

    def row(self, method: str) -> MethodRow:
        return next(r for r in self.rows if r.method == method)

    def to_markdown(self) -> str:
        """A markdown table (success rates in percent)."""
        lines = [
            f"Environment `{self.env}`, split `{self.split}`: {self.tasks} tasks, N = {self.n}.",
        ]
        if self.reward_model_val_accuracy is not None:
            lines.append(
                f"Reward-model validation pairwise accuracy: {self.reward_model_val_accuracy:.1%}."
            )
        lines += [
            "",
            "| method | success rate | policy calls | reward-model calls |",
            "|---|---:|---:|---:|",
        ]
        for r in self.rows:
            calls = f"{r.policy_calls:,} | {r.reward_model_calls:,}"
            lines.append(f"| {r.method} | {r.success_rate:.1%} | {calls} |")
        for key, value in self.notes.items():
            lines.append(f"\n{key}: {value}")
        return "\n".join(lines)


def evaluate_planners(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardModel,
    *,
    split: str = "test",
    task_ids: list[str] | None = None,
    n: int = 16,
    max_steps: int = 10,
    seed: int = 0,
    outcomes_path: str | Path | None = None,
    max_concurrency: int = 8,
    reward_model_val_accuracy: float | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Run Greedy and Best-of-N on every task and aggregate the table (resumable)."""
    env = env_factory()
    try:
        name = env.name
        tasks = list(task_ids) if task_ids is not None else env.task_ids(split)
    finally:
        env.close()
    best_of_n = build_best_of_n_graph(
        policy,
        env_factory,
        reward_model,
        BestOfNConfig(n=n, selection="reward", max_steps=max_steps, seed=seed),
    )
    greedy = build_best_of_n_graph(
        policy,
        env_factory,
        None,
        BestOfNConfig(n=1, selection="random", greedy=True, max_steps=max_steps, seed=seed),
    )
    run_config = {"max_concurrency": max_concurrency}
    done: dict[str, TaskOutcome] = {}
    appender = None
    if outcomes_path is not None:
        done = {o.task_id: o for o in iter_jsonl(outcomes_path, TaskOutcome) if o.task_id in tasks}
        appender = JsonlAppender(outcomes_path)
    outcomes = dict(done)
    for task_id in tqdm(
        tasks, desc=f"evaluate (N={n})", unit="task", disable=not progress, initial=0
    ):
        if task_id in outcomes:
            continue
        b = best_of_n.invoke({"task_id": task_id}, run_config)
        g = greedy.invoke({"task_id": task_id}, run_config)
        outcome = TaskOutcome(
            task_id=task_id,
            successes=[bool(c.evaluation and c.evaluation.success) for c in b["candidates"]],
            scores=b["scores"],
            picked=b["best_index"],
            greedy_success=bool(g["best"].evaluation and g["best"].evaluation.success),
            policy_calls=b["policy_calls"],
            greedy_policy_calls=g["policy_calls"],
            reward_model_calls=b["reward_model_calls"],
        )
        outcomes[task_id] = outcome
        if appender is not None:
            appender.append(outcome)
    return summarize(
        [outcomes[t] for t in tasks],
        env=name,
        split=split,
        n=n,
        reward_model_val_accuracy=reward_model_val_accuracy,
    )


def summarize(
    outcomes: list[TaskOutcome],
    *,
    env: str,
    split: str,
    n: int,
    reward_model_val_accuracy: float | None = None,
) -> EvaluationReport:
    """Aggregate per-task outcomes into the four rows of the table."""
    if not outcomes:
        raise ValueError("no outcomes to summarize")
    k = len(outcomes)
    bon_calls = sum(o.policy_calls for o in outcomes)
    rm_calls = sum(o.reward_model_calls for o in outcomes)
    rows = [
        MethodRow(
            method="Sampling",
            success_rate=statistics.fmean(statistics.fmean(o.successes) for o in outcomes),
            policy_calls=round(bon_calls / n),
        ),
        MethodRow(
            method="Greedy",
            success_rate=statistics.fmean(o.greedy_success for o in outcomes),
            policy_calls=sum(o.greedy_policy_calls for o in outcomes),
        ),
        MethodRow(
            method=f"ARMAP-B (N={n})",
            success_rate=statistics.fmean(o.successes[o.picked] for o in outcomes),
            policy_calls=bon_calls,
            reward_model_calls=rm_calls,
        ),
        MethodRow(
            method=f"oracle Best-of-{n}",
            success_rate=statistics.fmean(any(o.successes) for o in outcomes),
            policy_calls=bon_calls,
        ),
    ]
    return EvaluationReport(
        env=env,
        split=split,
        tasks=k,
        n=n,
        rows=rows,
        reward_model_val_accuracy=reward_model_val_accuracy,
        notes={
            "Sampling": "mean success over all N candidates (expected success of one random pick); "
            "its policy calls are those of one candidate per task",
            "machine": machine_description(),
        },
    )


def machine_description() -> str:
    """CPU model, core count and Python version, for the record beside any table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def plot_report(report: EvaluationReport, path: str | Path) -> Path:
    """A bar chart of success rate per method (PNG)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = [r.method for r in report.rows]
    values = [100 * r.success_rate for r in report.rows]
    bars = ax.bar(names, values, color=["#999", "#bbb", "C0", "#ddd"][: len(names)])
    ax.bar_label(bars, fmt="%.1f%%")
    ax.set(ylabel="success rate (%)", title=f"{report.env} / {report.split}: {report.tasks} tasks")
    ax.set_ylim(0, max(values + [1.0]) * 1.25)
    return save_figure(fig, path)
