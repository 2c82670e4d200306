"""Evaluate planners on a split: Sampling, Greedy, ARMAP-B/R/M, the step-level planners and oracle
Best-of-N.

For each task the Best-of-N graph draws N candidates once; the same candidates give

* **ARMAP-B**: the reward model's pick;
* **oracle Best-of-N**: a success if any candidate succeeds (the ceiling for any selector);
* **Sampling**: the expected success of one candidate drawn at random, i.e. the mean over the N
  candidates (far less noisy than a single draw);

**Greedy** is one more episode with ``greedy=True``; **ARMAP-R** (Reflexion), **ARMAP-M**
(MCTS) and the step-level planners **ARMAP-Beam** (beam search) and **ARMAP-Live** (live
reranking) run with Best-of-N's policy-call budget (see each planner's ``matched`` entry in
:data:`~armap_agents.planners.PLANNERS`). Per-task outcomes are appended to a
JSONL file as they finish, so an interrupted evaluation resumes.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from armap_agents._jsonl import JsonlAppender, iter_jsonl
from armap_agents._plotting import pyplot, save_figure
from armap_agents._progress import progress_bar
from armap_agents._scrub import scrub_secrets
from armap_agents.environments.base import EnvFactory
from armap_agents.environments.counting import EpisodeCounter
from armap_agents.environments.defaults import DEFAULT_PLANNERS
from armap_agents.errors import AllCandidatesFailed, BudgetExceeded, ConfigError
from armap_agents.executors import EpisodeExecutor
from armap_agents.graphs.best_of_n import BestOfNConfig
from armap_agents.llm import Usage, UsageLimits, UsageTracker
from armap_agents.planners import (
    PLANNER_NAMES,
    PLANNERS,
    build_planner,
    planner_config,
    planner_spec,
)
from armap_agents.policies import Policy
from armap_agents.reward.scorer import RewardScorer

logger = logging.getLogger(__name__)

__all__ = [
    "EvaluationReport",
    "MethodOutcome",
    "PlannerConfigs",
    "TaskOutcome",
    "evaluate_planners",
    "plot_report",
    "read_outcomes",
    "summarize",
]

PlannerConfigs = Mapping[str, BaseModel | Mapping[str, Any] | None]
"""Planners to evaluate, by name (see :data:`~armap_agents.planners.PLANNERS`), each with its
config: a config object (used as is), a mapping of some of its fields (over the fields that
match it to Best-of-N's budget), or None (matched to Best-of-N's budget)."""


class MethodOutcome(BaseModel):
    """One method on one task."""

    success: bool
    score: float = 0.0
    """The environment's score of the chosen trajectory (0-1; ScienceWorld's progress / 100)."""
    policy_calls: int
    reward_model_calls: int = 0
    seconds: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    """LLM requests and tokens (policy, and reflections for ARMAP-R)."""
    error: str | None = None
    """Why the method chose nothing on this task (every candidate failed): a failure."""
    episodes: int | None = None
    """Environment episodes the method executed: resets followed by a step, replays of a
    prefix included (:class:`~armap_agents.environments.counting.EpisodeCounter`); None where
    not counted (episodes run by an executor, or recorded before this was counted)."""
    env_steps: int | None = None
    """``step()`` calls on the environment, replays included; None as for ``episodes``."""


class TaskOutcome(BaseModel):
    """What happened on one task."""

    task_id: str
    candidates: list[bool] = Field(default_factory=list)
    """Per Best-of-N candidate: success by the environment's evaluator."""
    scores: list[float | None] = Field(default_factory=list)
    """Per Best-of-N candidate: the reward model's score (None: the candidate failed)."""
    candidate_scores: list[float] = Field(default_factory=list)
    """Per Best-of-N candidate: the environment's score (metrics only)."""
    methods: dict[str, MethodOutcome]


class MethodRow(BaseModel):
    method: str
    success_rate: float
    mean_score: float = 0.0
    policy_calls: int
    reward_model_calls: int = 0
    seconds: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    episodes: int | None = None
    """Environment episodes executed, summed over tasks (None: not counted on every task)."""


class EvaluationReport(BaseModel):
    """The aggregate table."""

    env: str
    split: str
    tasks: int
    n: int
    rows: list[MethodRow]
    reward_model_val_accuracy: float | None = None
    notes: dict[str, str] = Field(default_factory=dict)
    stopped: str | None = None
    """Why the run ended before every task was done (a usage budget), or None."""

    def row(self, method: str) -> MethodRow:
        return next(r for r in self.rows if r.method == method)

    def to_markdown(self) -> str:
        """A markdown table: success rates in percent, the environment's mean score on 0-100
        (ScienceWorld's metric), calls and wall time summed over tasks."""
        lines = [
            f"Environment `{self.env}`, split `{self.split}`: {self.tasks} tasks, N = {self.n}."
        ]
        if self.reward_model_val_accuracy is not None:
            lines.append(
                f"Reward-model validation pairwise accuracy: {self.reward_model_val_accuracy:.1%}."
            )
        if self.stopped:
            lines.append(f"Stopped early ({self.stopped}): the table covers the tasks done.")
        llm = any(r.usage.calls for r in self.rows)
        counted = any(r.episodes is not None for r in self.rows)
        header = (
            "| method | success rate | mean score | policy calls | reward-model calls "
            "| wall time (s) |"
        )
        rule = "|---|---:|---:|---:|---:|---:|"
        if counted:
            header += " episodes executed |"
            rule += "---:|"
        if llm:
            header += " LLM requests | prompt / completion tokens | failed attempts |"
            rule += "---:|---:|---:|"
        lines += ["", header, rule]
        for r in self.rows:
            calls = f"{r.policy_calls:,} | {r.reward_model_calls:,}"
            rates = f"{r.success_rate:.1%} | {100 * r.mean_score:.1f}"
            line = f"| {r.method} | {rates} | {calls} | {r.seconds:.1f} |"
            if counted:
                line += f" {r.episodes:,} |" if r.episodes is not None else " |"
            if llm:
                u = r.usage
                line += (
                    f" {u.calls:,} | {u.prompt_tokens:,} / {u.completion_tokens:,} | {u.errors:,} |"
                )
            lines.append(line)
        for key, value in self.notes.items():
            lines.append(f"\n{key}: {value}")
        return "\n".join(lines)


def _timed(fn: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _env_score(trajectory: Any) -> float:
    return float(trajectory.evaluation.score) if trajectory and trajectory.evaluation else 0.0


def _success(state: dict[str, Any]) -> bool:
    best = state.get("best")  # none when every candidate failed
    return bool(best and best.evaluation and best.evaluation.success)


def evaluate_planners(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer,
    planners: PlannerConfigs | Iterable[str] | None = None,
    *,
    split: str = "test",
    task_ids: list[str] | None = None,
    outcomes_path: str | Path | None = None,
    max_concurrency: int = 8,
    reward_model_val_accuracy: float | None = None,
    limits: UsageLimits | None = None,
    progress: bool = True,
    executor: EpisodeExecutor | None = None,
) -> EvaluationReport:
    """Run the baselines and ``planners`` on every task and aggregate the table (resumable).

    ``planners`` maps planner names to their configs (:data:`PlannerConfigs`), or lists names
    (each matched to Best-of-N's budget); None: the paper's three (ARMAP-B, -R, -M:
    :data:`~armap_agents.environments.defaults.DEFAULT_PLANNERS`; the step-level planners of
    :data:`~armap_agents.planners.PLANNERS` run when named). Best-of-N always runs, as it gives
    the Sampling, ARMAP-B and oracle rows: its config (default ``BestOfNConfig()``: N = 16, 10
    steps) sets N, the episode length and the seed of every method, Greedy's included, and
    selects by reward.
    The other planners get the policy-call budget Best-of-N used on the same task, unless
    their configs say otherwise. LLM usage is recorded per method and task. ``limits`` is a
    budget for the whole run: when it is spent, the task in flight is dropped, the report
    covers the tasks done (``report.stopped`` says why) and a rerun with ``outcomes_path``
    resumes from there. A task recorded without some planner's row (a planner added to a
    finished run) keeps its rows and runs only the missing planners, at the budget recorded.

    ``executor``: where the episodes of Best-of-N's candidates and of Greedy run (default: in
    this process; see :mod:`armap_agents.executors`, e.g. a
    :class:`~armap_agents.ray_executor.RayExecutor`). The other planners run in this process
    whatever the executor: their episodes depend on each other (reflections on earlier
    attempts; a search tree's replays).

    Example: ``evaluate_planners(policy, Game24Env, model, {"best_of_n": BestOfNConfig(n=8),
    "reflexion": {"threshold": 0.5}})``.
    """
    configs = _planner_configs(planners)
    bon = planner_config("best_of_n", configs.pop("best_of_n"))
    assert isinstance(bon, BestOfNConfig)
    if bon.selection != "reward":
        raise ConfigError(
            f"ARMAP-B is the reward model's pick: Best-of-N's selection must be 'reward', "
            f"not {bon.selection!r} (the oracle row is always in the table)"
        )
    n, max_steps, seed = bon.n, bon.max_steps, bon.seed

    def config_for(planner: str, policy_calls: int) -> BaseModel:
        """``planner``'s config on a task where Best-of-N spent ``policy_calls``."""
        given = configs[planner]
        if isinstance(given, BaseModel):
            return planner_config(planner, given)
        matched = PLANNERS[planner].matched
        fields = {"max_steps": max_steps, "seed": seed}
        fields.update(matched(n, policy_calls) if matched else {})
        return planner_config(planner, {**fields, **(given or {})})

    for planner in configs:  # mistakes in the configs are found before any work
        config_for(planner, 1)
    with closing(env_factory()) as env:
        name = env.name
        tasks = list(task_ids) if task_ids is not None else env.task_ids(split)
    # every environment this process builds is counted; an executor's episodes are not
    counter = EpisodeCounter(env_factory)
    baselines_counted = executor is None
    baseline_factory = counter if baselines_counted else env_factory
    best_of_n = build_planner(
        "best_of_n", policy, baseline_factory, reward_model, bon, executor=executor
    )
    greedy = build_planner(
        "best_of_n",
        policy,
        baseline_factory,
        None,
        {"n": 1, "selection": "random", "greedy": True, "max_steps": max_steps, "seed": seed},
        executor=executor,
    )
    rows = [PLANNERS["best_of_n"].row_label(n), *(PLANNERS[p].row_label(n) for p in configs)]
    run_config = {"max_concurrency": max_concurrency}
    outcomes: dict[str, TaskOutcome] = {}
    appender = None
    if outcomes_path is not None:
        outcomes = {t: o for t, o in read_outcomes(outcomes_path).items() if t in tasks}
        appender = JsonlAppender(outcomes_path)
    run_usage = UsageTracker(limits)
    stopped = None

    def run(
        graph: Any, task_id: str, counted: bool = True
    ) -> tuple[dict[str, Any], float, Usage, tuple[int, int] | None]:
        """The graph's final state, its seconds, usage and (episodes, steps) executed where
        ``counted``; when every candidate failed, a state with the ``error``, the policy calls
        spent and no ``best`` (a failure on this task, not of the run)."""
        before = (counter.episodes, counter.steps)
        usage = UsageTracker()
        # an executor's callbacks count this process's requests in its own budget (a cluster's)
        callbacks = [run_usage, usage, *getattr(executor, "callbacks", ())]
        config = {**run_config, "callbacks": callbacks}

        def invoke() -> dict[str, Any]:
            try:
                return graph.invoke({"task_id": task_id}, config)
            except AllCandidatesFailed as exc:
                logger.warning("task %s: %s", task_id, exc)
                return {
                    "error": scrub_secrets(str(exc)),
                    "policy_calls": exc.policy_calls,
                    "candidates": [],
                }

        state, seconds = _timed(invoke)
        executed = (counter.episodes - before[0], counter.steps - before[1])
        return state, seconds, usage.usage, executed if counted else None

    def outcome_of(
        state: dict[str, Any],
        seconds: float,
        usage: Usage,
        executed: tuple[int, int] | None,
    ) -> MethodOutcome:
        return MethodOutcome(
            success=_success(state),
            score=_env_score(state.get("best")),
            policy_calls=state["policy_calls"],
            reward_model_calls=state.get("reward_model_calls", 0),
            seconds=seconds,
            usage=usage,
            error=state.get("error"),
            episodes=executed[0] if executed else None,
            env_steps=executed[1] if executed else None,
        )

    bon_row = PLANNERS["best_of_n"].row_label(n)
    bar = progress_bar(iterable=tasks, desc=f"evaluate (N={n})", unit="task", progress=progress)
    for task_id in bar:
        known = outcomes.get(task_id)
        if known is not None and all(row in known.methods for row in rows):
            continue
        # a task recorded without some planner's row (a planner added to a finished run, or a
        # row removed to be redone) keeps its Best-of-N and Greedy rows: only the missing run
        reuse = known if known and {bon_row, "Greedy"} <= known.methods.keys() else None
        try:
            if reuse is not None:
                methods = dict(reuse.methods)
                budget = methods[bon_row].policy_calls
            else:
                b = run(best_of_n, task_id, baselines_counted)
                methods = {
                    "Greedy": outcome_of(*run(greedy, task_id, baselines_counted)),
                    bon_row: outcome_of(*b),
                }
                budget = b[0]["policy_calls"]
            for planner in configs:
                label = PLANNERS[planner].row_label(n)
                if label in methods:
                    continue
                config = config_for(planner, budget)
                graph = build_planner(planner, policy, counter, reward_model, config)
                methods[label] = outcome_of(*run(graph, task_id))
        except BudgetExceeded as exc:
            # the task in flight was cut short by the budget: its figures would be wrong, so it
            # is not recorded (a rerun with a larger budget does it again)
            stopped = str(exc)
            logger.warning("evaluation stopped at task %s: %s", task_id, stopped)
            break
        if reuse is not None:
            outcome = reuse.model_copy(update={"methods": methods})
        else:
            candidates = b[0]["candidates"]  # none kept when every one failed: N failures
            outcome = TaskOutcome(
                task_id=task_id,
                candidates=[bool(c.evaluation and c.evaluation.success) for c in candidates]
                or [False] * n,
                scores=b[0].get("scores") or [None] * n,
                candidate_scores=[_env_score(c) for c in candidates] or [0.0] * n,
                methods=methods,
            )
        outcomes[task_id] = outcome  # appended again: the last record of a task counts
        if appender is not None:
            appender.append(outcome)
    done = [outcomes[t] for t in tasks if t in outcomes]
    if not done:
        raise BudgetExceeded(f"no task finished within the budget ({stopped})")
    report = summarize(
        done,
        env=name,
        split=split,
        n=n,
        reward_model_val_accuracy=reward_model_val_accuracy,
    )
    report.stopped = stopped
    return report


def read_outcomes(path: str | Path) -> dict[str, TaskOutcome]:
    """The outcomes recorded in ``path`` (an evaluation's ``outcomes.jsonl``) by task, in the
    order tasks were first recorded; a task recorded again (a planner's row added later) is
    its last record. A missing file is no outcome."""
    return {o.task_id: o for o in iter_jsonl(path, TaskOutcome)}


def _planner_configs(
    planners: PlannerConfigs | Iterable[str] | None,
) -> dict[str, BaseModel | Mapping[str, Any] | None]:
    """``planners`` as ``{name: config or None}`` in the registry's order, Best-of-N always
    included; an unknown name is a :class:`ConfigError`."""
    if planners is None:
        given: Mapping[str, Any] = dict.fromkeys(DEFAULT_PLANNERS)
    elif isinstance(planners, Mapping):
        given = planners
    elif isinstance(planners, str):
        raise ConfigError(
            f"planners: give a list of names or a mapping, not the string {planners!r}"
        )
    else:
        given = dict.fromkeys(planners)
    for name in given:
        planner_spec(name)
    return {name: given.get(name) for name in PLANNER_NAMES if name in given or name == "best_of_n"}


def _other_rows(n: int) -> list[str]:
    """The rows of the planners other than Best-of-N, in the registry's order."""
    return [spec.row_label(n) for name, spec in PLANNERS.items() if name != "best_of_n"]


def summarize(
    outcomes: list[TaskOutcome],
    *,
    env: str,
    split: str,
    n: int,
    reward_model_val_accuracy: float | None = None,
) -> EvaluationReport:
    """Aggregate per-task outcomes into the rows of the table."""
    if not outcomes:
        raise ValueError("no outcomes to summarize")
    armap_b = PLANNERS["best_of_n"].row_label(n)

    def row(method: str, label: str | None = None) -> MethodRow:
        results = [o.methods[method] for o in outcomes]
        return MethodRow(
            method=label or method,
            success_rate=statistics.fmean(r.success for r in results),
            mean_score=statistics.fmean(r.score for r in results),
            policy_calls=sum(r.policy_calls for r in results),
            reward_model_calls=sum(r.reward_model_calls for r in results),
            seconds=sum(r.seconds for r in results),
            usage=sum((r.usage for r in results), Usage()),
            episodes=_total(r.episodes for r in results),
        )

    bon = row(armap_b)
    one_candidate = Usage(
        calls=round(bon.usage.calls / n),
        prompt_tokens=round(bon.usage.prompt_tokens / n),
        completion_tokens=round(bon.usage.completion_tokens / n),
        errors=round(bon.usage.errors / n),
    )
    rows = [
        MethodRow(
            method="Sampling",
            success_rate=statistics.fmean(statistics.fmean(o.candidates) for o in outcomes),
            mean_score=statistics.fmean(
                statistics.fmean(o.candidate_scores or [0.0]) for o in outcomes
            ),
            policy_calls=round(bon.policy_calls / n),
            seconds=bon.seconds / n,
            usage=one_candidate,
            episodes=None if bon.episodes is None else round(bon.episodes / n),
        ),
        row("Greedy"),
        bon,
        *(row(m) for m in _other_rows(n) if all(m in o.methods for o in outcomes)),
        MethodRow(
            method=f"oracle Best-of-{n}",
            success_rate=statistics.fmean(any(o.candidates) for o in outcomes),
            mean_score=statistics.fmean(max(o.candidate_scores or [0.0]) for o in outcomes),
            policy_calls=bon.policy_calls,
            seconds=bon.seconds,
            usage=bon.usage,
            episodes=bon.episodes,
        ),
    ]
    report = EvaluationReport(
        env=env,
        split=split,
        tasks=len(outcomes),
        n=n,
        rows=rows,
        reward_model_val_accuracy=reward_model_val_accuracy,
        notes={
            "Sampling": "mean success over all N candidates (expected success of one random "
            "pick); its policy calls, time and usage are those of one candidate per task",
            "machine": machine_description(),
        },
    )
    present = {r.method for r in rows}
    budgets = [
        spec.budget
        for spec in PLANNERS.values()
        if spec.budget is not None and spec.row_label(n) in present
    ]
    if budgets:
        report.notes["Budgets"] = "; ".join(budgets)
    failed = Counter(m for o in outcomes for m, r in o.methods.items() if r.error)
    if failed:
        report.notes["Failed"] = (
            "tasks where every candidate of a method failed, counted as failures (each "
            "task's outcome keeps the error): " + ", ".join(f"{m} {k}" for m, k in failed.items())
        )
    return report


def _total(counts: Iterable[int | None]) -> int | None:
    """The sum of ``counts``, or None when any is unknown (an outcome that did not count)."""
    values = list(counts)
    return None if None in values else sum(values)  # type: ignore[arg-type]


def machine_description() -> str:
    """CPU model, core count and Python version, for the record beside any table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _method_color(method: str) -> str:
    """Baselines grey, each ARMAP planner its own colour, the oracle pale."""
    for prefix, color in (
        ("ARMAP-B", "#1f77b4"),
        ("ARMAP-R", "#2ca02c"),
        ("ARMAP-M", "#d62728"),
        ("ARMAP-Beam", "#9467bd"),
        ("ARMAP-Live", "#ff7f0e"),
        ("oracle", "#d9d9d9"),
        ("Greedy", "#a6a6a6"),
    ):
        if method.startswith(prefix):
            return color
    return "#7f7f7f"


def plot_report(report: EvaluationReport, path: str | Path) -> Path:
    """The results as a PNG: success rate per method, the environment's mean score when it is
    not just success (ScienceWorld, WebShop), and policy calls per task (the cost)."""
    plt = pyplot()
    rows = report.rows
    tasks = max(1, report.tasks)
    show_score = any(abs(r.mean_score - r.success_rate) > 1e-9 for r in rows)
    panels: list[tuple[str, list[float], str]] = [
        ("Success rate (%)", [100 * r.success_rate for r in rows], "{:.1f}%"),
    ]
    if show_score:
        panels.append(("Mean score (0-100)", [100 * r.mean_score for r in rows], "{:.1f}"))
    panels.append(("Policy calls per task", [r.policy_calls / tasks for r in rows], "{:,.1f}"))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.6 * len(panels) + 1.6, 0.42 * len(rows) + 1.9),
        sharey=True,
        squeeze=False,
    )
    colors = [_method_color(r.method) for r in rows]
    y = list(range(len(rows)))
    for ax, (title, values, fmt) in zip(axes[0], panels, strict=True):
        bars = ax.barh(y, values, color=colors, edgecolor="#555", linewidth=0.6)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.set_xlim(0, max([*values, 1.0]) * 1.3)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=9)
    axes[0][0].set_yticks(y, [r.method for r in rows])
    axes[0][0].invert_yaxis()  # the table's order, top to bottom
    title = f"{report.env} / {report.split}: {report.tasks} tasks, N = {report.n}"
    if report.reward_model_val_accuracy is not None:
        title += f" · reward-model validation accuracy {report.reward_model_val_accuracy:.1%}"
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
