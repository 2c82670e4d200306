"""WebShop's scoring of a purchase against a goal, written from the published definition.

Yao et al. (2022), *WebShop: Towards Scalable Real-World Web Interaction with Grounded Language
Agents*, Section 3: for a goal with attributes ``U_att``, options ``U_opt`` and a price limit
``u_price``, buying product ``y`` with the chosen options ``Y_opt`` scores ::

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price])
                 / (|U_att| + |U_opt| + 1)

* **Attributes.** A goal attribute counts as present when one of the product's attributes
  matches it fuzzily (token-set similarity above 85 out of 100), or when it appears verbatim
  (lower-cased) in the product's title, bullet points or description.
* **Options.** A goal option counts as chosen when one of the option values the agent clicked
  matches it fuzzily (the same token-set similarity above 85). The similarity, like the
  fuzzywuzzy/rapidfuzz ``token_set_ratio`` WebShop uses, ignores punctuation and word order
  and is 100 when one side's words are a subset of the other's: so ``small`` satisfies
  ``x-small`` and ``8`` satisfies ``8.5``. That leniency is WebShop's; we keep it.
* **Price.** 1 when the price paid is at most the goal's limit.
* **Type** (``r_type``), a factor for buying the right *kind* of product: 1, lowered to 0.5
  when the product neither comes from the target's search query, nor shares at least two levels
  of its category path, nor has more than 20 % of the target title's nouns in its title; 0.1
  when under 10 % of those nouns are in its title, 0 when none is.

Differences from the WebShop code (documented, deliberate):

* **Nouns without spaCy.** WebShop tags the two titles with spaCy (``en_core_web_sm``) and keeps
  nouns and proper nouns. That model is not installable offline, so :func:`title_nouns` keeps
  every word of the title that is not an English function word (a fixed list). On Amazon's
  Title-Case product titles spaCy tags most content words as proper nouns anyway, so the two
  agree on most titles; ours also keeps adjectives spaCy would drop ("Waterproof", "Soft"),
  which changes ``title_score`` on some near-miss titles, never on the target itself (1.0).
* **Similarity.** ``token_set_ratio`` is computed here with an exact longest-common-subsequence
  ratio (the Indel similarity rapidfuzz uses), not a third-party library.
* **Colours.** WebShop's code collapses colour names to a base colour before matching options
  (``navy blue`` -> ``blue``); we do not, so ``navy blue`` does not satisfy ``royal blue``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from armap_agents.environments.webshop.catalog import Goal, Product

__all__ = [
    "MATCH_THRESHOLD",
    "RewardBreakdown",
    "attribute_matches",
    "option_matches",
    "score_purchase",
    "title_nouns",
    "token_set_ratio",
    "type_reward",
]

MATCH_THRESHOLD = 85
"""A fuzzy match needs a token-set similarity strictly above this (0-100), as in WebShop."""

_NON_ALNUM = re.compile(r"[\W_]+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_FUNCTION_WORDS_TEXT = """
    a an the and or nor but so yet for of in on at to from by with without within into onto
    upon over under above below between among through during before after about against
    along across around behind beyond near off out up down per via than as is are was were be
    been being am do does did has have had having it its it's this that these those there here
    which who whom whose what when where why how all any both each either every few more most
    other some such no not only own same too very can will just should now also if then else
    s t x i you your yours we our us they them their he she his her my me one two three four
    five six seven eight nine ten new set pack count piece pcs pc inch inches ft feet oz fl
    ounce ounces lb lbs cm mm ml"""
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())


def _process(text: str) -> str:
    """Lower-case, punctuation to spaces, trimmed (fuzzywuzzy's ``full_process``)."""
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def _lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel, exact)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _ratio(a: str, b: str) -> float:
    """Indel similarity 0-100: ``200 * LCS / (len(a) + len(b))``."""
    total = len(a) + len(b)
    return 100.0 if total == 0 else 200.0 * _lcs_length(a, b) / total


def token_set_ratio(a: str, b: str) -> int:
    """Token-set similarity of two strings, 0-100 (fuzzywuzzy's ``token_set_ratio``).

    Both are lower-cased and stripped of punctuation and split into word sets; with the shared
    words ``S`` and the rest ``A``, ``B``, the result is the best ratio among ``S`` vs
    ``S+A``, ``S`` vs ``S+B`` and ``S+A`` vs ``S+B`` (so a subset scores 100).
    """
    ta, tb = set(_process(a).split()), set(_process(b).split())
    if not ta or not tb:
        return 0
    shared = " ".join(sorted(ta & tb))
    only_a = " ".join(sorted(ta - tb))
    only_b = " ".join(sorted(tb - ta))
    combined_a = f"{shared} {only_a}".strip()
    combined_b = f"{shared} {only_b}".strip()
    best = _ratio(combined_a, combined_b)
    if shared:
        best = max(best, _ratio(shared, combined_a), _ratio(shared, combined_b))
    return int(round(best))


def _fuzzy_in(value: str, candidates: Iterable[str]) -> bool:
    return any(token_set_ratio(c, value) > MATCH_THRESHOLD for c in candidates)


def title_nouns(title: str) -> set[str]:
    """The words of a product title that stand in for its nouns (see the module docstring):
    lower-cased words that are not function words, numbers or units."""
    return {w for w in _WORD.findall(title.lower()) if w not in _FUNCTION_WORDS}


@dataclass(frozen=True, slots=True)
class TypeMatch:
    """How WebShop's ``r_type`` was reached."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def type_reward(product: Product, goal: Goal) -> TypeMatch:
    """``r_type``: does the bought product have the target's type (see the module docstring)?"""
    query_match = bool(goal.query) and product.query == goal.query
    path_p = {p.strip() for p in product.product_category.split("›") if p.strip()}
    path_g = {p.strip() for p in goal.product_category.split("›") if p.strip()}
    category_match = len(path_p & path_g) >= 2
    wanted = title_nouns(goal.name)
    title_score = len(title_nouns(product.title) & wanted) / len(wanted) if wanted else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, attributes: Sequence[str]) -> list[str]:
    """The goal attributes the product has: a fuzzy match with one of its attributes, or the
    attribute's words verbatim in its title, bullet points or description."""
    title = product.title.lower()
    bullets = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    found = []
    for wanted in attributes:
        w = wanted.lower()
        if _fuzzy_in(wanted, product.attributes) or w in title or w in bullets or w in description:
            found.append(wanted)
    return found


def option_matches(chosen: Iterable[str], options: Sequence[str]) -> list[str]:
    """The goal options among the chosen option values (fuzzy, see the module docstring)."""
    chosen = list(chosen)
    return [wanted for wanted in options if _fuzzy_in(wanted, chosen)]


@dataclass(frozen=True, slots=True)
class RewardBreakdown:
    """WebShop's reward of one purchase, with its parts (for metrics and tests)."""

    score: float
    r_type: float
    attributes_matched: tuple[str, ...]
    options_matched: tuple[str, ...]
    price_ok: bool
    num_attributes: int
    num_options: int
    query_match: bool
    category_match: bool
    title_score: float

    @property
    def success(self) -> bool:
        """WebShop's success: a perfect score."""
        return self.score == 1.0


def score_purchase(
    product: Product, chosen_options: Mapping[str, str] | Iterable[str], goal: Goal
) -> RewardBreakdown:
    """WebShop's reward for buying ``product`` with ``chosen_options`` (``{kind: value}`` or
    the values) when the task is ``goal``."""
    values = list(
        chosen_options.values() if isinstance(chosen_options, Mapping) else chosen_options
    )
    kind = type_reward(product, goal)
    attrs = attribute_matches(product, goal.attributes)
    opts = option_matches(values, goal.options)
    price_ok = product.price <= goal.price_upper
    numerator = len(attrs) + len(opts) + int(price_ok)
    denominator = len(goal.attributes) + len(goal.options) + 1
    score = kind.r_type * numerator / denominator
    return RewardBreakdown(
        score=score,
        r_type=kind.r_type,
        attributes_matched=tuple(attrs),
        options_matched=tuple(opts),
        price_ok=price_ok,
        num_attributes=len(goal.attributes),
        num_options=len(goal.options),
        query_match=kind.query_match,
        category_match=kind.category_match,
        title_score=kind.title_score,
    )
