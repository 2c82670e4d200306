"""armap-agents: Automatic Reward Modeling And Planning for LLM agents, as LangGraph graphs.

Explore an environment, synthesize ``(intent, positive, negative)`` triplets, train a small
local reward model, and let it pick among an API-only LLM's candidate trajectories.

The names below are imported on first use (PEP 562), so ``import armap_agents`` and
``armap --help`` stay light: torch, transformers and faiss load only when a reward model, a
trainer or a memory is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armap_agents._jsonl import read_jsonl, write_jsonl
    from armap_agents.environments import (
        AlfWorldEnv,
        AlfWorldRelabeler,
        EnvFactory,
        Environment,
        EnvironmentDefaults,
        EnvPool,
        EnvRegistry,
        Game24Env,
        Game24Relabeler,
        OutcomeRelabeler,
        Relabeler,
        ScienceWorldEnv,
        ScienceWorldRelabeler,
        ToolCall,
        ToolEnvironment,
        ToolEpisode,
        ToolTask,
        WebShopEnv,
        WebShopRelabeler,
        default_registry,
        make_env,
        make_env_factory,
        make_relabeler,
        select_tasks,
    )
    from armap_agents.errors import (
        AllCandidatesFailed,
        ArmapError,
        BudgetExceeded,
        CheckpointError,
        ConfigError,
        EnvironmentCrashed,
        MissingDependency,
        RewardServiceError,
        SynthesisError,
        UnknownName,
    )
    from armap_agents.evaluation import EvaluationReport, TaskOutcome, evaluate_planners
    from armap_agents.export import export_preferences, export_synthesis, to_preference_records
    from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
    from armap_agents.graphs.explore import (
        ExploreConfig,
        ExploreResult,
        build_explore_graph,
        explore,
    )
    from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph
    from armap_agents.graphs.reflexion import ReflexionConfig, build_reflexion_graph
    from armap_agents.graphs.synthesize import (
        SynthesizeConfig,
        SynthesizeResult,
        build_synthesize_graph,
        synthesize,
    )
    from armap_agents.llm import RetryPolicy, Usage, UsageLimits, UsageTracker, make_chat_model
    from armap_agents.memory import MiniLMEmbedder, TrajectoryMemory
    from armap_agents.pipeline import (
        EvaluateConfig,
        PipelineResult,
        PlanResult,
        RunLayout,
        evaluate_and_report,
        explore_trajectories,
        plan_task,
        run_pipeline,
        synthesize_triplets,
        train_reward_model,
    )
    from armap_agents.planners import build_planner
    from armap_agents.policies import (
        ActionChoice,
        ExpertPolicy,
        LLMPolicy,
        Policy,
        PolicyContext,
        RandomPolicy,
        parse_action,
        sample_actions,
    )
    from armap_agents.prompts import PromptGuide
    from armap_agents.reward import (
        LLMJudge,
        Objective,
        RemoteRewardModel,
        RewardModel,
        RewardModelConfig,
        RewardScorer,
        RewardTrainer,
        RewardTrainerConfig,
        TrainResult,
        WeightedObjective,
        fewer_steps,
        numeric_attribute,
    )
    from armap_agents.reward_view import TrajectoryView
    from armap_agents.rollout import run_episode
    from armap_agents.synthesizers import (
        LLMSynthesizer,
        RelabelSynthesizer,
        SynthesisResult,
        Synthesizer,
    )
    from armap_agents.tree_view import tree_to_json, write_tree_html, write_tree_json
    from armap_agents.types import (
        Evaluation,
        Observation,
        Step,
        StepResult,
        Trajectory,
        Triplet,
        render_example,
        render_intent,
        render_trajectory,
    )

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    # module -> the public names it provides (tests/test_startup.py checks this table
    # against the imports above and __all__)
    "armap_agents._jsonl": ("read_jsonl", "write_jsonl"),
    "armap_agents.environments": (
        "AlfWorldEnv",
        "AlfWorldRelabeler",
        "EnvFactory",
        "Environment",
        "EnvironmentDefaults",
        "EnvPool",
        "EnvRegistry",
        "Game24Env",
        "Game24Relabeler",
        "OutcomeRelabeler",
        "Relabeler",
        "ScienceWorldEnv",
        "ScienceWorldRelabeler",
        "ToolCall",
        "ToolEnvironment",
        "ToolEpisode",
        "ToolTask",
        "WebShopEnv",
        "WebShopRelabeler",
        "default_registry",
        "make_env",
        "make_env_factory",
        "make_relabeler",
        "select_tasks",
    ),
    "armap_agents.errors": (
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
    ),
    "armap_agents.evaluation": ("EvaluationReport", "TaskOutcome", "evaluate_planners"),
    "armap_agents.export": ("export_preferences", "export_synthesis", "to_preference_records"),
    "armap_agents.graphs.best_of_n": ("BestOfNConfig", "build_best_of_n_graph"),
    "armap_agents.graphs.explore": (
        "ExploreConfig",
        "ExploreResult",
        "build_explore_graph",
        "explore",
    ),
    "armap_agents.graphs.mcts": ("MCTSConfig", "build_mcts_graph"),
    "armap_agents.graphs.reflexion": ("ReflexionConfig", "build_reflexion_graph"),
    "armap_agents.graphs.synthesize": (
        "SynthesizeConfig",
        "SynthesizeResult",
        "build_synthesize_graph",
        "synthesize",
    ),
    "armap_agents.llm": ("RetryPolicy", "Usage", "UsageLimits", "UsageTracker", "make_chat_model"),
    "armap_agents.memory": ("MiniLMEmbedder", "TrajectoryMemory"),
    "armap_agents.pipeline": (
        "EvaluateConfig",
        "PipelineResult",
        "PlanResult",
        "RunLayout",
        "evaluate_and_report",
        "explore_trajectories",
        "plan_task",
        "run_pipeline",
        "synthesize_triplets",
        "train_reward_model",
    ),
    "armap_agents.planners": ("build_planner",),
    "armap_agents.policies": (
        "ActionChoice",
        "ExpertPolicy",
        "LLMPolicy",
        "Policy",
        "PolicyContext",
        "RandomPolicy",
        "parse_action",
        "sample_actions",
    ),
    "armap_agents.prompts": ("PromptGuide",),
    "armap_agents.reward": (
        "LLMJudge",
        "Objective",
        "RemoteRewardModel",
        "RewardModel",
        "RewardModelConfig",
        "RewardScorer",
        "RewardTrainer",
        "RewardTrainerConfig",
        "TrainResult",
        "WeightedObjective",
        "fewer_steps",
        "numeric_attribute",
    ),
    "armap_agents.reward_view": ("TrajectoryView",),
    "armap_agents.rollout": ("run_episode",),
    "armap_agents.synthesizers": (
        "LLMSynthesizer",
        "RelabelSynthesizer",
        "SynthesisResult",
        "Synthesizer",
    ),
    "armap_agents.tree_view": ("tree_to_json", "write_tree_html", "write_tree_json"),
    "armap_agents.types": (
        "Evaluation",
        "Observation",
        "Step",
        "StepResult",
        "Trajectory",
        "Triplet",
        "render_example",
        "render_intent",
        "render_trajectory",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ActionChoice",
    "AllCandidatesFailed",
    "AlfWorldEnv",
    "AlfWorldRelabeler",
    "ArmapError",
    "BestOfNConfig",
    "BudgetExceeded",
    "CheckpointError",
    "ConfigError",
    "EnvFactory",
    "EnvPool",
    "EnvRegistry",
    "Environment",
    "EnvironmentCrashed",
    "EnvironmentDefaults",
    "EvaluateConfig",
    "Evaluation",
    "EvaluationReport",
    "ExpertPolicy",
    "ExploreConfig",
    "ExploreResult",
    "Game24Env",
    "Game24Relabeler",
    "LLMJudge",
    "LLMPolicy",
    "LLMSynthesizer",
    "MCTSConfig",
    "MiniLMEmbedder",
    "MissingDependency",
    "Objective",
    "Observation",
    "OutcomeRelabeler",
    "PipelineResult",
    "PlanResult",
    "Policy",
    "PolicyContext",
    "PromptGuide",
    "RandomPolicy",
    "ReflexionConfig",
    "RelabelSynthesizer",
    "Relabeler",
    "RemoteRewardModel",
    "RetryPolicy",
    "RewardModel",
    "RewardModelConfig",
    "RewardScorer",
    "RewardServiceError",
    "RewardTrainer",
    "RewardTrainerConfig",
    "RunLayout",
    "ScienceWorldEnv",
    "ScienceWorldRelabeler",
    "Step",
    "StepResult",
    "SynthesisError",
    "SynthesisResult",
    "SynthesizeConfig",
    "SynthesizeResult",
    "Synthesizer",
    "TaskOutcome",
    "ToolCall",
    "ToolEnvironment",
    "ToolEpisode",
    "ToolTask",
    "TrainResult",
    "Trajectory",
    "TrajectoryMemory",
    "TrajectoryView",
    "Triplet",
    "UnknownName",
    "Usage",
    "UsageLimits",
    "UsageTracker",
    "WebShopEnv",
    "WebShopRelabeler",
    "WeightedObjective",
    "build_best_of_n_graph",
    "build_explore_graph",
    "build_mcts_graph",
    "build_planner",
    "build_reflexion_graph",
    "build_synthesize_graph",
    "default_registry",
    "evaluate_and_report",
    "evaluate_planners",
    "explore",
    "explore_trajectories",
    "export_preferences",
    "export_synthesis",
    "fewer_steps",
    "make_chat_model",
    "make_env",
    "make_env_factory",
    "make_relabeler",
    "numeric_attribute",
    "parse_action",
    "plan_task",
    "read_jsonl",
    "render_example",
    "render_intent",
    "render_trajectory",
    "run_episode",
    "run_pipeline",
    "sample_actions",
    "select_tasks",
    "synthesize",
    "synthesize_triplets",
    "to_preference_records",
    "train_reward_model",
    "tree_to_json",
    "write_jsonl",
    "write_tree_html",
    "write_tree_json",
    "__version__",
]


if not TYPE_CHECKING:  # type checkers read the imports above (and flag a name not there)

    def __getattr__(name: str) -> Any:
        """``name`` from the module that provides it (imported on first use; Python keeps
        imported modules, so later reads cost a lookup)."""
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
