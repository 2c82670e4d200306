"""A deterministic generator of realistic WebShop catalogs (products and goals), for tests,
demos and benchmarks when WebShop's own product files are absent.

The vocabulary ships with the package (``data/vocabulary.json``, see ``data/NOTICE``): 66
product types in WebShop's five categories (beauty, grocery, electronics, fashion, furniture),
each with an Amazon-style category path, product nouns, option kinds (size, color, scent,
flavor with realistic values) and a price range, and an attribute pool taken from WebShop's
attribute vocabulary (``items_ins_v2``); goal openers ("i am looking for", "im looking for",
...) are weighted by how often people used them in WebShop's human instructions.

Products come in *families*, each built around one goal so that search and choice are hard:

* the **target** has the goal's attributes, offers the goal's option values among others, and
  costs less than the goal's price limit;
* **near misses** share the target's type and most of its text but fail the goal in one way:
  an attribute missing (``attribute``), a requested option value not offered (``option``), a
  price above the limit (``price``), a sibling product type with the same attributes
  (``type``), or simply the same kind of product with other attributes (``decoy``).

Goals read like WebShop's human instructions: "i am looking for a sulfate free shampoo with
argan oil in coconut scent, and price lower than 30.00 dollars". Everything derives from the
seed: the same ``(num_products, seed)`` always gives the same catalog. Each target is checked
to score 1 against its goal with the goal's options (a generator bug raises).
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from armap_agents.environments.webshop.catalog import (
    NO_PRICE_LIMIT,
    PRICE_LADDER,
    Catalog,
    Goal,
    Product,
    Review,
    price_limit_text,
)
from armap_agents.environments.webshop.reward import score_purchase, token_set_ratio
from armap_agents.errors import ConfigError

__all__ = [
    "DEFAULT_NUM_PRODUCTS",
    "FLAWS",
    "ProductType",
    "Vocabulary",
    "generate_catalog",
    "load_vocabulary",
    "pick_price_limit",
    "render_instruction",
]

DEFAULT_NUM_PRODUCTS = 3000
"""The size of the default generated catalog (about 460 goals)."""
FLAWS = ("attribute", "attribute", "option", "price", "type", "decoy")
"""How near misses differ from their family's target (drawn with these weights)."""

_SYLLABLES_TEXT = (
    "ar bel cor da el fen gal hu in jo ka lu mar nov or pra qui ros sol tav ul ven wil xa "
    "yor zen bri clo dra fle gro kle plu sna tri vo"
)
_SYLLABLES = tuple(_SYLLABLES_TEXT.split())
_BRAND_ENDINGS = ("", "", "", "co", "ly", "ia", "ex", "a", "o", "is")
_CENTS = (0.99, 0.49, 0.95, 0.89, 0.79, 0.29)
_SMALL_WORDS = frozenset(
    ("a", "an", "and", "or", "of", "for", "with", "in", "on", "the", "to", "by")
)


@dataclass(frozen=True, slots=True)
class ProductType:
    """One kind of product the generator makes (an entry of ``vocabulary.json``)."""

    key: str
    category: str
    path: tuple[str, ...]
    nouns: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    """``(kind, value pool)`` pairs, e.g. ``("color", "color.apparel")``."""
    price: tuple[float, float]
    attributes: tuple[str, ...]

    @property
    def query(self) -> str:
        """The product type's canonical search phrase (WebShop's ``query`` field)."""
        return self.nouns[0]

    @property
    def product_category(self) -> str:
        return " › ".join(self.path)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The generator's shipped vocabulary (immutable)."""

    types: tuple[ProductType, ...]
    option_values: Mapping[str, tuple[str, ...]]
    openers: tuple[tuple[str, int], ...]

    def types_of(self, category: str) -> tuple[ProductType, ...]:
        return tuple(t for t in self.types if t.category == category)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.category for t in self.types))


@functools.cache
def load_vocabulary() -> Vocabulary:
    """The shipped vocabulary, read once per process (immutable)."""
    raw = json.loads(
        resources.files("armap_agents.environments.webshop")
        .joinpath("data/vocabulary.json")
        .read_text(encoding="utf-8")
    )
    types = tuple(
        ProductType(
            key=t["key"],
            category=t["category"],
            path=tuple(t["path"]),
            nouns=tuple(t["nouns"]),
            options=tuple((k, v) for k, v in t["options"].items()),
            price=(float(t["price"][0]), float(t["price"][1])),
            attributes=tuple(t["attributes"]),
        )
        for t in raw["types"]
    )
    values = MappingProxyType({k: tuple(v) for k, v in raw["option_values"].items()})
    openers = tuple((o, int(c)) for o, c in raw["openers"])
    return Vocabulary(types=types, option_values=values, openers=openers)


# -- text helpers ------------------------------------------------------------------------
def _title_case(text: str) -> str:
    words = text.split()
    out = []
    for i, w in enumerate(words):
        if i and w in _SMALL_WORDS:
            out.append(w)
        elif "-" in w:
            out.append("-".join(p[:1].upper() + p[1:] for p in w.split("-")))
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _is_plural(noun: str) -> bool:
    last = noun.split()[-1]
    return last.endswith("s") and not last.endswith("ss")


def _article(next_word: str, noun: str) -> str:
    if _is_plural(noun):
        return "some"
    return "an" if next_word[:1] in "aeiou" else "a"


def pick_price_limit(price: float, rng: random.Random) -> float:
    """A goal's price limit above ``price``, as WebShop draws it: two of the next four steps of
    the $10 ladder, the larger one; no limit when fewer than two steps are left."""
    ladder = [p for p in PRICE_LADDER if p > price][:4]
    if len(ladder) < 2:
        return NO_PRICE_LIMIT
    return max(rng.sample(ladder, 2))


_OPTION_PHRASES = {
    "color": ("in {v} color", "in the color {v}", "with color {v}"),
    "size": ("in size {v}", "size {v}", "of size {v}"),
    "scent": ("in {v} scent", "with the {v} scent"),
    "flavor": ("in {v} flavor", "with {v} flavor"),
}


def _option_phrase(kind: str, value: str, rng: random.Random) -> str:
    templates = _OPTION_PHRASES.get(kind, ("with {k} {v}",))
    return rng.choice(templates).format(v=value, k=kind)


def render_instruction(
    noun: str,
    attributes: Sequence[str],
    options: Mapping[str, str],
    price_upper: float,
    rng: random.Random,
    vocabulary: Vocabulary | None = None,
) -> str:
    """A shopping instruction in the style of WebShop's human goals, e.g. "im looking for a
    machine wash men's t-shirt with short sleeve, in navy blue color and size large, and price
    lower than 30.00 dollars"."""
    vocab = vocabulary or load_vocabulary()
    openers = [o for o, _ in vocab.openers]
    weights = [c for _, c in vocab.openers]
    opener = rng.choices(openers, weights=weights)[0]
    attrs = list(attributes)
    form = rng.randrange(4) if attrs else -1
    if form == 0:
        body = f"{_join(attrs)} {noun}"
        text = f"{opener} {_article(body, noun)} {body}"
    elif form == 1:
        verb = "are" if _is_plural(noun) else "is"
        text = f"{opener} {_article(noun, noun)} {noun} that {verb} {_join(attrs)}"
    elif form == 3 and len(attrs) >= 2:
        body = f"{attrs[0]} {noun}"
        text = f"{opener} {_article(body, noun)} {body} with {_join(attrs[1:])}"
    elif form >= 2:
        text = f"{opener} {_article(noun, noun)} {noun} with {_join(attrs)}"
    else:
        text = f"{opener} {_article(noun, noun)} {noun}"
    if options:
        items = list(options.items())
        if rng.random() < 0.25:
            text += ". also, choose " + _join([f"{v} {k}" for k, v in items])
        else:
            text += ", " + _join([_option_phrase(k, v, rng) for k, v in items])
    return text + price_limit_text(price_upper)


# -- product text -------------------------------------------------------------------------
_FILLERS = {
    "beauty": (
        "Gentle enough for a daily routine",
        "Dermatologist recommended formula in a recyclable package",
        "A thoughtful choice for self care at home or on the go",
        "Backed by our 30 day satisfaction promise",
    ),
    "grocery": (
        "Made in small batches and packed fresh",
        "A pantry favorite for lunch boxes, road trips and parties",
        "Store in a cool, dry place after opening",
        "Backed by our 30 day satisfaction promise",
    ),
    "electronics": (
        "Works with most devices out of the box",
        "Includes a user manual and an 18 month warranty",
        "Tested for reliable performance day after day",
        "Friendly customer support if you ever need help",
    ),
    "fashion": (
        "Designed to fit true to size; see the size chart in the images",
        "A versatile piece for casual outings, travel and weekends",
        "Soft fabric that keeps its shape wash after wash",
        "Backed by our 30 day satisfaction promise",
    ),
    "furniture": (
        "All hardware and step by step instructions included",
        "A timeless design that fits modern and rustic spaces alike",
        "Sturdy build tested to hold everyday loads",
        "Friendly customer support if you ever need help",
    ),
}
_BULLET_CLAUSES = (
    "{A}: chosen by thousands of happy customers",
    "{A} - made to make your day easier",
    "{A}: a detail that sets this {noun} apart",
    "{A} for peace of mind",
)
_REVIEWS = (
    ("Exactly as described", "Arrived quickly and works just like the listing says.", 5),
    ("Great value", "Good price for what you get. Would buy again.", 5),
    ("Pretty good", "Nice overall, but it took a while to arrive.", 4),
    ("Okay", "It does the job, nothing special.", 3),
    ("Not for me", "The size was not what I expected, so I returned it.", 2),
    ("Disappointed", "Stopped working after a few weeks.", 1),
)


def _brand(rng: random.Random) -> str:
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
    return (name + rng.choice(_BRAND_ENDINGS)).capitalize()


def _price(lo: float, hi: float, rng: random.Random) -> float:
    hi = max(hi, lo + 1.0)
    return round(math.floor(rng.uniform(lo, hi)) + rng.choice(_CENTS), 2)


def _price_tag(price: float) -> str:
    return f"${price}"


def _lacking(attributes: Sequence[str], missing: Sequence[str]) -> list[str]:
    """``attributes`` without any that would match one of ``missing``."""
    return [a for a in attributes if not any(token_set_ratio(a, m) > 85 or m in a for m in missing)]


class _Builder:
    """Makes the products and goals of one catalog from one random stream."""

    def __init__(self, vocabulary: Vocabulary, rng: random.Random) -> None:
        self.vocab = vocabulary
        self.rng = rng
        self.asins: set[str] = set()
        self.brands = [_brand(rng) for _ in range(400)]

    def asin(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        while True:
            asin = "B0" + "".join(self.rng.choice(alphabet) for _ in range(8))
            if asin not in self.asins:
                self.asins.add(asin)
                return asin

    def options(self, ptype: ProductType, must: Mapping[str, str] | None = None) -> dict:
        """Option values for a product of ``ptype``: a run of each pool, holding ``must``."""
        rng = self.rng
        out: dict[str, tuple[str, ...]] = {}
        used: set[str] = set()
        for kind, pool_name in ptype.options:
            pool = [v for v in self.vocab.option_values[pool_name] if v not in used]
            k = rng.randint(min(3, len(pool)), min(7, len(pool)))
            chosen = set(rng.sample(pool, k))
            if must and kind in must and must[kind] in pool:
                chosen.add(must[kind])
            values = tuple(v for v in pool if v in chosen)
            out[kind] = values
            used.update(values)
        return out

    def product(
        self,
        ptype: ProductType,
        attributes: Sequence[str],
        options: Mapping[str, tuple[str, ...]],
        price: float,
        *,
        noun: str | None = None,
    ) -> Product:
        rng = self.rng
        noun = noun or rng.choice(ptype.nouns)
        brand = rng.choice(self.brands)
        attrs = list(attributes)
        rng.shuffle(attrs)
        # the title names the noun and one or two attributes; the rest is in the bullets
        n_title = min(len(attrs), rng.choice((1, 1, 2, 2, 3)))
        in_title, rest = attrs[:n_title], attrs[n_title:]
        title = f"{brand} "
        if in_title and rng.random() < 0.5:
            title += f"{_title_case(in_title[0])} {_title_case(noun)}"
            extra = in_title[1:]
        else:
            title += _title_case(noun)
            extra = in_title
        if extra:
            title += f" with {_title_case(extra[0])}"
            if len(extra) > 1:
                title += ", " + ", ".join(_title_case(a) for a in extra[1:])
        sizes = options.get("size")
        if sizes and len(sizes) == 1:
            title += f", {sizes[0]}"
        bullets = [
            rng.choice(_BULLET_CLAUSES).format(A=a.upper(), noun=noun) for a in (rest or attrs[:1])
        ]
        fillers = _FILLERS.get(ptype.category, _FILLERS["beauty"])
        bullets.append(rng.choice(fillers))
        described = attrs[: rng.randint(0, len(attrs))]
        description = f"The {brand} {noun}. "
        if described:
            description += f"Highlights: {_join(described)}. "
        description += ". ".join(rng.sample(fillers, 2)) + "."
        reviews = tuple(Review(*r) for r in rng.sample(_REVIEWS, rng.choice((0, 0, 1, 2, 3))))
        rating = f"{sum(r.score for r in reviews) / len(reviews):.1f}" if reviews else "N.A."
        return Product(
            asin=self.asin(),
            title=title,
            price=price,
            price_tag=_price_tag(price),
            category=ptype.category,
            product_category=ptype.product_category,
            query=ptype.query,
            description=description,
            bullet_points=tuple(bullets),
            options=MappingProxyType(dict(options)),
            attributes=tuple(attributes),
            rating=rating,
            reviews=reviews,
        )

    def family(self, ptype: ProductType, size: int) -> tuple[list[Product], Goal]:
        """A target, its goal and ``size - 1`` near misses."""
        rng = self.rng
        pool = list(ptype.attributes)
        attrs = rng.sample(pool, rng.randint(min(3, len(pool)), min(6, len(pool))))
        goal_attrs = rng.sample(attrs, min(len(attrs), rng.choice((1, 2, 2, 3, 3))))
        wanted: dict[str, str] = {}
        options = self.options(ptype)
        for kind, values in options.items():
            if rng.random() < 0.85:
                wanted[kind] = rng.choice(values)
        lo, hi = ptype.price
        price = _price(lo, hi, rng)
        price_upper = pick_price_limit(price, rng)
        noun = rng.choice(ptype.nouns)
        target = self.product(ptype, attrs, options, price, noun=noun)
        instruction = render_instruction(noun, goal_attrs, wanted, price_upper, rng, self.vocab)
        goal = Goal(
            asin=target.asin,
            instruction=instruction,
            attributes=tuple(goal_attrs),
            options=tuple(wanted.values()),
            price_upper=price_upper,
            name=target.title,
            query=target.query,
            product_category=target.product_category,
            category=target.category,
        )
        verdict = score_purchase(target, wanted, goal)
        if not verdict.success:  # pragma: no cover - a generator bug
            raise RuntimeError(f"generated target does not satisfy its goal: {verdict}")
        products = [target]
        cheap_hi = min(hi, price_upper - 0.5) if price_upper < NO_PRICE_LIMIT else hi
        for _ in range(size - 1):
            flaw = rng.choice(FLAWS)
            p_price = _price(min(lo, cheap_hi * 0.6), cheap_hi, rng)
            if flaw == "attribute":
                gone = rng.choice(goal_attrs)
                kept = _lacking(attrs, [gone])
                others = _lacking([a for a in pool if a not in kept], [gone])
                if others:
                    kept.append(rng.choice(others))
                products.append(self.product(ptype, kept, self.options(ptype, wanted), p_price))
            elif flaw == "option" and wanted:
                kind = rng.choice(list(wanted))
                near = self.options(ptype, wanted)
                near[kind] = (
                    tuple(v for v in near[kind] if token_set_ratio(v, wanted[kind]) <= 85)
                    or near[kind]
                )
                products.append(self.product(ptype, attrs, near, p_price))
            elif flaw == "price" and price_upper < NO_PRICE_LIMIT:
                high = round(price_upper + rng.uniform(1, 40), 2)
                products.append(self.product(ptype, attrs, self.options(ptype, wanted), high))
            elif flaw == "type" and len(self.vocab.types_of(ptype.category)) > 1:
                other = rng.choice([t for t in self.vocab.types_of(ptype.category) if t != ptype])
                mixed = list(dict.fromkeys([*goal_attrs, *rng.sample(other.attributes, 2)]))
                o_lo, o_hi = other.price
                o_price = _price(o_lo, min(o_hi, cheap_hi) if cheap_hi > o_lo else o_hi, rng)
                products.append(self.product(other, mixed, self.options(other), o_price))
            else:  # decoy: the same kind of product, other attributes
                decoy = rng.sample(pool, min(len(pool), rng.randint(2, 5)))
                products.append(self.product(ptype, decoy, self.options(ptype), p_price))
        return products, goal


def generate_catalog(
    num_products: int = DEFAULT_NUM_PRODUCTS,
    *,
    seed: int = 0,
    family_size: tuple[int, int] = (4, 9),
    cache_dir: str | os.PathLike[str] | None | bool = None,
) -> Catalog:
    """A generated catalog of ``num_products`` products and one goal per product family
    (about ``num_products / 6.5`` goals), fully determined by ``(num_products, seed,
    family_size)``. Products and goals are shuffled, so families are not contiguous.

    ``cache_dir`` is where the catalog's search index is persisted (see :class:`Catalog`).
    """
    if num_products < 1:
        raise ConfigError(f"num_products must be >= 1, got {num_products}")
    lo, hi = family_size
    if not 1 <= lo <= hi:
        raise ConfigError(f"family_size must be (min, max) with 1 <= min <= max, got {family_size}")
    vocab = load_vocabulary()
    rng = random.Random(f"webshop-catalog/{seed}")
    builder = _Builder(vocab, rng)
    categories = vocab.categories
    products: list[Product] = []
    goals: list[Goal] = []
    while len(products) < num_products:
        category = rng.choice(categories)
        ptype = rng.choice(vocab.types_of(category))
        size = min(rng.randint(lo, hi), num_products - len(products))
        family, goal = builder.family(ptype, size)
        products.extend(family)
        goals.append(goal)
    rng.shuffle(products)
    rng.shuffle(goals)
    return Catalog(
        products,
        goals,
        name=f"generated-{num_products}-seed{seed}",
        cache_dir=cache_dir,
    )
