"""Step-level beam search: the reward model ranks partial trajectories after every step.

::

    START -> init --Send(expand) x beams--> expand -> prune --(beams left)--> expand ...
                                                     prune --(done)--> finish -> END

* **init** resets the environment once to read the task's intent and the horizon; the search
  starts from one empty beam;
* **expand** (parallel, one per unfinished beam) samples ``expansion_k`` actions from the
  policy in the beam's state (:func:`~armap_agents.policies.sample_actions`) and plays each
  distinct one, giving one partial trajectory per action; an action the environment finds
  invalid is dropped (as MCTS drops such children);
* **prune** scores every new partial trajectory in one batched reward-model call, adds the
  custom objectives and the policy's own preference for the path (``prior_weight`` times the
  sum, over its steps, of the log share of the samples that proposed each action: the path's
  log-probability under the policy as its samples estimate it; see
  :func:`~armap_agents.reward.objectives.action_values`), and keeps the ``width`` best of the
  new ones *and* of the finished
  trajectories found so far: a finished trajectory competes with unfinished ones on the same
  value and holds a beam while it is among the best (it is never expanded again). The search
  stops when every beam is finished, at the horizon (``max_steps``), or when the policy-call
  budget is spent;
* **finish** returns the best of the finished trajectories and the last beams, preferring
  complete ones (finished, or at the horizon) over ones the budget cut short.

The budget ``max_policy_calls`` is never exceeded: each step the beams are expanded best first
with ``expansion_k`` samples each as far as the calls left go, and no step starts once it is
spent (the best trajectory found is returned, unfinished if the budget ran out first: give a
budget that covers ``width * expansion_k`` calls per step of the episodes' length).

A candidate whose episode failed (the policy or the environment raised, its ``error`` is set)
is never scored nor kept; when no candidate is left at all the graph raises
:class:`~armap_agents.errors.AllCandidatesFailed` (see
:func:`~armap_agents.rollout.usable_candidates`).

Environments are reached by replaying a beam's actions from ``reset()`` (no state copies), as
MCTS does: one ``reset`` plus ``depth`` steps per proposal and per candidate. The state is plain
data, so a LangGraph checkpointer resumes an interrupted search at its last step; every random
choice is seeded from ``(seed, task, beam's actions)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from typing import Annotated, Any, NoReturn

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory
from armap_agents.environments.defaults import horizon
from armap_agents.errors import AllCandidatesFailed, BudgetExceeded, ConfigError
from armap_agents.policies import Policy, sample_actions, uses_expert
from armap_agents.reward.objectives import WeightedObjective, action_values
from armap_agents.reward.scorer import RewardScorer
from armap_agents.rollout import policy_context, replay, run_episode
from armap_agents.types import Trajectory

__all__ = ["Beam", "BeamSearchConfig", "BeamSearchState", "build_beam_search_graph"]

LOG_PRIOR_KEY = "log_prior"
"""The key of a candidate's ``info`` that holds its path's log prior (:attr:`Beam.log_prior`)."""


class BeamSearchConfig(StrictConfig):
    """Beam width, samples per beam, horizon and budget."""

    width: int = Field(4, ge=1)
    """Partial trajectories kept after each step (W)."""
    expansion_k: int = Field(3, ge=1)
    """Policy samples per beam and step (K); their distinct valid actions are scored. A step
    takes ``width * expansion_k`` samples: while fewer than W beams are unfinished (the root,
    or beams that ended), the ones there are share them, so the first step already tries as
    many actions as Best-of-N's W * K episodes do."""
    max_steps: int | None = Field(None, ge=1)
    """Steps at most (None: the environment's horizon, its ``EnvironmentDefaults.max_steps``)."""
    prior_weight: float = Field(1.0, ge=0)
    """Weight of the policy's own preference for a path, the sum of the log shares of the
    samples that proposed its actions, added to its value (0: the critic alone)."""
    max_policy_calls: int | None = Field(48, ge=1)
    """Policy calls at most over the whole search (None: no limit; ``width * expansion_k``
    per step). The default is MCTS's (the command line shares it)."""
    seed: int = 0
    """Random seed of the run."""


class Beam(TypedDict):
    """One partial (or finished) trajectory of the search, with its value."""

    trajectory: Trajectory
    score: float
    """The reward model's score of the trajectory."""
    value: float
    """``score`` plus the weighted objectives and the weighted log prior of the path: what the
    search ranks by."""
    log_prior: float
    """The sum over the path's steps of the log share of the samples that proposed the
    action taken (0 for the root)."""
    finished: bool
    """The environment said done: never expanded again."""


def _collect(old: list[Trajectory] | None, new: list[Trajectory] | None) -> list[Trajectory]:
    """Reducer of a step's new candidates: ``None`` clears, lists accumulate."""
    if new is None:
        return []
    return [*(old or []), *new]


class BeamSearchState(TypedDict, total=False):
    """Input: ``task_id`` (and optionally ``seed``). Output: ``best`` and the last beams."""

    task_id: str
    seed: int
    intent: str
    """The task's intent (the environment's instruction at reset): what every score is for."""
    max_steps: int
    """The horizon: the config's, else the environment's."""
    step: int
    """Steps taken by the beams (the depth of the search)."""
    beams: list[Beam]
    """The ``width`` best trajectories after the last step, best first."""
    finished: list[Beam]
    """Every finished trajectory found (final candidates, whether or not they hold a beam)."""
    candidates: Annotated[list[Trajectory], _collect]
    """The current step's new partial trajectories (failed ones included)."""
    errors: list[str]
    """Why candidates failed, over the whole search."""
    policy_calls: int
    reward_model_calls: int
    best: Trajectory


def _expansions(state: BeamSearchState, width: int, k: int, budget: int | None) -> list[Send]:
    """One ``expand`` job per unfinished beam, best first: a step's ``width * k`` samples
    shared among them (``k`` each when all ``width`` are unfinished; the root alone gets them
    all), as far as the calls left under the budget go."""
    active = [b for b in state["beams"] if not b["finished"]][:width]
    allowance = width * k
    if budget is not None:
        allowance = min(allowance, budget - state["policy_calls"])
    share, extra = divmod(width * k, len(active)) if active else (0, 0)
    jobs = []
    for rank, beam in enumerate(active):
        samples = min(share + (rank < extra), allowance)
        if samples <= 0:
            break
        allowance -= samples
        jobs.append(
            Send(
                "expand",
                {
                    "task_id": state["task_id"],
                    "rank": rank,
                    "actions": [s.action for s in beam["trajectory"].steps],
                    "log_prior": beam["log_prior"],
                    "samples": samples,
                    "seed": state.get("seed", 0),
                },
            )
        )
    return jobs


def build_beam_search_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer,
    config: BeamSearchConfig | None = None,
    *,
    objectives: Sequence[WeightedObjective] = (),
    checkpointer: Any = None,
):
    """A compiled step-level beam-search graph. Invoke with ``{"task_id": "905"}``.

    The beams' expansions run in parallel (bounded by LangGraph's ``max_concurrency``). Streams
    one custom ``{"event": "step", "step": s, "beams": b, "finished": f, "scored": n}`` per
    step. With a ``checkpointer`` an interrupted search resumes at its last finished step.
    """
    config = config or BeamSearchConfig()
    if reward_model is None:
        raise ConfigError("beam search needs a reward model: its scores rank the beams")

    def init(state: BeamSearchState) -> dict[str, Any]:
        try:
            with closing(env_factory()) as env:
                observation = env.reset(state["task_id"])
                limit = horizon(env, config.max_steps)
        except BudgetExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - no candidate can start: the one rule's error
            _all_failed(state["task_id"], [f"{type(exc).__name__}: {exc}"], 0)
        root = Trajectory(
            task_id=state["task_id"],
            intent=observation.instruction,
            initial_observation=observation.text,
            episode_id=f"{state['task_id']}@beam",
        )
        return {
            "seed": state.get("seed", config.seed),
            "intent": observation.instruction,
            "max_steps": limit,
            "step": 0,
            "beams": [Beam(trajectory=root, score=0.0, value=0.0, log_prior=0.0, finished=False)],
            "finished": [],
            "candidates": None,
            "errors": [],
            "policy_calls": 0,
            "reward_model_calls": 0,
        }

    def dispatch(state: BeamSearchState) -> list[Send] | str:
        active = any(not b["finished"] for b in state["beams"])
        spent = (
            config.max_policy_calls is not None and state["policy_calls"] >= config.max_policy_calls
        )
        if not active or state["step"] >= state["max_steps"] or spent:
            return "finish"
        return _expansions(state, config.width, config.expansion_k, config.max_policy_calls)

    def expand(job: dict[str, Any]) -> dict[str, Any]:
        task_id, actions = job["task_id"], job["actions"]
        seed = stable_seed(job["seed"], task_id, "beam", *actions)
        label = f"{task_id}@beam:{len(actions) + 1}.{job['rank']}"
        try:
            with closing(env_factory()) as env:
                observation, steps, _ = replay(env, task_id, actions)
                context = policy_context(
                    env, task_id, observation, steps, expert=uses_expert(policy)
                )
                choices = sample_actions(policy, context, job["samples"], seed=seed)
        except BudgetExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - one beam's failure must not end the search
            failed = Trajectory(
                task_id=task_id,
                intent="",
                initial_observation="",
                episode_id=label,
                policy_calls=job["samples"],
                error=f"{type(exc).__name__}: {exc}",
            )
            return {"candidates": [failed]}
        out: list[Trajectory] = []
        proposed = Counter(c.action for c in choices)
        seen: set[str] = set()
        with closing(env_factory()) as env:
            for index, choice in enumerate(choices):
                if choice.action in seen:
                    continue
                seen.add(choice.action)
                share = proposed[choice.action] / len(choices)
                prefix = [*actions, choice.action]
                candidate = run_episode(
                    env,
                    policy,
                    task_id,
                    seed=seed,
                    prefix=prefix,
                    max_steps=len(prefix),
                    episode_id=f"{label}.{index}",
                )
                if candidate.error is None and not candidate.steps[-1].valid:
                    continue  # an invalid action: the state did not move
                log_prior = job["log_prior"] + math.log(share)
                info = {**candidate.info, LOG_PRIOR_KEY: log_prior}
                out.append(candidate.model_copy(update={"info": info}))
        # the calls are counted once per beam, on its first candidate (the others carry 0)
        if out:
            out[0] = out[0].model_copy(update={"policy_calls": len(choices)})
        else:  # every action invalid or repeated: the beam ends here, its calls counted
            out = [
                Trajectory(
                    task_id=task_id,
                    intent="",
                    initial_observation="",
                    episode_id=label,
                    policy_calls=len(choices),
                    error="no valid action among the samples",
                )
            ]
        return {"candidates": out}

    def prune(state: BeamSearchState) -> dict[str, Any]:
        # the parallel jobs finish in any order: rank order, then the order of their samples
        new = sorted(state["candidates"], key=lambda t: _order(t.episode_id))
        calls = state["policy_calls"] + sum(t.policy_calls for t in new)
        errors = [*state["errors"], *(t.error for t in new if t.error is not None)]
        fresh: list[Beam] = []
        usable = [t for t in new if t.error is None]  # the one rule: failed ones never scored
        if usable:
            scores = reward_model.score(state["intent"], usable)
            priors = [t.info[LOG_PRIOR_KEY] for t in usable]
            values = action_values(scores, usable, priors, objectives, config.prior_weight)
            fresh = [
                Beam(trajectory=t, score=s, value=v, log_prior=p, finished=t.done)
                for t, s, v, p in zip(usable, scores, values, priors, strict=True)
            ]
        finished = [*state["finished"], *(b for b in fresh if b["finished"])]
        pool = [*state["finished"], *fresh]
        if not pool:  # nothing survived this step and nothing finished before
            _all_failed(state["task_id"], errors, calls)
        # stable: on equal values the earlier finished ones, then rank order
        beams = sorted(pool, key=lambda b: b["value"], reverse=True)[: config.width]
        step = state["step"] + 1
        get_stream_writer()(
            {
                "event": "step",
                "step": step,
                "beams": len(beams),
                "finished": sum(b["finished"] for b in beams),
                "scored": len(usable),
            }
        )
        return {
            "step": step,
            "beams": beams,
            "finished": finished,
            "candidates": None,
            "errors": errors,
            "policy_calls": calls,
            "reward_model_calls": state["reward_model_calls"] + len(usable),
        }

    def finish(state: BeamSearchState) -> dict[str, Any]:
        final = [*state["finished"], *(b for b in state["beams"] if not b["finished"])]
        scored = [b for b in final if b["trajectory"].steps]  # not the unscored root
        if not scored:
            _all_failed(state["task_id"], state["errors"], state["policy_calls"])
        complete = [
            b for b in scored if b["finished"] or len(b["trajectory"].steps) >= state["max_steps"]
        ]
        best = max(complete or scored, key=lambda b: b["value"])
        trajectory = best["trajectory"].model_copy(
            update={
                "episode_id": f"{state['task_id']}@beam",
                "policy_calls": state["policy_calls"],
                "info": {**best["trajectory"].info, "score": best["score"], "value": best["value"]},
            }
        )
        return {"best": trajectory}

    graph = StateGraph(BeamSearchState)
    graph.add_node("init", init)
    # a Send target: it takes the Send's payload, which LangGraph's annotations cannot type
    graph.add_node("expand", expand)  # type: ignore[arg-type]
    graph.add_node("prune", prune)
    graph.add_node("finish", finish)
    graph.add_edge(START, "init")
    graph.add_conditional_edges("init", dispatch, ["expand", "finish"])
    graph.add_edge("expand", "prune")
    graph.add_conditional_edges("prune", dispatch, ["expand", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer, name="armap-beam-search")


def _order(episode_id: str) -> tuple[int, ...]:
    """``task@beam:step.rank[.sample]`` as a sort key: rank, then sample."""
    return tuple(int(part) for part in episode_id.rsplit(":", 1)[1].split(".")[1:])


def _all_failed(task_id: str, errors: list[str], policy_calls: int) -> NoReturn:
    """No candidate is left to choose: :class:`AllCandidatesFailed`, as
    :func:`~armap_agents.rollout.usable_candidates` raises it."""
    raise AllCandidatesFailed(
        f"every candidate of the beam search on task {task_id} failed "
        f"(first error: {errors[0] if errors else 'none run'})",
        errors,
        policy_calls=policy_calls,
    )
