"""The evaluation stage: methods side by side on a split, and the report they make."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from armap_agents.config import StrictConfig
from armap_agents.environments.defaults import DEFAULT_PLANNERS
from armap_agents.errors import CheckpointError, ConfigError
from armap_agents.layout import (
    OUTCOMES_FILE,
    PLOT_FILE,
    REPORT_FILE,
    REPORT_JSON_FILE,
    TRAIN_RESULT_FILE,
)
from armap_agents.pipeline.sources import (
    EnvSource,
    Inherited,
    configured,
    describe,
    inherit,
    policy_name,
    policy_object,
    scorer_object,
    split_settings,
)
from armap_agents.pipeline.stages import ExecutorName, episode_executor
from armap_agents.planners import planner_spec

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.evaluation import EvaluationReport
    from armap_agents.llm import UsageLimits, UsageTracker
    from armap_agents.policies import Policy
    from armap_agents.reward.scorer import RewardScorer

__all__ = ["EvaluateConfig", "evaluate_and_report", "model_environment", "write_report"]


class EvaluateConfig(StrictConfig):
    """Which tasks an evaluation runs, which planners, and how many tasks at once."""

    split: str = "test"
    """Which tasks: test, train ..."""
    tasks: list[str] | None = None
    """Only the split's tasks matching these names (see
    :func:`~armap_agents.environments.base.select_tasks`)."""
    max_tasks: int | None = Field(None, ge=1)
    """At most this many tasks (None: all)."""
    planners: tuple[str, ...] = DEFAULT_PLANNERS
    """The planners compared with Sampling, Greedy and the oracle (Best-of-N always runs; the
    step-level beam_search and live_rerank run when named)."""
    max_concurrency: int = Field(4, ge=1)
    """Episodes run at once."""

    @field_validator("planners")
    @classmethod
    def _known(cls, planners: tuple[str, ...]) -> tuple[str, ...]:
        for name in planners:
            planner_spec(name)  # an unknown name: ConfigError listing the planners
        return planners


def write_report(report: EvaluationReport, out: str | Path) -> Path:
    """Write ``report`` into the evaluation directory ``out``: ``report.md`` (the table),
    ``report.json`` and ``results.png``; returns the markdown file."""
    from armap_agents.evaluation import plot_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).write_text(report.to_markdown() + "\n")
    (out / REPORT_JSON_FILE).write_text(report.model_dump_json(indent=2))
    plot_report(report, out / PLOT_FILE)
    return out / REPORT_FILE


def read_val_accuracy(model: str | Path) -> float | None:
    """The best validation accuracy a trained model directory records, if any."""
    result = Path(model) / TRAIN_RESULT_FILE
    if not result.is_file():
        return None
    return json.loads(result.read_text()).get("best_val_accuracy")


def model_environment(
    model: str | Path | RewardScorer,
    env: str | EnvFactory | EnvSource | None,
    env_options: Mapping[str, Any] | None,
) -> tuple[EnvSource, Inherited]:
    """The environment to plan in with ``model``, and what the model's manifest records:
    ``env`` when given (refused, naming both, when the model was trained on another's data),
    else the environment of the model's training data. A model without a manifest (a URL, a
    scorer object, an older directory) needs ``env``."""
    if isinstance(model, str | Path) and not str(model).startswith(("http://", "https://")):
        from armap_agents.reward.configs import CONFIG_FILE

        inherited = Inherited.read(model, "reward_model")
        if inherited.env is None and env is None and not (Path(model) / CONFIG_FILE).is_file():
            raise CheckpointError(
                f"{model} is not a saved reward model (no {CONFIG_FILE}): give the directory "
                "`armap train --out` wrote"
            )
        what = f"the reward model in {model}"
    else:
        named = model if isinstance(model, str) else describe(model)
        inherited, what = Inherited(), f"the reward model {named}"
    return inherit(env, env_options, inherited, what=what), inherited


def planner_settings(
    settings: Mapping[str, Any],
    planner_configs: Mapping[str, BaseModel | Mapping[str, Any] | None] | None,
    planners: tuple[str, ...],
) -> dict[str, Any]:
    """The planners' configs of an evaluation: ``settings`` (less the
    :class:`EvaluateConfig` fields) divided among them over ``planner_configs``: Best-of-N's
    fields to Best-of-N (they set the episode length and seed of every method), the other
    planners' own fields to them. Each is checked now; an unknown setting is a
    :class:`ConfigError`."""
    names = ("best_of_n", *(p for p in planners if p != "best_of_n"))
    types = [planner_spec(p).config_type for p in names]
    _, *for_planners = split_settings(settings, EvaluateConfig, *types, what="evaluate")
    given = dict(planner_configs or {})
    unknown = set(given) - set(names)
    if unknown:
        raise ConfigError(
            f"planner_configs names {sorted(unknown)}, which this evaluation does not run "
            f"(planners: {', '.join(names)})"
        )
    bon_fields = set(types[0].model_fields)
    configs: dict[str, Any] = {}
    for name, config_type, own in zip(names, types, for_planners, strict=True):
        if name != "best_of_n":  # Best-of-N's fields are matched by the evaluation
            own = {k: v for k, v in own.items() if k not in bon_fields}
        base = given.get(name)
        fields = base.model_dump(exclude_unset=True) if isinstance(base, BaseModel) else base
        configured(config_type, fields, own, what=f"{name} config")  # checked now
        configs[name] = {**dict(fields or {}), **own}
    return configs


def evaluate_and_report(
    *,
    model: str | Path | RewardScorer,
    out: str | Path,
    env: str | EnvFactory | EnvSource | None = None,
    env_options: Mapping[str, Any] | None = None,
    policy: str | Policy = "random",
    config: EvaluateConfig | Mapping[str, Any] | None = None,
    planner_configs: Mapping[str, BaseModel | Mapping[str, Any] | None] | None = None,
    usage: UsageTracker | None = None,
    limits: UsageLimits | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    **settings: Any,
) -> EvaluationReport:
    """Compare Sampling, Greedy, Best-of-N (ARMAP-B), the planners and oracle Best-of-N on the
    tasks ``config`` selects, and write the outcomes and the report (:func:`write_report`) into
    the directory ``out``; resumes by task, with the same model and settings only.

    ``model``: a reward-model directory, the URL of ``armap serve-rm``, or any
    :class:`~armap_agents.reward.scorer.RewardScorer`. ``env``: by default the environment
    the model's manifest records (a contradicting one is refused); a URL or scorer object
    needs it. ``policy``: a spec or a :class:`~armap_agents.policies.Policy`.
    ``settings``: fields of :class:`EvaluateConfig` (``split``, ``max_tasks`` ...), of
    Best-of-N's config (``n``, ``max_steps``, ``seed``: every method's) and of the other
    planners' (``threshold`` for ARMAP-R ...); ``planner_configs`` gives whole configs by
    planner. Episodes last the model's training horizon, else the environment's, unless
    ``max_steps`` is given. Everything is checked before anything is written.

    ``executor="ray"``: Best-of-N's candidates and Greedy's episodes run on
    ``max_concurrency`` Ray workers; ARMAP-R and ARMAP-M stay in this process; the reward
    model scores here."""
    from armap_agents._provenance import record_manifest
    from armap_agents.environments.base import select_tasks
    from armap_agents.evaluation import evaluate_planners

    # every setting is checked before anything is read or written
    own = {k: v for k, v in settings.items() if k in EvaluateConfig.model_fields}
    evaluate = configured(EvaluateConfig, config, own, what="evaluate settings")
    configs = planner_settings(settings, planner_configs, evaluate.planners)
    source, inherited = model_environment(model, env, env_options)
    bon = configs["best_of_n"]
    if bon.get("max_steps") is None:
        bon["max_steps"] = inherited.max_steps or source.defaults().max_steps
    out = Path(out)
    # outcomes resume by task: they must come from the same model, policy and settings
    defines: dict[str, Any] = {
        **source.defines(),
        "policy": policy_name(policy),
        "n": bon.get("n", 16),
        "max_steps": bon["max_steps"],
        "seed": bon.get("seed", 0),
        "reflexion_threshold": dict(configs.get("reflexion") or {}).get("threshold"),
    }
    if inherited.defines is not None:  # the model's manifest, as read for its environment
        defines["model"] = inherited.defines
    elif isinstance(model, str | Path):  # a model without a manifest is known by where it is
        defines["model_path"] = str(Path(model).resolve()) if "://" not in str(model) else model
    else:
        defines["model_object"] = describe(model)
    run_settings = {
        "model_path": str(model) if isinstance(model, str | Path) else describe(model),
        "split": evaluate.split,
        "planners": list(evaluate.planners),
        "max_tasks": evaluate.max_tasks,
        "tasks": evaluate.tasks,
        "max_concurrency": evaluate.max_concurrency,
    }
    with source.opened() as factory:
        with closing(factory()) as probe:
            selected = select_tasks(probe.task_ids(evaluate.split), evaluate.tasks)
        if not selected:
            raise ConfigError(f"no task of split {evaluate.split!r} matches {evaluate.tasks}")
        scorer = scorer_object(model)
        built_policy = policy_object(policy, usage)
        record_manifest(out, "evaluation", defines, run_settings)
        with episode_executor(
            executor,
            ray_address,
            env=source,
            policy=policy,
            workers=evaluate.max_concurrency,
            usage=usage,
            limits=limits,
        ) as runner:
            report = evaluate_planners(
                built_policy,
                factory,
                scorer,
                configs,
                split=evaluate.split,
                task_ids=selected[: evaluate.max_tasks] if evaluate.max_tasks else selected,
                outcomes_path=out / OUTCOMES_FILE,
                max_concurrency=evaluate.max_concurrency,
                reward_model_val_accuracy=(
                    read_val_accuracy(model) if isinstance(model, str | Path) else None
                ),
                limits=limits,
                executor=runner,
            )
    write_report(report, out)
    return report
