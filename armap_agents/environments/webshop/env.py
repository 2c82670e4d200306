"""WebShop's text shopping environment (Yao et al., 2022), reimplemented offline.

An episode is one goal ("i am looking for a sulfate free shampoo ..., and price lower than
30.00 dollars"); the agent searches, browses and buys one product, and the episode ends with the
purchase. Pages, as in WebShop's text mode:

* **search**: the instruction and a search box; act with ``search[<query>]``;
* **results**: 10 of the (at most 50) products the search returned, per page, with their asin,
  title and price; ``click[<asin>]`` opens one, ``click[next >]`` / ``click[< prev]`` page;
* **item**: the product's options (each value is a button: ``click[large]`` selects it in its
  option kind, replacing an earlier choice), title, price and rating, the tabs
  ``click[description]``, ``click[features]`` (bullet points), ``click[reviews]``, and
  ``click[buy now]``; ``click[< prev]`` goes back to the results;
* **description / features / reviews**: the tab's text; ``click[< prev]`` returns to the item;
* ``click[back to search]`` (on every page but search) starts a new search.

Observations use WebShop's ``text`` format, the page's visible strings joined with ``[SEP]``
(``observation_mode="text"``), or its ``text_rich`` format, where clickables read
``[button] ... [button_]`` and chosen ones ``[clicked button] ... [clicked button_]``
(``observation_mode="text_rich"``). Buttons are matched case-insensitively; valid actions are
listed lower-cased, as WebShop lists its clickables. Two deliberate differences: an item page
starts with "You have clicked <value>." for each chosen option in both modes (WebShop shows it
only in ``text_rich``), and the page after buying shows what was bought (asin, title, options,
attributes, category and price, as WebShop's done page lists them) but not WebShop's target or
score (the evaluator's verdict must not reach a planner or a reward model).

**Valid actions.** On the search page :meth:`WebShopEnv.valid_actions` lists a few concrete
queries derived from the instruction (the whole request without its filler words, its leading
noun phrase, ...: :func:`suggest_queries`), so that a random explorer can search; any other
``search[...]`` is accepted too. Elsewhere it lists every clickable of the page.

**Rewards** are WebShop's (:mod:`.reward`): :meth:`WebShopEnv.evaluate` gives the score of the
purchase in [0, 1] (0 before buying) and success when it is 1. Each valid step's
``StepResult.info`` carries what the page shows, for custom objectives: ``page``, and on an
item page or after buying ``asin``, ``price`` (what the product costs) and ``options``, and
``purchased`` once bought; so ``numeric_attribute("price", sign=-1)`` prefers cheaper
purchases (an episode that ends without buying reports the last product it looked at, or no
price at all).

**Data.** Without a catalog, an environment uses :func:`~.data.default_catalog`: WebShop's files
from ``data_dir`` / ``WEBSHOP_DATA``, else a generated catalog (``num_products``, default
3,000 products with about 460 goals, from ``catalog_seed``). Its search index is persisted
under ``cache_dir`` (default ``$ARMAP_CACHE_DIR/webshop-index`` or
``~/.cache/armap_agents/webshop-index``). Making a catalog costs 0.2 s (3,000 generated
products) to seconds; :meth:`WebShopEnv.factory` makes it once and shares it (and its index)
among the environments it builds. :meth:`WebShopEnv.clone` copies an episode's state; replaying
an episode from ``reset`` is cheap too (well under a millisecond per step, searches included,
at 100k products: see ``benchmarks/webshop_search.py``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from armap_agents.environments.defaults import EnvironmentDefaults, QuickstartPlan, QuickstartSizes
from armap_agents.environments.webshop.catalog import Catalog, Goal, Product
from armap_agents.environments.webshop.data import default_catalog
from armap_agents.environments.webshop.reward import (
    RewardBreakdown,
    option_matches,
    score_purchase,
)
from armap_agents.errors import ConfigError
from armap_agents.prompts import PromptGuide
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Evaluation, Observation, StepResult

__all__ = ["OBSERVATION_MODES", "RESULTS_PER_PAGE", "WebShopEnv", "suggest_queries"]

RESULTS_PER_PAGE = 10
OBSERVATION_MODES = ("text", "text_rich")
BACK_TO_SEARCH = "back to search"
NEXT_PAGE = "next >"
PREV_PAGE = "< prev"
BUY_NOW = "buy now"
TABS = ("description", "features", "reviews")

MAX_ACTION_CHARS = 2_000
"""The longest action :meth:`WebShopEnv.step` reads; a longer one is invalid unread (a query
or a button is a line of text)."""

# linear time: anchored, and a failed match backtracks once over the text after the ``[``
_ACTION_RE = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
# the look-behind keeps a search from starting again at every space of one run of spaces
_PRICE_CLAUSE_RE = re.compile(r"(?<!\s),?\s*(and )?price lower than [\d.,]+ dollars\.?\s*$")
_WORD_RE = re.compile(r"[a-z0-9]+(?:[.'\-][a-z0-9]+)*")
_SPLIT_RE = re.compile(r"[,.;]|\b(?:with|that|which|in|for|also|and price)\b")
_FILLER_WORDS_TEXT = """
    i im i'm id i'd am is are be a an the some me my to for of and or that this it its with
    in on at by from looking look need needs want wants would like find get buy buying purchase
    searching search interested can could you please help show also choose pick should must
    one ones them they am was which"""
_FILLER_WORDS = frozenset(_FILLER_WORDS_TEXT.split())


def suggest_queries(instruction: str, n: int = 3) -> list[str]:
    """Up to ``n`` distinct search queries derived from an instruction: its content words (at
    most 10), its leading phrase (usually the product), and that phrase with the next one (its
    first attributes or options). Filler words ("i am looking for", "some") and the price
    clause are dropped."""
    text = _PRICE_CLAUSE_RE.sub("", instruction.strip().lower())
    words = [w for w in _WORD_RE.findall(text) if w not in _FILLER_WORDS]
    chunks = [
        kept
        for chunk in _SPLIT_RE.split(text)
        if (kept := [w for w in _WORD_RE.findall(chunk) if w not in _FILLER_WORDS])
    ]
    candidates = [" ".join(words[:10])]
    if chunks:
        candidates.append(" ".join(chunks[0][:6]))
        if len(chunks) > 1:
            candidates.append(" ".join([*chunks[0][:6], *chunks[1][:4]]))
    out = list(dict.fromkeys(c for c in candidates if c)) or [text[:100].strip()]
    return out[: max(n, 0)]


@dataclass
class _State:
    page: str = "search"  # search | results | item | description | features | reviews | done
    query: str = ""
    results: tuple[str, ...] = ()
    page_number: int = 1
    asin: str | None = None
    selected: dict[str, str] = field(default_factory=dict)
    visited: frozenset[str] = frozenset()
    purchased: tuple[str, dict[str, str]] | None = None

    def copy(self) -> _State:
        return replace(self, selected=dict(self.selected))


# an element of a page: (kind, text); kinds: text, button, option, chosen, link, visited
_Element = tuple[str, str]


class WebShopEnv:
    """WebShop as an :class:`~armap_agents.environments.base.Environment` (see the module
    docstring for pages, actions, observations, rewards and data)."""

    name = "webshop"
    defaults = EnvironmentDefaults(
        max_steps=15,  # WebShop's usual episode length
        # the generated catalog's goals, in order (the test split is WebShop's first 500)
        quickstart=QuickstartSizes(
            full=QuickstartPlan(
                train_tasks=300, episodes=4, max_train=2000, epochs=1, test_tasks=50, n=8
            ),
            tiny=QuickstartPlan(
                train_tasks=10, episodes=2, max_train=200, epochs=1, test_tasks=2, n=2
            ),
            llm_full=QuickstartPlan(
                train_tasks=40, episodes=1, max_train=None, epochs=1, test_tasks=10, n=4
            ),
            llm_tiny=QuickstartPlan(
                train_tasks=10, episodes=1, max_train=None, epochs=1, test_tasks=2, n=2
            ),
        ),
    )
    prompt_guide = PromptGuide(
        action=(
            "WebShop rules: you are on a shopping website and must buy the product the "
            "instruction describes. Actions: `search[<your keywords>]` on the search page; "
            "`click[<button>]` with a button shown on the page: a product id on a results page "
            "(e.g. click[b0a1b2c3d4]), `next >` or `< prev` to change the results page, an "
            "option value on a product page (a size, a color, ...) to choose it, `description`, "
            "`features` or `reviews` to read more, `< prev` to go back, `back to search`, and "
            "`buy now` to buy the product with the chosen options (this ends the task). Buy "
            "a product that has every requested attribute, choose every requested option, and "
            "stay under the price limit.\n"
            "Example:\n"
            "Action: search[sulfate free shampoo argan oil]\n"
            "Action: click[b0a1b2c3d4]\n"
            "Action: click[coconut]\n"
            "Action: click[16.9 fl oz (pack of 1)]\n"
            "Action: click[buy now]"
        ),
        synthesis=(
            "WebShop conventions: an intent is a shopping instruction like 'i am looking for a "
            "<product> that is <attributes>, in <option values>, and price lower than <N>.00 "
            "dollars' that names what the trajectory actually bought: the product's kind and "
            "some of its attributes, the option values it clicked, and a price limit above the "
            "price it paid. A negative uses the same action syntax (search[...], click[...]) "
            "and page format ('Instruction: [SEP] ... [SEP] Back to Search [SEP] ...') and buys "
            "another product, or the same product with other options, or buys nothing."
        ),
    )
    reward_view = TrajectoryView(
        rewrite=(
            # every page repeats the instruction (the reward model has the intent already)
            (r"(?:WebShop \[SEP\] )?Instruction: \[SEP\] [^\[]*(?:\[SEP\] ?|$)", ""),
            # navigation buttons and page furniture
            (r"Back to Search \[SEP\] ?|< Prev \[SEP\] ?|Next > \[SEP\] ?", ""),
            (r"Page \d+ \(Total results: \d+\) \[SEP\] ?", ""),
            (r" ?\[SEP\] Rating: [^\[]*", ""),
            (r" ?\[SEP\] Description \[SEP\] Features \[SEP\] Reviews \[SEP\] Buy Now", ""),
            # BERT-style tokenizers read "[SEP]" as their own separator token
            (r"\s*\[SEP\]\s*", " | "),
            # a product page: its title and price first, then the options (clipping keeps heads)
            (r"^(?!.*Thank you for shopping)(.+) \| ([^|]+) \| (Price: [^|]+)$", r"\2 | \3 | \1"),
        ),
        max_action_chars=200,
    )
    """What the reward model reads of a WebShop episode (see
    :class:`~armap_agents.reward_view.TrajectoryView`): pages without the repeated instruction
    and buttons, a product's title and price first."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        num_products: int | None = None,
        catalog_seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        observation_mode: str = "text",
        num_suggestions: int = 3,
    ) -> None:
        if observation_mode not in OBSERVATION_MODES:
            raise ConfigError(
                f"unknown observation_mode {observation_mode!r}: use one of {OBSERVATION_MODES}"
            )
        if catalog is not None and (data_dir is not None or num_products is not None):
            raise ConfigError("give either a catalog or data_dir/num_products, not both")
        self.catalog = catalog or default_catalog(
            data_dir, num_products=num_products, catalog_seed=catalog_seed, cache_dir=cache_dir
        )
        self.observation_mode = observation_mode
        self.num_suggestions = num_suggestions
        self._task_id: str | None = None
        self._goal: Goal | None = None
        self._state = _State()

    @classmethod
    def factory(
        cls,
        catalog: Catalog | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        num_products: int | None = None,
        catalog_seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        observation_mode: str = "text",
        num_suggestions: int = 3,
    ) -> Callable[[], WebShopEnv]:
        """An environment factory whose environments share one catalog and its search index
        (built, or loaded from the index cache, now). Use it for exploration and planners."""
        if catalog is None:
            catalog = default_catalog(
                data_dir, num_products=num_products, catalog_seed=catalog_seed, cache_dir=cache_dir
            )
        elif data_dir is not None or num_products is not None:
            raise ConfigError("give either a catalog or data_dir/num_products, not both")
        catalog.warm()
        cls(catalog, observation_mode=observation_mode)  # check the arguments now
        return functools.partial(
            cls, catalog, observation_mode=observation_mode, num_suggestions=num_suggestions
        )

    # -- tasks ---------------------------------------------------------------------------
    def task_ids(self, split: str = "test") -> list[str]:
        """Goal numbers as strings: ``test`` (WebShop's first 500 goals), ``dev``, ``train``
        or ``all`` (see :mod:`.catalog` for small catalogs)."""
        return self.catalog.task_ids(split)

    def goal(self, task_id: str) -> Goal:
        """The goal of a task: the evaluator's data, for metrics and relabeling only."""
        return self.catalog.goal(task_id)

    # -- episode -------------------------------------------------------------------------
    def reset(self, task_id: str) -> Observation:
        goal = self.catalog.goal(task_id)
        self._task_id, self._goal = task_id, goal
        self._state = _State()
        return Observation(instruction=goal.instruction, text=self._render())

    def _require_started(self) -> Goal:
        if self._goal is None:
            raise RuntimeError("call reset(task_id) before step()")
        return self._goal

    def valid_actions(self) -> list[str]:
        """The page's clickables as ``click[...]`` (lower-cased); on the search page, suggested
        ``search[...]`` queries (see :func:`suggest_queries`); nothing after buying."""
        goal = self._require_started()
        s = self._state
        if s.page == "search":
            return [f"search[{q}]" for q in suggest_queries(goal.instruction, self.num_suggestions)]
        return [f"click[{b}]" for b in self._clickables()]

    def _clickables(self) -> list[str]:
        s = self._state
        if s.page == "results":
            buttons = [BACK_TO_SEARCH]
            if s.page_number > 1:
                buttons.append(PREV_PAGE)
            if s.page_number < self._num_pages():
                buttons.append(NEXT_PAGE)
            return buttons + [a.lower() for a in self._page_asins()]
        if s.page == "item":
            product = self._product()
            values = [v for vs in product.options.values() for v in vs]
            return [BACK_TO_SEARCH, PREV_PAGE, *dict.fromkeys(values), *TABS, BUY_NOW]
        if s.page in TABS:
            return [BACK_TO_SEARCH, PREV_PAGE]
        return []

    def step(self, action: str) -> StepResult:
        self._require_started()
        s = self._state
        if s.page == "done":
            return self._invalid("the episode is over: the product was bought.")
        if len(action) > MAX_ACTION_CHARS:
            return self._invalid(
                f"the action is {len(action):,} characters long. Actions are search[<query>] "
                "(on the search page) or click[<button>] with a button of this page."
            )
        m = _ACTION_RE.match(action)
        if not m:
            return self._invalid(
                f"could not parse {action!r}. Actions are search[<query>] (on the search page) "
                "or click[<button>] with a button of this page."
            )
        verb, arg = m.group(1).lower(), " ".join(m.group(2).split())
        if verb == "search":
            if s.page != "search":
                return self._invalid(
                    "there is no search box on this page: click[back to search] first."
                )
            if not arg:
                return self._invalid("the search query is empty: write search[<keywords>].")
            results = tuple(p.asin for p in self.catalog.search(arg))
            self._state = replace(
                s.copy(), page="results", query=arg, results=results, page_number=1
            )
            return self._ok()
        return self._click(arg.lower())

    def _click(self, button: str) -> StepResult:
        s = self._state
        if s.page == "search":
            if button == "search":
                return self._invalid("type your keywords: search[<query>].")
            return self._invalid(
                f"there is no button {button!r} on the search page: use search[<query>]."
            )
        clickables = self._clickables()
        if button not in clickables:
            shown = ", ".join(clickables)
            return self._invalid(f"there is no button {button!r} on this page. Buttons: {shown}.")
        new = s.copy()
        if button == BACK_TO_SEARCH:
            new = _State(visited=s.visited)
        elif s.page == "results":
            if button == NEXT_PAGE:
                new.page_number += 1
            elif button == PREV_PAGE:
                new.page_number -= 1
            else:
                asin = self.catalog.product(button).asin
                new.page, new.asin, new.selected = "item", asin, {}
                new.visited = s.visited | {asin}
        elif s.page == "item":
            product = self._product()
            if button == PREV_PAGE:
                new.page, new.asin, new.selected = "results", None, {}
            elif button in TABS:
                new.page = button
            elif button == BUY_NOW:
                new.page = "done"
                new.purchased = (product.asin, dict(s.selected))
            else:
                kind = product.option_kind(button)
                assert kind is not None  # listed among the clickables
                new.selected[kind] = button
        elif s.page in TABS:  # < prev
            new.page = "item"
        self._state = new
        return self._ok()

    def _ok(self) -> StepResult:
        s = self._state
        info: dict[str, object] = {"page": s.page}
        if s.page == "results":
            info.update(query=s.query, page_number=s.page_number, num_results=len(s.results))
        if s.page in ("item", *TABS):
            product = self._product()
            info.update(asin=product.asin, price=product.price, options=dict(s.selected))
        if s.purchased is not None:
            asin, options = s.purchased
            info.update(
                asin=asin,
                price=self.catalog.product(asin).price,
                options=dict(options),
                purchased=True,
            )
        return StepResult(observation=self._render(), done=s.page == "done", valid=True, info=info)

    def _invalid(self, why: str) -> StepResult:
        sep = " [SEP] " if self.observation_mode == "text" else "\n"
        return StepResult(
            observation=f"Invalid action: {why}{sep}{self._render()}",
            done=self._state.page == "done",
            valid=False,
            info={"error": why},
        )

    # -- evaluation ----------------------------------------------------------------------
    def reward_breakdown(self) -> RewardBreakdown | None:
        """WebShop's reward of the purchase with its parts, or None before buying (metrics
        only)."""
        goal = self._require_started()
        if self._state.purchased is None:
            return None
        asin, options = self._state.purchased
        return score_purchase(self.catalog.product(asin), options, goal)

    def evaluate(self) -> Evaluation:
        """WebShop's score of the purchase (0 before buying); success when it is 1."""
        breakdown = self.reward_breakdown()
        if breakdown is None:
            return Evaluation(success=False, score=0.0)
        return Evaluation(success=breakdown.success, score=breakdown.score)

    # -- the expert (a benchmark stand-in) -----------------------------------------------
    def expert_action(self) -> str | None:
        """What an expert shopper does now: the
        :class:`~armap_agents.environments.base.ExpertHook` of the benchmark stand-in
        :class:`~armap_agents.policies.ExpertPolicy` (an LLM agent of a chosen strength); no
        planner or reward model reads it.

        The expert knows the goal (the target product, the option values asked for, the price
        limit) and only takes actions :meth:`valid_actions` lists. It aims at the target, or,
        when no suggested query finds the target, at the best-scoring products those queries
        find (WebShop's score with the best options). From any page: on the search page, the
        suggested ``search[...]`` whose results rank an aimed-at product highest; on a results
        page holding one, ``next >`` / ``< prev`` to its page and a click on it, else (or when
        a new search is fewer clicks away) ``back to search``; on another product's page or a
        tab, ``< prev``; on an aimed-at product's page, each option value still to choose, then
        ``buy now``. So it recovers after any detour. ``None`` once bought. Deterministic;
        changes nothing (three searches of the catalog's index per call, well under a
        millisecond each at 3,000 products).
        """
        goal = self._require_started()
        s = self._state
        if s.page == "done":
            return None
        if s.page in TABS:
            return f"click[{PREV_PAGE}]"
        query, rank, aims = self._expert_aims(goal)
        if s.page == "search":
            return f"search[{query}]"
        if s.page == "item":
            product = self._product()
            if product.asin not in aims:
                return f"click[{PREV_PAGE}]"
            for kind, value in _expert_options(product, goal).items():
                if s.selected.get(kind) != value:
                    return f"click[{value}]"
            return f"click[{BUY_NOW}]"
        # results: the first aimed-at product of these results, on its page, unless a new
        # search reaches one in fewer clicks
        position = next((i for i, asin in enumerate(s.results) if asin in aims), None)
        page = 0 if position is None else position // RESULTS_PER_PAGE + 1
        if position is None or abs(page - s.page_number) > 2 + rank // RESULTS_PER_PAGE:
            return f"click[{BACK_TO_SEARCH}]"
        if page > s.page_number:
            return f"click[{NEXT_PAGE}]"
        if page < s.page_number:
            return f"click[{PREV_PAGE}]"
        return f"click[{s.results[position].lower()}]"

    def _expert_aims(self, goal: Goal) -> tuple[str, int, frozenset[str]]:
        """The expert's query (a suggested one), the rank its results give an aimed-at product,
        and the asins it aims at: the target when a suggested query finds it, else the
        best-scoring products the suggested queries find; the query is the one ranking an
        aimed-at product highest (the first on ties)."""
        found = [
            (query, [p.asin for p in self.catalog.search(query)])
            for query in suggest_queries(goal.instruction, self.num_suggestions)
        ]
        aims = frozenset({goal.asin}) if any(goal.asin in r for _, r in found) else None
        if aims is None:
            scores = {
                asin: _expert_score(self.catalog.product(asin), goal)
                for _, results in found
                for asin in results
            }
            best = max(scores.values(), default=0.0)
            aims = frozenset(asin for asin, score in scores.items() if score == best)
        ranks = [(i, n) for n, (_, r) in enumerate(found) for i, a in enumerate(r) if a in aims]
        rank, n = min(ranks, default=(0, 0))
        return found[n][0], rank, aims

    @property
    def purchase(self) -> tuple[Product, dict[str, str]] | None:
        """The product bought and the options chosen, once bought."""
        if self._state.purchased is None:
            return None
        asin, options = self._state.purchased
        return self.catalog.product(asin), dict(options)

    @property
    def page(self) -> str:
        """The current page: search, results, item, description, features, reviews or done."""
        return self._state.page

    def clone(self) -> WebShopEnv:
        """An independent copy in the current state (sharing the immutable catalog)."""
        copy = WebShopEnv(
            self.catalog,
            observation_mode=self.observation_mode,
            num_suggestions=self.num_suggestions,
        )
        copy._task_id, copy._goal, copy._state = self._task_id, self._goal, self._state.copy()
        return copy

    def close(self) -> None:
        """Nothing to release (the catalog is shared)."""

    # -- pages ---------------------------------------------------------------------------
    def _product(self) -> Product:
        assert self._state.asin is not None
        return self.catalog.product(self._state.asin)

    def _num_pages(self) -> int:
        return max(1, -(-len(self._state.results) // RESULTS_PER_PAGE))

    def _page_asins(self) -> tuple[str, ...]:
        start = (self._state.page_number - 1) * RESULTS_PER_PAGE
        return self._state.results[start : start + RESULTS_PER_PAGE]

    def _elements(self) -> list[_Element]:
        goal = self._goal
        assert goal is not None
        s = self._state
        head: list[_Element] = [("text", "Instruction:"), ("text", goal.instruction)]
        if s.page == "search":
            return [("text", "WebShop"), *head, ("button", "Search")]
        if s.page == "done":
            assert s.purchased is not None
            asin, options = s.purchased
            product = self.catalog.product(asin)
            # what was bought, as WebShop's done page lists it (asin, options, attrs,
            # category), with its title and price; never the target or the score
            return [
                ("text", "Thank you for shopping with us!"),
                ("text", "Purchased"),
                ("text", "asin"),
                ("text", asin),
                ("text", product.title),
                ("text", "options"),
                ("text", json.dumps(options, ensure_ascii=False)),
                ("text", "attrs"),
                ("text", ", ".join(product.attributes) or "none"),
                ("text", "category"),
                ("text", product.product_category or product.category or "none"),
                ("text", f"Price: {product.price_tag}"),
            ]
        elements = [*head, ("button", "Back to Search")]
        if s.page == "results":
            elements.append(("text", f"Page {s.page_number} (Total results: {len(s.results)})"))
            if s.page_number > 1:
                elements.append(("button", "< Prev"))
            if s.page_number < self._num_pages():
                elements.append(("button", "Next >"))
            for asin in self._page_asins():
                product = self.catalog.product(asin)
                elements.append(("visited" if asin in s.visited else "link", asin))
                elements.append(("text", product.title))
                elements.append(("text", product.price_tag))
            return elements
        product = self._product()
        elements.append(("button", "< Prev"))
        if s.page == "item":
            notes = [("text", f"You have clicked {v}.") for v in s.selected.values()]
            for kind, values in product.options.items():
                elements.append(("text", kind))
                chosen = s.selected.get(kind)
                elements.extend(("chosen" if v == chosen else "option", v) for v in values)
            elements += [
                ("text", product.title),
                ("text", f"Price: {product.price_tag}"),
                ("text", f"Rating: {product.rating}"),
                ("button", "Description"),
                ("button", "Features"),
                ("button", "Reviews"),
                ("button", "Buy Now"),
            ]
            return notes + elements
        if s.page == "description":
            elements.append(("text", product.description or "N.A."))
        elif s.page == "features":
            elements.extend(("text", b) for b in product.bullet_points or ("N.A.",))
        else:  # reviews
            for review in product.reviews:
                elements += [
                    ("text", review.title),
                    ("text", f"{review.score} out of 5 stars"),
                    ("text", review.body),
                ]
            if not product.reviews:
                elements.append(("text", "No reviews yet."))
        return elements

    def _render(self) -> str:
        elements = self._elements()
        if self.observation_mode == "text":
            return " [SEP] ".join(text.strip() for _, text in elements if text.strip())
        lines = []
        for kind, text in elements:
            if kind == "button":
                lines.append(f"[button] {text} [button_]")
            elif kind == "option":
                lines.append(f"  [button] {text} [button_]")
            elif kind == "chosen":
                lines.append(f"  [clicked button] {text} [clicked button_]")
            elif kind == "link":
                lines.append(f"\n[button] {text} [button_]")
            elif kind == "visited":
                lines.append(f"\n[clicked button] {text} [clicked button_]")
            else:
                lines.append(text)
        return "\n".join(lines)


def _expert_options(product: Product, goal: Goal) -> dict[str, str]:
    """The option values an expert chooses on ``product`` for ``goal``: per option kind, the
    value matching most of the goal's options (an exact one first), where any matches."""
    chosen = {}
    for kind, values in product.options.items():
        ranked = [
            (len(option_matches([v], goal.options)), v in goal.options, -i, v)
            for i, v in enumerate(values)
        ]
        best = max(ranked, default=None)
        if best is not None and best[0] > 0:
            chosen[kind] = best[3]
    return chosen


def _expert_score(product: Product, goal: Goal) -> float:
    """WebShop's score of buying ``product`` with the expert's options for ``goal``."""
    return score_purchase(product, _expert_options(product, goal), goal).score
