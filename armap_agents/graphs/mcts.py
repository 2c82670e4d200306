"""ARMAP-M: Monte Carlo tree search with the reward model as the value of a leaf.

::

    START -> init -> select --(leaf is terminal)--> backup
    select -> propose -> expand --Send(evaluate) x children--> evaluate
    evaluate -> backup --(budget left)--> select
    backup --(budget spent)--> finish -> END

* **select** walks down from the root by UCT, ``Q/N + c * sqrt(ln N_parent / N)`` (``Q/N``
  min-max scaled over the tree: ``normalize_values``), to a node that has no children yet;
  where that node cannot be expanded (terminal, or at the depth limit), it widens instead
  (``widen``): the deepest node on the path that may have untried actions gets
  ``expansion_k`` more samples, so a search whose first children are exhausted keeps spending
  its budget on new actions rather than backing known values up again;
* **propose** samples ``expansion_k`` actions for the leaf (:func:`sample_actions`: one request
  with ``n`` choices where the server honours it, else concurrent requests with distinct
  seeds); **expand** keeps the distinct valid ones as children;
* **evaluate** (parallel, one per new child) either rolls out to a terminal state with the
  policy (``evaluation="rollout"``, as in the paper) or keeps the partial trajectory
  (``"partial"``);
* **backup** scores all new evaluations in one batched reward-model call, adds the custom
  objectives, and adds the value to every node on the path to the root. An evaluation whose
  episode failed is not scored: its node keeps the ``error`` and is cut from the tree (its
  parent, left without children, becomes a dead end), so it is never selected nor chosen.
  When no evaluation succeeded at all, ``finish`` raises
  :class:`~armap_agents.errors.AllCandidatesFailed`.

Every score is against the task's intent, read once at ``init`` from the environment's reset.

The tree is plain data in the graph state: a flat ``dict`` of node id -> node (parent id,
action, visits, value sum, reward-model score ...). With a checkpointer (e.g. LangGraph's
``SqliteSaver``) an interrupted search resumes from its last superstep and, because every
random choice is seeded from ``(seed, node id)``, ends with the same result as an
uninterrupted run.

Environments are reached by replaying a node's actions from ``reset()`` (no state copies
needed). That costs one ``reset`` plus ``depth`` steps per proposal and evaluation: nothing for
Game of 24, but measurable for slow simulators (see the ScienceWorld notes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import closing
from typing import Annotated, Any, Literal, NotRequired

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import Field
from typing_extensions import TypedDict  # pydantic (LangGraph server schemas) needs it on 3.11

from armap_agents._seeding import stable_seed
from armap_agents.config import StrictConfig
from armap_agents.environments.base import EnvFactory
from armap_agents.environments.defaults import horizon
from armap_agents.errors import AllCandidatesFailed, ConfigError
from armap_agents.policies import Policy, sample_actions, uses_expert
from armap_agents.reward.objectives import WeightedObjective, combined_value
from armap_agents.reward.scorer import RewardScorer
from armap_agents.rollout import policy_context, replay, run_episode
from armap_agents.types import Trajectory

__all__ = [
    "MCTSConfig",
    "MCTSState",
    "TreeNode",
    "backup_path",
    "build_mcts_graph",
    "uct_score",
    "value_bounds",
]

ROOT = "0"


class MCTSConfig(StrictConfig):
    """Search budget and behaviour."""

    iterations: int = Field(16, ge=1)
    """At most this many select-expand-evaluate-backup rounds."""
    max_policy_calls: int | None = Field(48, ge=1)
    """Stop starting new rounds once this many policy calls are spent (None: no limit)."""
    max_steps: int | None = Field(None, ge=1)
    """Depth limit of the tree and horizon of rollouts, in steps from the root (None: the
    environment's horizon, its ``EnvironmentDefaults.max_steps``)."""
    expansion_k: int = Field(3, ge=1)
    """Policy samples per expansion; their distinct valid actions become the children."""
    exploration_constant: float = Field(1.0, ge=0.0)
    """UCT's weight of exploration against a child's mean value."""
    normalize_values: bool = True
    """UCT reads mean values min-max scaled over the tree's visited nodes (as MuZero does), so
    ``exploration_constant`` weighs exploration on a [0, 1] scale whatever the range of the
    reward model's scores (a Bradley-Terry model's have none fixed: on Game of 24 they span
    about 5, which made 1.0 nearly greedy). False: raw values, as in the paper."""
    evaluation: Literal["rollout", "partial"] = "rollout"
    """A leaf's value: the score of a rollout to the end, or of the partial trajectory."""
    widen: bool = True
    """When selection ends at a node that cannot be expanded (terminal, or at the depth limit),
    sample ``expansion_k`` more actions at the deepest node on its path that may still have
    untried ones, instead of backing the known value up again (which spends an iteration and
    learns nothing). False: the paper's fixed-width tree, which on a shallow task stops
    searching once its first ``expansion_k`` children per node are exhausted."""
    seed: int = 0
    """Random seed of the run."""


class TreeNode(TypedDict):
    """One node of the search tree (plain data, so any checkpointer can store it)."""

    id: str
    parent: str | None
    action: str | None
    depth: int
    observation: str
    terminal: bool
    children: list[str]
    visits: int
    value_sum: float
    score: float | None
    """Reward-model score of this node's evaluation (its rollout, or itself)."""
    value: float | None
    """``score`` plus weighted objectives: what is backed up."""
    rollout: list[str]
    """Actions after this node in its evaluation (empty for partial evaluation)."""
    complete: bool
    """Whether the evaluated trajectory reached a terminal state."""
    error: NotRequired[str]
    """Why this node's evaluation failed (then the node is cut from the tree)."""
    saturated: NotRequired[bool]
    """A widening round here added no new child: no more are sampled here."""


def _merge_nodes(old: dict[str, TreeNode], new: dict[str, TreeNode]) -> dict[str, TreeNode]:
    return {**old, **new}


def _collect(old: list[dict] | None, new: list[dict] | None) -> list[dict]:
    """Reducer for per-round results: ``None`` clears, lists accumulate."""
    if new is None:
        return []
    return [*(old or []), *new]


class MCTSState(TypedDict, total=False):
    """Input: ``task_id`` (and optionally ``seed``). Output: ``best``, ``path`` and the tree."""

    task_id: str
    seed: int
    intent: str
    """The task's intent (the environment's instruction at reset): what every score is for."""
    max_steps: int
    """The depth limit: the config's, else the environment's horizon."""
    nodes: Annotated[dict[str, TreeNode], _merge_nodes]
    iteration: int
    leaf: str
    proposals: Annotated[list[dict], _collect]
    evaluations: Annotated[list[dict], _collect]
    policy_calls: int
    reward_model_calls: int
    best_node: str
    path: list[str]
    best: Trajectory


def uct_score(
    child: TreeNode,
    parent_visits: int,
    c: float,
    bounds: tuple[float, float] | None = None,
) -> float:
    """UCT of a child: mean value plus the exploration bonus (infinite when unvisited); with
    ``bounds`` (lowest, highest) the mean is first scaled to [0, 1] by them."""
    if child["visits"] == 0:
        return math.inf
    mean = child["value_sum"] / child["visits"]
    if bounds is not None:
        low, high = bounds
        mean = (mean - low) / (high - low) if high > low else 0.5
    return mean + c * math.sqrt(math.log(max(parent_visits, 1)) / child["visits"])


def value_bounds(nodes: dict[str, TreeNode]) -> tuple[float, float] | None:
    """The lowest and highest mean value of the tree's visited nodes (None: none visited)."""
    means = [n["value_sum"] / n["visits"] for n in nodes.values() if n["visits"]]
    return (min(means), max(means)) if means else None


def path_to(nodes: dict[str, TreeNode], node_id: str) -> list[str]:
    """Node ids from the root to ``node_id``."""
    path = []
    current: str | None = node_id
    while current is not None:
        path.append(current)
        current = nodes[current]["parent"]
    return path[::-1]


def actions_to(nodes: dict[str, TreeNode], node_id: str) -> list[str]:
    """The actions that lead from the root to ``node_id``."""
    return [nodes[n]["action"] for n in path_to(nodes, node_id)[1:]]  # type: ignore[misc]


def backup_path(nodes: dict[str, TreeNode], node_id: str, value: float) -> dict[str, TreeNode]:
    """Copies of the nodes on the path to ``node_id`` with one more visit and ``value`` added."""
    updated: dict[str, TreeNode] = {}
    for n in path_to(nodes, node_id):
        node = nodes[n]
        updated[n] = {**node, "visits": node["visits"] + 1, "value_sum": node["value_sum"] + value}
    return updated


def cut(nodes: dict[str, TreeNode], node_id: str, error: str | None) -> dict[str, TreeNode]:
    """Copies of ``node_id`` (with ``error``) and of its parent without it: a failed
    evaluation's node leaves the tree; a parent left without children becomes a dead end."""
    node = nodes[node_id]
    updated: dict[str, TreeNode] = {node_id: {**node, "error": error or "failed"}}
    if node["parent"] is not None:
        parent = nodes[node["parent"]]
        children = [c for c in parent["children"] if c != node_id]
        updated[parent["id"]] = {
            **parent,
            "children": children,
            "terminal": parent["terminal"] or not children,
        }
    return updated


def select_leaf(nodes: dict[str, TreeNode], c: float, *, normalize: bool = False) -> str:
    """Walk down by UCT (ties: the first child) to a node without children; ``normalize``:
    with mean values scaled to [0, 1] by the tree's :func:`value_bounds`."""
    bounds = value_bounds(nodes) if normalize else None
    current = nodes[ROOT]
    while current["children"]:
        children = [nodes[k] for k in current["children"]]
        current = max(children, key=lambda ch: uct_score(ch, current["visits"], c, bounds))
    return current["id"]


def widening_target(nodes: dict[str, TreeNode], leaf: str, max_steps: int) -> str | None:
    """The deepest node above ``leaf`` that may get more children (expanded, not terminal nor
    saturated, above the depth limit), or None."""
    for node_id in reversed(path_to(nodes, leaf)[:-1]):
        node = nodes[node_id]
        if (
            node["children"]
            and not node["terminal"]
            and not node.get("saturated")
            and node["depth"] < max_steps
        ):
            return node_id
    return None


def _new_node(
    node_id: str,
    parent: str | None,
    action: str | None,
    depth: int,
    observation: str,
    terminal: bool,
) -> TreeNode:
    return TreeNode(
        id=node_id,
        parent=parent,
        action=action,
        depth=depth,
        observation=observation,
        terminal=terminal,
        children=[],
        visits=0,
        value_sum=0.0,
        score=None,
        value=None,
        rollout=[],
        complete=terminal,
    )


def build_mcts_graph(
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer,
    config: MCTSConfig | None = None,
    *,
    objectives: Sequence[WeightedObjective] = (),
    checkpointer: Any = None,
):
    """A compiled MCTS graph. Invoke with ``{"task_id": "905"}``.

    Pass a LangGraph ``checkpointer`` (and a ``thread_id`` in the run config) to make the
    search resumable: ``graph.invoke(None, config)`` continues an interrupted run. Invoke with
    ``durability="sync"`` so that a process killed at any moment leaves a checkpoint to resume
    from (with the default ``"async"`` the last one can be lost).
    """
    config = config or MCTSConfig()
    if reward_model is None:
        raise ConfigError("MCTS needs a reward model: its scores are the leaf values")

    def seed_of(state: MCTSState) -> int:
        return state.get("seed", config.seed)

    def init(state: MCTSState) -> dict[str, Any]:
        with closing(env_factory()) as env:
            observation = env.reset(state["task_id"])
            depth_limit = horizon(env, config.max_steps)
        root = _new_node(ROOT, None, None, 0, observation.text, False)
        return {
            "intent": observation.instruction,
            "max_steps": depth_limit,
            "nodes": {ROOT: root},
            "iteration": 0,
            "policy_calls": 0,
            "reward_model_calls": 0,
            "proposals": None,
            "evaluations": None,
        }

    def select(state: MCTSState) -> dict[str, Any]:
        leaf = select_leaf(
            state["nodes"], config.exploration_constant, normalize=config.normalize_values
        )
        node = state["nodes"][leaf]
        if node["terminal"] or node["depth"] >= state["max_steps"]:
            wider = (
                widening_target(state["nodes"], leaf, state["max_steps"]) if config.widen else None
            )
            if wider is not None:
                return {"leaf": wider}
            # nothing to expand: back its known value up again
            return {"leaf": leaf, "evaluations": [{"node": leaf, "reuse": True}]}
        return {"leaf": leaf}

    def after_select(state: MCTSState) -> str:
        return "backup" if state.get("evaluations") else "propose"

    def children_ever(nodes: dict[str, TreeNode], node_id: str) -> int:
        """Children ``node_id`` has had (cut ones included): the next child's index."""
        return sum(1 for n in nodes.values() if n["parent"] == node_id)

    def propose(state: MCTSState) -> dict[str, Any]:
        leaf = state["leaf"]
        tried = children_ever(state["nodes"], leaf)
        # a widening round samples with other seeds than the node's first expansion
        seed = stable_seed(seed_of(state), leaf, "propose", *([tried] if tried else []))
        with closing(env_factory()) as env:
            observation, steps, _ = replay(env, state["task_id"], actions_to(state["nodes"], leaf))
            context = policy_context(
                env, state["task_id"], observation, steps, expert=uses_expert(policy)
            )
            choices = sample_actions(
                policy,
                context,
                config.expansion_k,
                seed=seed,
            )
        return {"proposals": [{"index": i, "action": c.action} for i, c in enumerate(choices)]}

    def expand(state: MCTSState) -> dict[str, Any]:
        leaf = state["nodes"][state["leaf"]]
        actions = actions_to(state["nodes"], leaf["id"])
        proposals = sorted(state["proposals"], key=lambda p: p["index"])
        new: dict[str, TreeNode] = {}
        seen = {state["nodes"][c]["action"] for c in leaf["children"]}  # widening: known ones
        first = children_ever(state["nodes"], leaf["id"])
        with closing(env_factory()) as env:
            for proposal in proposals:
                if proposal["action"] in seen:
                    continue
                seen.add(proposal["action"])
                replay(env, state["task_id"], actions)
                result = env.step(proposal["action"])
                if not result.valid:
                    continue
                child_id = f"{leaf['id']}.{first + len(new)}"
                new[child_id] = _new_node(
                    child_id,
                    leaf["id"],
                    proposal["action"],
                    leaf["depth"] + 1,
                    result.observation,
                    result.done,
                )
        updates: dict[str, TreeNode] = dict(new)
        if new:
            updates[leaf["id"]] = {**leaf, "children": [*leaf["children"], *new]}
        elif leaf["children"]:  # a widening round found nothing new: stop widening here
            updates[leaf["id"]] = {**leaf, "saturated": True}
        else:  # every proposal was invalid or repeated: treat the leaf as a dead end
            updates[leaf["id"]] = {**leaf, "terminal": True}
        return {
            "nodes": updates,
            "proposals": None,
            "policy_calls": state["policy_calls"] + len(proposals),
        }

    def after_expand(state: MCTSState) -> list[Send] | str:
        nodes = state["nodes"]
        leaf = nodes[state["leaf"]]
        # the new children (the others were evaluated, or cut, when they were made)
        fresh = [c for c in leaf["children"] if nodes[c]["visits"] == 0]
        if leaf.get("saturated") and not fresh:
            return "backup"  # a widening round that added nothing: only the round is counted
        targets = fresh or [leaf["id"]]
        return [
            Send(
                "evaluate",
                {
                    "task_id": state["task_id"],
                    "node": n,
                    "actions": actions_to(state["nodes"], n),
                    "terminal": state["nodes"][n]["terminal"],
                    "max_steps": state["max_steps"],
                    "seed": stable_seed(seed_of(state), n, "rollout"),
                },
            )
            for n in targets
        ]

    def evaluate(job: dict) -> dict[str, Any]:
        rollout = config.evaluation == "rollout" and not job["terminal"]
        with closing(env_factory()) as env:
            trajectory = run_episode(
                env,
                policy,
                job["task_id"],
                seed=job["seed"],
                prefix=job["actions"],
                max_steps=job["max_steps"] if rollout else len(job["actions"]),
            )
        return {"evaluations": [{"node": job["node"], "trajectory": trajectory}]}

    def backup(state: MCTSState) -> dict[str, Any]:
        nodes = dict(state["nodes"])
        evaluations = sorted(state["evaluations"], key=lambda e: e["node"])
        fresh = [e for e in evaluations if not e.get("reuse")]
        failed = [e for e in fresh if e["trajectory"].failed]
        scored = [e for e in fresh if not e["trajectory"].failed]
        scores: list[float] = []
        if scored:
            scores = reward_model.score(state["intent"], [e["trajectory"] for e in scored])
        for e, score in zip(scored, scores, strict=True):
            trajectory: Trajectory = e["trajectory"]
            node = nodes[e["node"]]
            depth = node["depth"]
            nodes[e["node"]] = {
                **node,
                "score": score,
                "value": combined_value(score, trajectory, objectives),
                "rollout": [s.action for s in trajectory.steps[depth:]],
                "complete": trajectory.done or node["terminal"],
            }
        for e in failed:
            nodes.update(cut(nodes, e["node"], e["trajectory"].error))
        for e in evaluations:
            if "error" in nodes[e["node"]]:
                continue  # cut: nothing to back up
            value = nodes[e["node"]]["value"]
            nodes.update(backup_path(nodes, e["node"], value if value is not None else 0.0))
        writer = get_stream_writer()
        writer({"event": "iteration", "iteration": state["iteration"] + 1, "nodes": len(nodes)})
        return {
            "nodes": nodes,
            "evaluations": None,
            "iteration": state["iteration"] + 1,
            "policy_calls": state["policy_calls"]
            + sum(e["trajectory"].policy_calls for e in fresh),
            "reward_model_calls": state["reward_model_calls"] + len(scored),
        }

    def after_backup(state: MCTSState) -> str:
        spent = (
            config.max_policy_calls is not None and state["policy_calls"] >= config.max_policy_calls
        )
        if state["iteration"] >= config.iterations or spent:
            return "finish"
        return "select"

    def finish(state: MCTSState) -> dict[str, Any]:
        nodes = state["nodes"]
        evaluated = [n for n in nodes.values() if n["value"] is not None and "error" not in n]
        if not evaluated:
            errors = [n["error"] for n in nodes.values() if "error" in n]
            raise AllCandidatesFailed(
                f"every evaluation of the search on task {state['task_id']} failed "
                f"(first error: {errors[0] if errors else 'none evaluated'})",
                errors,
                policy_calls=state["policy_calls"],
            )
        complete = [n for n in evaluated if n["complete"]] or evaluated
        ranked = sorted(complete, key=lambda n: (n["value"], -len(n["id"])), reverse=True)
        errors = []
        for best in ranked:  # the next best only where replaying the best fails
            actions = actions_to(nodes, best["id"]) + best["rollout"]
            # replay the winner once more to record it (and the evaluator's verdict, for metrics)
            with closing(env_factory()) as env:
                replayed = run_episode(
                    env,
                    policy,
                    state["task_id"],
                    seed=0,
                    prefix=actions,
                    max_steps=len(actions),
                    episode_id=f"{state['task_id']}@mcts",
                )
            if not replayed.failed:
                break
            errors.append(replayed.error or "")
        else:
            raise AllCandidatesFailed(
                f"replaying the search's choices on task {state['task_id']} failed "
                f"(first error: {errors[0]})",
                errors,
                policy_calls=state["policy_calls"],
            )
        trajectory = replayed.model_copy(
            update={
                "policy_calls": state["policy_calls"],
                "info": {
                    **replayed.info,
                    "node": best["id"],
                    "score": best["score"],
                    "value": best["value"],
                },
            }
        )
        return {"best_node": best["id"], "path": path_to(nodes, best["id"]), "best": trajectory}

    graph = StateGraph(MCTSState)
    graph.add_node("init", init)
    graph.add_node("select", select)
    graph.add_node("propose", propose)
    graph.add_node("expand", expand)
    # a Send target: it takes the Send's payload, which LangGraph's annotations cannot type
    graph.add_node("evaluate", evaluate)  # type: ignore[arg-type]
    graph.add_node("backup", backup)
    graph.add_node("finish", finish)
    graph.add_edge(START, "init")
    graph.add_edge("init", "select")
    graph.add_conditional_edges("select", after_select, ["propose", "backup"])
    graph.add_edge("propose", "expand")
    graph.add_conditional_edges("expand", after_expand, ["evaluate", "backup"])
    graph.add_edge("evaluate", "backup")
    graph.add_conditional_edges("backup", after_backup, ["select", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer, name="armap-mcts")
