"""The reward model: a small local scorer of ``(intent, trajectory)``, and its trainer.

The names below are imported on first use (PEP 562): the scorer protocol, the configs, the
objectives, the remote client and the LLM judge load without torch; ``RewardModel``,
``RewardTrainer`` and the rest of :mod:`~armap_agents.reward.model` and
:mod:`~armap_agents.reward.train` bring torch when first read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armap_agents._lazy import lazy_getattr

if TYPE_CHECKING:
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig
    from armap_agents.reward.judge import LLMJudge
    from armap_agents.reward.model import RewardModel, resolve_backbone
    from armap_agents.reward.objectives import (
        Objective,
        WeightedObjective,
        combined_value,
        fewer_steps,
        numeric_attribute,
    )
    from armap_agents.reward.scorer import RewardScorer, TextScorer
    from armap_agents.reward.service import RemoteRewardModel, RewardServiceError
    from armap_agents.reward.train import (
        EpochMetrics,
        RewardTrainer,
        TrainResult,
        pairwise_metrics,
        plot_training_curve,
    )

_EXPORTS: dict[str, tuple[str, ...]] = {
    # submodule -> the public names it provides (tests/test_startup.py checks this table
    # against the imports above and __all__)
    "configs": ("RewardModelConfig", "RewardTrainerConfig"),
    "judge": ("LLMJudge",),
    "model": ("RewardModel", "resolve_backbone"),
    "objectives": (
        "Objective",
        "WeightedObjective",
        "combined_value",
        "fewer_steps",
        "numeric_attribute",
    ),
    "scorer": ("RewardScorer", "TextScorer"),
    "service": ("RemoteRewardModel", "RewardServiceError"),
    "train": (
        "EpochMetrics",
        "RewardTrainer",
        "TrainResult",
        "pairwise_metrics",
        "plot_training_curve",
    ),
}

__all__ = [
    "EpochMetrics",
    "LLMJudge",
    "Objective",
    "WeightedObjective",
    "combined_value",
    "fewer_steps",
    "numeric_attribute",
    "RewardModel",
    "RewardModelConfig",
    "RewardScorer",
    "RemoteRewardModel",
    "RewardServiceError",
    "RewardTrainer",
    "RewardTrainerConfig",
    "TextScorer",
    "TrainResult",
    "pairwise_metrics",
    "plot_training_curve",
    "resolve_backbone",
]


if not TYPE_CHECKING:  # type checkers read the imports above (and flag a name not there)
    __getattr__ = lazy_getattr(__name__, _EXPORTS, relative=True)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
