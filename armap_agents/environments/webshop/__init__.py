"""WebShop (Yao et al., 2022): a text shopping website with BM25 search and WebShop's reward,
reimplemented to run offline.

* :class:`WebShopEnv`: the environment (pages, actions, observations; :mod:`.env`);
* :class:`Catalog`, :class:`Product`, :class:`Goal`: the data (:mod:`.catalog`), searched with
  BM25 (:mod:`.search`);
* :func:`score_purchase`: WebShop's reward of a purchase (:mod:`.reward`);
* :func:`generate_catalog`: a seeded, realistic generated catalog (:mod:`.generator`);
* :func:`load_webshop_catalog`: WebShop's own files, when a user supplies them (:mod:`.data`);
* :class:`WebShopRelabeler`: programmatic hindsight triplets (:mod:`.relabel`).
"""

from armap_agents.environments.webshop.catalog import Catalog, Goal, Product, Review
from armap_agents.environments.webshop.data import (
    DATA_ENV_VAR,
    default_catalog,
    load_webshop_catalog,
    write_webshop_files,
)
from armap_agents.environments.webshop.env import WebShopEnv, suggest_queries
from armap_agents.environments.webshop.generator import generate_catalog
from armap_agents.environments.webshop.relabel import WebShopRelabeler, hindsight_goal
from armap_agents.environments.webshop.reward import RewardBreakdown, score_purchase
from armap_agents.environments.webshop.search import SearchIndex

__all__ = [
    "DATA_ENV_VAR",
    "Catalog",
    "Goal",
    "Product",
    "Review",
    "RewardBreakdown",
    "SearchIndex",
    "WebShopEnv",
    "WebShopRelabeler",
    "default_catalog",
    "generate_catalog",
    "hindsight_goal",
    "load_webshop_catalog",
    "score_purchase",
    "suggest_queries",
    "write_webshop_files",
]
