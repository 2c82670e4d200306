"""A test environment that declares its own horizon: a 14-step corridor (fake, for tests).

The goal is 14 cells to the right; each step moves one cell ``left`` or ``right``. It declares
``EnvironmentDefaults(max_steps=14)``, so every command plays 14 steps without ``--max-steps``
(the generic horizon would be another number).
"""

from __future__ import annotations

from armap_agents import Evaluation, Observation, StepResult
from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan, QuickstartSizes

LENGTH = 14

_TINY = QuickstartPlan(train_tasks=4, episodes=2, max_train=64, epochs=1, test_tasks=2, n=2)


class Corridor:
    """Walk from cell 0 to cell 14; success at the end, the score is the cell reached / 14."""

    name = "corridor"
    defaults = EnvironmentDefaults(
        max_steps=LENGTH,
        max_length=256,
        quickstart=QuickstartSizes(full=_TINY, tiny=_TINY, llm_full=_TINY, llm_tiny=_TINY),
    )

    def __init__(self) -> None:
        self.position = 0

    def task_ids(self, split: str = "train") -> list[str]:
        return [f"{split}-{i}" for i in range(6)]

    def reset(self, task_id: str) -> Observation:
        self.position = 0
        return Observation(instruction=f"Walk {LENGTH} cells to the right.", text="At cell 0.")

    def valid_actions(self) -> list[str]:
        return ["left", "right"]

    def step(self, action: str) -> StepResult:
        if action not in ("left", "right"):
            return StepResult(observation="Say left or right.", valid=False)
        self.position = max(0, self.position + (1 if action == "right" else -1))
        return StepResult(observation=f"At cell {self.position}.", done=self.position == LENGTH)

    def evaluate(self) -> Evaluation:
        return Evaluation(success=self.position == LENGTH, score=self.position / LENGTH)

    def close(self) -> None:
        pass
