"""Hindsight triplets from the environment's own outcomes: a relabeler for any environment.

:class:`OutcomeRelabeler` needs nothing but what every explored trajectory carries, its
:class:`~armap_agents.types.Evaluation`, so it is the default relabeler of environments that
bring none of their own (``armap synthesize --synthesizer relabel`` on an imported
environment). It makes prefix pairs (the same number of steps of a better and a worse
trajectory of a task) from the final verdict alone; environments that record progress after
every step pass a ``scores`` function and get verified prefix labels (ScienceWorld's relabeler
is this class with ScienceWorld's per-step game score). :func:`prefix_depths` is the rule the
built-in relabelers share.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Sequence

from armap_agents.errors import ConfigError
from armap_agents.types import Trajectory, Triplet

__all__ = [
    "PREFIX_FRACTIONS",
    "OutcomeRelabeler",
    "ScoresFn",
    "divergence",
    "evaluation_scores",
    "first_lead",
    "outcome_triplet",
    "prefix_depths",
    "prefix_triplets",
]

PREFIX_FRACTIONS = (0.25, 0.5, 0.75)
"""Where prefix pairs cut, as fractions of the shorter trajectory (besides the first step at
which the two differ): spread over the episode, as step-level planners score every depth."""

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
    * ``prefix`` pairs (``prefixes``): for each outcome pair, up to ``prefix_pairs_per_pair``
      pairs ``(positive[:k], negative[:k])`` of the same step count ``k``, chosen by
      :func:`prefix_depths`: from the first step at which the two differ onward, never two
      prefixes of the same text, never the outcome pair again. When ``scores`` gives a score
      after every step, the first depth at which the positive leads comes first and no depth at
      which the negative leads is used; with only a final verdict the depths are drawn from
      the first divergence and :data:`PREFIX_FRACTIONS` of the shorter trajectory;
    * ``truncated`` pairs (``truncated``): a successful trajectory that the environment ended
      (``done``) against one of its own prefixes, cut before its last step: stopping short of
      the goal does not fulfil it. This assumes success is reached by the last step; switch it
      off for environments where an episode can succeed and go on.

    The assumption behind prefix pairs without per-step scores (outcome-supervised process
    labels, as AgentRM's and outcome-supervised PRMs'): once two attempts at a task part
    ways, the part of the one that went on to do better is the better part. It is not always
    true (the worse one may have been on a good track and erred later, or the better one
    recovered from a poor start), so these labels are noisier than outcome pairs; pairs are
    taken only after the trajectories diverge (before that they are the same text) and are
    capped per pair (``prefix_pairs_per_pair``, default 1: at most as many prefix triplets as
    outcome triplets, so the whole-trajectory signal Best-of-N relies on is not swamped).

    Trajectories that failed with an error, have no steps, no intent, or no score are skipped.
    Labels come from the environment's verdicts only: no LLM, no replay.
    """

    def __init__(
        self,
        *,
        negatives_per_positive: int = 2,
        prefixes: bool = True,
        prefix_pairs_per_pair: int = 1,
        truncated: bool = True,
        scores: ScoresFn | None = None,
    ) -> None:
        if negatives_per_positive < 1:
            raise ConfigError("negatives_per_positive must be at least 1")
        if prefix_pairs_per_pair < 0:
            raise ConfigError("prefix_pairs_per_pair cannot be negative")
        self.negatives_per_positive = negatives_per_positive
        self.prefixes = prefixes
        self.prefix_pairs_per_pair = prefix_pairs_per_pair
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
                    if self.prefixes:
                        triplets += prefix_triplets(
                            intent,
                            positive,
                            negative,
                            rng,
                            limit=self.prefix_pairs_per_pair,
                            p_scores=p_scores,
                            n_scores=n_scores,
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


def divergence(a: Trajectory, b: Trajectory) -> int | None:
    """The smallest step count ``k >= 1`` at which ``a[:k]`` and ``b[:k]`` render differently
    (see :func:`~armap_agents.types.render_trajectory`: the first view, then each action and
    observation); ``None`` when one is a prefix of the other, text for text."""
    if a.initial_observation != b.initial_observation:
        return 1
    for i, (x, y) in enumerate(zip(a.steps, b.steps, strict=False)):
        if x.action != y.action or x.observation != y.observation:
            return i + 1
    return None


def prefix_depths(
    positive: Trajectory,
    negative: Trajectory,
    rng: random.Random,
    *,
    limit: int = 1,
    p_scores: Sequence[float] | None = None,
    n_scores: Sequence[float] | None = None,
    fractions: Sequence[float] = PREFIX_FRACTIONS,
) -> list[int]:
    """Up to ``limit`` step counts ``k`` at which ``(positive[:k], negative[:k])`` is a prefix
    pair for a positive that ended better than the negative, ascending.

    A depth is at least the first step at which the two differ (:func:`divergence`; earlier,
    the prefixes are the same text and would teach noise) and at most the shorter one's length,
    and it cuts at least one of them (else the pair is the whole-trajectory pair again).

    With a score after every step of both (``p_scores`` / ``n_scores`` as long as their
    trajectories), the first depth at which the positive's score leads (:func:`first_lead`)
    comes first: a label the environment verified; the rest, like every depth without per-step
    scores, are drawn at random among the first divergence and ``fractions`` of the shorter
    length, leaving out depths at which the negative's score leads (its prefix is the better
    one there). Without per-step scores the label is the final outcome's (see
    :class:`OutcomeRelabeler` on why that is an assumption).
    """
    if limit < 1:
        return []
    start = divergence(positive, negative)
    if start is None:
        return []
    shorter = min(len(positive.steps), len(negative.steps))
    last = shorter if len(positive.steps) != len(negative.steps) else shorter - 1
    per_step = (
        p_scores is not None
        and n_scores is not None
        and len(p_scores) == len(positive.steps)
        and len(n_scores) == len(negative.steps)
    )

    def allowed(k: int) -> bool:
        if not start <= k <= last:
            return False
        if per_step:
            assert p_scores is not None and n_scores is not None
            return p_scores[k - 1] >= n_scores[k - 1]
        return True

    chosen: list[int] = []
    if per_step:
        assert p_scores is not None and n_scores is not None
        lead = first_lead(positive, p_scores, negative, n_scores)
        if lead is not None and allowed(lead):
            chosen.append(lead)
    spread = {start, *(max(1, int(f * shorter + 0.5)) for f in fractions)}
    pool = sorted(k for k in spread if allowed(k) and k not in chosen)
    chosen += rng.sample(pool, min(limit - len(chosen), len(pool)))
    return sorted(chosen)


def prefix_triplets(
    intent: str,
    positive: Trajectory,
    negative: Trajectory,
    rng: random.Random,
    *,
    limit: int = 1,
    p_scores: Sequence[float] | None = None,
    n_scores: Sequence[float] | None = None,
    source: str = "prefix",
) -> list[Triplet]:
    """``prefix`` triplets ``(intent, positive[:k], negative[:k])`` at the depths
    :func:`prefix_depths` picks; a pair whose two prefixes render alike is never made."""
    out = []
    for k in prefix_depths(
        positive, negative, rng, limit=limit, p_scores=p_scores, n_scores=n_scores
    ):
        p, n = positive.prefix(k), negative.prefix(k)
        if p.render() != n.render():
            out.append(outcome_triplet(intent, p, n, source))
    return out
