"""armap-agents: Automatic Reward Modeling And Planning for LLM agents, as LangGraph graphs.

Explore an environment, synthesize ``(intent, positive, negative)`` triplets, train a small
local reward model, and let it pick among an API-only LLM's candidate trajectories.
"""

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents.environments import (
    AlfWorldEnv,
    AlfWorldRelabeler,
    EnvFactory,
    Environment,
    EnvPool,
    EnvRegistry,
    Game24Env,
    Game24Relabeler,
    Relabeler,
    ScienceWorldEnv,
    ScienceWorldRelabeler,
    WebShopEnv,
    WebShopRelabeler,
    default_registry,
    make_env,
    make_env_factory,
    make_relabeler,
    select_tasks,
)
from armap_agents.errors import (
    ArmapError,
    BudgetExceeded,
    CheckpointError,
    ConfigError,
    EnvironmentCrashed,
    MissingDependency,
    SynthesisError,
)
from armap_agents.evaluation import EvaluationReport, TaskOutcome, evaluate_planners
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.explore import ExploreConfig, ExploreResult, build_explore_graph, explore
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
from armap_agents.planners import build_planner
from armap_agents.policies import (
    ActionChoice,
    LLMPolicy,
    Policy,
    PolicyContext,
    RandomPolicy,
    parse_action,
    sample_actions,
)
from armap_agents.prompts import PromptGuide
from armap_agents.reward import (
    Objective,
    RemoteRewardModel,
    RewardModel,
    RewardModelConfig,
    RewardTrainer,
    RewardTrainerConfig,
    TrainResult,
    WeightedObjective,
    fewer_steps,
    numeric_attribute,
)
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
    render_trajectory,
)

__version__ = "0.1.0"

__all__ = [
    "ActionChoice",
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
    "Evaluation",
    "EvaluationReport",
    "ExploreConfig",
    "ExploreResult",
    "Game24Env",
    "Game24Relabeler",
    "LLMPolicy",
    "LLMSynthesizer",
    "MCTSConfig",
    "MiniLMEmbedder",
    "MissingDependency",
    "Objective",
    "Observation",
    "Policy",
    "PolicyContext",
    "PromptGuide",
    "RandomPolicy",
    "ReflexionConfig",
    "RelabelSynthesizer",
    "RemoteRewardModel",
    "Relabeler",
    "RetryPolicy",
    "RewardModel",
    "RewardModelConfig",
    "RewardTrainer",
    "RewardTrainerConfig",
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
    "TrainResult",
    "Trajectory",
    "TrajectoryMemory",
    "Triplet",
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
    "evaluate_planners",
    "explore",
    "fewer_steps",
    "make_chat_model",
    "make_env",
    "make_env_factory",
    "make_relabeler",
    "numeric_attribute",
    "parse_action",
    "read_jsonl",
    "render_example",
    "render_trajectory",
    "run_episode",
    "sample_actions",
    "select_tasks",
    "synthesize",
    "tree_to_json",
    "write_jsonl",
    "write_tree_html",
    "write_tree_json",
    "__version__",
]
