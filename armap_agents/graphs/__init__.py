"""The LangGraph state machines: exploration, synthesis and planning."""

from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.explore import ExploreConfig, build_explore_graph
from armap_agents.graphs.synthesize import SynthesizeConfig, build_synthesize_graph

__all__ = [
    "BestOfNConfig",
    "ExploreConfig",
    "SynthesizeConfig",
    "build_best_of_n_graph",
    "build_explore_graph",
    "build_synthesize_graph",
]
