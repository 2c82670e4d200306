"""The base of every public configuration: an unknown field fails, a config never changes.

Every config of the SDK (:class:`~armap_agents.graphs.mcts.MCTSConfig`,
:class:`~armap_agents.reward.model.RewardModelConfig`,
:class:`~armap_agents.llm.UsageLimits` ...) derives from :class:`StrictConfig`:

* a misspelt field is an error, not a silent default: ``MCTSConfig(iteration=5)`` raises
  pydantic's ``ValidationError`` (a ``ValueError``); an entry point that takes a plain dict
  (``build_planner("mcts", ..., {"iteration": 5})``, a deployment's settings) reads it with
  :func:`parse_config`, which raises :class:`~armap_agents.errors.ConfigError`
  naming the unknown field, the closest known one and every field the config has;
* a config is frozen (and so safe to share between graphs and threads): derive a changed one
  with ``config.model_copy(update={"iterations": 32})``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from armap_agents.errors import ConfigError, describe_validation_error

__all__ = ["StrictConfig", "parse_config"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictConfig(BaseModel):
    """A pydantic model that refuses unknown fields and cannot be changed once made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_config(
    config_type: type[ModelT], options: Mapping[str, Any] | None = None, *, what: str = ""
) -> ModelT:
    """The ``config_type`` made of ``options`` (field name -> value; none: the defaults).

    A wrong value or an unknown field raises :class:`ConfigError` on one line, naming the
    closest field and every field there is; ``what`` names the setting in it (e.g.
    ``"planner_config"``; default: the class's name).
    """
    what = what or config_type.__name__
    fields = list(config_type.model_fields)
    unknown = [key for key in options or {} if key not in config_type.model_fields]
    if unknown:
        raise ConfigError(
            f"unknown {what} field(s) {unknown}{_guess(unknown, fields)}; "
            f"{config_type.__name__} has {', '.join(fields)}"
        )
    try:
        return config_type.model_validate(dict(options or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {describe_validation_error(exc)}") from None


def _guess(unknown: list[str], fields: list[str]) -> str:
    """``" (did you mean 'x'?)"``: the known fields closest to the unknown ones, if any."""
    guesses = {
        key: match[0]
        for key in unknown
        if (match := difflib.get_close_matches(str(key), fields, n=1))
    }
    if not guesses:
        return ""
    if len(unknown) == 1:
        return f" (did you mean {guesses[unknown[0]]!r}?)"
    return " (did you mean " + ", ".join(f"{m!r} for {k!r}" for k, m in guesses.items()) + "?)"
