"""A test environment for tests/test_ray_executor.py, loaded by Ray workers by its file path:
Game of 24 whose steps take a tenth of a second, so that an episode lasts long enough to kill
the worker playing it."""

from __future__ import annotations

import time

from armap_agents.environments.game24 import Game24Env
from armap_agents.types import StepResult


class SlowGame24(Game24Env):
    """Game of 24, 0.1 s a step."""

    def step(self, action: str) -> StepResult:
        time.sleep(0.1)
        return super().step(action)
