"""All four stages at once in one run directory: :func:`run_pipeline` (``armap quickstart``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from armap_agents.environments.defaults import QuickstartPlan
from armap_agents.errors import ConfigError
from armap_agents.layout import RunLayout
from armap_agents.pipeline.evaluate import evaluate_and_report
from armap_agents.pipeline.sizes import default_run_dir, quickstart_plan, spread
from armap_agents.pipeline.sources import EnvSource, env_source, policy_name
from armap_agents.pipeline.stages import (
    Echo,
    ExecutorName,
    explore_trajectories,
    model_defines,
    say,
    synthesis_provenance,
    synthesize_triplets,
    train_reward_model,
    training_configs,
)
from armap_agents.planners import PLANNERS

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.evaluation import EvaluationReport
    from armap_agents.llm import UsageTracker

__all__ = ["PipelineResult", "run_pipeline"]


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run_pipeline` made."""

    layout: RunLayout
    plan: QuickstartPlan
    report: EvaluationReport
    seconds: float
    """Wall time of this call (stages already done are skipped)."""


def run_pipeline(
    run_dir: str | Path | None = None,
    *,
    env: str | EnvFactory | EnvSource = "game24",
    env_options: Mapping[str, Any] | None = None,
    size: Literal["full", "tiny"] = "full",
    llm: str | None = None,
    n: int | None = None,
    max_steps: int | None = None,
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
    backbone: str | None = None,
    seed: int = 0,
    max_concurrency: int = 4,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
) -> PipelineResult:
    """Explore, synthesize, train and evaluate in ``run_dir`` (default:
    :func:`~armap_agents.pipeline.sizes.default_run_dir`) with the sizes the environment
    declares (:func:`~armap_agents.pipeline.sizes.quickstart_plan`; ``n`` and ``max_steps``
    override them), printing progress through ``echo``.

    ``env``: a name or import path, or an environment factory. The random policy and the
    environment's relabeler (``relabeler`` and ``relabel_options`` change it), or the chat
    model ``llm`` for exploring, synthesizing and planning; ``backbone``: the reward model's
    (default: :class:`~armap_agents.reward.model.RewardModelConfig`'s). A run directory
    belongs to one run: another run's is refused (a
    :class:`~armap_agents.errors.CheckpointError`) before any work; the same run's resumes,
    each stage where it stopped, and a stage already done is checked and reused.

    ``executor`` and ``ray_address``: where the exploration's and the evaluation's episodes
    run (see :func:`~armap_agents.pipeline.stages.explore_trajectories`); without
    ``ray_address`` each of the two stages starts a local Ray cluster for its duration,
    unless this process is connected already.
    """
    from armap_agents._provenance import check_manifest, record_manifest
    from armap_agents.graphs.synthesize import SynthesizeConfig, synthesis_defines

    source = env_source(env, env_options)
    plan = quickstart_plan(source.defaults(), size, llm=bool(llm), n=n, max_steps=max_steps)
    policy = llm or "random"
    layout = RunLayout(run_dir if run_dir is not None else default_run_dir(source.name, llm, size))
    run = layout.root
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--run-dir {run} is a file, not a directory")
    relabeler = None if llm else relabeler
    relabel_options = dict(relabel_options or {})
    # the reward model's settings, checked before any work
    model_settings = {"backbone": backbone} if backbone else {}
    training: dict[str, Any] = {
        **model_settings,
        **({"max_length": plan.max_length} if plan.max_length else {}),  # else the data's
        "epochs": plan.epochs,
        "max_train": plan.max_train,
        "seed": seed,
    }
    model_config, trainer_config = training_configs(layout.synthesis, source, None, None, training)
    # a run directory belongs to one run: another one's is refused before any work (each
    # stage checks its own files too); a new one says what it is once the environment is
    # known to start, an older version's once the run is complete
    made_by = {
        **source.defines(),
        "policy": policy_name(policy),
        "size": size,
        "seed": seed,
        "n": plan.n,
        "max_steps": plan.max_steps,
        "relabeler": relabeler,
        "relabel_options": relabel_options,
        "backbone": model_config.backbone,
    }
    check_manifest(run, "quickstart", made_by)
    new_run = not run.is_dir() or not any(run.iterdir())
    started = time.perf_counter()
    with source.opened() as factory, closing(factory()) as probe:
        train_ids = spread(probe.task_ids("train"), plan.families, plan.train_tasks)
        test_ids = spread(probe.task_ids("test"), plan.families, plan.test_tasks)
    if new_run:
        record_manifest(run, "quickstart", made_by, {"max_concurrency": max_concurrency})
    subset = f" of {', '.join(plan.families)}" if plan.families else ""

    who = f"LLM policy {llm}" if llm else "random policy"
    say(
        echo,
        f"[1/4] explore: {who}, {plan.episodes} episodes on each of {len(train_ids)} train "
        f"tasks{subset}",
    )
    explore_trajectories(
        out=layout.trajectories,
        env=source,
        policy=policy,
        split="train",
        episodes_per_task=plan.episodes,
        # without families the split in order; with them a spread over the families
        max_tasks=plan.train_tasks if plan.families is None else None,
        tasks=None if plan.families is None else train_ids,
        max_steps=plan.max_steps,
        seed=seed,
        max_concurrency=max_concurrency,
        usage=usage,
        echo=echo,
        executor=executor,
        ray_address=ray_address,
    )
    how = f"LLM synthesizer {llm}" if llm else "hindsight relabeling"
    say(echo, f"[2/4] synthesize: {how} into (intent, positive, negative) triplets")
    synthesis: dict[str, Any] = {
        "synthesizer": llm or "relabel",
        "relabeler": relabeler,
        "relabel_options": relabel_options,
    }
    if not layout.train_triplets.is_file():
        synthesize_triplets(
            **synthesis,
            env=source,
            trajectories=layout.trajectories,
            out=layout.synthesis,
            seed=seed,
            max_concurrency=max_concurrency,
            usage=usage,
            echo=echo,
        )
    else:  # reused only if it was made from these trajectories, by this synthesizer
        config = SynthesizeConfig(seed=seed, max_concurrency=max_concurrency)
        provenance = synthesis_provenance(env=source, **synthesis)
        defines = synthesis_defines(config, provenance, layout.trajectories)
        check_manifest(layout.synthesis, "synthesis", defines)
        say(echo, f"      already done: {layout.synthesis}")
    say(echo, f"[3/4] train the reward model ({model_config.backbone} + LoRA, Bradley-Terry loss)")
    if not layout.train_result.is_file():
        train_reward_model(
            data=layout.synthesis, out=layout.reward_model, env=source, echo=echo, **training
        )
    else:  # reused only if it was trained on this synthesis, with these settings
        defines = model_defines(data=layout.synthesis, model=model_config, trainer=trainer_config)
        check_manifest(layout.reward_model, "reward_model", defines)
        say(echo, f"      already done: {layout.reward_model}")
    rows = ", ".join(PLANNERS[p].row_label(plan.n) for p in plan.planners)
    say(echo, f"[4/4] evaluate on {len(test_ids)} test tasks: Sampling, Greedy, {rows}, oracle")
    report = evaluate_and_report(
        model=layout.reward_model,
        out=layout.evaluation,
        env=source,
        policy=policy,
        split="test",
        tasks=test_ids,
        n=plan.n,
        max_steps=plan.max_steps,
        seed=seed,
        planners=plan.planners,
        max_concurrency=max_concurrency,
        usage=usage,
        executor=executor,
        ray_address=ray_address,
    )
    record_manifest(run, "quickstart", made_by, {"max_concurrency": max_concurrency})
    seconds = time.perf_counter() - started
    say(echo)
    say(echo, report.to_markdown())
    say(
        echo,
        f"\nquickstart finished in {seconds / 60:.1f} min; artifacts in {run}/ "
        f"(report: {layout.report}, plot: {layout.plot}, "
        f"training curve: {layout.training_curve})",
    )
    return PipelineResult(layout=layout, plan=plan, report=report, seconds=seconds)
