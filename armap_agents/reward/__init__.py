"""The reward model: a small local scorer of ``(intent, trajectory)``, and its trainer."""

from armap_agents.reward.judge import LLMJudge
from armap_agents.reward.model import RewardModel, RewardModelConfig, resolve_backbone
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
    RewardTrainerConfig,
    TrainResult,
    pairwise_metrics,
    plot_training_curve,
)

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
