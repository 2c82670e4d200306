"""How a critic serves planning, measured on held-out tasks' candidates.

Pairwise accuracy on relabeled triplets is a proxy: it can rise while the picks a planner makes
with the critic get worse. What a user gets is the success of the trajectory the critic picks
among a task's candidates, which is what Best-of-N does. Explored trajectories of tasks that
training never saw (the validation split of a synthesis, with the environment's verdicts) give
that for free, without playing an episode:

* :func:`pick_metrics`: per task, is the critic's top-scored candidate a success? Beside it the
  expected success of a random candidate (Sampling) and of the best one (the oracle), and the
  share of the gap between the two that the critic closes. Training keeps the epoch whose
  picks are best (:mod:`armap_agents.reward.train`).
* :func:`calibrate`: the scores of held-out trajectories that did and did not reach the intent,
  and the threshold ARMAP-R stops at by default: the score that maximises F0.5 of "this attempt
  succeeded" on them. Precision counts twice as much as recall because a wrong stop loses the
  task while a needless retry costs one attempt.

Plain data and arithmetic: importable without torch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from armap_agents.types import Trajectory

__all__ = [
    "Calibration",
    "CalibrationPoint",
    "MIN_DECISIVE_TASKS",
    "PickMetrics",
    "calibrate",
    "candidate_groups",
    "judged",
    "pick_metrics",
    "plot_calibration",
]

MIN_DECISIVE_TASKS = 5
"""Picks choose the kept epoch only when at least this many held-out tasks have candidates
that differ in success (fewer tell epochs apart by chance): validation accuracy chooses
otherwise."""
F_BETA = 0.5
"""The beta of the F-measure a threshold maximises (below 1: precision weighs more than
recall; see :func:`calibrate`)."""


def judged(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """The trajectories with a verdict and no error: what held-out metrics are computed on."""
    return [t for t in trajectories if t.evaluation is not None and not t.failed]


def candidate_groups(trajectories: Sequence[Trajectory]) -> list[list[Trajectory]]:
    """The held-out candidates by task: trajectories with a verdict and no error, grouped by
    ``task_id`` (tasks in first-seen order, candidates in episode order), tasks with fewer
    than two candidates left out (there is nothing to pick)."""
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for trajectory in judged(trajectories):
        groups[trajectory.task_id].append(trajectory)
    return [
        sorted(group, key=lambda t: t.episode_id) for group in groups.values() if len(group) > 1
    ]


class PickMetrics(BaseModel):
    """How well a critic picks among each held-out task's candidates (see the module)."""

    tasks: int
    """Tasks with two candidates or more."""
    candidates: int
    decisive: int = 0
    """Tasks whose candidates differ in success: the only ones a pick can win or lose."""
    pick_success: float
    """Share of tasks whose top-scored candidate succeeded (ties: the first)."""
    mean_success: float
    """Expected success of a candidate drawn at random (Sampling)."""
    oracle_success: float
    """Share of tasks with a successful candidate (the best any pick can do)."""
    gap_closed: float | None
    """``(pick - mean) / (oracle - mean)`` of the success: 1 picks like the oracle, 0 like
    chance, below 0 worse than chance; None when no task mixes successes and failures."""
    pick_score: float
    """Mean environment score of the picks (for environments with graded scores)."""
    mean_score: float
    oracle_score: float

    @property
    def selects(self) -> bool:
        """Whether enough tasks are decisive (:data:`MIN_DECISIVE_TASKS`) to choose by."""
        return self.decisive >= MIN_DECISIVE_TASKS

    def key(self) -> tuple[float]:
        """What a better critic has more of: picks' success (a graded score alone, one task's
        0.5 against 0, is too thin to choose by: it is reported, not selected on)."""
        return (self.pick_success,)


def pick_metrics(
    groups: Sequence[Sequence[Trajectory]], scores: Sequence[Sequence[float]]
) -> PickMetrics:
    """:class:`PickMetrics` of ``scores`` (one per candidate of each group of
    :func:`candidate_groups`)."""
    if not groups:
        raise ValueError("no held-out task has two candidates to pick from")
    pick = mean = oracle = pick_score = mean_score = oracle_score = 0.0
    decisive = 0
    for group, group_scores in zip(groups, scores, strict=True):
        successes = [float(t.evaluation.success) for t in group if t.evaluation is not None]
        values = [t.evaluation.score for t in group if t.evaluation is not None]
        best = max(range(len(group)), key=lambda i: (group_scores[i], -i))
        decisive += len(set(successes)) > 1
        pick += successes[best]
        mean += sum(successes) / len(successes)
        oracle += max(successes)
        pick_score += values[best]
        mean_score += sum(values) / len(values)
        oracle_score += max(values)
    n = len(groups)
    gap = (pick - mean) / (oracle - mean) if oracle - mean > 1e-9 else None
    return PickMetrics(
        tasks=n,
        candidates=sum(map(len, groups)),
        decisive=decisive,
        pick_success=pick / n,
        mean_success=mean / n,
        oracle_success=oracle / n,
        gap_closed=gap,
        pick_score=pick_score / n,
        mean_score=mean_score / n,
        oracle_score=oracle_score / n,
    )


class CalibrationPoint(BaseModel):
    """One threshold of the curve: what stopping at ``score >= threshold`` would do."""

    threshold: float
    precision: float
    """Share of the trajectories at or above the threshold that succeeded."""
    recall: float
    """Share of the successes at or above the threshold."""


class Calibration(BaseModel):
    """The critic's scores of held-out successes and failures, and ARMAP-R's threshold."""

    successes: int
    failures: int
    threshold: float | None
    """The chosen threshold (max F0.5); None without both successes and failures."""
    precision: float | None = None
    recall: float | None = None
    curve: list[CalibrationPoint] = Field(default_factory=list)
    """Precision and recall at every distinct score (at most ~50 points, evenly spread)."""
    success_scores: list[float] = Field(default_factory=list, repr=False)
    failure_scores: list[float] = Field(default_factory=list, repr=False)


def calibrate(scores: Sequence[float], successes: Sequence[bool], points: int = 50) -> Calibration:
    """The threshold at which an attempt scored ``>=`` it is taken for a success: the one of
    the held-out ``scores`` that maximises F0.5 on ``successes`` (see the module), with the
    precision / recall curve behind it."""
    pairs = sorted(zip(scores, successes, strict=True), key=lambda p: -p[0])
    positives = sum(successes)
    calibration = Calibration(
        successes=positives,
        failures=len(pairs) - positives,
        threshold=None,
        success_scores=[s for s, ok in pairs if ok],
        failure_scores=[s for s, ok in pairs if not ok],
    )
    if positives == 0 or positives == len(pairs):
        return calibration
    curve: list[CalibrationPoint] = []
    hits = 0
    for rank, (score, ok) in enumerate(pairs, 1):
        hits += ok
        if rank < len(pairs) and pairs[rank][0] == score:
            continue  # a threshold takes every trajectory of its score
        curve.append(
            CalibrationPoint(threshold=score, precision=hits / rank, recall=hits / positives)
        )
    beta2 = F_BETA**2

    def f_beta(point: CalibrationPoint) -> float:
        p, r = point.precision, point.recall
        return (1 + beta2) * p * r / (beta2 * p + r) if p + r else 0.0

    best = max(curve, key=lambda point: (f_beta(point), point.threshold))
    step = max(1, len(curve) // points)
    shown = {id(best)} | {id(point) for point in curve[::step]}
    return calibration.model_copy(
        update={
            "threshold": best.threshold,
            "precision": best.precision,
            "recall": best.recall,
            "curve": [point for point in curve if id(point) in shown],
        }
    )


def plot_calibration(calibration: Calibration, path: str | Path) -> Path:
    """A PNG of the calibration: the held-out successes' and failures' scores (histograms)
    and precision / recall against the threshold, the chosen one marked."""
    from armap_agents._plotting import pyplot, save_figure

    plt = pyplot()
    fig, (ax_hist, ax_curve) = plt.subplots(1, 2, figsize=(11, 4))
    every = calibration.success_scores + calibration.failure_scores
    bins = 30 if every else 1
    low, high = (min(every), max(every)) if every else (0.0, 1.0)
    for scores, label, color in (
        (calibration.failure_scores, f"failed ({calibration.failures:,})", "C3"),
        (calibration.success_scores, f"succeeded ({calibration.successes:,})", "C2"),
    ):
        ax_hist.hist(scores, bins=bins, range=(low, high), alpha=0.6, label=label, color=color)
    curve = calibration.curve
    ax_curve.plot([p.threshold for p in curve], [p.precision for p in curve], label="precision")
    ax_curve.plot([p.threshold for p in curve], [p.recall for p in curve], label="recall")
    if calibration.threshold is not None:
        for ax in (ax_hist, ax_curve):
            ax.axvline(calibration.threshold, color="#444", linestyle="--", linewidth=1)
        ax_curve.plot(
            [calibration.threshold],
            [calibration.precision],
            marker="*",
            markersize=14,
            color="C3",
            linestyle="none",
            label=f"chosen: {calibration.threshold:.3f}",
        )
    ax_hist.set(xlabel="critic score", ylabel="held-out trajectories", title="Scores by outcome")
    ax_curve.set(
        xlabel="stop at score >= threshold",
        title="ARMAP-R's threshold (max F0.5)",
        ylim=(0.0, 1.05),
    )
    for ax in (ax_hist, ax_curve):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    return save_figure(fig, path)
