"""WebShop's original data files: loading them (when a user supplies them), writing a catalog in
their format, and choosing the default catalog.

WebShop's product data is not redistributed with this package. To use it, download WebShop's
files (see https://github.com/princeton-nlp/WebShop, ``setup.sh``) into one directory and pass
it as ``data_dir`` (or set ``WEBSHOP_DATA``)::

    $WEBSHOP_DATA/
      items_shuffle_1000.json    products (or items_shuffle.json, the full 1.18M set)
      items_ins_v2_1000.json     attributes per product (or items_ins_v2.json)
      items_human_ins.json       human instructions per product (optional)

When both product files are present the full one is used; it holds 1.18M products in several
GB of JSON and needs a machine with a lot of memory (``max_products`` reads only the first
products), so start with the 1,000-product file.

* **Products** (``items_shuffle*.json``, a JSON list): ``asin``, ``name`` (title),
  ``category``, ``query``, ``product_category`` ("A › B › C"), ``full_description``,
  ``small_description`` (bullet points: a list or a string), ``pricing`` ("$12.99" or
  "$10.99 - $15.99"; missing means $100, as in WebShop), ``customization_options``
  (``{kind: [{"value": ..., "image": ...}]}``), optionally ``average_rating`` and ``reviews``
  (``[{"title", "body", "score"}]``, an extension of ours). Products with an asin longer than
  10 characters or ``nan`` are skipped and duplicates keep the first, as WebShop does. Option
  kinds and values are lower-cased and ``/`` becomes `` | ``, as on WebShop's pages. A price
  range costs a fixed price drawn in the range from the asin (WebShop draws it at random once).
* **Attributes** (``items_ins_v2*.json``): ``{asin: {"attributes": [...], "instruction": ...,
  "instruction_attributes": [...]}}``.
* **Goals**: from ``items_human_ins.json`` (``{asin: [{"instruction", "instruction_attributes",
  "instruction_options"}, ...]}``) when present, WebShop's human goals; otherwise one goal per
  product that has a synthetic ``instruction`` in the attributes file (without options).
  Goals without attributes are dropped; each gets a price limit drawn from WebShop's $10 ladder
  above its product's price, appended to the instruction (", and price lower than 50.00
  dollars"); then they are shuffled with a fixed seed. The order is deterministic but not
  WebShop's own, so ``test`` (the first 500) is a different 500 goals than WebShop's test set.

:func:`default_catalog` is what environments use when given no catalog: the files in
``data_dir`` / ``WEBSHOP_DATA`` when set, else a generated catalog (:mod:`.generator`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from armap_agents.environments.webshop.catalog import (
    Catalog,
    Goal,
    Product,
    Review,
    price_limit_text,
)
from armap_agents.environments.webshop.generator import (
    DEFAULT_NUM_PRODUCTS,
    generate_catalog,
    pick_price_limit,
)
from armap_agents.errors import ConfigError, MissingDependency

__all__ = [
    "DATA_ENV_VAR",
    "default_catalog",
    "find_data_file",
    "load_webshop_catalog",
    "parse_pricing",
    "product_from_record",
    "product_to_record",
    "write_webshop_files",
]

DATA_ENV_VAR = "WEBSHOP_DATA"
GOAL_SHUFFLE_SEED = 233
"""Seed of the goal order and of the price limits (WebShop seeds its shuffle with 233)."""
DEFAULT_PRICE = 100.0
"""The price of a product without pricing (WebShop's default)."""

_PRODUCT_FILES = ("items_shuffle.json", "items_shuffle_1000.json", "items_shuffle*.json")
_ATTRIBUTE_FILES = ("items_ins_v2.json", "items_ins_v2_1000.json", "items_ins_v2*.json")
_HUMAN_FILES = ("items_human_ins.json",)
_PRICE_RE = re.compile(r"\$\s*([\d,]*\.?\d+)")


def find_data_file(directory: Path, patterns: Iterable[str]) -> Path | None:
    """The first file of ``directory`` matching ``patterns`` in order (globs allowed)."""
    for pattern in patterns:
        matches = sorted(directory.glob(pattern))
        if matches:
            return matches[0]
    return None


def parse_pricing(pricing: Any) -> list[float]:
    """WebShop's ``pricing`` as numbers: ``"$10.99 - $15.99"`` -> ``[10.99, 15.99]``; a list of
    such strings or numbers works too; nothing usable -> ``[]``."""
    if pricing is None:
        return []
    if isinstance(pricing, int | float):
        return [float(pricing)]
    if isinstance(pricing, list):
        out: list[float] = []
        for item in pricing:
            out.extend(parse_pricing(item))
        return out[:2]
    values = []
    for match in _PRICE_RE.finditer(str(pricing)):
        try:
            values.append(float(match.group(1).replace(",", "")))
        except ValueError:
            continue
    return values[:2]


def _price_in_range(asin: str, low: float, high: float) -> float:
    """A fixed price in ``[low, high]`` derived from the asin (stable across processes)."""
    fraction = int(hashlib.sha256(asin.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return round(low + (high - low) * fraction, 2)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value).strip()


def product_from_record(record: dict[str, Any], attributes: Iterable[str] = ()) -> Product:
    """A :class:`Product` from one entry of WebShop's product file (see the module docstring)."""
    asin = str(record["asin"]).strip()
    prices = parse_pricing(record.get("pricing"))
    if not prices:
        price, tag = DEFAULT_PRICE, f"${DEFAULT_PRICE}"
    elif len(prices) == 1 or prices[0] == prices[1]:
        price, tag = prices[0], f"${prices[0]}"
    else:
        low, high = sorted(prices)
        price, tag = _price_in_range(asin, low, high), f"${low} to ${high}"
    options: dict[str, tuple[str, ...]] = {}
    for kind, contents in (record.get("customization_options") or {}).items():
        if not contents:
            continue
        values = []
        for content in contents:
            raw = content.get("value") if isinstance(content, dict) else content
            if raw is None:
                continue
            value = str(raw).strip().replace("/", " | ").lower()
            if value and value not in values:
                values.append(value)
        if values:
            options[str(kind).lower()] = tuple(values)
    bullets = record.get("small_description") or []
    if isinstance(bullets, str):
        bullets = [bullets]
    reviews = tuple(
        Review(
            title=_text(r.get("title")),
            body=_text(r.get("body")),
            score=int(float(r.get("score") or 0)),
        )
        for r in record.get("reviews") or []
        if isinstance(r, dict)
    )
    rating = record.get("average_rating")
    return Product(
        asin=asin,
        title=_text(record.get("name") or record.get("Title")),
        price=price,
        price_tag=tag,
        category=_text(record.get("category")),
        product_category=_text(record.get("product_category")),
        query=_text(record.get("query")).lower(),
        description=_text(record.get("full_description") or record.get("Description")),
        bullet_points=tuple(_text(b) for b in bullets if _text(b)),
        options=MappingProxyType(options),
        attributes=tuple(dict.fromkeys(a.strip() for a in attributes if a and a.strip())),
        rating=_text(rating) if rating not in (None, "", "nan") else "N.A.",
        reviews=reviews,
    )


def product_to_record(product: Product) -> dict[str, Any]:
    """One entry of WebShop's product file for ``product`` (the inverse of
    :func:`product_from_record` for products it produced)."""
    return {
        "asin": product.asin,
        "name": product.title,
        "category": product.category,
        "query": product.query,
        "product_category": product.product_category,
        "full_description": product.description,
        "small_description": list(product.bullet_points),
        "pricing": product.price_tag,
        "customization_options": {
            kind: [{"value": v, "image": None} for v in values]
            for kind, values in product.options.items()
        },
        "average_rating": product.rating,
        "reviews": [{"title": r.title, "body": r.body, "score": r.score} for r in product.reviews],
    }


def write_webshop_files(catalog: Catalog, directory: str | os.PathLike[str]) -> Path:
    """Write ``catalog`` as WebShop's files (``items_shuffle.json``, ``items_ins_v2.json``,
    ``items_human_ins.json``) into ``directory``; returns it. Goal instructions are written
    without their price clause (the loader draws limits anew, as WebShop does)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "items_shuffle.json").write_text(
        json.dumps([product_to_record(p) for p in catalog.products], ensure_ascii=False)
    )
    (out / "items_ins_v2.json").write_text(
        json.dumps({p.asin: {"attributes": list(p.attributes)} for p in catalog.products})
    )
    human: dict[str, list[dict[str, Any]]] = {}
    for goal in catalog.goals:
        clause = price_limit_text(goal.price_upper)
        text = (
            goal.instruction[: -len(clause)]
            if clause and goal.instruction.endswith(clause)
            else goal.instruction
        )
        human.setdefault(goal.asin, []).append(
            {
                "asin": goal.asin,
                "instruction": text,
                "instruction_attributes": list(goal.attributes),
                "instruction_options": list(goal.options),
            }
        )
    (out / "items_human_ins.json").write_text(json.dumps(human, ensure_ascii=False))
    return out


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV_VAR)
    return Path(chosen).expanduser() if chosen else None


def load_webshop_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    max_products: int | None = None,
    cache_dir: str | os.PathLike[str] | None | bool = None,
) -> Catalog:
    """A catalog from WebShop's own files in ``data_dir`` (default: ``$WEBSHOP_DATA``); see the
    module docstring for the files and how goals are made. ``max_products`` keeps the first
    products of the file (and the goals about them)."""
    directory = _data_dir(data_dir)
    if directory is None:
        raise MissingDependency(
            f"no WebShop data directory: pass data_dir or set {DATA_ENV_VAR} to a directory "
            "holding items_shuffle_1000.json (and items_ins_v2_1000.json, items_human_ins.json) "
            "from https://github.com/princeton-nlp/WebShop"
        )
    if not directory.is_dir():
        raise MissingDependency(f"WebShop data directory {str(directory)!r} does not exist")
    products_file = find_data_file(directory, _PRODUCT_FILES)
    if products_file is None:
        raise MissingDependency(
            f"no items_shuffle*.json in {str(directory)!r}: put WebShop's product file there"
        )
    raw_products = json.loads(products_file.read_text(encoding="utf-8"))
    if not isinstance(raw_products, list):
        raise ConfigError(f"{products_file} should hold a JSON list of products")
    attributes_file = find_data_file(directory, _ATTRIBUTE_FILES)
    attributes: dict[str, Any] = (
        json.loads(attributes_file.read_text(encoding="utf-8")) if attributes_file else {}
    )
    human_file = find_data_file(directory, _HUMAN_FILES)
    human: dict[str, Any] | None = (
        json.loads(human_file.read_text(encoding="utf-8")) if human_file else None
    )

    products: list[Product] = []
    seen: set[str] = set()
    for record in raw_products:
        asin = str(record.get("asin", "")).strip()
        if not asin or asin == "nan" or len(asin) > 10 or asin.upper() in seen:
            continue
        seen.add(asin.upper())
        info = attributes.get(asin) or {}
        products.append(product_from_record(record, info.get("attributes") or ()))
        if max_products is not None and len(products) >= max_products:
            break

    rng = random.Random(GOAL_SHUFFLE_SEED)
    goals: list[Goal] = []
    for product in products:
        if human is not None:
            entries = human.get(product.asin) or []
        else:
            info = attributes.get(product.asin) or {}
            entries = (
                [
                    {
                        "instruction": info["instruction"],
                        "instruction_attributes": info.get("instruction_attributes") or [],
                    }
                ]
                if info.get("instruction")
                else []
            )
        for entry in entries:
            goal_attributes = tuple(entry.get("instruction_attributes") or ())
            if not goal_attributes:
                continue
            options = entry.get("instruction_options") or ()
            if isinstance(options, dict):
                options = list(options.values())
            price_upper = pick_price_limit(product.price, rng)
            text = str(entry.get("instruction", "")).strip().strip(".")
            goals.append(
                Goal(
                    asin=product.asin,
                    instruction=text + price_limit_text(price_upper),
                    attributes=goal_attributes,
                    options=tuple(str(o).strip().lower() for o in options if str(o).strip()),
                    price_upper=price_upper,
                    name=product.title,
                    query=product.query,
                    product_category=product.product_category,
                    category=product.category,
                )
            )
    rng.shuffle(goals)
    return Catalog(products, goals, name=f"webshop:{directory.name}", cache_dir=cache_dir)


def default_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    num_products: int | None = None,
    catalog_seed: int = 0,
    cache_dir: str | os.PathLike[str] | None | bool = None,
) -> Catalog:
    """The catalog an environment uses when given none: WebShop's files from ``data_dir`` or
    ``$WEBSHOP_DATA`` when either is set (``num_products`` then caps the products read), else
    a generated catalog of ``num_products`` (default 3,000) products from ``catalog_seed``."""
    if _data_dir(data_dir) is not None:
        return load_webshop_catalog(data_dir, max_products=num_products, cache_dir=cache_dir)
    return generate_catalog(
        num_products or DEFAULT_NUM_PRODUCTS, seed=catalog_seed, cache_dir=cache_dir
    )
