"""The ARMAP pipeline as functions: explore, synthesize, train, evaluate, and all four at once.

A run lives in one directory, laid out by :class:`RunLayout`::

    run/
      trajectories.jsonl            explore: the policy's episodes (+ .meta.json, .failures.jsonl)
      synthesis/                    synthesize: triplets.train.jsonl, triplets.val.jsonl, ...
      reward_model/                 train: the model, metrics, training_curve.png, README.md
      evaluation/                   evaluate: outcomes.jsonl, report.md, report.json, results.png
      meta.json                     what made the run (see armap_agents._provenance)

Each stage is one function with keyword arguments: :func:`explore_trajectories`,
:func:`synthesize_triplets`, :func:`train_reward_model` and :func:`evaluate_and_report`. They
take what the command line takes (an environment, a policy or synthesizer by name, sizes),
record what made their output, and resume: called again with the same arguments they continue
where they stopped. :func:`run_pipeline` runs all four in a run directory with the sizes of
:func:`quickstart_plan` (what ``armap quickstart`` does)::

    from armap_agents.pipeline import RunLayout, run_pipeline

    result = run_pipeline("runs/demo", env="game24", size="tiny")
    print(result.report.to_markdown())
    print(RunLayout("runs/demo").report)  # runs/demo/evaluation/report.md

The sizes: Game of 24 uses its standard splits. ScienceWorld and ALFWorld use a fixed subset
of task families (the first variations / games of each, spread evenly over the families) so
that the paper-style table fits in minutes on a laptop; the numbers are a smoke-level
comparison, not the paper's full benchmark. Any other environment (one given by import path)
gets generic sizes: the first tasks of its ``train`` and ``test`` splits, in order. Each
environment, LLM and size has its own default run directory (:func:`default_run_dir`), so a
run on another environment never resumes (or reuses the reward model of) another one's run.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from armap_agents.config import StrictConfig
from armap_agents.errors import ArmapError, ConfigError
from armap_agents.layout import (
    OUTCOMES_FILE,
    PLOT_FILE,
    REPORT_FILE,
    REPORT_JSON_FILE,
    TRAIN_RESULT_FILE,
    TRAIN_TRIPLETS_FILE,
    VAL_TRIPLETS_FILE,
    RunLayout,
)
from armap_agents.planners import PLANNER_NAMES, PLANNERS

if TYPE_CHECKING:
    from armap_agents.evaluation import EvaluationReport
    from armap_agents.executors import EpisodeExecutor
    from armap_agents.graphs.explore import ExploreResult
    from armap_agents.graphs.synthesize import SynthesizeResult
    from armap_agents.llm import UsageLimits, UsageTracker
    from armap_agents.reward.model import Precision
    from armap_agents.reward.train import TrainResult
    from armap_agents.reward_view import TrajectoryView

__all__ = [
    "Echo",
    "PipelineResult",
    "QuickstartPlan",
    "RunLayout",
    "default_run_dir",
    "evaluate_and_report",
    "exploration_provenance",
    "explore_trajectories",
    "quickstart_plan",
    "run_pipeline",
    "spread",
    "synthesis_provenance",
    "synthesize_triplets",
    "train_reward_model",
    "write_report",
]

logger = logging.getLogger(__name__)

Echo = Callable[[str], None]
"""Where a stage says what it did, one line at a time (``print`` by default; None: quiet)."""

# -- sizes of a quickstart run --------------------------------------------------------------
# ScienceWorld's "find" family: navigate, focus on the right thing, move it to a box; partial
# scores along the way give the relabeler something to compare.
SCIENCEWORLD_SUBSET = ("find-living-thing", "find-non-living-thing", "find-plant", "find-animal")


class QuickstartPlan(StrictConfig):
    """Sizes of one :func:`run_pipeline` run."""

    train_tasks: int | None
    """Train tasks explored (None: the whole split)."""
    episodes: int
    max_train: int | None
    """Training triplets used at most."""
    epochs: int
    test_tasks: int | None
    n: int
    max_steps: int
    max_length: int = 512
    """The reward model's window in tokens (it reads trajectories through the environment's
    :class:`~armap_agents.reward_view.TrajectoryView`, fitted to this window)."""
    families: tuple[str, ...] | None = None
    """Task families the tasks are spread over (None: the split in order)."""
    planners: tuple[str, ...] = PLANNER_NAMES
    val_fraction: float = 0.1
    """The share of tasks whose triplets validate the reward model."""
    batch_size: int = 32
    lr: float = 1e-3
    max_val: int | None = 500
    """Validation triplets used at most."""


def quickstart_plan(
    env: str,
    size: str,
    *,
    llm: bool,
    n: int | None = None,
    max_steps: int | None = None,
) -> QuickstartPlan:
    """The plan for ``env`` at ``size`` (``full`` or ``tiny``); ``llm`` shrinks it (every step
    is an LLM call) and keeps Best-of-N only; ``n`` and ``max_steps`` override the plan's
    where given. An environment other than the built-in ones gets generic sizes."""
    if size not in ("full", "tiny"):
        raise ConfigError(f"unknown quickstart size {size!r}: use 'full' or 'tiny'")
    tiny = size == "tiny"
    if env == "game24":
        if llm:
            plan = QuickstartPlan(
                train_tasks=3 if tiny else 8,
                episodes=1,
                max_train=None,
                epochs=1 if tiny else 3,
                test_tasks=1 if tiny else 3,
                n=2 if tiny else 4,
                max_steps=4,  # a game takes 3 moves; invalid moves count as steps
                max_length=128,
            )
        else:
            plan = QuickstartPlan(
                train_tasks=40 if tiny else None,
                episodes=4,
                max_train=200 if tiny else 4000,
                epochs=1,
                test_tasks=5 if tiny else None,
                n=16,
                max_steps=10,
                max_length=128,  # a game renders to ~90 tokens
            )
    elif env in ("scienceworld", "alfworld"):
        from armap_agents.environments.alfworld import TASK_TYPES  # ALFWorld: all six types

        families = SCIENCEWORLD_SUBSET if env == "scienceworld" else TASK_TYPES
        per_family = len(families)
        # an ALFWorld step costs 0.1-0.2 s on a train game (TextWorld renders every observation
        # from its grammar): 6 train games per task type keep the full run under 20 minutes
        full = 6 if env == "alfworld" else 10
        plan = QuickstartPlan(
            train_tasks=(1 if tiny else 3 if llm else full) * per_family,
            episodes=1 if llm else (2 if tiny else 4),
            max_train=None if llm else (200 if tiny else 4000),
            epochs=1 if tiny else 2,
            test_tasks=1 if tiny else 2 * per_family,
            n=2 if tiny else (4 if llm else 8),
            max_steps=6 if tiny else (15 if env == "scienceworld" else 20),
            families=families,
        )
    elif env == "webshop":
        # the generated catalog's goals, in order (the test split is WebShop's first 500)
        plan = QuickstartPlan(
            train_tasks=(10 if tiny else 40 if llm else 300),
            episodes=1 if llm else (2 if tiny else 4),
            max_train=None if llm else (200 if tiny else 2000),
            epochs=1,
            test_tasks=2 if tiny else (10 if llm else 50),
            n=2 if tiny else (4 if llm else 8),
            max_steps=15,  # WebShop's usual episode length
        )
    else:
        # an environment we know nothing about: small enough for a slow one, the splits in order
        plan = QuickstartPlan(
            train_tasks=(3 if llm else 20) if tiny else (10 if llm else 200),
            episodes=1 if llm else 4,
            max_train=None if llm else (300 if tiny else 2000),
            epochs=2,
            test_tasks=(2 if llm else 3) if tiny else (5 if llm else 20),
            n=(2 if llm else 4) if tiny else (4 if llm else 8),
            max_steps=10 if tiny else 20,
        )
    update: dict[str, Any] = {"planners": ("best_of_n",)} if llm else {}
    if n is not None:
        update["n"] = n
    if max_steps is not None:
        update["max_steps"] = max_steps
    return plan.model_copy(update=update) if update else plan


def spread(task_ids: Sequence[str], families: Sequence[str] | None, k: int | None) -> list[str]:
    """``k`` ids (None: all), taken round-robin over ``families`` (see
    :func:`~armap_agents.environments.base.select_tasks`)."""
    from armap_agents.environments.base import select_tasks

    if not families:
        return list(task_ids[:k] if k else task_ids)
    queues = [select_tasks(list(task_ids), [family]) for family in families]
    picked: list[str] = []
    while any(queues) and (k is None or len(picked) < k):
        for queue in queues:
            if queue and (k is None or len(picked) < k):
                picked.append(queue.pop(0))
    return picked


def default_run_dir(env: str, llm: str | None = None, size: str = "full") -> Path:
    """``runs/quickstart-<env>[-<llm>][-tiny]``, each name made file-name safe: e.g.
    ``runs/quickstart-game24``, ``runs/quickstart-webshop-local-smollm2-tiny``."""
    parts = [env, llm] if llm else [env]
    if size != "full":
        parts.append(size)
    return Path("runs") / "-".join(["quickstart", *map(_slug, parts)])


def _slug(text: str) -> str:
    """``text`` as a file-name part: lowercase letters, digits, ``_`` and ``.``; other runs of
    characters become ``-`` (``examples/shop.py:make`` -> ``examples-shop.py-make``)."""
    return re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-.") or "env"


# -- the stages -----------------------------------------------------------------------------
def _environments(env: str, options: Mapping[str, Any] | None = None) -> Any:
    """The environment factory of ``env`` as a context manager: pooled environments (JVMs
    ...) stop when it exits."""
    from armap_agents.environments.registry import opened_factory

    return opened_factory(env, **dict(options or {}))


def _say(echo: Echo | None, line: str = "") -> None:
    if echo is not None:
        echo(line)


ExecutorName = Literal["local", "ray"]
"""Where episodes run: ``local`` (this process) or ``ray`` (Ray workers, extra ``[ray]``)."""


@contextmanager
def _episode_executor(
    executor: ExecutorName,
    ray_address: str | None,
    *,
    env: str,
    env_options: Mapping[str, Any] | None,
    policy: str,
    workers: int,
    usage: UsageTracker | None,
    limits: UsageLimits | None = None,
) -> Iterator[EpisodeExecutor | None]:
    """The executor a stage's graphs hand their episodes to: None (in process) for
    ``local``; for ``ray``, a :class:`~armap_agents.ray_executor.RayExecutor` of ``workers``
    actors, on the cluster at ``ray_address`` (default: a local one for the block)."""
    if executor == "local":
        if ray_address is not None:
            raise ConfigError("--ray-address applies to --executor ray only")
        yield None
        return
    if executor != "ray":
        raise ConfigError(f"unknown executor {executor!r}: use 'local' or 'ray'")
    from armap_agents import _builders as build
    from armap_agents.ray_executor import RayExecutor

    build.expert_epsilon(policy)  # a misspelt spec is refused here, before any worker starts
    with RayExecutor(
        env,
        policy,
        env_options=env_options,
        workers=workers,
        usage=usage,
        limits=limits,
        address=ray_address,
    ) as runner:
        yield runner


def explore_trajectories(
    *,
    out: str | Path,
    env: str = "game24",
    env_options: Mapping[str, Any] | None = None,
    policy: str = "random",
    split: str = "train",
    tasks: Sequence[str] | None = None,
    episodes_per_task: int = 4,
    max_tasks: int | None = None,
    max_steps: int = 10,
    seed: int = 0,
    concurrency: int = 4,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
) -> ExploreResult:
    """Play ``episodes_per_task`` episodes of ``policy`` (``random``, ``expert:EPSILON`` or a
    chat-model spec) on the ``split``'s tasks (those matching ``tasks``, at most ``max_tasks``)
    and append them to the JSONL file ``out`` (resumable). Raises :class:`ArmapError` when
    every episode failed.

    ``executor="ray"`` plays the episodes on ``concurrency`` Ray workers (the cluster at
    ``ray_address``, default a local one started for the stage); this process still writes
    every trajectory, so the file and its resume are the same."""
    from armap_agents import _builders as build
    from armap_agents.graphs.explore import ExploreConfig, explore, failures_path

    config = ExploreConfig(
        split=split,
        tasks=list(tasks) if tasks else None,
        episodes_per_task=episodes_per_task,
        max_tasks=max_tasks,
        max_steps=max_steps,
        seed=seed,
        max_concurrency=concurrency,
    )
    provenance = exploration_provenance(env=env, env_options=env_options, policy=policy)
    with _episode_executor(
        executor,
        ray_address,
        env=env,
        env_options=env_options,
        policy=policy,
        workers=concurrency,
        usage=usage,
    ) as runner:
        built = build.policy(policy, usage) if runner is None else None
        with _environments(env, env_options) as factory:
            result = explore(built, factory, out, config, provenance=provenance, executor=runner)
    _say(
        echo,
        f"explored {result.finished} new episodes ({result.already_done} already done, "
        f"{result.failed} failed, {result.successes} successes) -> {result.output_path}",
    )
    if result.failed and not result.finished:
        raise ArmapError(
            f"all {result.failed} episodes of this run failed; their errors are in "
            f"{failures_path(result.output_path)}"
        )
    return result


def exploration_provenance(
    *, env: str, env_options: Mapping[str, Any] | None, policy: str
) -> dict[str, Any]:
    """What an exploration records as made its trajectories, besides its config (see
    ``armap_agents._provenance``): the environment and the policy, by name."""
    from armap_agents._provenance import env_defines

    return {**env_defines(env, env_options), "policy": policy}


def synthesis_provenance(
    *,
    env: str,
    env_options: Mapping[str, Any] | None,
    synthesizer: str,
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a synthesis records as made its triplets, besides its seed and its trajectories'
    record: the synthesizer, the relabeler and its options, and the environment."""
    from armap_agents._provenance import env_defines

    return {
        "synthesizer": synthesizer,
        "relabeler": relabeler,
        "relabel_options": dict(relabel_options or {}),
        **env_defines(env, env_options),
    }


def _synthesis_job(
    *,
    env: str,
    env_options: Mapping[str, Any] | None,
    synthesizer: str,
    relabeler: str | None,
    relabel_options: Mapping[str, Any] | None,
    val_fraction: float,
    seed: int,
    concurrency: int,
) -> tuple[Any, dict[str, Any]]:
    """The config and provenance (see ``armap_agents._provenance``) of a synthesis."""
    from armap_agents.graphs.synthesize import SynthesizeConfig

    config = SynthesizeConfig(val_fraction=val_fraction, seed=seed, max_concurrency=concurrency)
    provenance = synthesis_provenance(
        env=env,
        env_options=env_options,
        synthesizer=synthesizer,
        relabeler=relabeler,
        relabel_options=relabel_options,
    )
    return config, provenance


def synthesize_triplets(
    *,
    trajectories: str | Path,
    out: str | Path,
    env: str = "game24",
    env_options: Mapping[str, Any] | None = None,
    synthesizer: str = "relabel",
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    concurrency: int = 4,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
) -> SynthesizeResult:
    """Turn the ``trajectories`` of ``env`` into ``(intent, positive, negative)`` triplets in
    the directory ``out`` (resumable): with the environment's relabeler (``synthesizer=
    "relabel"``; ``relabeler`` names another by import path, ``relabel_options`` are its
    arguments) or a chat model by spec; split into train and validation files by task."""
    from armap_agents import _builders as build
    from armap_agents._provenance import manifest_path, recorded_defines
    from armap_agents.graphs.synthesize import synthesize

    made_by = recorded_defines(trajectories, "trajectories") or {}
    if made_by.get("env", env) != env:
        raise ConfigError(
            f"{trajectories} holds trajectories of environment {made_by['env']!r} (see "
            f"{manifest_path(trajectories, 'trajectories')}), not of --env {env}"
        )
    config, provenance = _synthesis_job(
        env=env,
        env_options=env_options,
        synthesizer=synthesizer,
        relabeler=relabeler,
        relabel_options=relabel_options,
        val_fraction=val_fraction,
        seed=seed,
        concurrency=concurrency,
    )
    built = build.synthesizer(
        synthesizer,
        env,
        usage,
        dict(env_options or {}),
        relabeler,
        dict(relabel_options or {}),
    )
    result = synthesize(built, trajectories, out, config, provenance=provenance)
    _say(
        echo,
        f"{result.train} train / {result.val} validation triplets from {result.tasks} tasks "
        f"({result.duplicates} duplicates dropped, {result.skipped_trajectories} trajectories "
        f"skipped, {result.failed_tasks} tasks failed) -> {result.output_dir}",
    )
    return result


def _data_env(data: Path) -> str | None:
    """The environment a synthesis directory's manifest records, if any."""
    from armap_agents._provenance import recorded_defines

    defines = recorded_defines(data, "synthesis") or {}
    found = defines.get("env")
    return found if isinstance(found, str) else None


def reward_view(*, data: str | Path, env: str | None, max_length: int) -> TrajectoryView:
    """The view a reward model reads trajectories through: that of ``env``, else of the
    environment the ``data``'s manifest records, else the generic one; fitted to
    ``max_length`` tokens."""
    from armap_agents.environments.registry import default_registry
    from armap_agents.reward_view import TrajectoryView

    env = env or _data_env(Path(data))
    view = default_registry().reward_view(env) if env else TrajectoryView()
    return view.for_window(max_length)


def _model_defines(
    *,
    data: str | Path,
    view: TrajectoryView,
    backbone: str,
    max_length: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    max_train: int | None,
    max_val: int | None,
) -> dict[str, Any]:
    """What makes a reward model, as its manifest records it: the training settings and what
    made its triplets (the synthesis manifest's ``defines``)."""
    from armap_agents._provenance import recorded_defines

    defines: dict[str, Any] = {
        "backbone": backbone,
        "max_length": max_length,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "max_train": max_train,
        "max_val": max_val,
    }
    defines["view"] = view.model_dump(mode="json")
    made_by = recorded_defines(data, "synthesis")
    if made_by is not None:
        defines["data"] = made_by
    return defines


def train_reward_model(
    *,
    data: str | Path,
    out: str | Path,
    backbone: str = "all-MiniLM-L6-v2",
    max_length: int = 128,
    env: str | None = None,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = 1000,
    device: str = "auto",
    precision: Precision = "auto",
    grad_accum: int = 1,
    gradient_checkpointing: bool = False,
    devices: int | None = None,
    echo: Echo | None = print,
) -> TrainResult:
    """Train a reward model on the triplets of the synthesis directory ``data`` (at most
    ``max_train`` / ``max_val`` of them, sampled) and save it in ``out``, with its metrics,
    training curve, model card and manifest. ``env`` chooses the trajectory view (default:
    the environment the data's manifest records); ``device``, ``precision``, ``grad_accum``,
    ``gradient_checkpointing`` and ``devices`` say where and how, not what (not in the
    manifest).

    ``devices``: train on this many processes with DistributedDataParallel, spawned here
    (one GPU each on CUDA, gloo on CPU); None: one, or as many as a launcher (``torchrun``,
    ``accelerate launch``) started. ``batch_size`` stays the pairs of one optimizer step
    across them all (:mod:`armap_agents.reward.train`); rank 0 writes ``out`` and echoes."""
    arguments = dict(locals())  # the call, for the spawned processes (before other names)
    from armap_agents._jsonl import read_jsonl
    from armap_agents._provenance import record_manifest
    from armap_agents.reward.distributed import (
        check_devices,
        launched_processes,
        launched_rank,
        run_on_devices,
    )
    from armap_agents.reward.model import RewardModel, RewardModelConfig
    from armap_agents.reward.train import RewardTrainer, RewardTrainerConfig
    from armap_agents.types import Triplet

    processes = check_devices(devices, device)
    data, out = Path(data), Path(out)
    train = read_jsonl(data / TRAIN_TRIPLETS_FILE, Triplet)
    val = read_jsonl(data / VAL_TRIPLETS_FILE, Triplet)
    if not train:
        raise ArmapError(
            f"no training triplets in {data / TRAIN_TRIPLETS_FILE}: run `armap synthesize` first"
        )
    if max_train and len(train) > max_train:
        train = random.Random(seed).sample(train, max_train)
    if max_val and len(val) > max_val:
        val = random.Random(seed).sample(val, max_val)
    settings = RewardTrainerConfig(  # checked before the model is loaded
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        device=device,
        precision=precision,
        gradient_accumulation_steps=grad_accum,
        gradient_checkpointing=gradient_checkpointing,
    )
    view = reward_view(data=data, env=env, max_length=max_length)
    config = RewardModelConfig(backbone=backbone, max_length=max_length, seed=seed, view=view)
    launched = launched_processes()
    if processes > launched:  # checked here, trained there
        call = {**arguments, "devices": processes}
        return run_on_devices(train_reward_model, call, processes, device)
    model = RewardModel.create(
        config,
        device=settings.device if launched == 1 else "cpu",  # the trainer picks its GPU
        precision=settings.precision,
    )
    result = RewardTrainer(model, settings).train(train, val, output_dir=out, data_source=data)
    if launched_rank() != 0:
        return result  # rank 0 records the manifest and reports
    # a new model: its manifest says what made it (run_pipeline and evaluations check it)
    defines = _model_defines(
        data=data,
        view=view,
        backbone=backbone,
        max_length=max_length,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        max_train=max_train,
        max_val=max_val,
    )
    record_manifest(out, "reward_model", defines, {"data_path": str(data)}, replace=True)
    acc = result.best_val_accuracy
    _say(
        echo,
        f"trained on {len(train)} triplets; best epoch {result.best_epoch}"
        + (f", validation accuracy {acc:.1%}" if acc is not None else "")
        + f" -> {out} (training curve: {out / 'training_curve.png'}, "
        f"model card: {out / 'README.md'})",
    )
    return result


def _read_val_accuracy(model_dir: Path) -> float | None:
    result = model_dir / TRAIN_RESULT_FILE
    if not result.is_file():
        return None
    return json.loads(result.read_text()).get("best_val_accuracy")


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


def evaluate_and_report(
    *,
    model: str | Path,
    out: str | Path,
    env: str = "game24",
    env_options: Mapping[str, Any] | None = None,
    policy: str = "random",
    split: str = "test",
    tasks: Sequence[str] | None = None,
    max_tasks: int | None = None,
    n: int = 16,
    max_steps: int = 10,
    planners: Sequence[str] = PLANNER_NAMES,
    threshold: float = 0.0,
    seed: int = 0,
    concurrency: int = 4,
    usage: UsageTracker | None = None,
    limits: UsageLimits | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
) -> EvaluationReport:
    """Compare Sampling, Greedy, Best-of-N (ARMAP-B), ``planners`` and oracle Best-of-N on
    the ``split``'s tasks (those matching ``tasks``, at most ``max_tasks``) with the reward
    model in directory ``model``; ``threshold`` is ARMAP-R's stop threshold. Writes the
    outcomes and the report (:func:`write_report`) into the directory ``out``; resumes by
    task, with the same model and settings only.

    ``executor="ray"``: Best-of-N's candidates and Greedy's episodes run on ``concurrency``
    Ray workers (as for :func:`explore_trajectories`); ARMAP-R and ARMAP-M stay in this
    process; the reward model scores here."""
    from armap_agents import _builders as build
    from armap_agents._provenance import env_defines, record_manifest, recorded_defines
    from armap_agents.environments.base import select_tasks
    from armap_agents.evaluation import evaluate_planners
    from armap_agents.reward.model import RewardModel

    model, out = Path(model), Path(out)
    # outcomes resume by task: they must come from the same model, policy and settings
    defines: dict[str, Any] = {
        **env_defines(env, env_options),
        "policy": policy,
        "n": n,
        "max_steps": max_steps,
        "seed": seed,
        "reflexion_threshold": threshold,
    }
    model_made_by = recorded_defines(model, "reward_model")
    if model_made_by is not None:
        defines["model"] = model_made_by
        trained_on = model_made_by.get("data", {}).get("env")
        if trained_on is not None and trained_on != env:
            logger.warning(
                "the reward model in %s was trained on data of environment %r, not %r",
                model,
                trained_on,
                env,
            )
    else:  # a model without a manifest is known by where it is
        defines["model_path"] = str(model.resolve())
    patterns = list(tasks) if tasks else None
    settings = {
        "model_path": str(model),
        "split": split,
        "planners": list(planners),
        "max_tasks": max_tasks,
        "tasks": patterns,
        "max_concurrency": concurrency,
    }
    configs: dict[str, Any] = dict.fromkeys(planners)
    configs["best_of_n"] = {"n": n, "max_steps": max_steps, "seed": seed}
    if "reflexion" in configs:
        configs["reflexion"] = {"threshold": threshold}
    with _environments(env, env_options) as factory:
        with closing(factory()) as probe:
            selected = select_tasks(probe.task_ids(split), patterns)
        if not selected:
            raise ConfigError(f"no task of split {split!r} matches {patterns}")
        reward_model = RewardModel.load(model)
        record_manifest(out, "evaluation", defines, settings)
        with _episode_executor(
            executor,
            ray_address,
            env=env,
            env_options=env_options,
            policy=policy,
            workers=concurrency,
            usage=usage,
            limits=limits,
        ) as runner:
            report = evaluate_planners(
                build.policy(policy, usage),
                factory,
                reward_model,
                configs,
                split=split,
                task_ids=selected[:max_tasks] if max_tasks else selected,
                outcomes_path=out / OUTCOMES_FILE,
                max_concurrency=concurrency,
                reward_model_val_accuracy=_read_val_accuracy(model),
                limits=limits,
                executor=runner,
            )
    write_report(report, out)
    return report


# -- all of them ----------------------------------------------------------------------------
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
    env: str = "game24",
    env_options: Mapping[str, Any] | None = None,
    size: Literal["full", "tiny"] = "full",
    llm: str | None = None,
    n: int | None = None,
    max_steps: int | None = None,
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
    backbone: str = "all-MiniLM-L6-v2",
    seed: int = 0,
    concurrency: int = 4,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
) -> PipelineResult:
    """Explore, synthesize, train and evaluate in ``run_dir`` (default:
    :func:`default_run_dir`) with the sizes of :func:`quickstart_plan` (what ``armap
    quickstart`` does), printing progress through ``echo``.

    The random policy and the environment's relabeler (``relabeler`` and ``relabel_options``
    change it), or the chat model ``llm`` for exploring, synthesizing and planning. A run
    directory belongs to one run: another run's is refused (a
    :class:`~armap_agents.errors.CheckpointError`) before any work; the same run's resumes,
    each stage where it stopped, and a stage already done is checked and reused.

    ``executor`` and ``ray_address``: where the exploration's and the evaluation's episodes
    run (see :func:`explore_trajectories`); without ``ray_address`` each of the two stages
    starts a local Ray cluster for its duration, unless this process is connected already.
    """
    from armap_agents._provenance import check_manifest, env_defines, record_manifest
    from armap_agents.graphs.synthesize import synthesis_defines

    plan = quickstart_plan(env, size, llm=bool(llm), n=n, max_steps=max_steps)
    policy = llm or "random"
    layout = RunLayout(run_dir if run_dir is not None else default_run_dir(env, llm, size))
    run = layout.root
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--run-dir {run} is a file, not a directory")
    relabeler = None if llm else relabeler
    relabel_options = dict(relabel_options or {})
    # a run directory belongs to one run: another one's is refused before any work (each
    # stage checks its own files too); a new one says what it is once the environment is
    # known to start, an older version's once the run is complete
    made_by = {
        **env_defines(env, env_options),
        "policy": policy,
        "size": size,
        "seed": seed,
        "n": plan.n,
        "max_steps": plan.max_steps,
        "relabeler": relabeler,
        "relabel_options": relabel_options,
        "backbone": backbone,
    }
    check_manifest(run, "quickstart", made_by)
    new_run = not run.is_dir() or not any(run.iterdir())
    started = time.perf_counter()
    with _environments(env, env_options) as factory, closing(factory()) as probe:
        train_ids = spread(probe.task_ids("train"), plan.families, plan.train_tasks)
        test_ids = spread(probe.task_ids("test"), plan.families, plan.test_tasks)
    if new_run:
        record_manifest(run, "quickstart", made_by, {"concurrency": concurrency})
    subset = f" of {', '.join(plan.families)}" if plan.families else ""
    common: dict[str, Any] = {"env": env, "env_options": env_options, "seed": seed}

    who = f"LLM policy {llm}" if llm else "random policy"
    _say(
        echo,
        f"[1/4] explore: {who}, {plan.episodes} episodes on each of {len(train_ids)} train "
        f"tasks{subset}",
    )
    explore_trajectories(
        **common,
        out=layout.trajectories,
        policy=policy,
        split="train",
        episodes_per_task=plan.episodes,
        # Game of 24 takes its split in order; the others a spread over task families
        max_tasks=plan.train_tasks if plan.families is None else None,
        tasks=None if plan.families is None else train_ids,
        max_steps=plan.max_steps,
        concurrency=concurrency,
        usage=usage,
        echo=echo,
        executor=executor,
        ray_address=ray_address,
    )
    how = f"LLM synthesizer {llm}" if llm else "hindsight relabeling"
    _say(echo, f"[2/4] synthesize: {how} into (intent, positive, negative) triplets")
    synthesis: dict[str, Any] = {
        "synthesizer": llm or "relabel",
        "relabeler": relabeler,
        "relabel_options": relabel_options,
        "val_fraction": plan.val_fraction,
    }
    if not layout.train_triplets.is_file():
        synthesize_triplets(
            **common,
            **synthesis,
            trajectories=layout.trajectories,
            out=layout.synthesis,
            concurrency=concurrency,
            usage=usage,
            echo=echo,
        )
    else:  # reused only if it was made from these trajectories, by this synthesizer
        config, provenance = _synthesis_job(**common, **synthesis, concurrency=concurrency)
        defines = synthesis_defines(config, provenance, layout.trajectories)
        check_manifest(layout.synthesis, "synthesis", defines)
        _say(echo, f"      already done: {layout.synthesis}")
    _say(echo, f"[3/4] train the reward model ({backbone} + LoRA, Bradley-Terry loss)")
    training: dict[str, Any] = {
        "data": layout.synthesis,
        "backbone": backbone,
        "max_length": plan.max_length,
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "lr": plan.lr,
        "seed": seed,
        "max_train": plan.max_train,
        "max_val": plan.max_val,
    }
    if not layout.train_result.is_file():
        train_reward_model(**training, env=env, out=layout.reward_model, echo=echo)
    else:  # reused only if it was trained on this synthesis, with these settings
        view = reward_view(data=layout.synthesis, env=env, max_length=plan.max_length)
        defines = _model_defines(**training, view=view)
        check_manifest(layout.reward_model, "reward_model", defines)
        _say(echo, f"      already done: {layout.reward_model}")
    rows = ", ".join(PLANNERS[p].row_label(plan.n) for p in plan.planners)
    _say(echo, f"[4/4] evaluate on {len(test_ids)} test tasks: Sampling, Greedy, {rows}, oracle")
    report = evaluate_and_report(
        **common,
        model=layout.reward_model,
        out=layout.evaluation,
        policy=policy,
        split="test",
        tasks=test_ids,
        n=plan.n,
        max_steps=plan.max_steps,
        planners=plan.planners,
        concurrency=concurrency,
        usage=usage,
        executor=executor,
        ray_address=ray_address,
    )
    record_manifest(run, "quickstart", made_by, {"concurrency": concurrency})
    seconds = time.perf_counter() - started
    _say(echo)
    _say(echo, report.to_markdown())
    _say(
        echo,
        f"\nquickstart finished in {seconds / 60:.1f} min; artifacts in {run}/ "
        f"(report: {layout.report}, plot: {layout.plot}, "
        f"training curve: {layout.training_curve})",
    )
    return PipelineResult(layout=layout, plan=plan, report=report, seconds=seconds)
