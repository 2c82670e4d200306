"""The exception hierarchy: catch :class:`ArmapError` broadly, recover from the narrow ones."""

from __future__ import annotations

__all__ = ["ArmapError", "BudgetExceeded", "CheckpointError", "ConfigError", "SynthesisError"]


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
