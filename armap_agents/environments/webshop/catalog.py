"""Products, goals and the :class:`Catalog` that holds them with their search index.

A :class:`Catalog` is plain, immutable data (products in a fixed order, goals in a fixed order,
named goal splits) plus a lazily opened BM25 :class:`~.search.SearchIndex`. Build one catalog
per process and share it between environments (``WebShopEnv.factory`` does this): the index is
opened once, on first search, and is read-only afterwards.

Goal splits (task ids are goal positions as strings) follow WebShop: ``test`` is the first
500 goals, ``dev`` the next 1,000, ``train`` the rest. Smaller catalogs take at most a fifth
of their ``n`` goals for each: ``test = goals[:min(500, n // 5)]`` (at least one goal),
``dev`` the next ``min(1000, n // 5)``, ``train`` the rest.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from armap_agents.environments.webshop.search import SEARCH_RESULTS, SearchIndex, index_fingerprint
from armap_agents.errors import ConfigError, UnknownName

__all__ = [
    "NO_PRICE_LIMIT",
    "PRICE_LADDER",
    "SPLITS",
    "Catalog",
    "Goal",
    "Product",
    "Review",
    "default_splits",
    "price_limit_text",
]

PRICE_LADDER = tuple(10.0 * i for i in range(1, 100))
"""The price limits goals use: $10, $20, ... $990 (WebShop's ladder)."""
NO_PRICE_LIMIT = 1_000_000.0
"""``Goal.price_upper`` when a goal states no price limit."""
SPLITS = ("train", "dev", "test", "all")


@dataclass(frozen=True, slots=True)
class Review:
    """A customer review shown on the product's Reviews tab."""

    title: str
    body: str
    score: int


@dataclass(frozen=True, slots=True)
class Product:
    """One product, normalized from WebShop's product schema (see :mod:`.data`).

    ``price`` is what buying it costs (for a price range in the source data, a fixed value in
    the range); ``price_tag`` is how the site shows it (``$12.99`` or ``$10.0 to $15.0``).
    ``options`` maps an option kind (``size``, ``color``, ``flavor name``...) to its values,
    lower-cased, in display order.
    """

    asin: str
    title: str
    price: float
    price_tag: str = ""
    category: str = ""
    product_category: str = ""
    query: str = ""
    description: str = ""
    bullet_points: tuple[str, ...] = ()
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    attributes: tuple[str, ...] = ()
    rating: str = "N.A."
    reviews: tuple[Review, ...] = ()

    def search_text(self) -> str:
        """The text the search engine indexes: title, description, bullet points, options."""
        options = ", and ".join(
            f"{kind}: {', '.join(values)}" for kind, values in self.options.items()
        )
        return " ".join([self.title, self.description, *self.bullet_points, options])

    def option_kind(self, value: str) -> str | None:
        """The option kind (``"color"``...) that offers ``value``, or None."""
        value = value.strip().lower()
        for kind, values in self.options.items():
            if value in values:
                return kind
        return None


@dataclass(frozen=True, slots=True)
class Goal:
    """A shopping task: the instruction and what the evaluator checks (never shown to a
    planner except through the instruction text).

    ``name``, ``query`` and ``product_category`` are the target product's, for the type match
    of the reward; ``options`` are the option values asked for.
    """

    asin: str
    instruction: str
    attributes: tuple[str, ...]
    options: tuple[str, ...]
    price_upper: float
    name: str
    query: str = ""
    product_category: str = ""
    category: str = ""


def price_limit_text(price_upper: float) -> str:
    """WebShop's price clause: ``", and price lower than 40.00 dollars"`` (empty if none)."""
    if price_upper >= NO_PRICE_LIMIT:
        return ""
    return f", and price lower than {price_upper:.2f} dollars"


def default_splits(num_goals: int) -> dict[str, range]:
    """Goal positions of each split (see the module docstring)."""
    n = num_goals
    n_test = min(500, n // 5) or min(1, n)
    n_dev = min(1000, n // 5)
    return {
        "test": range(0, n_test),
        "dev": range(n_test, n_test + n_dev),
        "train": range(n_test + n_dev, n),
        "all": range(0, n),
    }


class Catalog:
    """Products and goals of one WebShop, with their search index.

    ``cache_dir`` is where the search index is persisted (``None``: the user cache, see
    :func:`~.search.default_cache_dir`; ``False``: never persisted). Thread-safe; share one per
    process.
    """

    def __init__(
        self,
        products: Sequence[Product],
        goals: Sequence[Goal] = (),
        *,
        name: str = "catalog",
        cache_dir: str | os.PathLike[str] | None | bool = None,
        splits: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.products: tuple[Product, ...] = tuple(products)
        self.goals: tuple[Goal, ...] = tuple(goals)
        self.name = name
        positions: dict[str, int] = {}
        for i, p in enumerate(self.products):
            key = p.asin.upper()
            if key in positions:
                raise ConfigError(f"duplicate product asin {p.asin!r} in catalog {name!r}")
            positions[key] = i
        self._positions = MappingProxyType(positions)
        missing = sorted({g.asin for g in self.goals if g.asin.upper() not in positions})
        if missing:
            raise ConfigError(
                f"{len(missing)} goal(s) of catalog {name!r} target products it does not hold, "
                f"e.g. {missing[:3]}"
            )
        given = dict(splits) if splits is not None else default_splits(len(self.goals))
        given.setdefault("all", range(len(self.goals)))
        self._splits = MappingProxyType({k: tuple(v) for k, v in given.items()})
        self._cache_dir = cache_dir
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.products)

    def __repr__(self) -> str:
        return f"Catalog({self.name!r}, {len(self.products)} products, {len(self.goals)} goals)"

    # -- lookups -----------------------------------------------------------------------
    def product(self, asin: str) -> Product:
        """The product with this asin (any case); ``KeyError`` if there is none."""
        try:
            return self.products[self._positions[asin.strip().upper()]]
        except KeyError:
            raise UnknownName(f"no product with asin {asin!r} in catalog {self.name!r}") from None

    def has_product(self, asin: str) -> bool:
        return asin.strip().upper() in self._positions

    def task_ids(self, split: str = "test") -> list[str]:
        """Goal positions of ``split`` as strings (``train``, ``dev``, ``test`` or ``all``)."""
        if split not in self._splits:
            raise UnknownName(f"unknown split {split!r}: use one of {', '.join(self._splits)}")
        return [str(i) for i in self._splits[split]]

    def goal(self, task_id: str) -> Goal:
        """The goal of a task id (its position, as a string)."""
        try:
            i = int(task_id)
            if i < 0:
                raise IndexError
            return self.goals[i]
        except (ValueError, IndexError):
            raise UnknownName(
                f"unknown WebShop task {task_id!r}: task ids are goal numbers "
                f"0..{len(self.goals) - 1}"
            ) from None

    # -- search ------------------------------------------------------------------------
    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the indexed text of every product, in order (names the index cache)."""
        return index_fingerprint(p.search_text() for p in self.products)

    @property
    def index(self) -> SearchIndex:
        """The search index, opened (loaded or built) on first use."""
        index = self._index
        if index is None:
            with self._lock:
                index = self._index
                if index is None:
                    texts = [p.search_text() for p in self.products]
                    if "fingerprint" not in self.__dict__:
                        self.__dict__["fingerprint"] = index_fingerprint(texts)
                    if self._cache_dir is False:
                        index = SearchIndex.build(texts)
                    else:
                        chosen = self._cache_dir  # None or True: the default directory
                        cache = None if chosen is None or chosen is True else chosen
                        index = SearchIndex.open(
                            texts, Path(cache) if cache else None, fingerprint=self.fingerprint
                        )
                    self._index = index
        return index

    def warm(self) -> Catalog:
        """Open the search index now (instead of on the first search); returns ``self``."""
        _ = self.index
        return self

    def search(self, query: str, k: int = SEARCH_RESULTS) -> list[Product]:
        """The best ``k`` products for ``query`` (BM25), best first."""
        return [self.products[i] for i in self.index.search(query, k)]
