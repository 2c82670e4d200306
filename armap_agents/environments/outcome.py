"""Hindsight triplets from the environment's own outcomes: a relabeler for any environment.

:class:`OutcomeRelabeler` needs nothing but what every explored trajectory carries, its
:class:`~armap_agents.types.Evaluation`, so it is the default relabeler of environments that
bring none of their own (``armap synthesize --synthesizer relabel`` on an imported
environment). Environments that record progress after every step pass a ``scores`` function
and get prefix pairs too (ScienceWorld's relabeler is this class with ScienceWorld's per-step
game score).
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Sequence

from armap_agents.errors import ConfigError
from armap_agents.types import Trajectory, Triplet

__all__ = ["OutcomeRelabeler", "ScoresFn", "evaluation_scores", "first_lead", "outcome_triplet"]

ScoresFn = Callable[[Trajectory], Sequence[float] | None]
"""A trajectory's score after each step (or only its final score, as a one-element list);
``None`` when it has none (the trajectory is then skipped)."""


def evaluation_scores(trajectory: Trajectory) -> list[float] | None:
    """The environment's final verdict as a one-element list, success above any failure:
    ``success + score`` (so a success scoring 0.5 still ranks above a failure scoring 0.9, and
    failures rank among themselves by score). ``None`` for an unevaluated trajectory."""
    evaluation = trajectory.evaluation
    if evaluation is None:
        return None
    return [float(evaluation.success) + float(evaluation.score)]


class OutcomeRelabeler:
    """Triplets that pair trajectories of the same task by how well the environment judged them.

    Trajectories are grouped by task id; the intent is the task's own instruction
    (``trajectory.intent``). Within a group:

    * ``outcome`` pairs: each trajectory is the positive against up to
      ``negatives_per_positive`` trajectories (drawn at random) whose final score is strictly
      lower; by default (:func:`evaluation_scores`) successes beat failures and failures are
      ranked by the environment's score, ties never pair;
    * ``prefix`` pairs (``prefixes``, when ``scores`` gives a score after every step): for such
      a pair, the first step ``k`` at which the positive's score leads the negative's gives
      ``(positive[:k], negative[:k])`` when ``k`` cuts one of them;
    * ``truncated`` pairs (``truncated``): a successful trajectory that the environment ended
      (``done``) against one of its own prefixes, cut before its last step: stopping short of
      the goal does not fulfil it. This assumes success is reached by the last step; switch it
      off for environments where an episode can succeed and go on.

    Trajectories that failed with an error, have no steps, no intent, or no score are skipped.
    Labels come from the environment's verdicts only: no LLM, no replay.
    """

    def __init__(
        self,
        *,
        negatives_per_positive: int = 2,
        prefixes: bool = True,
        truncated: bool = True,
        scores: ScoresFn | None = None,
    ) -> None:
        if negatives_per_positive < 1:
            raise ConfigError("negatives_per_positive must be at least 1")
        self.negatives_per_positive = negatives_per_positive
        self.prefixes = prefixes
        self.truncated = truncated
        self.scores: ScoresFn = scores or evaluation_scores

    def relabel(self, trajectories: list[Trajectory], seed: int) -> list[Triplet]:
        rng = random.Random(seed)
        groups: dict[str, list[tuple[Trajectory, list[float]]]] = collections.defaultdict(list)
        for t in trajectories:
            if t.failed or not t.steps or not t.intent:
                continue
            scores = self.scores(t)
            if scores:
                groups[t.task_id].append((t, list(scores)))
        triplets: list[Triplet] = []
        for task_id in sorted(groups):
            scored = groups[task_id]
            for positive, p_scores in scored:
                intent = positive.intent
                lower = [(n, s) for n, s in scored if s[-1] < p_scores[-1]]
                picks = rng.sample(lower, min(self.negatives_per_positive, len(lower)))
                for negative, n_scores in picks:
                    triplets.append(outcome_triplet(intent, positive, negative, "outcome"))
                    if not self.prefixes:
                        continue
                    k = first_lead(positive, p_scores, negative, n_scores)
                    if k is not None:
                        triplets.append(
                            outcome_triplet(
                                intent, positive.prefix(k), negative.prefix(k), "prefix"
                            )
                        )
                if self.truncated and _finished_success(positive) and len(positive.steps) > 1:
                    cut = positive.prefix(rng.randrange(1, len(positive.steps)))
                    cut = cut.model_copy(update={"episode_id": positive.episode_id + "~cut"})
                    triplets.append(outcome_triplet(intent, positive, cut, "truncated"))
        return triplets


def _finished_success(trajectory: Trajectory) -> bool:
    return trajectory.done and trajectory.evaluation is not None and trajectory.evaluation.success


def outcome_triplet(
    intent: str, positive: Trajectory, negative: Trajectory, source: str
) -> Triplet:
    """A triplet whose two trajectories both read ``intent`` and carry no verdict (the reward
    model must learn from the text, not from the label's source)."""

    def clean(t: Trajectory) -> Trajectory:
        return t.model_copy(update={"intent": intent, "evaluation": None})

    return Triplet(
        intent=intent,
        positive=clean(positive),
        negative=clean(negative),
        task_id=positive.task_id,
        source=source,
    )


def first_lead(
    positive: Trajectory,
    p_scores: Sequence[float],
    negative: Trajectory,
    n_scores: Sequence[float],
) -> int | None:
    """The first prefix length ``k`` at which the positive's score leads the negative's, when
    both have a score after every step and ``k`` cuts at least one of them (else the pair is
    the outcome pair again)."""
    if len(p_scores) != len(positive.steps) or len(n_scores) != len(negative.steps):
        return None
    for k in range(1, min(len(p_scores), len(n_scores)) + 1):
        if p_scores[k - 1] > n_scores[k - 1]:
            cuts = k < len(positive.steps) or k < len(negative.steps)
            return k if cuts else None
    return None
