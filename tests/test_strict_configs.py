"""Every public config refuses unknown fields and is frozen; configuration mistakes are
``ConfigError`` (a ``ValueError``) or ``UnknownName`` (a ``KeyError`` too)."""

from __future__ import annotations

import importlib
import json
import pickle
import pkgutil

import pytest
from pydantic import BaseModel, ValidationError

import armap_agents
from armap_agents import (
    BestOfNConfig,
    ConfigError,
    EvaluateConfig,
    ExploreConfig,
    Game24Env,
    ImproveConfig,
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
from armap_agents.deploy import DeploySettings, ServerConfig
from armap_agents.environments import EnvPool
from armap_agents.errors import RewardServiceError, UnknownName
from armap_agents.testing import ScriptedChatModel

CONFIGS = [
    BestOfNConfig,
    ReflexionConfig,
    MCTSConfig,
    ExploreConfig,
    SynthesizeConfig,
    EvaluateConfig,
    ImproveConfig,
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
    with pytest.raises(ConfigError, match="no_such_field"):
        config_type(no_such_field=1)
    config = config_type()
    field = next(iter(config_type.model_fields))
    with pytest.raises(ValidationError, match="frozen"):  # pydantic's: a bug, not a setting
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
    with pytest.raises(ConfigError, match="max_length"):  # not a KeyError in the validator
        RewardModelConfig(max_length=3)


def test_a_reward_model_saved_by_this_version_loads(tmp_path, small_reward_model_config) -> None:
    from armap_agents.reward.model import CONFIG_FILE, RewardModel

    saved = RewardModel.create(small_reward_model_config).save(tmp_path / "rm")
    assert json.loads((saved / CONFIG_FILE).read_text())["view"]["max_chars"] is not None
    assert RewardModel.load(saved).config == small_reward_model_config


def test_the_server_config_is_strict_and_resolves_its_directory(tmp_path) -> None:
    assert ServerConfig(data_dir=str(tmp_path / "a" / "..")).data_dir == tmp_path.resolve()
    with pytest.raises(ConfigError, match="did you mean 'envs'"):
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


# -- one error path: keywords, dicts and JSON all raise ConfigError ---------------------------


def _strict_configs() -> list[type[StrictConfig]]:
    """Every StrictConfig subclass of the package, after importing all its modules."""
    for module in pkgutil.walk_packages(armap_agents.__path__, "armap_agents."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)

    def below(config_type: type[StrictConfig]) -> list[type[StrictConfig]]:
        return [found for sub in config_type.__subclasses__() for found in (sub, *below(sub))]

    return sorted(
        {c for c in below(StrictConfig) if c.__module__.startswith("armap_agents.")},
        key=lambda c: f"{c.__module__}.{c.__qualname__}",
    )


STRICT_CONFIGS = _strict_configs()


def test_the_walk_finds_the_configs() -> None:
    assert {*CONFIGS, ServerConfig, DeploySettings} <= set(STRICT_CONFIGS)


@pytest.mark.parametrize("config_type", STRICT_CONFIGS, ids=lambda t: t.__name__)
def test_a_misspelt_field_is_a_config_error_with_a_hint(config_type) -> None:
    field = next(iter(config_type.model_fields))
    typo = field + field[-1]  # "epochs" -> "epochss"
    assert typo not in config_type.model_fields
    expected = rf"unknown {config_type.__name__} field\(s\) \['{typo}'\] \(did you mean '"
    for make in (
        lambda: config_type(**{typo: 1}),
        lambda: config_type.model_validate({typo: 1}),
        lambda: config_type.model_validate_json(json.dumps({typo: 1})),
        lambda: parse_config(config_type, {typo: 1}),
    ):
        with pytest.raises(ConfigError, match=expected) as caught:
            make()
        assert f"{config_type.__name__} has {field}" in str(caught.value)
        assert "\n" not in str(caught.value)  # one line, not pydantic's report


@pytest.mark.parametrize("config_type", STRICT_CONFIGS, ids=lambda t: t.__name__)
def test_a_bad_value_is_a_config_error_naming_the_field(config_type) -> None:
    refused = []
    for field in config_type.model_fields:
        try:
            config_type(**{field: object()})  # no field of a config takes any object
        except ConfigError as exc:
            assert isinstance(exc, ValueError)
            assert str(exc).startswith(f"invalid {config_type.__name__}: ")
            assert f"{field}: " in str(exc) and "\n" not in str(exc)
            refused.append(field)
    assert refused, f"{config_type.__name__} took an object() in every field"
    with pytest.raises(ConfigError, match=rf"invalid {config_type.__name__}: {refused[0]}: "):
        config_type.model_validate_json(json.dumps({refused[0]: [[[]]]}))


def test_the_messages_name_the_class_and_the_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        RewardTrainerConfig(epoch=1)
    assert str(caught.value).startswith(
        "unknown RewardTrainerConfig field(s) ['epoch'] (did you mean 'epochs'?); "
        "RewardTrainerConfig has epochs, batch_size, "
    )
    with pytest.raises(ConfigError) as caught:
        RewardTrainerConfig.model_validate({"epochs": 0})
    assert str(caught.value) == (
        "invalid RewardTrainerConfig: epochs: Input should be greater than or equal to 1"
    )
    # a model validator's own words, without pydantic's "value: Value error," before them
    with pytest.raises(ConfigError, match=r"^invalid RewardTrainerConfig: gradient_acc"):
        RewardTrainerConfig(batch_size=4, gradient_accumulation_steps=8)
    # an unknown field comes first: it is likely why another one looks wrong
    with pytest.raises(ConfigError, match=r"^unknown MCTSConfig field\(s\) \['iteration'\]"):
        MCTSConfig.model_validate({"iteration": 5, "seed": "x"})


def test_a_nested_config_validates_with_its_path() -> None:
    view = {"max_chars": 100}
    assert RewardModelConfig(view=view).view == TrajectoryView(max_chars=100)
    assert RewardModelConfig.model_validate({"view": view}).view.max_chars == 100
    assert RewardModelConfig.model_validate_json(json.dumps({"view": view})).view.max_chars == 100
    typo = {"view": {"max_charz": 100}}
    for make in (
        lambda: RewardModelConfig(**typo),
        lambda: RewardModelConfig.model_validate(typo),
        lambda: RewardModelConfig.model_validate_json(json.dumps(typo)),
    ):
        with pytest.raises(
            ConfigError,
            match=r"unknown RewardModelConfig\.view field\(s\) \['max_charz'\] "
            r"\(did you mean 'max_chars'\?\); TrajectoryView has max_chars",
        ):
            make()
    with pytest.raises(ConfigError, match=r"^invalid RewardModelConfig: view\.max_chars: "):
        RewardModelConfig(view={"max_chars": "many"})


def test_configs_still_copy_pickle_and_round_trip() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    config = RewardModelConfig(view=TrajectoryView(max_chars=100), seed=3)
    assert pickle.loads(pickle.dumps(config)) == config
    assert RewardModelConfig.model_validate(config.model_dump()) == config
    assert RewardModelConfig.model_validate(config) is config
    assert RewardModelConfig.model_validate_json(config.model_dump_json()) == config
    assert config.model_copy(update={"seed": 4}).seed == 4
    serde = JsonPlusSerializer()  # how a LangGraph checkpoint stores a state holding a config
    assert serde.loads_typed(serde.dumps_typed({"config": config}))["config"] == config
    with pytest.raises(ValidationError, match="frozen"):
        config.seed = 5  # type: ignore[misc]


def test_parse_config_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^invalid planner_config: n: .*greater than"):
        parse_config(BestOfNConfig, {"n": 0}, what="planner_config")
    assert parse_config(BestOfNConfig, {"n": 3}) == BestOfNConfig(n=3)


def test_deploy_settings_refuse_unknown_keys_but_not_the_servers() -> None:
    with pytest.raises(ConfigError, match="did you mean 'planner_config'") as caught:
        DeploySettings.from_config({"configurable": {"planer_config": {"n": 2}}})
    assert isinstance(caught.value, ValueError) and "['planer_config']" in str(caught.value)
    with pytest.raises(ConfigError, match="did you mean 'planner_config'"):
        DeploySettings(**{"planner-config": {}})  # a setting spelt as a header is refused
    with pytest.raises(ConfigError, match="env_options: "):
        DeploySettings.from_config({"configurable": {"env_options": "x"}})
    server_keys = {
        "thread_id": "t",
        "checkpoint_id": "c",
        "checkpoint_ns": "",
        "checkpoint_map": {},
        "assistant_id": "a",
        "graph_id": "best_of_n",
        "run_id": "r",
        "user_id": "",
        "cron_id": "c",
        "langgraph_auth_user": None,
        "langgraph_request_id": "q",
        "__pregel_runtime": object(),
        "__is_for_execution__": True,
        "__after_seconds__": 0,
        "langsmith-trace": "x",
        "user-agent": "sdk",
        "x-request-id": "q",
    }
    settings = DeploySettings.from_config(
        {"configurable": {**server_keys, "planner_config": {"n": 2}}}
    )
    assert settings == DeploySettings(planner_config={"n": 2})
    assert DeploySettings.from_config(None) == DeploySettings()
