"""Command-line options derived from config fields, so that a setting is declared once.

``add_options(parser, MCTSConfig, ["iterations", "expansion_k"])`` adds ``--iterations`` and
``--expansion-k`` whose type, choices, default and help (the field's docstring) are the
field's own; :func:`config_values` reads them back for the config. Each option remembers its
field (:data:`CONFIG_FIELD`), so a test can check every default against its config.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["CONFIG_FIELD", "ENVIRONMENT_DECLARED", "add_options", "config_values", "help_text"]

CONFIG_FIELD = "config_field"
"""The attribute of an option made by :func:`add_options`: ``(config type, field name)``."""

ENVIRONMENT_DECLARED = "environment_declared"
"""The attribute of an option whose default (None) means "what the environment declares"
(:class:`~armap_agents.environments.defaults.EnvironmentDefaults`' field of the same name)."""


def help_text(description: str | None) -> str:
    """A field's docstring as one line of help: reST roles and literals made plain."""
    text = " ".join((description or "").split())
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([\w]+)`", r"\1", text)  # :class:`~a.b.C` -> C
    return text.replace("``", "").replace("%", "%%")


def _unwrapped(annotation: Any) -> tuple[Any, bool]:
    """``(the annotation without None, whether None was allowed)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _or_none(base: type) -> Any:
    """A reader of ``base`` values that reads ``none`` as None (a field that may be None)."""

    def read(text: str) -> Any:
        return None if text.strip().lower() == "none" else base(text)

    read.__name__ = base.__name__  # argparse names the type in its error: "invalid int value"
    return read


def _argument(annotation: Any) -> dict[str, Any]:
    """What ``add_argument`` needs to read a value of ``annotation`` (``none`` for None where
    the field may be None and is a number)."""
    base, optional = _unwrapped(annotation)
    origin = typing.get_origin(base)
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        choices = list(typing.get_args(base))
        return {"choices": choices, "type": type(choices[0])}
    if origin is list:  # repeat the option: --task a --task b
        return {"action": "append", "type": typing.get_args(base)[0]}
    if origin is tuple:  # comma-separated: --planners best_of_n,mcts
        return {"type": _comma_list, "metavar": "A,B"}
    if base in (int, float):
        return {"type": _or_none(base) if optional else base}
    if base is str:
        return {"type": base}
    raise TypeError(f"no command-line option for a field of type {annotation!r}")


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_type: type[BaseModel],
    names: Sequence[str],
    *,
    flags: Mapping[str, Sequence[str]] | None = None,
    environment_declared: Sequence[str] = (),
) -> None:
    """Add an option for each field ``names`` of ``config_type``: ``--field-name`` (or the
    option strings ``flags`` give it), with the field's type, choices, default and docstring.
    A field in ``environment_declared`` defaults to None: the environment's declared value."""
    for name in names:
        info = config_type.model_fields[name]
        declared = name in environment_declared
        default = None if declared else info.default
        if default is PydanticUndefined:
            raise TypeError(f"{config_type.__name__}.{name} has no default to show")
        help_ = help_text(info.description)
        if declared:
            help_ += " (default: the environment's, see EnvironmentDefaults)"
        option_strings = (flags or {}).get(name) or (f"--{name.replace('_', '-')}",)
        action = parser.add_argument(
            *option_strings, dest=name, default=default, help=help_, **_argument(info.annotation)
        )
        setattr(action, CONFIG_FIELD, (config_type, name))
        setattr(action, ENVIRONMENT_DECLARED, declared)


def config_values(args: argparse.Namespace, config_type: type[BaseModel]) -> dict[str, Any]:
    """The values ``args`` holds for ``config_type``'s fields (those the command has options
    for); None for a field that cannot be None means "not given" (an environment-declared
    default) and is left out."""
    values = {}
    for name, info in config_type.model_fields.items():
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if value is None and not _unwrapped(info.annotation)[1]:
            continue
        values[name] = value
    return values
