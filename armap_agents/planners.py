"""Planners by name: ``build_planner("mcts", policy, env_factory, reward_model, config)``.

All of them share one entry shape — ``(policy, env_factory, reward_model, config, *, objectives,
...)`` — and return a compiled LangGraph graph that takes ``{"task_id": ...}`` and leaves the
chosen trajectory in ``state["best"]`` (with ``policy_calls`` and ``reward_model_calls``).

:data:`PLANNERS` is the one list of planners: their names, builders, config types, the labels
of their rows in an evaluation table and how an evaluation matches them to Best-of-N's budget.
:func:`build_planner`, :func:`~armap_agents.evaluation.evaluate_planners`, the command line and
the deployment all read it. A planner's module is imported when it is first built, so the
names are known without loading any graph (or the reward model's dependencies).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from armap_agents.config import parse_config
from armap_agents.errors import ConfigError

if TYPE_CHECKING:
    from armap_agents.environments.base import EnvFactory
    from armap_agents.policies import Policy
    from armap_agents.reward.scorer import RewardScorer

__all__ = [
    "PLANNERS",
    "PLANNER_NAMES",
    "PlannerSpec",
    "build_planner",
    "planner_config",
    "planner_spec",
]

PlannerBuilder = Callable[..., Any]
"""``(policy, env_factory, reward_model, config, **kwargs) -> CompiledStateGraph``."""


@dataclass(frozen=True)
class PlannerSpec:
    """One planner of the registry."""

    label: str
    """Its row in an evaluation table; ``{n}`` is Best-of-N's N (``"ARMAP-B (N={n})"``)."""
    load: Callable[[], tuple[PlannerBuilder, type[BaseModel]]]
    """Imports the planner's module: its graph builder and its config type."""
    matched: Callable[[int, int], dict[str, Any]] | None = None
    """Config fields that give the planner Best-of-N's budget on a task, from Best-of-N's
    ``(n, policy_calls)``; None for Best-of-N itself (see ``evaluate_planners``)."""
    budget: str | None = None
    """What ``matched`` gives it, in words: the evaluation report's note on its row."""

    @property
    def builder(self) -> PlannerBuilder:
        return self.load()[0]

    @property
    def config_type(self) -> type[BaseModel]:
        return self.load()[1]

    def row_label(self, n: int) -> str:
        """The planner's row in a table whose Best-of-N draws ``n`` candidates."""
        return self.label.format(n=n)


def _best_of_n() -> tuple[PlannerBuilder, type[BaseModel]]:
    from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph

    return build_best_of_n_graph, BestOfNConfig


def _reflexion() -> tuple[PlannerBuilder, type[BaseModel]]:
    from armap_agents.graphs.reflexion import ReflexionConfig, build_reflexion_graph

    return build_reflexion_graph, ReflexionConfig


def _mcts() -> tuple[PlannerBuilder, type[BaseModel]]:
    from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph

    return build_mcts_graph, MCTSConfig


def _beam_search() -> tuple[PlannerBuilder, type[BaseModel]]:
    from armap_agents.graphs.beam_search import BeamSearchConfig, build_beam_search_graph

    return build_beam_search_graph, BeamSearchConfig


def _live_rerank() -> tuple[PlannerBuilder, type[BaseModel]]:
    from armap_agents.graphs.live_rerank import LiveRerankConfig, build_live_rerank_graph

    return build_live_rerank_graph, LiveRerankConfig


def _beam_matched(n: int, calls: int) -> dict[str, Any]:
    """W beams of K samples, W * K about N (W = floor(sqrt(N))): per step, the policy calls
    Best-of-N's N episodes make; never more than Best-of-N's calls on the task."""
    width = max(1, math.isqrt(n))
    return {"width": width, "expansion_k": max(1, n // width), "max_policy_calls": calls}


PLANNERS: Mapping[str, PlannerSpec] = MappingProxyType(
    {
        "best_of_n": PlannerSpec("ARMAP-B (N={n})", _best_of_n),
        "reflexion": PlannerSpec(
            "ARMAP-R",
            _reflexion,
            lambda n, _calls: {"max_trials": n},
            "ARMAP-R makes at most N attempts (Best-of-N's episodes)",
        ),
        "mcts": PlannerSpec(
            "ARMAP-M",
            _mcts,
            lambda n, calls: {"iterations": 10 * n, "max_policy_calls": calls},
            "ARMAP-M stops starting new rounds once it has spent Best-of-N's policy calls on "
            "the task",
        ),
        # the step-level planners come after the paper's three (a quickstart runs those)
        "beam_search": PlannerSpec(
            "ARMAP-Beam",
            _beam_search,
            _beam_matched,
            "ARMAP-Beam never spends more than Best-of-N's policy calls (W * K about N "
            "samples per step)",
        ),
        # N samples per step: the calls Best-of-N's N episodes make per step
        "live_rerank": PlannerSpec(
            "ARMAP-Live",
            _live_rerank,
            lambda n, _calls: {"expansion_k": n},
            "ARMAP-Live samples N actions per step of its one episode",
        ),
    }
)
"""The planners by name, in the order of an evaluation table's rows (read-only)."""

PLANNER_NAMES: tuple[str, ...] = tuple(PLANNERS)


def planner_spec(name: str) -> PlannerSpec:
    """The registry's entry for ``name``; an unknown name is a :class:`ConfigError`."""
    try:
        return PLANNERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown planner {name!r}; choose from {', '.join(PLANNER_NAMES)}"
        ) from None


def planner_config(name: str, config: BaseModel | Mapping[str, Any] | None = None) -> BaseModel:
    """``config`` as planner ``name``'s config object: the object itself (checked to be of
    the planner's type), or one made from a mapping of its fields (None: the defaults)."""
    config_type = planner_spec(name).config_type
    if config is None or isinstance(config, Mapping):
        return parse_config(config_type, config, what=f"{name} config")
    if not isinstance(config, config_type):
        raise ConfigError(
            f"planner {name!r} takes a {config_type.__name__}, not {type(config).__name__}"
        )
    return config


def build_planner(
    name: str,
    policy: Policy,
    env_factory: EnvFactory,
    reward_model: RewardScorer | None,
    config: BaseModel | dict[str, Any] | None = None,
    **kwargs: Any,
):
    """The compiled planner graph called ``name`` (``best_of_n``, ``reflexion``, ``mcts``,
    ``beam_search`` or ``live_rerank``).

    ``config`` may be the planner's config object or a plain dict of its fields; ``kwargs``
    go to the builder (``objectives=...``, ``checkpointer=...``, ``memory=...``).
    """
    config = planner_config(name, config)
    return planner_spec(name).builder(policy, env_factory, reward_model, config, **kwargs)
