"""Every public config refuses unknown fields and is frozen; configuration mistakes are
``ConfigError`` (a ``ValueError``) or ``UnknownName`` (a ``KeyError`` too)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

import armap_agents
from armap_agents import (
    BestOfNConfig,
    ConfigError,
    ExploreConfig,
    Game24Env,
    LLMJudge,
    MCTSConfig,
    OutcomeRelabeler,
    PromptGuide,
    ReflexionConfig,
    RemoteRewardModel,
    RetryPolicy,
    RewardModelConfig,
    RewardTrainerConfig,
    SynthesizeConfig,
    TrajectoryView,
    UsageLimits,
    build_planner,
)
from armap_agents.config import StrictConfig, parse_config
from armap_agents.deploy import ServerConfig
from armap_agents.environments import EnvPool
from armap_agents.errors import RewardServiceError, UnknownName
from armap_agents.testing import ScriptedChatModel

CONFIGS = [
    BestOfNConfig,
    ReflexionConfig,
    MCTSConfig,
    ExploreConfig,
    SynthesizeConfig,
    RewardModelConfig,
    RewardTrainerConfig,
    RetryPolicy,
    UsageLimits,
    TrajectoryView,
    PromptGuide,
]


def test_every_public_config_is_strict() -> None:
    public = [
        obj
        for name in armap_agents.__all__
        if name.endswith("Config")
        and isinstance(obj := getattr(armap_agents, name), type)
        and issubclass(obj, BaseModel)
    ]
    assert set(public) <= set(CONFIGS)  # a new public config joins the list (and the base)
    for config_type in [*CONFIGS, ServerConfig]:
        assert issubclass(config_type, StrictConfig), config_type


@pytest.mark.parametrize("config_type", CONFIGS, ids=lambda t: t.__name__)
def test_a_misspelt_field_fails_and_a_config_cannot_change(config_type) -> None:
    with pytest.raises(ValidationError, match="no_such_field"):
        config_type(no_such_field=1)
    config = config_type()
    field = next(iter(config_type.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(config, field, getattr(config, field))
    assert config.model_copy(update={}) == config


def test_a_typo_in_a_planner_config_names_the_field_and_the_right_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        build_planner("mcts", None, None, None, {"iteration": 5})
    message = str(caught.value)
    assert "['iteration']" in message and "did you mean 'iterations'?" in message
    assert "MCTSConfig has iterations, max_policy_calls" in message
    assert isinstance(caught.value, ValueError)  # callers catching ValueError keep working
    with pytest.raises(ConfigError, match=r"invalid best_of_n config: n: .*greater than or equal"):
        build_planner("best_of_n", None, None, None, {"n": 0})


def test_parse_config_reads_plain_dicts() -> None:
    assert parse_config(MCTSConfig, {"iterations": 5}).iterations == 5
    assert parse_config(MCTSConfig) == MCTSConfig()
    with pytest.raises(ConfigError, match=r"unknown explore_config field\(s\) \['splt'\]"):
        parse_config(ExploreConfig, {"splt": "test"}, what="explore_config")
    with pytest.raises(ConfigError, match="did you mean 'seed' for 'seeds'") as caught:
        parse_config(MCTSConfig, {"seeds": 1, "zzz": 2})
    assert "'zzz'" in str(caught.value)


def test_the_reward_model_config_fits_its_view_to_the_window() -> None:
    assert RewardModelConfig(max_length=256).view.max_chars == 2 * (
        RewardModelConfig(max_length=128).view.max_chars
    )
    assert RewardModelConfig(view=TrajectoryView(max_chars=100)).view.max_chars == 100
    assert RewardModelConfig(view=TrajectoryView.identity()).view.is_identity
    with pytest.raises(ValidationError, match="max_length"):  # not a KeyError in the validator
        RewardModelConfig(max_length=3)


def test_a_reward_model_saved_by_this_version_loads(tmp_path, small_reward_model_config) -> None:
    from armap_agents.reward.model import CONFIG_FILE, RewardModel

    saved = RewardModel.create(small_reward_model_config).save(tmp_path / "rm")
    assert json.loads((saved / CONFIG_FILE).read_text())["view"]["max_chars"] is not None
    assert RewardModel.load(saved).config == small_reward_model_config


def test_the_server_config_is_strict_and_resolves_its_directory(tmp_path) -> None:
    assert ServerConfig(data_dir=str(tmp_path / "a" / "..")).data_dir == tmp_path.resolve()
    with pytest.raises(ValidationError, match="env"):
        ServerConfig(data_dir=tmp_path, env=frozenset({"x"}))  # the field is `envs`


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Game24Env().reset("nope"), UnknownName, "unknown Game of 24 task"),
        (lambda: OutcomeRelabeler(negatives_per_positive=0), ConfigError, "at least 1"),
        (lambda: EnvPool(Game24Env, max_idle=-1), ConfigError, "max_idle"),
        (
            lambda: LLMJudge(ScriptedChatModel(replies=["1"]), max_concurrency=0),
            ConfigError,
            "max_concurrency",
        ),
        (
            lambda: RemoteRewardModel("http://localhost:1", request_batch=0),
            ConfigError,
            "request_batch",
        ),
    ],
    ids=["task", "relabeler", "pool", "judge", "remote"],
)
def test_configuration_mistakes_are_config_errors(make, error, message) -> None:
    with pytest.raises(error, match=message):
        make()


def test_the_reward_service_error_lives_with_the_others() -> None:
    from armap_agents.reward.service import RewardServiceError as from_service

    assert from_service is RewardServiceError is armap_agents.RewardServiceError
    assert issubclass(RewardServiceError, armap_agents.ArmapError)
