"""The exception hierarchy: catch :class:`ArmapError` broadly, recover from the narrow ones."""

from __future__ import annotations

__all__ = [
    "ArmapError",
    "BudgetExceeded",
    "CheckpointError",
    "ConfigError",
    "EnvironmentCrashed",
    "MissingDependency",
    "SynthesisError",
]


class ArmapError(Exception):
    """Base class of every error this SDK raises on purpose."""


class ConfigError(ArmapError, ValueError):
    """A configuration that cannot work (wrong names, impossible values)."""


class CheckpointError(ArmapError):
    """A saved artifact (reward model, run directory) is missing, wrong or corrupt."""


class SynthesisError(ArmapError):
    """A synthesizer could not produce a usable triplet (after its bounded retries)."""


class BudgetExceeded(ArmapError):
    """A run reached its usage limit (LLM calls, tokens or cost); what was done is saved."""


class EnvironmentCrashed(ArmapError):
    """An environment's backing process (a JVM, a game engine) died and could not be brought
    back to the episode's state; the episode is recorded as failed with this reason."""


class MissingDependency(ArmapError, ImportError):
    """An optional package, a system program (e.g. ``java``) or a data directory is missing;
    the message says what to install or where to put it."""
