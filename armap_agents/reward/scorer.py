"""What a planner needs from a reward scorer, and the one adaptor from texts to trajectories.

:class:`RewardScorer` is the protocol every planner (Best-of-N, Reflexion, MCTS, the
evaluation) takes: ``score(intent, trajectories) -> list[float]``, one value per trajectory,
higher is better. Any object with that method is a scorer, for example::

    class LengthPenalty:
        def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]:
            return [-float(len(t.steps)) for t in trajectories]

:class:`TextScorer` is the base of the scorers that read text (the local ``RewardModel``,
``RemoteRewardModel``, ``LLMJudge``): they implement ``score_texts(intents, texts)`` over
``(intent, trajectory text)`` pairs, and the base renders each trajectory (:meth:`render`) to
give them ``score``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from armap_agents.types import Trajectory, render_trajectory

__all__ = ["RewardScorer", "TextScorer"]


@runtime_checkable
class RewardScorer(Protocol):
    """Anything with ``score(intent, trajectories) -> list[float]``: one value per trajectory
    for the same intent, in input order, higher is better."""

    def score(self, intent: str, trajectories: Sequence[Trajectory]) -> list[float]: ...


class TextScorer(ABC):
    """A :class:`RewardScorer` that reads ``(intent, trajectory text)`` pairs.

    Subclasses implement :meth:`score_texts`; :meth:`score` renders the trajectories with
    :meth:`render` (the canonical text unless overridden) and scores them against the intent.
    """

    @abstractmethod
    def score_texts(self, intents: Sequence[str], texts: Sequence[str]) -> list[float]:
        """One value per ``(intent, text)`` pair, input order kept."""

    def render(self, trajectory: Trajectory) -> str:
        """The text this scorer reads of ``trajectory`` (the intent apart)."""
        return render_trajectory(trajectory)

    def score(self, intent: str, trajectories: Sequence[Trajectory], **options: Any) -> list[float]:
        """One value per trajectory for the same intent; ``options`` go to :meth:`score_texts`
        (e.g. the local reward model's ``batch_size``)."""
        texts = [self.render(t) for t in trajectories]
        return self.score_texts([intent] * len(texts), texts, **options)
