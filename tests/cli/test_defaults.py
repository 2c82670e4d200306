"""Every setting is declared once: each command-line default is its config's default.

The options of a command are derived from the configs that declare them
(``armap_agents._options.add_options``); this walks every command and checks that no option
shadows a config field by hand, that every derived option's default is its field's, that
configs sharing a field agree on it, and that the options written by hand (the stages' own
arguments) default to what the stage function does.
"""

from __future__ import annotations

import argparse
import importlib
import inspect

import pytest
from pydantic_core import PydanticUndefined

from armap_agents._options import CONFIG_FIELD, ENVIRONMENT_DECLARED
from armap_agents.cli import COMMAND_CONFIGS, build_parser
from armap_agents.environments.defaults import EnvironmentDefaults

STAGES = {
    "explore": "armap_agents.pipeline:explore_trajectories",
    "synthesize": "armap_agents.pipeline:synthesize_triplets",
    "train": "armap_agents.pipeline:train_reward_model",
    "plan": "armap_agents.pipeline:plan_task",
    "evaluate": "armap_agents.pipeline:evaluate_and_report",
    "quickstart": "armap_agents.pipeline:run_pipeline",
    "improve": "armap_agents.pipeline:improve_critic",
}
"""The function each command calls: its keyword defaults are the hand-written options'."""


def _load(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()


def test_every_command_is_walked() -> None:
    assert set(COMMANDS) >= set(COMMAND_CONFIGS) | set(STAGES)
    assert {
        "explore",
        "synthesize",
        "train",
        "export",
        "plan",
        "evaluate",
        "quickstart",
        "improve",
    } <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_option_default_is_its_config_default(command: str) -> None:
    configs = [_load(spec) for spec in COMMAND_CONFIGS.get(command, ())]
    checked = 0
    for action in COMMANDS[command]._actions:
        derived = getattr(action, CONFIG_FIELD, None)
        owners = [c for c in configs if action.dest in c.model_fields]
        if derived is None:
            assert not owners, (
                f"armap {command} {action.option_strings}: written by hand, but "
                f"{owners[0].__name__}.{action.dest} declares it (derive it with add_options)"
            )
            continue
        config_type, name = derived
        field = config_type.model_fields[name]
        if getattr(action, ENVIRONMENT_DECLARED):
            # None on the command line: what the environment declares, whose generic value
            # is the config's default
            assert action.default is None
            assert EnvironmentDefaults.model_fields[name].default == field.default
        else:
            assert field.default is not PydanticUndefined
            assert action.default == field.default, (command, action.option_strings)
        for other in owners:  # configs sharing the field agree on its default
            assert other.model_fields[name].default == field.default, (command, other, name)
        checked += 1
    assert checked >= len(configs), f"armap {command} derives fewer options than it has configs"


@pytest.mark.parametrize("command", sorted(STAGES))
def test_hand_written_options_default_to_the_stage_function(command: str) -> None:
    parameters = inspect.signature(_load(STAGES[command])).parameters
    compared = 0
    for action in COMMANDS[command]._actions:
        if getattr(action, CONFIG_FIELD, None) is not None or action.dest not in parameters:
            continue
        expected = parameters[action.dest].default
        if expected is inspect.Parameter.empty:
            continue
        if action.dest == "env" and action.default is None:
            continue  # the input's manifest says (the function's default is for explore)
        given = action.default
        assert given == expected or (given == [] and expected is None), (
            f"armap {command} {action.option_strings}: {given!r}, but the function says "
            f"{expected!r}"
        )
        compared += 1
    assert compared >= 1


def test_option_help_comes_from_the_field_docstring() -> None:
    help_text = COMMANDS["plan"].format_help()
    assert "Policy samples per expansion" in help_text  # MCTSConfig.expansion_k's docstring
    assert "(default: 3)" in help_text
