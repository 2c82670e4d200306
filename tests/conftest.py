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


@pytest.fixture(scope="session")
def game24_quickstart(tmp_path_factory) -> tuple[object, str]:
    """A finished ``armap quickstart --size tiny`` run on Game of 24 (explored, synthesized,
    trained, evaluated), made once per session: ``(run directory, what it printed)``. Tests
    that read a trained model with its manifests share it; they must not write into it."""
    import contextlib
    import io

    from armap_agents.cli import main

    run = tmp_path_factory.mktemp("game24-quickstart") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["quickstart", "--size", "tiny", "--run-dir", str(run)]) == 0
    return run, printed.getvalue()
