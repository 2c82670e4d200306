"""The self-improving critic: rounds of exploration guided by the kept critic, then a new
critic trained on everything seen so far: :func:`improve_critic` (``armap improve``).

A run directory holds one directory per round and a report with one row per round
(:class:`~armap_agents.layout.ImproveLayout`)::

    run/
      meta.json             what makes the run (environment, policy, planner, sizes, seed ...)
      round-0/              the ordinary pipeline: the policy alone explores the train tasks,
        trajectories.jsonl  the relabeler writes triplets, a critic is trained
        synthesis/  reward_model/  heldout.json  meta.json
      round-1/              the planner (ARMAP-B or ARMAP-M) guided by round 0's critic, over
        trajectories.jsonl  the same policy and train tasks: every trajectory it made is kept
        trajectories.searches.jsonl  (the per-task records its exploration resumes from)
        pool.jsonl          the trajectories of rounds 0 and 1 together: what is synthesized
        synthesis/  reward_model/  heldout.json  kept.json  meta.json
      round-2/ ...
      report.md  report.json

Each round's ``meta.json`` names what guided it (the kept critic's directory and the
SHA-256 of its weights), its data and its critic. Test tasks never enter exploration: only the
train split's tasks are explored (a task the environment also lists as a test task is left
out), in every round.

**How rounds are mixed.** Round k synthesizes the trajectories of rounds 0..k *together*,
grouped by task, and critic k is trained from the backbone (not continued from critic k-1) on
all the triplets that makes:

* pooled per task, the relabeler sees the planner's near-misses (trajectories critic k-1
  scored high that failed) beside the successes and the earlier rounds' failures of the same
  task, so the pairs it makes contrast exactly what critic k-1 confused; a round's data alone
  would pair only its own candidates, which a planner makes alike;
* the earlier rounds stay in (the data set is aggregated, as DAgger aggregates its
  iterations): planner-guided data covers what critic k-1 liked, so a critic trained on it
  alone would forget the states it had learned to avoid and be wrong on them when the planner
  next meets them;
* every trajectory weighs the same, whichever round made it: a training capped by
  ``max_train`` samples the triplets uniformly, so each round's share is its share of the
  triplets (later rounds, with N candidates per task, weigh more as they come);
* a fresh critic per round is a function of its data alone (its training resumes per epoch,
  and an earlier critic's mistakes do not compound);
* a round's critic replaces the one kept before it only if it picks better among the
  held-out tasks' candidates (:func:`_kept`): the kept critic guides the next round and is
  the run's result, so one round's worse critic neither steers the later rounds nor ships;
* the validation split is by task with the run's seed, so it is the same tasks every round:
  no critic trains on them, and round 0's validation triplets are a fixed held-out set every
  round's critic is measured on (``heldout.json``, the report's held-out column).

Everything resumes: rerun the same call (or command) and each round continues where it
stopped (exploration per episode, the planner's per task, synthesis per task, training per
epoch); a finished round is checked against its manifests and reused. ``rounds`` may grow
between runs: the new rounds follow the finished ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from armap_agents.config import StrictConfig
from armap_agents.errors import ConfigError
from armap_agents.layout import ImproveLayout
from armap_agents.pipeline.guided import critic_identity, explore_with_planner
from armap_agents.pipeline.sources import (
    EnvSource,
    configured,
    describe,
    env_source,
    policy_name,
    split_settings,
)
from armap_agents.pipeline.stages import (
    Echo,
    explore_trajectories,
    model_defines,
    say,
    synthesize_triplets,
    train_reward_model,
    training_configs,
)

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory, Environment
    from armap_agents.graphs.synthesize import SynthesizeConfig
    from armap_agents.llm import UsageTracker
    from armap_agents.policies import Policy
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig
    from armap_agents.reward.planning_metrics import PickMetrics
    from armap_agents.synthesizers import Synthesizer

__all__ = [
    "ImproveConfig",
    "ImproveResult",
    "RoundReport",
    "improve_critic",
    "keeps_previous",
    "report_markdown",
    "train_tasks",
    "write_improve_report",
]

PLANNER_LABELS = {"best_of_n": "ARMAP-B", "mcts": "ARMAP-M"}


class ImproveConfig(StrictConfig):
    """How many rounds, which planner explores in them, and on which tasks."""

    rounds: int = Field(3, ge=1)
    """Rounds in all, round 0 included: round 0 explores with the policy alone, each later
    round with the planner guided by the previous round's critic; each trains a critic."""
    planner: Literal["best_of_n", "mcts"] = "mcts"
    """The planner that explores in rounds 1 and later (ARMAP-M or ARMAP-B); every trajectory
    it makes is kept. ARMAP-M by default: its tree grows where the critic points, so a round
    explores what the critic believes in (the near-misses it most needs to learn from);
    Best-of-N's candidates do not depend on the critic at all (it only picks among them), so
    its rounds add what more episodes of the policy would."""
    n: int = Field(8, ge=1)
    """Best-of-N's candidates per task in a planner round; ARMAP-M gets their policy-call
    budget (n times the horizon) and 10 n iterations."""
    episodes_per_task: int = Field(4, ge=1)
    """Round 0's episodes per task (the policy alone)."""
    tasks: list[str] | None = None
    """Only the train tasks matching these names (see select_tasks)."""
    max_tasks: int | None = Field(None, ge=1)
    """At most this many train tasks, the same in every round (None: all)."""
    max_steps: int | None = Field(None, ge=1)
    """Steps per episode at most (None: the environment's horizon, its
    ``EnvironmentDefaults.max_steps``)."""
    seed: int = 0
    """Random seed of the run (exploration, synthesis split, training); each planner round
    seeds its searches from it and its number."""
    max_concurrency: int = Field(4, ge=1)
    """Episodes run at once."""


class RoundReport(BaseModel):
    """One round's row of the report."""

    round: int
    guided_by: str
    """What explored: the policy alone, or the planner with the previous round's critic."""
    tasks: int
    """Train tasks explored."""
    trajectories: int
    """Trajectories this round's exploration kept."""
    synthesized: int
    """Trajectories this round's synthesis read (rounds 0..k)."""
    train_triplets: int
    val_triplets: int
    val_accuracy: float | None
    """The critic's best validation accuracy (its own validation triplets)."""
    heldout_accuracy: float | None
    """The critic's pairwise accuracy on round 0's validation triplets (the same set for every
    round)."""
    heldout_triplets: int
    pick_success: float | None
    """Exploration: the share of tasks whose planner pick succeeded (None in round 0)."""
    trajectory_success: float | None
    """Exploration: the share of kept trajectories that succeeded."""
    policy_calls: int
    """Exploration: the policy calls spent (a planner's searches in all)."""
    planning: dict[str, float | None] | None = None
    """What planning with the critic got, where its training recorded it (``pick_success``,
    ``oracle_success``, ``mean_success``, ``gap_closed``)."""
    critic: str
    """The critic's directory, relative to the run directory."""
    kept: int
    """The round whose critic this round keeps: its own only if it picked better than the
    critic kept before it among the held-out tasks' candidates (:func:`_kept`). The kept critic
    guides the next round, and the last round's is the run's result."""


@dataclass(frozen=True)
class ImproveResult:
    """What :func:`improve_critic` made: one row per round, the report, the last critic."""

    layout: ImproveLayout
    rounds: list[RoundReport]
    seconds: float
    """Wall time of this call (finished rounds are reused)."""

    @property
    def critic(self) -> Path:
        """The critic the last round kept (see :attr:`RoundReport.kept`)."""
        return self.layout.round(self.rounds[-1].kept).reward_model

    def to_markdown(self) -> str:
        """The report's table."""
        return report_markdown(self.rounds)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def report_markdown(rows: list[RoundReport]) -> str:
    """One row per round: its data, its critic's accuracy (own validation, and round 0's
    held-out set), what exploration got, and planning where training measured it."""
    lines = [
        "| round | explored by | trajectories (new / synthesized) | triplets (train / val) "
        "| critic val. accuracy | held-out accuracy | picks' success | trajectories' success "
        "| policy calls | planning: pick / oracle / mean / gap closed | kept critic |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        planning = "n/a"
        if r.planning:
            keys = ("pick_success", "oracle_success", "mean_success", "gap_closed")
            planning = " / ".join(_percent(r.planning.get(k)) for k in keys)
        heldout = f"{_percent(r.heldout_accuracy)} (of {r.heldout_triplets})"
        lines.append(
            f"| {r.round} | {r.guided_by} | {r.trajectories:,} / {r.synthesized:,} "
            f"| {r.train_triplets:,} / {r.val_triplets:,} | {_percent(r.val_accuracy)} "
            f"| {heldout} | {_percent(r.pick_success)} | {_percent(r.trajectory_success)} "
            f"| {r.policy_calls:,} | {planning} | round {r.kept} |"
        )
    return "\n".join(lines)


def write_improve_report(rows: list[RoundReport], layout: ImproveLayout) -> Path:
    """Write the rounds' report: ``report.md`` (the table) and ``report.json``; returns the
    markdown file."""
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.report.write_text(report_markdown(rows) + "\n", encoding="utf-8")
    records = [r.model_dump(mode="json") for r in rows]
    layout.report_json.write_text(json.dumps({"rounds": records}, indent=2) + "\n")
    return layout.report


# -- the run --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    """What every round of a run shares (checked once, before any work)."""

    layout: ImproveLayout
    config: ImproveConfig
    source: EnvSource
    policy: str | Policy
    task_ids: list[str]
    horizon: int
    planner_config: dict[str, Any]
    synthesis: dict[str, Any]
    """``synthesize_triplets``' arguments besides the trajectories and the output."""
    training: dict[str, Any]
    """``train_reward_model``'s settings."""
    model: RewardModelConfig
    trainer: RewardTrainerConfig
    usage: UsageTracker | None
    echo: Echo | None


def train_tasks(env: Environment, config: ImproveConfig) -> tuple[list[str], int]:
    """The train tasks a run explores, the same in every round, and how many the environment
    also lists as test tasks (left out: test tasks never enter exploration)."""
    from armap_agents.environments.base import select_tasks

    selected = select_tasks(env.task_ids("train"), config.tasks)
    try:
        test = set(env.task_ids("test"))
    except (KeyError, ValueError):  # no test split: nothing to keep out
        test = set()
    kept = [t for t in selected if t not in test]
    left_out = len(selected) - len(kept)
    if config.max_tasks is not None:
        kept = kept[: config.max_tasks]
    if not kept:
        raise ConfigError(
            f"no train task to explore (tasks {config.tasks}; {left_out} train tasks are also "
            "test tasks, which are never explored)"
        )
    return kept, left_out


def _lines(path: Path) -> int:
    """The records of a JSONL file (0 when it is missing)."""
    if not path.is_file():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _train_record(model_dir: Path) -> dict[str, Any]:
    from armap_agents.layout import TRAIN_RESULT_FILE

    try:
        record = json.loads((model_dir / TRAIN_RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _planning(record: Mapping[str, Any]) -> dict[str, float | None] | None:
    """The planning metric a training recorded (``TrainResult.planning``), read defensively."""
    planning = record.get("planning")
    if not isinstance(planning, Mapping):
        return None
    keys = ("pick_success", "oracle_success", "mean_success", "gap_closed")
    return {
        k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        for k, v in ((k, planning.get(k)) for k in keys)
    }


def _cached(path: Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record a round cached in ``path`` when it holds every ``expected`` value (it was
    made for these critics and data), else None (absent, unreadable or stale)."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in expected.items()):
        return None
    return saved


def _heldout(run: _Run, k: int) -> tuple[float | None, int]:
    """Critic k's pairwise accuracy on round 0's validation triplets (as its training
    validates: at most ``max_val`` of them, drawn with the seed); cached in ``heldout.json``
    for these weights."""
    from armap_agents._jsonl import read_jsonl
    from armap_agents.reward.configs import subsample
    from armap_agents.types import Triplet

    val = subsample(
        read_jsonl(run.layout.round(0).val_triplets, Triplet), run.trainer.max_val, run.trainer.seed
    )
    if not val:
        return None, 0
    critic = run.layout.round(k).reward_model
    identity = critic_identity(critic)
    cache = run.layout.heldout(k)
    saved = _cached(cache, {"critic": identity, "triplets": len(val)})
    if saved is not None:
        return saved.get("accuracy"), len(val)
    from armap_agents.reward.model import RewardModel
    from armap_agents.reward.train import pairwise_metrics

    accuracy, margin = pairwise_metrics(RewardModel.load(critic), val)
    record = {
        "critic": identity,
        "heldout": "round-0/synthesis/triplets.val.jsonl",
        "triplets": len(val),
        "accuracy": accuracy,
        "mean_margin": margin,
    }
    cache.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return accuracy, len(val)


def _exploration_stats(run: _Run, k: int) -> tuple[int, float | None, float | None, int]:
    """``(trajectories, picks' success, trajectories' success, policy calls)`` of round k's
    exploration, from its files."""
    from armap_agents._jsonl import iter_jsonl
    from armap_agents.pipeline.guided import GuidedSearch
    from armap_agents.types import Trajectory

    layout = run.layout.round(k)
    if k == 0:
        episodes = list(iter_jsonl(layout.trajectories, Trajectory))
        wins = sum(bool(t.evaluation and t.evaluation.success) for t in episodes)
        calls = sum(t.policy_calls for t in episodes)
        return len(episodes), None, wins / len(episodes) if episodes else None, calls
    searches = [
        s for s in iter_jsonl(run.layout.searches(k), GuidedSearch) if s.task_id in run.task_ids
    ]
    kept = [t for s in searches for t in s.trajectories]
    wins = sum(bool(t.evaluation and t.evaluation.success) for t in kept)
    picks = sum(s.picked_success for s in searches) / len(searches) if searches else None
    return (
        len(kept),
        picks,
        wins / len(kept) if kept else None,
        sum(s.policy_calls for s in searches),
    )


def _round_dir_name(k: int) -> str:
    return f"round-{k}"


def _guided_by(run: _Run, k: int) -> dict[str, Any] | None:
    """What guides round k's exploration: None (round 0: the policy alone), else round
    k-1's critic, by directory (relative to the run) and weights."""
    if k == 0:
        return None
    kept = _kept(run, k - 1)
    previous = run.layout.round(kept).reward_model
    return {
        "round": kept,
        "critic": f"{_round_dir_name(kept)}/{previous.name}",
        **critic_identity(previous),
    }


def keeps_previous(new: PickMetrics, before: PickMetrics) -> bool:
    """Whether a round keeps the critic kept before it rather than its own (``new`` and
    ``before``: their picks among the same held-out candidates): where enough tasks are
    decisive to tell, unless the new one picks better (a tie keeps the earlier one: on 14
    held-out tasks, a courier round's critic that tied round 0's picked 6% of the test tasks
    against its 14%); where too few are, the new one, which has seen more."""
    return new.selects and before.key() >= new.key()


def _kept(run: _Run, k: int) -> int:
    """The round whose critic round k keeps: where enough of round k's held-out tasks are
    decisive to tell (:data:`~armap_agents.reward.planning_metrics.MIN_DECISIVE_TASKS`; their
    candidates are every round's trajectories of the tasks no critic trains on), round k's own
    only if it picks better there than the critic kept before it (:func:`keeps_previous`);
    where too few are, round k's own. Without this, one round's critic that picks worse
    (measured on a user's world: it learns the previous critic's near-misses and loses the
    policy's own candidates) would guide every later round and be the run's result. Cached in
    ``kept.json`` for these critics."""
    if k == 0:
        return 0
    previous = _kept(run, k - 1)
    critic, before = run.layout.round(k).reward_model, run.layout.round(previous).reward_model
    identities = {"critic": critic_identity(critic), "previous": critic_identity(before)}
    cache = run.layout.kept(k)
    saved = _cached(cache, identities)
    if saved is not None:
        return int(saved["kept"])
    from armap_agents._jsonl import read_jsonl
    from armap_agents.layout import VAL_TRAJECTORIES_FILE
    from armap_agents.reward.model import RewardModel
    from armap_agents.reward.planning_metrics import candidate_groups, pick_metrics
    from armap_agents.types import Trajectory

    held_out = run.layout.round(k).synthesis / VAL_TRAJECTORIES_FILE
    groups = candidate_groups(read_jsonl(held_out, Trajectory)) if held_out.is_file() else []
    picks = {}
    for j, path in ((k, critic), (previous, before)):
        if groups:
            model = RewardModel.load(path)
            picks[j] = pick_metrics(groups, [model.score(g[0].intent, g) for g in groups])
    kept = previous if picks and keeps_previous(picks[k], picks[previous]) else k
    record = {
        "kept": kept,
        **identities,
        "previous_round": previous,
        "picks": {f"round {j}": p.model_dump(mode="json") for j, p in picks.items()},
    }
    cache.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if kept != k:
        say(
            run.echo,
            f"[round {k}] keeps round {previous}'s critic: it picks "
            f"{picks[previous].pick_success:.1%} of {picks[k].tasks} held-out tasks' "
            f"candidates, round {k}'s {picks[k].pick_success:.1%}",
        )
    return kept


def _record_round(run: _Run, k: int, *, done: bool) -> None:
    """Round k's manifest: what guided it (checked on a resume), its data and its critic."""
    from armap_agents._provenance import record_manifest

    layout = run.layout.round(k)
    name = _round_dir_name(k)
    defines: dict[str, Any] = {
        "round": k,
        "guided_by": _guided_by(run, k),
        "explorer": (
            f"policy {policy_name(run.policy)}"
            if k == 0
            else f"{run.config.planner} over policy {policy_name(run.policy)}"
        ),
    }
    if k > 0:
        defines["planner"] = run.config.planner
        defines["planner_config"] = run.planner_config
    data = {
        "trajectories": f"{name}/{layout.trajectories.name}",
        "synthesized": f"{name}/{(run.layout.pool(k) if k else layout.trajectories).name}",
        "synthesis": f"{name}/{layout.synthesis.name}",
        "rounds_synthesized": list(range(k + 1)),
    }
    critic = None
    if done:
        critic = {
            "path": f"{name}/{layout.reward_model.name}",
            **critic_identity(layout.reward_model),
        }
    settings = {"data": data, "critic": critic, "status": "done" if done else "running"}
    record_manifest(layout.root, "improve_round", defines, settings)


def _write_pool(run: _Run, k: int) -> Path:
    """The trajectories of rounds 0..k in one file (episode ids prefixed ``rJ:`` by round,
    ``info["round"]`` set), with a manifest recording each round's: what round k
    synthesizes."""
    from armap_agents._jsonl import iter_jsonl, write_jsonl
    from armap_agents._provenance import record_manifest, recorded_defines
    from armap_agents.types import Trajectory

    pool = run.layout.pool(k)
    rounds = [
        recorded_defines(run.layout.round(j).trajectories, "trajectories") for j in range(k + 1)
    ]
    defines = {
        **run.source.defines(),
        "policy": policy_name(run.policy),
        "max_steps": run.horizon,
        "seed": run.config.seed,
        "rounds": rounds,
    }
    record_manifest(pool, "trajectories", defines, {"rounds": k + 1})
    write_jsonl(
        pool,
        (
            t.model_copy(
                update={"episode_id": f"r{j}:{t.episode_id}", "info": {**t.info, "round": j}}
            )
            for j in range(k + 1)
            for t in iter_jsonl(run.layout.round(j).trajectories, Trajectory)
        ),
    )
    return pool


def _explore(run: _Run, k: int) -> Path:
    """Round k's exploration; returns the trajectories its synthesis reads."""
    from armap_agents._seeding import stable_seed

    layout, cfg = run.layout.round(k), run.config
    if k == 0:
        say(
            run.echo,
            f"[round 0] explore: policy {policy_name(run.policy)}, {cfg.episodes_per_task} "
            f"episodes on each of {len(run.task_ids)} train tasks",
        )
        explore_trajectories(
            out=layout.trajectories,
            env=run.source,
            policy=run.policy,
            task_ids=run.task_ids,
            episodes_per_task=cfg.episodes_per_task,
            max_steps=run.horizon,
            seed=cfg.seed,
            max_concurrency=cfg.max_concurrency,
            usage=run.usage,
            echo=run.echo,
        )
        return layout.trajectories
    label, guide = PLANNER_LABELS[cfg.planner], _kept(run, k - 1)
    say(
        run.echo,
        f"[round {k}] explore: {label} guided by round {guide}'s critic over policy "
        f"{policy_name(run.policy)} on each of {len(run.task_ids)} train tasks, every "
        "trajectory kept",
    )
    explore_with_planner(
        out=layout.trajectories,
        critic=run.layout.round(guide).reward_model,
        task_ids=run.task_ids,
        env=run.source,
        policy=run.policy,
        planner=cfg.planner,
        config=run.planner_config,
        seed=stable_seed(cfg.seed, "improve", k),  # not round 0's episodes again
        max_steps=run.horizon,
        max_concurrency=cfg.max_concurrency,
        provenance={"round": k},
        usage=run.usage,
        echo=run.echo,
    )
    return _write_pool(run, k)


def _round(run: _Run, k: int) -> RoundReport:
    """Run (or resume, or reuse) round k, and its row of the report."""
    from armap_agents._provenance import check_manifest

    layout = run.layout.round(k)
    _record_round(run, k, done=layout.train_result.is_file())  # a mismatch is refused
    if not layout.train_result.is_file():
        data = _explore(run, k)
        what = "round 0's trajectories" if k == 0 else f"the trajectories of rounds 0..{k}"
        say(run.echo, f"[round {k}] synthesize {what} into (intent, positive, negative) triplets")
        synthesize_triplets(
            trajectories=data,
            out=layout.synthesis,
            env=run.source,
            usage=run.usage,
            echo=run.echo,
            **run.synthesis,
        )
        say(run.echo, f"[round {k}] train critic {k} from {run.model.backbone} on them")
        train_reward_model(
            data=layout.synthesis,
            out=layout.reward_model,
            env=run.source,
            echo=run.echo,
            **run.training,
        )
        _record_round(run, k, done=True)
    else:  # reused only if trained on this round's synthesis with these settings
        defines = model_defines(data=layout.synthesis, model=run.model, trainer=run.trainer)
        check_manifest(layout.reward_model, "reward_model", defines)
        say(run.echo, f"[round {k}] already done: {layout.reward_model}")
    heldout, heldout_n = _heldout(run, k)
    trajectories, picks, wins, calls = _exploration_stats(run, k)
    record = _train_record(layout.reward_model)
    accuracy = record.get("best_val_accuracy")
    synthesized = run.layout.pool(k) if k else layout.trajectories
    label = PLANNER_LABELS[run.config.planner]
    return RoundReport(
        round=k,
        guided_by=(
            f"policy {policy_name(run.policy)}"
            if k == 0
            else f"{label} with round {_kept(run, k - 1)}'s critic"
        ),
        tasks=len(run.task_ids),
        trajectories=trajectories,
        synthesized=_lines(synthesized),
        train_triplets=_lines(layout.train_triplets),
        val_triplets=_lines(layout.val_triplets),
        val_accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
        heldout_accuracy=heldout,
        heldout_triplets=heldout_n,
        pick_success=picks,
        trajectory_success=wins,
        policy_calls=calls,
        planning=_planning(record),
        critic=f"{_round_dir_name(k)}/{layout.reward_model.name}",
        kept=_kept(run, k),
    )


def improve_critic(
    run_dir: str | Path,
    *,
    env: str | EnvFactory | EnvSource = "game24",
    env_options: Mapping[str, Any] | None = None,
    policy: str | Policy = "random",
    config: ImproveConfig | Mapping[str, Any] | None = None,
    planner_config: BaseModel | Mapping[str, Any] | None = None,
    synthesizer: str | Synthesizer = "relabel",
    relabeler: str | None = None,
    relabel_options: Mapping[str, Any] | None = None,
    synthesis: SynthesizeConfig | Mapping[str, Any] | None = None,
    model_config: RewardModelConfig | Mapping[str, Any] | None = None,
    trainer_config: RewardTrainerConfig | Mapping[str, Any] | None = None,
    usage: UsageTracker | None = None,
    echo: Echo | None = print,
    **settings: Any,
) -> ImproveResult:
    """Improve the critic over ``config.rounds`` rounds in ``run_dir`` (see the module's
    docstring): round 0 explores the train tasks with ``policy`` alone; each later round
    explores them with the planner (``best_of_n`` or ``mcts``) guided by the previous
    round's critic over the same policy, keeps every trajectory it made, synthesizes the
    trajectories of all rounds so far together and trains a new critic from the backbone.
    Writes ``report.md`` / ``report.json`` (one row per round) and returns the rows.

    ``env``: a name or import path (with ``env_options``), or an environment factory;
    ``policy``: a spec (``random``, ``expert:EPSILON``, a chat model) or a
    :class:`~armap_agents.policies.Policy`. ``config``: an :class:`ImproveConfig` (or a
    mapping); ``planner_config``: fields of the planner's config beyond what the run sets
    (Best-of-N's ``n``, MCTS's budget); ``synthesizer``, ``relabeler``, ``relabel_options``:
    as for :func:`~armap_agents.pipeline.stages.synthesize_triplets` (default: the
    environment's relabeler, else the generic ``OutcomeRelabeler``); ``synthesis``: a
    :class:`~armap_agents.graphs.synthesize.SynthesizeConfig`'s ``val_fraction`` (its seed
    and concurrency are the run's); ``model_config`` / ``trainer_config``: the critics'
    (as for :func:`~armap_agents.pipeline.stages.train_reward_model`; the seed is the run's).
    ``settings``: fields of :class:`ImproveConfig`, ``RewardModelConfig`` or
    ``RewardTrainerConfig`` as keywords (``rounds=2, epochs=1, max_train=64``).

    Everything is checked before anything is written; a run directory belongs to one run
    (another's is refused, naming what differs); a rerun resumes."""
    from armap_agents import _builders as build
    from armap_agents._provenance import check_manifest, record_manifest
    from armap_agents.environments.defaults import horizon
    from armap_agents.graphs.synthesize import SynthesizeConfig
    from armap_agents.pipeline.guided import guided_planner_config
    from armap_agents.reward.configs import RewardModelConfig, RewardTrainerConfig

    own, for_model, for_trainer = split_settings(
        settings, ImproveConfig, RewardModelConfig, RewardTrainerConfig, what="improve"
    )
    cfg = configured(ImproveConfig, config, own, what="improve settings")
    layout = ImproveLayout(run_dir)
    if layout.root.exists() and not layout.root.is_dir():
        raise ConfigError(f"--run-dir {layout.root} is a file, not a directory")
    source = env_source(env, env_options)
    # the critics' settings, one seed for the run, checked before any work
    training: dict[str, Any] = {**for_model, **for_trainer, "seed": cfg.seed}
    model, trainer = training_configs(
        layout.round(0).synthesis, source, model_config, trainer_config, training
    )
    synthesis_config = configured(
        SynthesizeConfig,
        synthesis,
        {"seed": cfg.seed, "max_concurrency": cfg.max_concurrency},
        what="synthesis settings",
    )
    if isinstance(synthesizer, str):  # a misspelt relabeler or option fails now, not later
        build.synthesizer(
            synthesizer,
            source.spec,
            usage,
            dict(source.options),
            relabeler,
            dict(relabel_options or {}),
        )
    with source.opened() as factory, closing(factory()) as probe:
        task_ids, left_out = train_tasks(probe, cfg)
        steps = horizon(probe, cfg.max_steps)
    given = (
        planner_config.model_dump(mode="json", exclude_unset=True)
        if isinstance(planner_config, BaseModel)
        else dict(planner_config or {})
    )
    budget = (
        {"n": cfg.n}
        if cfg.planner == "best_of_n"
        else {"max_policy_calls": cfg.n * steps, "iterations": 10 * cfg.n}
    )
    guide = {**budget, **given}
    guided_planner_config(cfg.planner, guide, cfg.seed, steps)  # checked now
    made_by = {
        **source.defines(),
        "policy": policy_name(policy),
        "planner": cfg.planner,
        "planner_config": guide,
        "episodes_per_task": cfg.episodes_per_task,
        "tasks": cfg.tasks,
        "max_tasks": cfg.max_tasks,
        "max_steps": steps,
        "seed": cfg.seed,
        "synthesizer": synthesizer if isinstance(synthesizer, str) else describe(synthesizer),
        "relabeler": relabeler,
        "relabel_options": dict(relabel_options or {}),
        "val_fraction": synthesis_config.val_fraction,
        "backbone": model.backbone,
    }
    check_manifest(layout.root, "improve", made_by)
    run = _Run(
        layout=layout,
        config=cfg,
        source=source,
        policy=policy,
        task_ids=task_ids,
        horizon=steps,
        planner_config=guide,
        synthesis={
            "synthesizer": synthesizer,
            "relabeler": relabeler,
            "relabel_options": dict(relabel_options or {}),
            "config": synthesis_config,
        },
        training=training | {"model_config": model_config, "config": trainer_config},
        model=model,
        trainer=trainer,
        usage=usage,
        echo=echo,
    )
    record_manifest(
        layout.root,
        "improve",
        made_by,
        {"rounds": cfg.rounds, "max_concurrency": cfg.max_concurrency},
    )
    if left_out:
        say(echo, f"{left_out} train tasks are also test tasks: left out (never explored)")
    started = time.perf_counter()
    rows: list[RoundReport] = []
    for k in range(cfg.rounds):
        rows.append(_round(run, k))
        write_improve_report(rows, layout)  # a report after every round
    seconds = time.perf_counter() - started
    say(echo)
    say(echo, report_markdown(rows))
    say(
        echo,
        f"\nimprove finished in {seconds / 60:.1f} min: {len(rows)} rounds in {layout.root}/ "
        f"(report: {layout.report}, kept critic: {layout.round(rows[-1].kept).reward_model})",
    )
    return ImproveResult(layout=layout, rounds=rows, seconds=seconds)
