"""``armap``: the pipeline from the command line.

Every stage reads and writes files in a run directory, and every stage resumes: rerun the same
command after a crash and it continues where it stopped. The commands are thin: each stage is a
function of :mod:`armap_agents.pipeline` (``armap quickstart`` is ``run_pipeline``), which also
names the run directory's files (``RunLayout``).

* ``armap explore``     policy episodes -> ``trajectories.jsonl``
* ``armap synthesize``  trajectories -> ``synthesis/triplets.{train,val}.jsonl``
* ``armap train``       triplets -> ``reward_model/`` (+ metrics, training-curve PNG, model card)
* ``armap export``      triplets -> TRL preference JSONL (``prompt``/``chosen``/``rejected``)
* ``armap plan``        one task with ARMAP-B, printing the chosen trajectory
* ``armap evaluate``    Sampling / Greedy / ARMAP-B / oracle table on a split
* ``armap quickstart``  all of the above on Game of 24, offline
* ``armap improve``     rounds: explore with a planner guided by the last critic, train the next
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from armap_agents import _builders as build
from armap_agents._options import add_options, config_values
from armap_agents.errors import (
    ArmapError,
    BudgetExceeded,
    CheckpointError,
    ConfigError,
    describe_validation_error,
)
from armap_agents.planners import PLANNER_NAMES  # the registry's names; no planner is loaded


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


def run_serve_rm(args: argparse.Namespace) -> None:
    from armap_agents.reward.service import serve_arguments

    serve_arguments(args)


# -- stages -------------------------------------------------------------------------------
def _given_env_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--env-option`` pairs, or None when none was given (the input's manifest's)."""
    return _env_options(args.env_option) if args.env_option else None


def run_explore(args: argparse.Namespace) -> None:
    from armap_agents.graphs.explore import ExploreConfig
    from armap_agents.pipeline import explore_trajectories

    explore_trajectories(
        out=args.out,
        env=args.env,
        env_options=_env_options(args.env_option),
        policy=args.policy,
        config=config_values(args, ExploreConfig),
        usage=args.usage,
        executor=args.executor,
        ray_address=args.ray_address,
    )


def run_synthesize(args: argparse.Namespace) -> None:
    from armap_agents.graphs.synthesize import SynthesizeConfig
    from armap_agents.pipeline import synthesize_triplets

    synthesize_triplets(
        trajectories=args.trajectories,
        out=args.out,
        env=args.env,
        env_options=_given_env_options(args),
        synthesizer=args.synthesizer,
        relabeler=args.relabeler,
        relabel_options=dict(args.relabel_option),
        adopt=args.adopt,
        config=config_values(args, SynthesizeConfig),
        usage=args.usage,
    )


def run_train(args: argparse.Namespace) -> None:
    from armap_agents.pipeline import train_reward_model
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig

    train_reward_model(
        data=args.data,
        out=args.out,
        env=args.env,
        model_config=config_values(args, RewardModelConfig),
        config=config_values(args, RewardTrainerConfig),
        devices=args.devices,
    )


def _export_view(args: argparse.Namespace):
    """The view of ``--model`` (read from its config, no weights loaded), else that of the
    data's environment, fitted to ``--max-length`` (default: the environment's window)."""
    if args.model is None:
        from armap_agents.environments.defaults import EnvironmentDefaults
        from armap_agents.pipeline.stages import source_view, training_env

        source = training_env(args.data, args.env)
        window = (
            args.max_length or (source.defaults() if source else EnvironmentDefaults()).max_length
        )
        return source_view(source, window)
    from armap_agents.reward.configs import CONFIG_FILE
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

    from armap_agents.pipeline import plan_task
    from armap_agents.planners import planner_spec

    config = config_values(args, planner_spec(args.planner).config_type)
    with ExitStack() as stack:
        checkpointer = None
        if args.checkpoint is not None:
            if args.planner in ("best_of_n", "live_rerank"):
                raise ArmapError("--checkpoint applies to --planner mcts, reflexion or beam_search")
            # the settings and the model's environment are checked before the file is made
            from armap_agents.pipeline.evaluate import model_environment
            from armap_agents.planners import planner_config

            planner_config(args.planner, config)
            if args.model is not None:
                model_environment(args.model, args.env, _given_env_options(args))
            checkpointer = stack.enter_context(_sqlite_checkpointer(args.checkpoint))
        result = plan_task(
            args.task,
            planner=args.planner,
            model=args.model,
            env=args.env,
            env_options=_given_env_options(args),
            policy=args.policy,
            config=config,
            objectives=args.objective,
            reflector=build.chat_model(args.reflector, args.usage) if args.reflector else None,
            memory=args.memory,
            checkpointer=checkpointer,
            thread_id=args.thread_id,
            max_concurrency=args.max_concurrency,
            usage=args.usage,
        )
    if result.status == "resumed":
        print(f"resumed the interrupted run from {args.checkpoint}")
    elif result.status == "already finished":
        print(f"this run already finished in {args.checkpoint}; showing its result")
    state = result.state
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
        n = len(state["candidates"])
        print(f"picked candidate {i} of {n} (score {state['scores'][i]:.3f})")


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


def run_evaluate(args: argparse.Namespace) -> None:
    from armap_agents.graphs.best_of_n import BestOfNConfig
    from armap_agents.pipeline import PLOT_FILE, REPORT_FILE, EvaluateConfig, evaluate_and_report

    planner_configs: dict[str, Any] = {"best_of_n": config_values(args, BestOfNConfig)}
    if "reflexion" in args.planners:
        planner_configs["reflexion"] = {"threshold": args.threshold}
    report = evaluate_and_report(
        model=args.model,
        out=args.out,
        env=args.env,
        env_options=_given_env_options(args),
        policy=args.policy,
        config=config_values(args, EvaluateConfig),
        planner_configs=planner_configs,
        usage=args.usage,
        limits=args.limits,
        executor=args.executor,
        ray_address=args.ray_address,
    )
    print(report.to_markdown())
    print(f"\nsaved {Path(args.out) / REPORT_FILE} and {Path(args.out) / PLOT_FILE}")


def run_quickstart(args: argparse.Namespace) -> None:
    from armap_agents.pipeline import run_pipeline

    run_pipeline(
        args.run_dir,
        env=args.env,
        env_options=_env_options(args.env_option),
        size=args.size,
        llm=args.llm,
        n=args.n,
        max_steps=args.max_steps,
        relabeler=args.relabeler,
        relabel_options=dict(args.relabel_option),
        backbone=args.backbone,
        seed=args.seed,
        max_concurrency=args.max_concurrency,
        usage=args.usage,
        executor=args.executor,
        ray_address=args.ray_address,
    )


def run_improve(args: argparse.Namespace) -> None:
    from armap_agents.graphs.synthesize import SynthesizeConfig
    from armap_agents.pipeline.improve import ImproveConfig, improve_critic
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig

    improve_critic(
        args.run_dir,
        env=args.env,
        env_options=_env_options(args.env_option),
        policy=args.policy,
        config=config_values(args, ImproveConfig),
        synthesizer=args.synthesizer,
        relabeler=args.relabeler,
        relabel_options=dict(args.relabel_option),
        synthesis={"val_fraction": config_values(args, SynthesizeConfig)["val_fraction"]},
        model_config=config_values(args, RewardModelConfig),
        trainer_config=config_values(args, RewardTrainerConfig),
        usage=args.usage,
    )


# -- argument parsing -----------------------------------------------------------------------
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` to an option's help when it has a default worth showing: not
    None, not an empty list, not a flag's False, and not already told by the help text."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_ = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
            or "default" in help_
        ):
            return help_
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{help_} (default: {str(shown).replace('%', '%%')})"


def _key_value(text: str) -> tuple[str, Any]:
    """A ``KEY=VALUE`` option (``--relabel-option``): numbers and true/false are parsed."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"want KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.replace("-", "_"), value if isinstance(parsed, dict | list) else parsed


COMMAND_CONFIGS: dict[str, tuple[str, ...]] = {
    "explore": ("armap_agents.graphs.explore:ExploreConfig",),
    "synthesize": ("armap_agents.graphs.synthesize:SynthesizeConfig",),
    "train": (
        "armap_agents.reward.configs:RewardModelConfig",
        "armap_agents.reward.configs:RewardTrainerConfig",
    ),
    "export": ("armap_agents.reward.configs:RewardModelConfig",),
    "plan": (
        "armap_agents.graphs.best_of_n:BestOfNConfig",
        "armap_agents.graphs.mcts:MCTSConfig",
        "armap_agents.graphs.reflexion:ReflexionConfig",
        "armap_agents.graphs.beam_search:BeamSearchConfig",
        "armap_agents.graphs.live_rerank:LiveRerankConfig",
    ),
    "evaluate": (
        "armap_agents.pipeline.evaluate:EvaluateConfig",
        "armap_agents.graphs.best_of_n:BestOfNConfig",
        "armap_agents.graphs.reflexion:ReflexionConfig",
    ),
    "improve": (
        "armap_agents.pipeline.improve:ImproveConfig",
        "armap_agents.graphs.synthesize:SynthesizeConfig",
        "armap_agents.reward.configs:RewardModelConfig",
        "armap_agents.reward.configs:RewardTrainerConfig",
    ),
}
"""The configs whose fields each command's options are (tests/cli/test_defaults.py checks that
every option named like a field of one of them has that field's default)."""

CONCURRENCY = ("--concurrency", "--max-concurrency")
"""The option strings of every ``max_concurrency`` field."""


def build_parser() -> argparse.ArgumentParser:
    """The ``armap`` command line; each setting's option, default and help come from the
    config that declares it (:func:`armap_agents._options.add_options`)."""
    from armap_agents.graphs.beam_search import BeamSearchConfig
    from armap_agents.graphs.best_of_n import BestOfNConfig
    from armap_agents.graphs.explore import ExploreConfig
    from armap_agents.graphs.live_rerank import LiveRerankConfig
    from armap_agents.graphs.mcts import MCTSConfig
    from armap_agents.graphs.reflexion import ReflexionConfig
    from armap_agents.graphs.synthesize import SynthesizeConfig
    from armap_agents.pipeline.evaluate import EvaluateConfig
    from armap_agents.pipeline.improve import ImproveConfig
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig

    parser = argparse.ArgumentParser(
        prog="armap",
        description="ARMAP: learn a reward model from an environment and plan with it.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=_HelpFormatter)
        p.set_defaults(func=func)
        if name in ("explore", "evaluate", "quickstart"):
            g = p.add_argument_group("where episodes run")
            g.add_argument(
                "--executor",
                choices=["local", "ray"],
                default="local",
                help="local: in this process; ray: on --concurrency Ray workers, each with a "
                "warm environment and the policy (extra [ray]); this process writes the results",
            )
            g.add_argument(
                "--ray-address",
                metavar="ADDR",
                help="the Ray cluster of --executor ray (what `ray start --head` prints, or "
                "auto) (default: a local cluster on 127.0.0.1 for the run)",
            )
        if name != "quickstart":  # a demo of fixed size
            g = p.add_argument_group("LLM budget (the run stops, resumably, when it is spent)")
            g.add_argument("--max-llm-calls", type=int, help="LLM requests (default: no limit)")
            g.add_argument(
                "--max-llm-tokens", type=int, help="prompt + completion tokens (default: no limit)"
            )
        return p

    def env_arguments(
        p: argparse.ArgumentParser, *, default: str | None, options: bool = True
    ) -> None:
        where = (
            f"(default: {default})"
            if default
            else "(default: the environment the input's manifest records; another is refused)"
        )
        p.add_argument(
            "--env",
            default=default,
            help="game24, scienceworld, alfworld, webshop, or your own environment by import "
            "path: package.module:Class or path/to/file.py:Class (see docs/own_environment.md) "
            + where,
        )
        if not options:
            return
        p.add_argument(
            "--env-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an environment argument, e.g. tasks=boil or jvm_heap=1g (scienceworld), "
            "data_dir=/data/alfworld or task_types=clean (alfworld); repeat a key for a list",
        )

    policy_help = (
        "'random', a chat model ('openai:<model>', 'openai-compatible:<url>:<model>', "
        "'local:smollm2'), or 'expert:EPSILON', a benchmark stand-in of chosen strength: the "
        "environment's expert, with a random step with probability EPSILON"
    )
    relabeler_help = (
        "a relabeler class by import path (module:Class or file.py:Class) instead of the "
        "environment's own (its 'relabeler' attribute, else the generic OutcomeRelabeler)"
    )
    relabel_option_help = (
        "an argument of the relabeler, checked against its signature, e.g. truncated=false "
        "(the generic OutcomeRelabeler: no 'truncated' pairs), prefixes=false, "
        "negatives_per_positive=4; repeatable"
    )

    def relabel_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        p.add_argument("--relabeler", help=relabeler_help)
        p.add_argument(
            "--relabel-option",
            action="append",
            type=_key_value,
            default=[],
            metavar="KEY=VALUE",
            help=relabel_option_help,
        )

    p = add(
        "explore", "run policy episodes and append them to a JSONL file (resumable)", run_explore
    )
    env_arguments(p, default="game24")
    p.add_argument("--policy", default="random", help=policy_help)
    p.add_argument("--out", required=True, type=Path, help="trajectories JSONL file")
    add_options(
        p,
        ExploreConfig,
        [
            "split",
            "episodes_per_task",
            "max_tasks",
            "tasks",
            "max_steps",
            "seed",
            "max_concurrency",
        ],
        flags={"tasks": ("--task",), "max_concurrency": CONCURRENCY},
    )

    p = add(
        "synthesize", "turn trajectories into (intent, positive, negative) triplets", run_synthesize
    )
    env_arguments(p, default=None)
    p.add_argument(
        "--trajectories", required=True, type=Path, help="trajectories JSONL of `armap explore`"
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--adopt",
        action="store_true",
        help="synthesize trajectories that have no manifest (an older version's, or written by "
        "other code) as --env's",
    )
    p.add_argument(
        "--synthesizer",
        default="relabel",
        help="'relabel' (the environment's programmatic relabeler) or a chat model name",
    )
    relabel_arguments(p)
    add_options(
        p,
        SynthesizeConfig,
        ["val_fraction", "seed", "max_concurrency"],
        flags={"max_concurrency": CONCURRENCY},
    )

    p = add("train", "train a reward model on synthesized triplets", run_train)
    p.add_argument("--data", required=True, type=Path, help="directory from `armap synthesize`")
    p.add_argument("--out", required=True, type=Path, help="reward-model directory to write")
    env_arguments(p, default=None, options=False)
    add_options(
        p, RewardModelConfig, ["backbone", "max_length"], environment_declared=["max_length"]
    )
    add_options(
        p,
        RewardTrainerConfig,
        [
            "epochs",
            "batch_size",
            "learning_rate",
            "seed",
            "max_train",
            "max_val",
            "device",
            "precision",
            "gradient_accumulation_steps",
            "gradient_checkpointing",
        ],
        flags={
            "learning_rate": ("--lr", "--learning-rate"),
            "gradient_accumulation_steps": ("--grad-accum", "--gradient-accumulation-steps"),
        },
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="train on N processes with DistributedDataParallel (one GPU each on CUDA, gloo "
        "on CPU), spawned here; --batch-size stays the pairs of one optimizer step across "
        "all N (each takes batch/N), the same seed draws the same batches, so results "
        "compare across N. Default: 1, or the processes of torchrun / accelerate launch "
        "(e.g. torchrun --nproc-per-node 8 -m armap_agents.cli train ...)",
    )

    p = sub.add_parser(
        "export",
        help="write synthesized triplets as TRL preference JSONL (prompt/chosen/rejected)",
        description="Write the triplets of `armap synthesize` as preference JSONL for TRL's "
        "RewardTrainer (and anything that reads datasets.load_dataset('json')): "
        "preferences.train.jsonl and preferences.val.jsonl.",
        formatter_class=_HelpFormatter,
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
    add_options(g, RewardModelConfig, ["max_length"], environment_declared=["max_length"])

    p = add("plan", "solve one task with a planner guided by the reward model", run_plan)
    p.add_argument(
        "--planner",
        choices=PLANNER_NAMES,
        default="best_of_n",
        help="ARMAP-B, ARMAP-R, ARMAP-M, step-level beam search or live action reranking",
    )
    env_arguments(p, default=None)
    p.add_argument("--model", help="reward-model directory, or the URL of a reward-model service")
    p.add_argument("--task", required=True, help="the task id to solve")
    p.add_argument("--policy", default="random", help=policy_help)
    # every planner's config has these two, with the same defaults (a test checks)
    add_options(p, BestOfNConfig, ["max_steps", "seed"])
    p.add_argument(
        *CONCURRENCY,
        dest="max_concurrency",
        type=int,
        default=4,
        help="episodes (Best-of-N's candidates, MCTS's rollouts) run at once",
    )
    p.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="add weight * objective to the reward (fewer_steps, or a numeric "
        "attribute such as price:-1); repeatable",
    )
    add_options(p.add_argument_group("best_of_n"), BestOfNConfig, ["n", "selection"])
    # --expansion-k and --max-policy-calls also set beam_search's (and live_rerank's
    # expansion_k): the configs share these fields and their defaults
    g = p.add_argument_group("mcts (and beam_search, live_rerank)")
    add_options(
        g,
        MCTSConfig,
        [
            "iterations",
            "max_policy_calls",
            "expansion_k",
            "exploration_constant",
            "normalize_values",
            "widen",
            "evaluation",
        ],
    )
    g.add_argument(
        "--tree-html",
        type=Path,
        help="where to write the search tree as an offline HTML page (default: next to "
        "--checkpoint, else in the temporary directory; the link is printed)",
    )
    g.add_argument("--tree-json", type=Path, help="write the search tree as JSON")
    g = p.add_argument_group("reflexion")
    add_options(
        g,
        ReflexionConfig,
        ["max_trials", "threshold", "retrieve_k"],
        flags={"max_trials": ("--trials", "--max-trials")},
    )
    g.add_argument("--memory", type=Path, help="trajectory-memory directory (read and extended)")
    g.add_argument("--reflector", help="chat model that writes reflections (default: none)")
    add_options(p.add_argument_group("beam_search"), BeamSearchConfig, ["width"])
    # --prior-weight also sets beam_search's: the configs share the field and its default
    add_options(
        p.add_argument_group("live_rerank and beam_search"), LiveRerankConfig, ["prior_weight"]
    )
    g = p.add_argument_group("resuming (mcts, reflexion, beam_search)")
    g.add_argument("--checkpoint", type=Path, help="SQLite file for LangGraph checkpoints")
    g.add_argument("--thread-id", help="checkpoint thread (default: <planner>-<task>)")

    p = add(
        "evaluate",
        "compare Sampling, Greedy, ARMAP-B/R/M (and the step-level planners) and oracle "
        "Best-of-N on a split",
        run_evaluate,
    )
    env_arguments(p, default=None)
    p.add_argument("--model", required=True, type=Path, help="reward-model directory")
    p.add_argument("--out", required=True, type=Path, help="evaluation directory (resumable)")
    p.add_argument("--policy", default="random", help=policy_help)
    add_options(
        p,
        EvaluateConfig,
        ["split", "tasks", "max_tasks", "planners", "max_concurrency"],
        flags={"tasks": ("--task",), "max_concurrency": CONCURRENCY},
    )
    add_options(p, BestOfNConfig, ["n", "max_steps", "seed"])
    add_options(p, ReflexionConfig, ["threshold"])

    p = add(
        "serve-rm",
        "serve a reward model over HTTP (POST /get_reward, GET /health; extra [serve])",
        run_serve_rm,
    )
    # the service's own flags (importing the module loads neither torch nor fastapi)
    from armap_agents.reward.service import add_serve_arguments

    add_serve_arguments(p)

    p = add(
        "quickstart",
        "the whole pipeline (Game of 24 by default), offline, then the results table",
        run_quickstart,
    )
    env_arguments(p, default="game24")
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
    p.add_argument(
        "--n", type=int, default=None, help="Best-of-N's N (default: the environment's sizes)"
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="steps per episode (default: the environment's sizes, else its horizon)",
    )
    relabel_arguments(p)
    p.add_argument(
        "--backbone", default=None, help="the reward model's encoder (default: RewardModelConfig's)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the run")
    p.add_argument(
        *CONCURRENCY,
        dest="max_concurrency",
        type=int,
        default=4,
        help="episodes run at once",
    )
    p.add_argument(
        "--llm",
        help="explore, synthesize and plan with this chat model instead of the random policy "
        "and the relabeler, e.g. local:smollm2 (offline) or openai:gpt-4o-mini; much smaller "
        "runs (every step is an LLM call)",
    )

    p = add(
        "improve",
        "improve the critic over rounds: round 0 explores with the policy and trains a critic; "
        "each later round explores the same train tasks with a planner guided by the last "
        "critic, keeps every trajectory, and trains a new critic on all rounds' data",
        run_improve,
    )
    env_arguments(p, default="game24")
    p.add_argument(
        "--run-dir",
        required=True,
        type=Path,
        help="where the rounds go (round-0/, round-1/ ..., report.md); resumed if it exists",
    )
    p.add_argument("--policy", default="random", help=policy_help)
    add_options(
        p,
        ImproveConfig,
        [
            "rounds",
            "planner",
            "n",
            "episodes_per_task",
            "tasks",
            "max_tasks",
            "max_steps",
            "seed",
            "max_concurrency",
        ],
        flags={"tasks": ("--task",), "max_concurrency": CONCURRENCY},
    )
    g = p.add_argument_group("synthesis (every round: the trajectories of all rounds so far)")
    g.add_argument(
        "--synthesizer",
        default="relabel",
        help="'relabel' (the environment's programmatic relabeler, else the generic "
        "OutcomeRelabeler) or a chat model name",
    )
    relabel_arguments(g)
    add_options(g, SynthesizeConfig, ["val_fraction"])
    g = p.add_argument_group("the critics (each round trains one from the backbone)")
    add_options(
        g, RewardModelConfig, ["backbone", "max_length"], environment_declared=["max_length"]
    )
    add_options(
        g,
        RewardTrainerConfig,
        ["epochs", "batch_size", "learning_rate", "max_train", "max_val", "device", "precision"],
        flags={"learning_rate": ("--lr", "--learning-rate")},
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


_LONGEST_WORD = 200  # a longer word of an error line (a pasted value) is cut to its head
_WORD_HEAD = 80


def _user_error(command: str, message: str) -> int:
    """Print a user's error as one line on stderr; the exit status of a usage error (2).
    Anything else (a bug) keeps its traceback. A word longer than 200 characters (a long
    value the user gave, echoed back) is cut to its head: ``abc… (100,000 characters)``."""
    words = (
        w if len(w) <= _LONGEST_WORD else f"{w[:_WORD_HEAD]}… ({len(w):,} characters)"
        for w in message.split()
    )
    print(f"armap {command}: error: {' '.join(words)}", file=sys.stderr)
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
    except BudgetExceeded as exc:  # what was finished is saved: a larger budget resumes
        _print_usage(args.usage)
        return _user_error(
            args.command, f"{exc}; rerun with a larger budget to resume where it stopped"
        )
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
