"""The reward model: a small local scorer of ``(intent, trajectory)``, and its trainer."""

from armap_agents.reward.model import RewardModel, RewardModelConfig, resolve_backbone
from armap_agents.reward.train import (
    EpochMetrics,
    RewardTrainer,
    RewardTrainerConfig,
    TrainResult,
    pairwise_metrics,
    plot_training_curve,
)

__all__ = [
    "EpochMetrics",
    "RewardModel",
    "RewardModelConfig",
    "RewardTrainer",
    "RewardTrainerConfig",
    "TrainResult",
    "pairwise_metrics",
    "plot_training_curve",
    "resolve_backbone",
]
