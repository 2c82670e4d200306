"""The first three stages: explore, synthesize, train.

Each stage takes its inputs by name or as objects (see :mod:`armap_agents.pipeline.sources`),
its settings as its config (an object, a mapping, or keyword arguments naming the config's
fields), records what made its output, and resumes: called again with the same arguments it
continues where it stopped. Everything is checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from armap_agents.errors import ArmapError, ConfigError
from armap_agents.layout import TRAIN_TRIPLETS_FILE, VAL_TRAJECTORIES_FILE, VAL_TRIPLETS_FILE
from armap_agents.pipeline.sources import (
    EnvSource,
    Inherited,
    configured,
    env_source,
    inherit,
    policy_name,
    policy_object,
    split_settings,
)

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.executors import EpisodeExecutor
    from armap_agents.graphs.explore import ExploreConfig, ExploreResult
    from armap_agents.graphs.synthesize import SynthesizeConfig, SynthesizeResult
    from armap_agents.llm import UsageLimits, UsageTracker
    from armap_agents.policies import Policy
    from armap_agents.reward.model import RewardModelConfig
    from armap_agents.reward.train import RewardTrainerConfig, TrainResult
    from armap_agents.reward_view import TrajectoryView
    from armap_agents.synthesizers import Synthesizer

__all__ = [
    "Echo",
    "ExecutorName",
    "exploration_provenance",
    "explore_trajectories",
    "reward_view",
    "synthesis_provenance",
    "synthesize_triplets",
    "train_reward_model",
]

Echo = Callable[[str], None]
"""Where a stage says what it did, one line at a time (``print`` by default; None: quiet)."""

ExecutorName = Literal["local", "ray"]
"""Where episodes run: ``local`` (this process) or ``ray`` (Ray workers, extra ``[ray]``)."""


def say(echo: Echo | None, line: str = "") -> None:
    """``echo(line)`` unless ``echo`` is None."""
    if echo is not None:
        echo(line)


@contextmanager
def episode_executor(
    executor: ExecutorName,
    ray_address: str | None,
    *,
    env: EnvSource,
    policy: str | Policy,
    workers: int,
    usage: UsageTracker | None,
    limits: UsageLimits | None = None,
) -> Iterator[EpisodeExecutor | None]:
    """The executor a stage's graphs hand their episodes to: None (in process) for
    ``local``; for ``ray``, a :class:`~armap_agents.ray_executor.RayExecutor` of ``workers``
    actors, on the cluster at ``ray_address`` (default: a local one for the block). Ray
    workers make the environment and the policy themselves: both must be given by name."""
    if executor == "local":
        if ray_address is not None:
            raise ConfigError("--ray-address applies to --executor ray only")
        yield None
        return
    if executor != "ray":
        raise ConfigError(f"unknown executor {executor!r}: use 'local' or 'ray'")
    if not env.by_name or not isinstance(policy, str):
        raise ConfigError(
            "executor 'ray' makes the environment and the policy on its workers: give both by "
            "name (an environment's name or import path, a policy spec), not as objects"
        )
    from armap_agents import _builders as build
    from armap_agents.ray_executor import RayExecutor

    build.expert_epsilon(policy)  # a misspelt spec is refused here, before any worker starts
    with RayExecutor(
        env.name,
        policy,
        env_options=env.options,
        workers=workers,
        usage=usage,
        limits=limits,
        address=ray_address,
    ) as runner:
        yield runner


# -- explore --------------------------------------------------------------------------------
def exploration_provenance(
    *, env: str | EnvSource, env_options: Mapping[str, Any] | None = None, policy: str | Policy
) -> dict[str, Any]:
    """What an exploration records as made its trajectories, besides its config (see
    ``armap_agents._provenance``): the environment and the policy, by name."""
    return {**env_source(env, env_options).defines(), "policy": policy_name(policy)}


def explore_trajectories(
    *,
    out: str | Path,
    env: str | EnvFactory | EnvSource = "game24",
    env_options: Mapping[str, Any] | None = None,
    policy: str | Policy = "random",
    config: ExploreConfig | Mapping[str, Any] | None = None,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    **settings: Any,
) -> ExploreResult:
    """Play the episodes ``config`` asks for (an
    :class:`~armap_agents.graphs.explore.ExploreConfig`, a mapping of its fields, or its
    fields as keywords: ``episodes_per_task=2, max_tasks=10``) with ``policy`` (a spec:
    ``random``, ``expert:EPSILON``, a chat model; or a :class:`~armap_agents.policies.Policy`)
    in ``env`` (a name or import path, or an environment factory) and append them to the JSONL
    file ``out`` (resumable). Episodes last the environment's horizon unless ``max_steps``
    says otherwise. Raises :class:`ArmapError` when every episode failed.

    ``executor="ray"`` plays the episodes on ``max_concurrency`` Ray workers (the cluster at
    ``ray_address``, default a local one started for the stage); this process still writes
    every trajectory, so the file and its resume are the same."""
    from armap_agents.graphs.explore import ExploreConfig, explore, failures_path

    explore_config = configured(ExploreConfig, config, settings, what="explore settings")
    source = env_source(env, env_options)
    provenance = exploration_provenance(env=source, policy=policy)
    with episode_executor(
        executor,
        ray_address,
        env=source,
        policy=policy,
        workers=explore_config.max_concurrency,
        usage=usage,
    ) as runner:
        built = policy_object(policy, usage) if runner is None else None
        with source.opened() as factory:
            result = explore(
                built, factory, out, explore_config, provenance=provenance, executor=runner
            )
    say(
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


# -- synthesize -----------------------------------------------------------------------------
def synthesis_provenance(
    *,
    env: str | EnvSource,
    env_options: Mapping[str, Any] | None = None,
    synthesizer: str | Synthesizer,
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a synthesis records as made its triplets, besides its seed and its trajectories'
    record: the synthesizer, the relabeler and its options, and the environment."""
    from armap_agents.pipeline.sources import describe

    return {
        "synthesizer": synthesizer if isinstance(synthesizer, str) else describe(synthesizer),
        "relabeler": relabeler,
        "relabel_options": dict(relabel_options or {}),
        **env_source(env, env_options).defines(),
    }


def synthesis_input(
    trajectories: str | Path,
    env: str | EnvFactory | EnvSource | None,
    env_options: Mapping[str, Any] | None,
    *,
    adopt: bool,
) -> EnvSource:
    """The environment of a synthesis of ``trajectories``: the one their manifest records
    (``env``, if given, must agree). A file without a manifest is refused unless ``adopt``
    (then it is taken as ``env``'s, which must be given)."""
    path = Path(trajectories)
    if not path.is_file():
        raise ConfigError(f"no trajectory file {path}: run `armap explore --out {path}` first")
    inherited = Inherited.read(path, "trajectories")
    if inherited.env is None and not adopt:
        raise ConfigError(
            f"{path} has no manifest ({path.name}.meta.json), so nothing says which environment "
            "made it: synthesize it as --env's with --adopt (and --env), or explore anew"
        )
    return inherit(env, env_options, inherited, what=f"the trajectories in {path}")


def synthesize_triplets(
    *,
    trajectories: str | Path,
    out: str | Path,
    env: str | EnvFactory | EnvSource | None = None,
    env_options: Mapping[str, Any] | None = None,
    synthesizer: str | Synthesizer = "relabel",
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
    adopt: bool = False,
    config: SynthesizeConfig | Mapping[str, Any] | None = None,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    **settings: Any,
) -> SynthesizeResult:
    """Turn ``trajectories`` into ``(intent, positive, negative)`` triplets in the directory
    ``out`` (resumable): with the environment's relabeler (``synthesizer="relabel"``;
    ``relabeler`` names another by import path, ``relabel_options`` are its arguments), a chat
    model by spec, or a :class:`~armap_agents.synthesizers.Synthesizer` object; split into
    train and validation files by task (``config``: a
    :class:`~armap_agents.graphs.synthesize.SynthesizeConfig`, a mapping, or its fields as
    keywords).

    The environment is the one the trajectories' manifest records (``env`` may repeat it, and
    is refused when it differs); trajectories without a manifest need ``adopt=True`` and
    ``env``."""
    from armap_agents import _builders as build
    from armap_agents.graphs.synthesize import SynthesizeConfig, synthesize

    synthesize_config = configured(SynthesizeConfig, config, settings, what="synthesize settings")
    source = synthesis_input(trajectories, env, env_options, adopt=adopt)
    provenance = synthesis_provenance(
        env=source,
        synthesizer=synthesizer,
        relabeler=relabeler,
        relabel_options=relabel_options,
    )
    if isinstance(synthesizer, str):
        built = build.synthesizer(
            synthesizer,
            source.spec,
            usage,
            dict(source.options),
            relabeler,
            dict(relabel_options or {}),
        )
    elif relabeler is not None or relabel_options:
        raise ConfigError("relabeler and relabel_options apply to synthesizer 'relabel' only")
    else:
        built = synthesizer
    result = synthesize(built, trajectories, out, synthesize_config, provenance=provenance)
    say(
        echo,
        f"{result.train} train / {result.val} validation triplets from {result.tasks} tasks "
        f"({result.duplicates} duplicates dropped, {result.skipped_trajectories} trajectories "
        f"skipped, {result.failed_tasks} tasks failed) -> {result.output_dir}",
    )
    return result


# -- train ----------------------------------------------------------------------------------
def reward_view(
    *, data: str | Path, env: str | EnvFactory | EnvSource | None, max_length: int
) -> TrajectoryView:
    """The view a reward model reads trajectories through: that of ``env`` (which must agree
    with the ``data``'s manifest), else of the environment the manifest records, else the
    generic one; fitted to ``max_length`` tokens."""
    return source_view(training_env(data, env), max_length)


def source_view(source: EnvSource | None, max_length: int) -> TrajectoryView:
    """The view of ``source``'s environment (None: the generic view), fitted to
    ``max_length`` tokens."""
    from armap_agents.reward_view import TrajectoryView

    view = source.view() if source is not None else TrajectoryView()
    return view.for_window(max_length)


def training_env(data: str | Path, env: str | EnvFactory | EnvSource | None) -> EnvSource | None:
    """The environment of the triplets in ``data``: ``env`` (refused when the data's manifest
    records another), else the one the manifest records, else None (unknown)."""
    inherited = Inherited.read(data, "synthesis")
    if env is None and inherited.env is None:
        return None
    return inherit(env, None, inherited, what=f"the triplets in {data}")


def model_defines(
    *,
    data: str | Path,
    model: RewardModelConfig,
    trainer: RewardTrainerConfig,
) -> dict[str, Any]:
    """What makes a reward model, as its manifest records it: the training settings and what
    made its triplets (the synthesis manifest's ``defines``). A window left to the data
    (``max_length`` unset, see :func:`window_from_data`) is recorded as ``"data"``, and the
    view without the budget that follows from it: the data decide both."""
    from armap_agents._provenance import recorded_defines

    from_data = "max_length" not in model.model_fields_set
    view = model.view.model_copy(update={"max_chars": None}) if from_data else model.view
    defines: dict[str, Any] = {
        "backbone": model.backbone,
        "max_length": "data" if from_data else model.max_length,
        "epochs": trainer.epochs,
        "batch_size": trainer.batch_size,
        "lr": trainer.learning_rate,
        "seed": trainer.seed,
        "max_train": trainer.max_train,
        "max_val": trainer.max_val,
        "view": view.model_dump(mode="json"),
    }
    made_by = recorded_defines(data, "synthesis")
    if made_by is not None:
        defines["data"] = made_by
    return defines


def training_configs(
    data: str | Path,
    env: str | EnvFactory | EnvSource | None,
    model_config: RewardModelConfig | Mapping[str, Any] | None,
    config: RewardTrainerConfig | Mapping[str, Any] | None,
    settings: Mapping[str, Any],
) -> tuple[RewardModelConfig, RewardTrainerConfig]:
    """The model's and the trainer's configs of a training on ``data``: ``settings`` divided
    between them (``seed`` goes to both), the window the environment declares unless one is
    given, the view of the environment fitted to it. Where neither says the window, the
    model's ``max_length`` stays unset: :func:`train_reward_model` takes it from the data
    (:func:`~armap_agents.reward.window.data_window`)."""
    from armap_agents.reward.model import RewardModelConfig
    from armap_agents.reward.train import RewardTrainerConfig

    for_model, for_trainer = split_settings(
        settings, RewardModelConfig, RewardTrainerConfig, what="training"
    )
    source = training_env(data, env)
    given = (
        model_config.model_dump(exclude_unset=True)
        if isinstance(model_config, RewardModelConfig)
        else dict(model_config or {})
    )
    if "max_length" not in given and "max_length" not in for_model and source is not None:
        declared = source.defaults()
        if "max_length" in declared.model_fields_set:  # the environment's window
            for_model["max_length"] = declared.max_length
    model = configured(RewardModelConfig, given, for_model, what="reward model settings")
    if "view" not in given and "view" not in for_model:
        model = model.model_copy(update={"view": source_view(source, model.max_length)})
    trainer = configured(RewardTrainerConfig, config, for_trainer, what="training settings")
    # one seed for the run: the trainer's (the head's initialisation is the model's)
    return model.model_copy(update={"seed": trainer.seed}), trainer


def fitted_to(view: TrajectoryView, max_length: int) -> bool:
    """Whether ``view``'s budget is the one :meth:`TrajectoryView.for_window` sets for a window
    of ``max_length`` tokens: a view given without a budget, fitted by
    :class:`~armap_agents.reward.model.RewardModelConfig` to the window it had then."""
    from armap_agents.reward_view import window_budget

    return view.fit_window and view.max_chars == window_budget(max_length)


def window_from_data(
    model: RewardModelConfig, source: EnvSource | None, train: list[Any], echo: Echo | None
) -> RewardModelConfig:
    """``model`` with the window that fits the ``train`` triplets, and, unless its view was
    given, the view with the character budget of the same texts
    (:func:`~armap_agents.reward.window.data_window`)."""
    from armap_agents.reward.window import data_window
    from armap_agents.reward_view import TrajectoryView

    unfitted = source.view() if source is not None else TrajectoryView()
    window, max_chars, whole = data_window(train, model.backbone, unfitted)
    update: dict[str, Any] = {"max_length": window}
    fits = unfitted.fit_window and unfitted.max_chars is None  # else the environment's choice
    if fits and model.view == source_view(source, model.max_length):  # not given either
        update["view"] = unfitted.model_copy(update={"max_chars": max_chars}).for_new_model()
    elif fitted_to(model.view, model.max_length):  # given without a budget: it follows too
        update["view"] = model.view.model_copy(update={"max_chars": max_chars})
    say(
        echo,
        f"reward-model window: {window} tokens, trajectories up to {max_chars:,} characters "
        f"({whole:.0%} of the training texts fit whole, the others through the view: every "
        "action and the end state kept)",
    )
    return model.model_copy(update=update)


def train_reward_model(
    *,
    data: str | Path,
    out: str | Path,
    env: str | EnvFactory | EnvSource | None = None,
    model_config: RewardModelConfig | Mapping[str, Any] | None = None,
    config: RewardTrainerConfig | Mapping[str, Any] | None = None,
    devices: int | None = None,
    echo: Echo | None = print,
    **settings: Any,
) -> TrainResult:
    """Train a reward model on the triplets of the synthesis directory ``data`` and save it in
    ``out``, with its metrics, training curve, model card and manifest.

    ``model_config`` (a :class:`~armap_agents.reward.model.RewardModelConfig` or mapping:
    backbone, window ...) and ``config`` (a
    :class:`~armap_agents.reward.train.RewardTrainerConfig` or mapping: epochs, batch size,
    ``max_train`` ...) say what to train; ``settings`` are fields of either, as keywords
    (``epochs=1, backbone="..."``). The window is the environment's declared one, and the view
    the environment's, unless given; the environment is the one the data's manifest records
    (``env`` may repeat it, and is refused when it differs). ``device``, ``precision``,
    ``gradient_accumulation_steps``, ``gradient_checkpointing`` and ``devices`` say where and
    how, not what (not in the manifest).

    ``devices``: train on this many processes with DistributedDataParallel, spawned here
    (one GPU each on CUDA, gloo on CPU); None: one, or as many as a launcher (``torchrun``,
    ``accelerate launch``) started. ``batch_size`` stays the pairs of one optimizer step
    across them all (:mod:`armap_agents.reward.train`); rank 0 writes ``out`` and echoes."""
    from armap_agents._jsonl import read_jsonl
    from armap_agents._provenance import record_manifest
    from armap_agents.reward.distributed import (
        check_devices,
        launched_processes,
        launched_rank,
        run_on_devices,
    )
    from armap_agents.reward.model import RewardModel
    from armap_agents.reward.train import RewardTrainer
    from armap_agents.types import Trajectory, Triplet

    model_settings, trainer = training_configs(data, env, model_config, config, settings)
    processes = check_devices(devices, trainer.device)
    data, out = Path(data), Path(out)
    train = read_jsonl(data / TRAIN_TRIPLETS_FILE, Triplet)
    val = read_jsonl(data / VAL_TRIPLETS_FILE, Triplet)
    requested = model_settings  # what the manifest records (a window from the data as such)
    if train and "max_length" not in model_settings.model_fields_set:
        model_settings = window_from_data(model_settings, training_env(data, env), train, echo)
    held_out = data / VAL_TRAJECTORIES_FILE  # synthesized before 2026-12-07: none
    candidates = read_jsonl(held_out, Trajectory) if held_out.is_file() else []
    if not train:
        raise ArmapError(
            f"no training triplets in {data / TRAIN_TRIPLETS_FILE}: run `armap synthesize` first"
        )
    launched = launched_processes()
    if processes > launched:  # checked here, trained there
        call = {
            "data": data,
            "out": out,
            "model_config": model_settings,
            "config": trainer,
            "devices": processes,
            "echo": echo,
        }
        return run_on_devices(train_reward_model, call, processes, trainer.device)
    model = RewardModel.create(
        model_settings,
        device=trainer.device if launched == 1 else "cpu",  # the trainer picks its GPU
        precision=trainer.precision,
    )
    result = RewardTrainer(model, trainer).train(
        train, val, candidates=candidates, output_dir=out, data_source=data
    )
    if launched_rank() != 0:
        return result  # rank 0 records the manifest and reports
    # a new model: its manifest says what made it (run_pipeline and evaluations check it)
    defines = model_defines(data=data, model=requested, trainer=trainer)
    record_manifest(out, "reward_model", defines, {"data_path": str(data)}, replace=True)
    acc, picks = result.best_val_accuracy, result.planning
    used = min(len(train), trainer.max_train or len(train))
    say(
        echo,
        f"trained on {used} triplets; kept epoch {result.best_epoch} (by {result.selected_by})"
        + (f", validation accuracy {acc:.1%}" if acc is not None else "")
        + (
            f"; on {picks.tasks} held-out tasks its pick succeeds {picks.pick_success:.1%} "
            f"(random {picks.mean_success:.1%}, best {picks.oracle_success:.1%})"
            if picks is not None
            else ""
        )
        + f" -> {out} (training curve: {out / 'training_curve.png'}, "
        f"model card: {out / 'README.md'})",
    )
    return result
