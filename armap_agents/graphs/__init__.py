"""The LangGraph state machines: exploration, synthesis and planning.

The names below are imported on first use (PEP 562), so reading one graph module does not
load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armap_agents._lazy import lazy_getattr

if TYPE_CHECKING:
    from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
    from armap_agents.graphs.explore import ExploreConfig, build_explore_graph
    from armap_agents.graphs.synthesize import SynthesizeConfig, build_synthesize_graph

_EXPORTS: dict[str, tuple[str, ...]] = {
    # submodule -> the public names it provides (tests/test_startup.py checks this table
    # against the imports above and __all__)
    "best_of_n": ("BestOfNConfig", "build_best_of_n_graph"),
    "explore": ("ExploreConfig", "build_explore_graph"),
    "synthesize": ("SynthesizeConfig", "build_synthesize_graph"),
}

__all__ = [
    "BestOfNConfig",
    "ExploreConfig",
    "SynthesizeConfig",
    "build_best_of_n_graph",
    "build_explore_graph",
    "build_synthesize_graph",
]


if not TYPE_CHECKING:  # type checkers read the imports above (and flag a name not there)
    __getattr__ = lazy_getattr(__name__, _EXPORTS, relative=True)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
