"""What a reward-model training will cost, said before the user waits for it.

:class:`RewardTrainer` says what it trains on before the first batch (:func:`training_plan`:
triplets, epochs, batches) and, once a few of its real optimizer steps are timed, how long the
whole training should take on this machine (:class:`TrainingEstimate`). Nothing is run for the
estimate: the first steps of the training itself are timed (the very first is left out, as it
pays one-off costs), and their seconds per padded token are extrapolated to the padded tokens
of every batch left, plus the forward-only scoring after each epoch (validation, held-out
candidates) at :data:`FORWARD_SHARE` of a training step's cost per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "FORWARD_SHARE",
    "TIMED_STEPS",
    "TrainingEstimate",
    "describe_seconds",
    "padded_tokens",
    "training_plan",
]

TIMED_STEPS = 3
"""Optimizer steps timed for the estimate, after the first (which pays one-off costs)."""
FORWARD_SHARE = 1 / 3
"""A forward pass's share of a training step's compute per token (the backward pass costs
about twice the forward)."""


def padded_tokens(rows: list[int]) -> int:
    """The tokens a batch computes on: its ``rows`` (token counts) padded to the longest."""
    return len(rows) * max(rows, default=0)


def describe_seconds(seconds: float) -> str:
    """``40 s``, ``12 min``, ``2.5 h``: a duration as a person reads an estimate."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def training_plan(
    *, used: int, available: int, cap: int | None, epochs: int, batches: int, val: int
) -> str:
    """One line saying what a training is about to do: ``used`` of ``available`` training
    triplets (``cap``: the ``max_train`` that sampled them), ``epochs`` of ``batches``
    optimizer steps, ``val`` validation triplets."""
    if used < available:
        data = f"{used:,} of {available:,} triplets (sampled: max_train {cap:,})"
    else:
        data = f"{used:,} triplets"
    return (
        f"training the reward model on {data}, {epochs} epoch{'s' * (epochs != 1)} of "
        f"{batches:,} batch{'es' * (batches != 1)}"
        + (f", validating on {val:,} triplets after each" if val else "")
    )


@dataclass
class TrainingEstimate:
    """Extrapolates the first timed optimizer steps of a training to all of it.

    ``eval_tokens``: the tokens scored without gradients after each epoch (validation,
    held-out candidates). Call :meth:`record` after every optimizer step; it returns the
    estimate's line once, after the step that completes the timing (None before and after,
    and when no step is left to forecast). :attr:`seconds` keeps the estimate."""

    eval_tokens: int = 0
    timed_steps: int = TIMED_STEPS
    seconds: float | None = None
    """The estimated seconds of the whole run, from its first step (None: not made)."""
    _steps_seen: int = 0
    _timed_seconds: float = 0.0
    _timed_tokens: int = 0
    _elapsed: float = 0.0
    _done: bool = field(default=False, repr=False)

    def record(
        self, epoch_tokens: list[int], number: int, seconds: float, epochs_after: int
    ) -> str | None:
        """Note that step ``number`` (1-based) of an epoch whose batches compute on
        ``epoch_tokens`` (:func:`padded_tokens`) took ``seconds``, with ``epochs_after``
        epochs to train after this one; the estimate's line when it is made."""
        self._steps_seen += 1
        self._elapsed += seconds
        if self._done or self._steps_seen == 1:  # the first step pays one-off costs
            return None
        self._timed_seconds += seconds
        self._timed_tokens += epoch_tokens[number - 1]
        if self._steps_seen <= self.timed_steps or self._timed_tokens == 0:
            return None
        self._done = True
        left = sum(epoch_tokens[number:]) + epochs_after * sum(epoch_tokens)
        if left == 0:  # the timing took the whole training: nothing to forecast
            return None
        per_token = self._timed_seconds / self._timed_tokens
        scoring = (epochs_after + 1) * self.eval_tokens * FORWARD_SHARE
        self.seconds = self._elapsed + per_token * (left + scoring)
        return (
            f"estimated training time: about {describe_seconds(self.seconds)} on this machine "
            f"(from batches 2-{self.timed_steps + 1}, validation included); fewer triplets "
            "(max_train, --max-train) or epochs (--epochs) make it shorter"
        )
