"""The exception hierarchy: catch :class:`ArmapError` broadly, recover from the narrow ones."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AllCandidatesFailed",
    "ArmapError",
    "BudgetExceeded",
    "CheckpointError",
    "ConfigError",
    "EnvironmentCrashed",
    "MissingDependency",
    "RewardServiceError",
    "SynthesisError",
    "UnknownName",
    "describe_validation_error",
]


class ArmapError(Exception):
    """Base class of every error this SDK raises on purpose."""


class ConfigError(ArmapError, ValueError):
    """A configuration that cannot work (wrong names, impossible values)."""


class UnknownName(ConfigError, KeyError):
    """A name that does not exist: an environment, a task, a split ... (a ``KeyError`` too,
    so code that looks names up and catches ``KeyError`` keeps working)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(ArmapError):
    """A saved artifact (reward model, run directory) is missing, wrong or corrupt."""


class SynthesisError(ArmapError):
    """A synthesizer could not produce a usable triplet (after its bounded retries)."""


class BudgetExceeded(ArmapError):
    """A run reached its usage limit (LLM calls, tokens or cost); what was done is saved."""


class AllCandidatesFailed(ArmapError):
    """Every candidate episode of a planner failed (the environment or the policy raised), so
    there is nothing to choose from. ``errors`` says why each one failed; ``policy_calls`` is
    what the failed episodes spent."""

    def __init__(self, message: str, errors: Sequence[str] = (), policy_calls: int = 0) -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.policy_calls = policy_calls


class EnvironmentCrashed(ArmapError):
    """An environment's backing process (a JVM, a game engine) died and could not be brought
    back to the episode's state; the episode is recorded as failed with this reason."""


class RewardServiceError(ArmapError):
    """The reward service refused a request (4xx) or could not be reached after retries."""


class MissingDependency(ArmapError, ImportError):
    """An optional package, a system program (e.g. ``java``) or a data directory is missing;
    the message says what to install or where to put it."""


def describe_validation_error(exc: Exception) -> str:
    """A pydantic ``ValidationError`` on one line: ``field: problem; other.field: problem``
    (pydantic's own text spends several lines and a URL on each problem). A problem of the
    whole model (a model validator's) has no field; a validator's own message is given as it
    wrote it (without pydantic's ``Value error,`` before it)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "value_error":
            message = message.removeprefix("Value error, ")
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or str(exc)
