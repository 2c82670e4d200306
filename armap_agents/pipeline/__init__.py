"""The ARMAP pipeline as functions: explore, synthesize, train, evaluate, plan, and all at once.

A run lives in one directory, laid out by :class:`RunLayout`::

    run/
      trajectories.jsonl            explore: the policy's episodes (+ .meta.json, .failures.jsonl)
      synthesis/                    synthesize: triplets.train.jsonl, triplets.val.jsonl, ...
      reward_model/                 train: the model, metrics, training_curve.png, README.md
      evaluation/                   evaluate: outcomes.jsonl, report.md, report.json, results.png
      meta.json                     what made the run (see armap_agents._provenance)

:func:`improve_critic` (``armap improve``) runs rounds of it in one directory, each round's
exploration guided by the last round's critic (:class:`ImproveLayout`, see
:mod:`~armap_agents.pipeline.improve`).

Each stage is one function: :func:`explore_trajectories`, :func:`synthesize_triplets`,
:func:`train_reward_model`, :func:`evaluate_and_report`, and :func:`plan_task` for one task.
They take

* their inputs by name or as objects: an environment's name or import path, or an environment
  factory; a policy spec or a :class:`~armap_agents.policies.Policy`; a reward-model directory
  or URL, or any :class:`~armap_agents.reward.scorer.RewardScorer`;
* their settings as their config (an object or a mapping), or the config's fields as keywords
  (``explore_trajectories(out=..., episodes_per_task=2)``); a misspelt one is a
  :class:`~armap_agents.errors.ConfigError` with a did-you-mean hint;
* what the environment declares (its horizon, the reward model's window:
  :class:`~armap_agents.environments.defaults.EnvironmentDefaults`) unless told otherwise, and
  what their inputs' manifests record (a stage reading trajectories, triplets or a reward model
  takes the environment from them, and refuses a contradicting one).

Each records what made its output and resumes: called again with the same arguments it
continues where it stopped; nothing is written before the arguments are checked.
:func:`run_pipeline` runs all four in a run directory with the environment's quickstart sizes
(what ``armap quickstart`` does)::

    from armap_agents.pipeline import RunLayout, run_pipeline

    result = run_pipeline("runs/demo", env="game24", size="tiny")
    print(result.report.to_markdown())
    print(RunLayout("runs/demo").report)  # runs/demo/evaluation/report.md

The modules: :mod:`~armap_agents.pipeline.sizes` (quickstart sizes, run directories),
:mod:`~armap_agents.pipeline.sources` (names or objects, manifests),
:mod:`~armap_agents.pipeline.stages` (explore, synthesize, train),
:mod:`~armap_agents.pipeline.evaluate` (the evaluation and its report),
:mod:`~armap_agents.pipeline.plan` (one task), :mod:`~armap_agents.pipeline.run` (all),
:mod:`~armap_agents.pipeline.guided` (exploration by a planner guided by a critic) and
:mod:`~armap_agents.pipeline.improve` (the critic improved over rounds).
"""

from armap_agents.environments.defaults import QuickstartPlan
from armap_agents.layout import (
    OUTCOMES_FILE,
    PLOT_FILE,
    REPORT_FILE,
    REPORT_JSON_FILE,
    ImproveLayout,
    RunLayout,
)
from armap_agents.pipeline.evaluate import EvaluateConfig, evaluate_and_report, write_report
from armap_agents.pipeline.guided import GuidedExploreResult, explore_with_planner
from armap_agents.pipeline.improve import ImproveConfig, ImproveResult, RoundReport, improve_critic
from armap_agents.pipeline.plan import PlanResult, plan_task, planner_graph
from armap_agents.pipeline.run import PipelineResult, run_pipeline
from armap_agents.pipeline.sizes import default_run_dir, quickstart_plan, spread
from armap_agents.pipeline.sources import EnvSource, env_source
from armap_agents.pipeline.stages import (
    Echo,
    ExecutorName,
    exploration_provenance,
    explore_trajectories,
    reward_view,
    synthesis_provenance,
    synthesize_triplets,
    train_reward_model,
)

__all__ = [
    "OUTCOMES_FILE",
    "PLOT_FILE",
    "REPORT_FILE",
    "REPORT_JSON_FILE",
    "Echo",
    "EnvSource",
    "EvaluateConfig",
    "ExecutorName",
    "GuidedExploreResult",
    "ImproveConfig",
    "ImproveLayout",
    "ImproveResult",
    "PipelineResult",
    "PlanResult",
    "QuickstartPlan",
    "RoundReport",
    "RunLayout",
    "default_run_dir",
    "env_source",
    "evaluate_and_report",
    "exploration_provenance",
    "explore_trajectories",
    "explore_with_planner",
    "improve_critic",
    "plan_task",
    "planner_graph",
    "quickstart_plan",
    "reward_view",
    "run_pipeline",
    "spread",
    "synthesis_provenance",
    "synthesize_triplets",
    "train_reward_model",
    "write_report",
]
