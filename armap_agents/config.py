"""The base of every public configuration: an unknown field fails, a config never changes.

Every config of the SDK (:class:`~armap_agents.graphs.mcts.MCTSConfig`,
:class:`~armap_agents.reward.model.RewardModelConfig`,
:class:`~armap_agents.llm.UsageLimits` ...) derives from :class:`StrictConfig`:

* a misspelt field or a wrong value is a :class:`~armap_agents.errors.ConfigError` (an
  :class:`~armap_agents.errors.ArmapError` and a ``ValueError``) on one line, however the
  config is made: with keywords (``MCTSConfig(iteration=5)``), from a dict
  (``MCTSConfig.model_validate({...})``, :func:`parse_config`, ``build_planner("mcts", ...,
  {"iteration": 5})``) or from JSON (``model_validate_json``). It names the unknown field,
  the closest known one and every field the config has::

      unknown MCTSConfig field(s) ['iteration'] (did you mean 'iterations'?); MCTSConfig has
      iterations, max_policy_calls, ...

  or the field and what is wrong with its value
  (``invalid RewardTrainerConfig: epochs: Input should be greater than or equal to 1``);
* a config is frozen (and so safe to share between graphs and threads): derive a changed one
  with ``config.model_copy(update={"iterations": 32})``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from armap_agents.errors import ConfigError, describe_validation_error

__all__ = ["StrictConfig", "config_errors", "did_you_mean", "parse_config"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictConfig(BaseModel):
    """A pydantic model that refuses unknown fields and cannot be changed once made; a wrong
    field or value raises :class:`ConfigError` (see the module's docstring), not pydantic's
    ``ValidationError``.

    The three ways in (keywords, ``model_validate``, ``model_validate_json``) convert the error
    themselves, outside pydantic: a ``ValueError`` raised inside a validator would be wrapped
    again. A config nested in another is validated by the outer one's validator, so the
    outer entry point reports the nested problem with its path (``view.max_chars: ...``).
    """

    # a field's docstring is its description: the command line's help for its option
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def __init__(self, /, **data: Any) -> None:
        with config_errors(type(self)):
            super().__init__(**data)

    # pydantic calls a model's own __init__ to validate it nested in another (from a dict)
    # unless the __init__ is marked as the base one, as pydantic's RootModel does: nested
    # configs then validate in the outer one's validator, and errors convert only once
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """The config made of ``obj`` (a mapping of fields, or a config); ``options`` are
        pydantic's (``strict``, ``context`` ...). Raises :class:`ConfigError`."""
        with config_errors(cls):
            return super().model_validate(obj, **options)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        """The config read from a JSON object of its fields. Raises :class:`ConfigError`."""
        with config_errors(cls):
            return super().model_validate_json(json_data, **options)


@contextmanager
def config_errors(config_type: type[BaseModel], what: str = "") -> Iterator[None]:
    """Turns a pydantic ``ValidationError`` raised inside into one :class:`ConfigError` line:
    unknown fields first (with the closest known ones), else every wrong value with its path.
    ``what`` names the setting in the message (default: the class's name)."""
    try:
        yield
    except ValidationError as exc:
        raise _config_error(config_type, exc, what or config_type.__name__) from None


def parse_config(
    config_type: type[ModelT], options: Mapping[str, Any] | None = None, *, what: str = ""
) -> ModelT:
    """The ``config_type`` made of ``options`` (field name -> value; none: the defaults).

    A wrong value or an unknown field (also for a model that would ignore it) raises
    :class:`ConfigError` on one line, naming the closest field and every field there is;
    ``what`` names the setting in it (e.g. ``"planner_config"``; default: the class's name).
    """
    data = dict(options or {})
    unknown = [str(key) for key in data if key not in config_type.model_fields]
    if unknown and config_type.model_config.get("extra") != "forbid":  # it would ignore them
        raise _unknown_fields(config_type, unknown, what or config_type.__name__)
    with config_errors(config_type, what):
        # pydantic's validator itself: a StrictConfig's model_validate would name the class
        validated = config_type.__pydantic_validator__.validate_python(data)
    return cast(ModelT, validated)


def _config_error(config_type: type[BaseModel], exc: ValidationError, what: str) -> ConfigError:
    """The :class:`ConfigError` of ``exc``, raised validating a ``config_type`` (``what``)."""
    unknown: dict[tuple[Any, ...], list[str]] = {}  # where (a path of fields) -> unknown keys
    for error in exc.errors():
        if error["type"] == "extra_forbidden" and error["loc"]:
            unknown.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    for path in sorted(unknown, key=len):  # the outermost first: the likeliest typo
        model = _model_at(config_type, path)
        if model is not None:
            return _unknown_fields(model, unknown[path], ".".join([what, *map(str, path)]))
    return ConfigError(f"invalid {what}: {describe_validation_error(exc)}")


def _unknown_fields(model: type[BaseModel], unknown: list[str], where: str) -> ConfigError:
    """The error of ``unknown`` fields of ``model`` (``where``: the setting it is)."""
    fields = list(model.model_fields)
    return ConfigError(
        f"unknown {where} field(s) {unknown}{did_you_mean(unknown, fields)}; "
        f"{model.__name__} has {', '.join(fields)}"
    )


def _model_at(config_type: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class found at ``path`` (field names) of ``config_type``; ``None`` when the
    path goes through something else (a list's item, a dict's value)."""
    model = config_type
    for name in path:
        field = model.model_fields.get(name) if isinstance(name, str) else None
        if field is None:
            return None
        # the field's type itself, or a member of its union (``TrajectoryView | None``)
        candidates = (field.annotation, *get_args(field.annotation))
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def did_you_mean(unknown: list[str], fields: list[str]) -> str:
    """``" (did you mean 'x'?)"``: the known fields closest to the unknown ones, if any (to
    append to a message naming the unknown ones)."""
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
