"""Shared fixtures. Models are real (MiniLM from the installed wheel); chat models are fakes."""

from __future__ import annotations

import pytest

from armap_agents.environments.game24 import Game24Env


@pytest.fixture
def env() -> Game24Env:
    return Game24Env()


@pytest.fixture(scope="session")
def small_reward_model_config():
    from armap_agents.reward.model import RewardModelConfig

    return RewardModelConfig(max_length=96, lora_r=8, seed=0)
