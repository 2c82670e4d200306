"""WebShop: search, WebShop's reward, pages and actions, data files, generator, relabeler."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from armap_agents.environments.base import Environment, Relabeler
from armap_agents.environments.webshop import (
    Catalog,
    Goal,
    Product,
    WebShopEnv,
    WebShopRelabeler,
    generate_catalog,
    load_webshop_catalog,
    score_purchase,
    suggest_queries,
    write_webshop_files,
)
from armap_agents.environments.webshop.catalog import NO_PRICE_LIMIT
from armap_agents.environments.webshop.generator import _FILLERS, load_vocabulary
from armap_agents.environments.webshop.reward import title_nouns, token_set_ratio
from armap_agents.environments.webshop.search import SearchIndex
from armap_agents.errors import ConfigError, MissingDependency
from armap_agents.policies import ExpertPolicy, RandomPolicy
from armap_agents.reward.objectives import numeric_attribute
from armap_agents.rollout import run_episode


@pytest.fixture(scope="module")
def index_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webshop-index")


@pytest.fixture(scope="module")
def catalog(index_cache: Path) -> Catalog:
    return generate_catalog(600, seed=0, cache_dir=index_cache).warm()


@pytest.fixture
def shop(catalog: Catalog) -> WebShopEnv:
    return WebShopEnv(catalog)


def _click_target(env: WebShopEnv, goal: Goal) -> None:
    """Search with the instruction and open the goal's product from the results."""
    env.step(f"search[{goal.instruction}]")
    for _ in range(5):
        if f"click[{goal.asin.lower()}]" in env.valid_actions():
            assert env.step(f"click[{goal.asin}]").valid
            return
        assert env.step("click[next >]").valid
    raise AssertionError("target not in the results")


# -- search ------------------------------------------------------------------------------
def test_the_target_ranks_at_the_top_for_its_own_goal(catalog: Catalog) -> None:
    ranks = []
    for goal in catalog.goals:
        asins = [p.asin for p in catalog.search(goal.instruction)]
        assert len(asins) <= 50
        ranks.append(asins.index(goal.asin) if goal.asin in asins else 50)
    top10 = sum(r < 10 for r in ranks) / len(ranks)
    assert top10 >= 0.9, ranks
    assert sum(r == 0 for r in ranks) / len(ranks) >= 0.4
    assert max(ranks) < 50  # always among the 50 results


def test_search_is_deterministic_stems_and_ignores_unknown_words(catalog: Catalog) -> None:
    first = [p.asin for p in catalog.search("machine wash shirts")]
    assert first == [p.asin for p in catalog.search("Machine-Washing SHIRT!")]  # stemmed
    assert len(catalog.search("black")) == 50
    assert catalog.search("qwertyuiop zxcvbnm") == []
    assert catalog.search("the and of") == []  # only stop words


def test_the_index_is_persisted_and_loaded_by_a_second_catalog(
    catalog: Catalog, index_cache: Path
) -> None:
    saved = list(index_cache.glob("bm25-*"))
    assert len(saved) == 1 and (saved[0] / "params.index.json").exists()
    assert catalog.fingerprint[:32] in saved[0].name
    again = Catalog(catalog.products, catalog.goals, cache_dir=index_cache)
    start = time.perf_counter()
    again.warm()
    assert time.perf_counter() - start < 2.0
    assert list(index_cache.glob("bm25-*")) == saved  # loaded, not rebuilt elsewhere
    for goal in catalog.goals[:20]:
        assert [p.asin for p in again.search(goal.instruction)] == [
            p.asin for p in catalog.search(goal.instruction)
        ]
    memory_only = Catalog(catalog.products[:50], cache_dir=False)
    assert memory_only.search(catalog.products[0].title)


def test_a_built_index_matches_a_saved_and_loaded_one(tmp_path: Path) -> None:
    texts = ["red running shoes", "blue running shorts", "red wine glasses", "green tea bags"]
    built = SearchIndex.build(texts)
    built.save(tmp_path / "i")
    loaded = SearchIndex.load(tmp_path / "i")
    assert built.search("red running") == loaded.search("red running") == [0, 1, 2]
    assert loaded.search("tea") == [3]


# -- reward ------------------------------------------------------------------------------
def _shirt(**changes) -> Product:
    fields = dict(
        asin="B000000001",
        title="Acme Men's Crew Neck T-Shirt with Short Sleeve",
        price=19.99,
        price_tag="$19.99",
        category="fashion",
        product_category="Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
        query="men's t-shirt",
        description="A soft cotton tee.",
        bullet_points=("Classic fit", "Tumble dry low"),
        options=MappingProxyType({"color": ("black", "navy blue"), "size": ("small", "large")}),
        attributes=("machine wash", "short sleeve"),
    )
    fields.update(changes)
    return Product(**fields)


_GOAL = Goal(
    asin="B000000001",
    instruction="i need a machine washable men's t-shirt with classic fit, navy blue, large",
    attributes=("machine washable", "classic fit"),
    options=("navy blue", "large"),
    price_upper=30.0,
    name="Acme Men's Crew Neck T-Shirt with Short Sleeve",
    query="men's t-shirt",
    product_category="Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
)


def test_reward_full_match_is_one() -> None:
    r = score_purchase(_shirt(), {"color": "navy blue", "size": "large"}, _GOAL)
    # "machine washable" matches the attribute "machine wash" fuzzily (86 > 85);
    # "classic fit" is found verbatim in a bullet point
    assert r.attributes_matched == ("machine washable", "classic fit")
    assert r.score == 1.0 and r.success and r.r_type == 1.0


def test_reward_loses_one_share_per_missing_part() -> None:
    # 2 attributes + 2 options + price = 5 parts
    missing_attribute = _shirt(bullet_points=("Tumble dry low",))
    r = score_purchase(missing_attribute, {"color": "navy blue", "size": "large"}, _GOAL)
    assert r.attributes_matched == ("machine washable",) and r.score == pytest.approx(4 / 5)
    r = score_purchase(_shirt(), {"color": "black", "size": "large"}, _GOAL)
    assert r.options_matched == ("large",) and r.score == pytest.approx(4 / 5)
    r = score_purchase(_shirt(), {}, _GOAL)
    assert r.score == pytest.approx(3 / 5)
    r = score_purchase(_shirt(price=35.0), {"color": "navy blue", "size": "large"}, _GOAL)
    assert not r.price_ok and r.score == pytest.approx(4 / 5)
    r = score_purchase(_shirt(price=30.0), ["navy blue", "large"], _GOAL)  # at the limit: ok
    assert r.price_ok and r.score == 1.0
    unlimited = dataclasses.replace(_GOAL, price_upper=NO_PRICE_LIMIT)
    assert score_purchase(_shirt(price=999.0), ["navy blue", "large"], unlimited).success


def test_reward_type_factor() -> None:
    other = dict(query="coffee table", product_category="Home & Kitchen › Furniture › Tables")
    # nothing of the target's type: no shared title noun -> r_type 0
    table = _shirt(title="Oakly Round Coffee Table", **other)
    assert score_purchase(table, ["navy blue", "large"], _GOAL).score == 0.0
    assert title_nouns(_GOAL.name) == {"acme", "men's", "crew", "neck", "shirt", "short", "sleeve"}
    # 1 of the target title's 7 nouns (14%), no query or category match -> 0.5
    cheap = _shirt(title="Acme Coffee Table", **other)
    r = score_purchase(cheap, ["navy blue", "large"], _GOAL)
    assert r.title_score == pytest.approx(1 / 7) and r.r_type == 0.5
    assert r.score == pytest.approx(0.5)
    # the same title from the target's search query -> 1
    assert score_purchase(_shirt(title="Acme Coffee Table"), [], _GOAL).r_type == 1.0
    # more than 20% of the nouns (2 of 7) -> 1 without any other match
    assert score_purchase(_shirt(title="Acme Crew Coffee Table", **other), [], _GOAL).r_type == 1
    # under 10% of the nouns -> 0.1, even from the same query
    long_name = "Acme Men's Crew Neck Cotton Jersey T-Shirt with Short Sleeve for Summer Travel"
    goal = dataclasses.replace(_GOAL, name=long_name)
    assert len(title_nouns(long_name)) == 11
    r = score_purchase(_shirt(title="Acme Coffee Table"), ["navy blue", "large"], goal)
    assert r.title_score == pytest.approx(1 / 11) and r.r_type == 0.1
    assert r.score == pytest.approx(0.1)


def test_token_set_ratio_matches_fuzzywuzzy() -> None:
    assert token_set_ratio("machine wash", "machine washable") == 86
    assert token_set_ratio("rubber sole", "sole") == 100  # a subset
    assert token_set_ratio("gluten-free", "Gluten Free") == 100
    assert token_set_ratio("long sleeve", "short sleeve") == 71
    assert token_set_ratio("navy blue", "royal blue") == 63
    assert token_set_ratio("", "anything") == 0


# -- pages and actions ---------------------------------------------------------------------
def test_pages_search_results_item_tabs_back_and_buy(shop: WebShopEnv, catalog: Catalog) -> None:
    goal = catalog.goal("0")
    obs = shop.reset("0")
    assert obs.instruction == goal.instruction
    assert obs.text == f"WebShop [SEP] Instruction: [SEP] {goal.instruction} [SEP] Search"
    assert all(a.startswith("search[") for a in shop.valid_actions())

    r = shop.step("search[black]")
    assert r.valid and shop.page == "results" and r.info["num_results"] == 50
    assert "Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next >" in r.observation
    page1 = shop.valid_actions()
    assert page1[:2] == ["click[back to search]", "click[next >]"] and len(page1) == 12
    r = shop.step("click[next >]")
    assert "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next >" in r.observation
    assert shop.step("click[< prev]").observation.count("Page 1") == 1
    assert shop.valid_actions() == page1

    shop.step("click[back to search]")
    assert shop.page == "search"
    _click_target(shop, goal)
    product = catalog.product(goal.asin)
    r = shop.step("click[description]")
    assert r.info["page"] == "description" and product.description in r.observation
    assert shop.valid_actions() == ["click[back to search]", "click[< prev]"]
    r = shop.step("click[< prev]")
    assert shop.page == "item" and f"Price: {product.price_tag}" in r.observation
    r = shop.step("click[features]")
    assert all(b in r.observation for b in product.bullet_points)
    shop.step("click[< prev]")
    r = shop.step("click[reviews]")
    assert r.valid and shop.page == "reviews"
    shop.step("click[< prev]")
    for value in goal.options:
        r = shop.step(f"click[{value.upper()}]")  # buttons match in any case
        assert r.valid and r.observation.startswith("You have clicked")
        assert r.info["price"] == product.price
    r = shop.step("click[buy now]")
    assert r.done and r.info["purchased"] and r.info["asin"] == goal.asin
    assert r.info["price"] == product.price
    assert r.observation.startswith("Thank you for shopping with us! [SEP] Purchased")
    assert "score" not in r.observation.lower()  # the verdict never reaches the agent
    assert shop.valid_actions() == []
    assert shop.evaluate().success and shop.evaluate().score == 1.0


def test_item_prev_returns_to_the_same_results_page_and_resets_options(
    shop: WebShopEnv, catalog: Catalog
) -> None:
    shop.reset("1")
    shop.step("search[black]")
    shop.step("click[next >]")
    first = shop.valid_actions()[3]  # a product on page 2
    r = shop.step(first)
    assert r.valid and shop.page == "item"
    option = shop.valid_actions()[2]  # the first option value
    assert shop.step(option).info["options"]
    r = shop.step("click[< prev]")
    assert shop.page == "results" and "Page 2 (Total results: 50)" in r.observation
    assert shop.step(first).info["options"] == {}  # a product opens with nothing chosen


def test_choosing_another_value_of_an_option_replaces_it(
    shop: WebShopEnv, catalog: Catalog
) -> None:
    goal = catalog.goal("2")
    shop.reset("2")
    _click_target(shop, goal)
    product = catalog.product(goal.asin)
    kind, values = next(iter(product.options.items()))
    shop.step(f"click[{values[0]}]")
    r = shop.step(f"click[{values[1]}]")
    assert r.info["options"] == {kind: values[1]}
    assert r.observation.count("You have clicked") == 1


@pytest.mark.parametrize(
    ("setup", "action", "reason"),
    [
        ([], "hello", "could not parse"),
        ([], "click[buy now]", "there is no button 'buy now' on the search page"),
        ([], "search[   ]", "the search query is empty"),
        (["search[black]"], "search[white]", "there is no search box on this page"),
        (["search[black]"], "click[b000000000]", "there is no button 'b000000000'"),
        (["search[black]"], "click[< prev]", "there is no button '< prev'"),
        (["search[black]"], "click[buy now]", "Buttons: back to search, next >"),
    ],
)
def test_invalid_actions_say_why_and_change_nothing(
    shop: WebShopEnv, setup: list[str], action: str, reason: str
) -> None:
    shop.reset("0")
    before = ""
    for a in setup:
        before = shop.step(a).observation
    before = before or shop.reset("0").text
    actions_before = shop.valid_actions()
    r = shop.step(action)
    assert not r.valid and not r.done and reason in r.observation
    assert r.observation.startswith("Invalid action:") and r.observation.endswith(before)
    assert shop.valid_actions() == actions_before and r.info["error"]


def test_after_buying_every_action_is_invalid(shop: WebShopEnv, catalog: Catalog) -> None:
    shop.reset("0")
    _click_target(shop, catalog.goal("0"))
    shop.step("click[buy now]")
    r = shop.step("click[back to search]")
    assert not r.valid and r.done and "the episode is over" in r.observation


def test_every_listed_action_is_valid(shop: WebShopEnv) -> None:
    shop.reset("3")
    for _ in range(12):  # walk one path, trying every listed action on a copy
        actions = shop.valid_actions()
        assert actions and len(actions) == len(set(actions))
        for action in actions:
            assert shop.clone().step(action).valid, action
        chosen = next((a for a in actions if "buy now" not in a and "back" not in a), actions[0])
        shop.step(chosen)


def test_rich_observations_mark_buttons_and_choices(catalog: Catalog) -> None:
    env = WebShopEnv(catalog, observation_mode="text_rich")
    goal = catalog.goal("0")
    assert env.reset("0").text.endswith("[button] Search [button_]")
    _click_target(env, goal)
    product = catalog.product(goal.asin)
    kind, values = next(iter(product.options.items()))
    r = env.step(f"click[{values[0]}]")
    assert r.observation.startswith(f"You have clicked {values[0]}.\n")
    assert f"\n  [clicked button] {values[0]} [clicked button_]\n" in r.observation
    assert f"\n  [button] {values[1]} [button_]\n" in r.observation
    assert r.observation.endswith("[button] Buy Now [button_]")
    r = env.step("click[< prev]")  # back to the results: the visited product is marked
    assert f"\n\n[clicked button] {goal.asin} [clicked button_]\n" in r.observation
    assert "\n[button] Back to Search [button_]\n" in r.observation
    with pytest.raises(ConfigError, match="observation_mode"):
        WebShopEnv(catalog, observation_mode="html")


def test_suggested_queries_come_from_the_instruction() -> None:
    text = (
        "i am looking for a sulfate free shampoo with argan oil, in coconut scent, "
        "and price lower than 30.00 dollars"
    )
    assert suggest_queries(text) == [
        "sulfate free shampoo argan oil coconut scent",
        "sulfate free shampoo",
        "sulfate free shampoo argan oil",
    ]
    assert suggest_queries(text, 1) == ["sulfate free shampoo argan oil coconut scent"]


def test_tasks_splits_and_protocols(shop: WebShopEnv, catalog: Catalog) -> None:
    n = len(catalog.goals)
    test, dev, train = shop.task_ids("test"), shop.task_ids("dev"), shop.task_ids("train")
    assert test == [str(i) for i in range(n // 5)] and len(dev) == n // 5
    assert len(test) + len(dev) + len(train) == n == len(shop.task_ids("all"))
    with pytest.raises(ValueError, match="unknown split"):
        shop.task_ids("valid")
    with pytest.raises(KeyError, match="unknown WebShop task"):
        shop.reset(str(n))
    with pytest.raises(RuntimeError, match="reset"):
        WebShopEnv(catalog).step("search[x]")
    assert isinstance(shop, Environment)
    assert isinstance(WebShopRelabeler(shop), Relabeler)
    assert "search[" in WebShopEnv.prompt_guide.action and WebShopEnv.prompt_guide.synthesis


def test_a_factory_shares_one_catalog(catalog: Catalog) -> None:
    make = WebShopEnv.factory(catalog)
    a, b = make(), make()
    assert a is not b and a.catalog is b.catalog is catalog
    with pytest.raises(ConfigError, match="either a catalog"):
        WebShopEnv.factory(catalog, num_products=10)


# -- episodes, objectives, relabeling -------------------------------------------------------
def test_a_random_policy_episode_ends_with_an_evaluation(shop: WebShopEnv) -> None:
    scores, prices = [], []
    for seed in range(10):
        t = run_episode(shop, RandomPolicy(), "4", seed=seed, max_steps=15)
        assert t.error is None and t.evaluation is not None
        assert 0.0 <= t.evaluation.score <= 1.0
        scores.append(t.evaluation.score)
        if t.done:
            assert t.info["env"]["purchased"]
            assert numeric_attribute("price", sign=-1)(t) == -t.info["env"]["price"]
            prices.append(t.info["env"]["price"])
    assert prices  # random exploration does buy things
    assert any(s > 0 for s in scores)


def test_the_relabeler_writes_goals_its_positives_fulfil(
    shop: WebShopEnv, catalog: Catalog
) -> None:
    trajectories = [
        run_episode(shop, RandomPolicy(), "5", seed=s, max_steps=15, episode_id=f"5#{s}")
        for s in range(16)
    ]
    triplets = WebShopRelabeler(shop).relabel(trajectories, seed=0)
    assert {t.source for t in triplets} == {"other-purchase", "other-option", "prefix"}
    original = catalog.goal("5").instruction
    for t in triplets:
        if t.source == "prefix":  # the positive cut before its purchase: see test_prefix_pairs
            assert len(t.positive.steps) == len(t.negative.steps)
            continue
        audit = t.positive.info["hindsight_goal"]
        assert t.negative.info["hindsight_goal"] == audit
        product = catalog.product(audit["asin"])
        goal = Goal(
            asin=product.asin,
            instruction=t.intent,
            attributes=tuple(audit["attributes"]),
            options=tuple(audit["options"]),
            price_upper=audit["price_upper"],
            name=product.title,
            query=product.query,
            product_category=product.product_category,
        )
        assert t.intent.startswith(
            ("i ", "im ", "id ", "find", "get", "buy", "looking", "show", "can", "help")
        )
        for trajectory, success in ((t.positive, True), (t.negative, False)):
            assert trajectory.intent == t.intent
            assert original not in trajectory.render() or original == t.intent
            assert t.intent in trajectory.initial_observation
            replay = shop.clone()
            replay.reset("5")
            for step in trajectory.steps:
                if step.valid:
                    replay.step(step.action)
            if replay.purchase is None:
                assert not success
                continue
            bought, options = replay.purchase
            assert score_purchase(bought, options, goal).success is success


# -- data ---------------------------------------------------------------------------------
def _write_original_files(directory: Path) -> None:
    products = [
        {
            "asin": "B07ABCDEF1",
            "name": "Earthly Deodorant | Natural and Safe for Sensitive Skin, 3-Ounce",
            "category": "beauty",
            "query": "deodorant",
            "product_category": "Beauty & Personal Care › Personal Care › Deodorants",
            "full_description": "Aluminum free deodorant.",
            "small_description": ["Lasts all day", "Vegan"],
            "pricing": "$10.99",
            "images": [],
            "customization_options": {
                "Scent": [{"value": "Bright Citrus", "image": "x.jpg"}, {"value": "Lavender"}],
                "Size": [{"value": "3 Ounce (Pack of 1)"}, {"value": "Travel Set/4-Pack"}],
            },
        },
        {
            "asin": "B07ABCDEF2",
            "name": "Soft Throw Blanket",
            "category": "garden",
            "query": "throw blanket",
            "product_category": "Home & Kitchen › Bedding › Blankets & Throws",
            "full_description": None,
            "small_description": "One bullet as a string",
            "pricing": "$20.00 - $40.00",
            "customization_options": None,
        },
        {"asin": "nan", "name": "skipped", "pricing": "$1.00"},
        {"asin": "B07ABCDEF1234", "name": "skipped: asin too long", "pricing": "$1.00"},
        {"asin": "B07ABCDEF1", "name": "skipped: duplicate", "pricing": "$1.00"},
        {"asin": "B07ABCDEF3", "name": "No Price Widget", "pricing": ""},
    ]
    attributes = {
        "B07ABCDEF1": {
            "attributes": ["sensitive skin", "long lasting"],
            "instruction": "Find me long lasting deodorants",
            "instruction_attributes": ["long lasting"],
        },
        "B07ABCDEF2": {"attributes": ["super soft"]},
    }
    human = {
        "B07ABCDEF1": [
            {
                "asin": "B07ABCDEF1",
                "instruction": "i need a natural deodorant for sensitive skin in lavender.",
                "instruction_attributes": ["sensitive skin"],
                "instruction_options": ["lavender"],
            },
            {"asin": "B07ABCDEF1", "instruction": "no attributes", "instruction_attributes": []},
        ],
        "B07ABCDEF2": [
            {
                "asin": "B07ABCDEF2",
                "instruction": "a super soft throw blanket",
                "instruction_attributes": ["super soft"],
                "instruction_options": [],
            }
        ],
    }
    (directory / "items_shuffle_1000.json").write_text(json.dumps(products))
    (directory / "items_ins_v2_1000.json").write_text(json.dumps(attributes))
    (directory / "items_human_ins.json").write_text(json.dumps(human))


def test_original_files_load(tmp_path: Path) -> None:
    _write_original_files(tmp_path)
    catalog = load_webshop_catalog(tmp_path, cache_dir=tmp_path / "cache")
    assert [p.asin for p in catalog.products] == ["B07ABCDEF1", "B07ABCDEF2", "B07ABCDEF3"]
    deo = catalog.product("b07abcdef1")
    assert deo.title.startswith("Earthly Deodorant") and deo.price == 10.99
    assert deo.price_tag == "$10.99" and deo.query == "deodorant"
    assert dict(deo.options) == {
        "scent": ("bright citrus", "lavender"),
        "size": ("3 ounce (pack of 1)", "travel set | 4-pack"),
    }
    assert deo.attributes == ("sensitive skin", "long lasting")
    assert deo.bullet_points == ("Lasts all day", "Vegan")
    blanket = catalog.product("B07ABCDEF2")
    assert blanket.price_tag == "$20.0 to $40.0" and 20.0 <= blanket.price <= 40.0
    assert blanket.bullet_points == ("One bullet as a string",) and blanket.options == {}
    assert catalog.product("B07ABCDEF3").price == 100.0  # WebShop's default
    assert len(catalog.goals) == 2  # the goal without attributes is dropped
    goal = next(g for g in catalog.goals if g.asin == "B07ABCDEF1")
    assert goal.attributes == ("sensitive skin",) and goal.options == ("lavender",)
    assert goal.instruction.startswith("i need a natural deodorant for sensitive skin in lavender")
    assert goal.price_upper > deo.price
    assert goal.instruction.endswith(f", and price lower than {goal.price_upper:.2f} dollars")
    env = WebShopEnv(catalog)
    task = str(catalog.goals.index(goal))
    env.reset(task)
    env.step("search[deodorant sensitive skin]")
    env.step("click[b07abcdef1]")
    env.step("click[lavender]")
    assert env.step("click[buy now]").done and env.evaluate().success

    # without human instructions: the synthetic instructions of the attributes file
    (tmp_path / "items_human_ins.json").unlink()
    synthetic = load_webshop_catalog(tmp_path, cache_dir=False)
    assert [g.attributes for g in synthetic.goals] == [("long lasting",)]


def test_a_generated_catalog_round_trips_through_the_original_format(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_webshop_files(catalog, tmp_path)
    monkeypatch.setenv("WEBSHOP_DATA", str(tmp_path))
    loaded = WebShopEnv(cache_dir=str(tmp_path / "cache")).catalog  # found through the variable
    assert loaded.products == catalog.products
    assert sorted((g.asin, g.attributes, g.options) for g in loaded.goals) == sorted(
        (g.asin, g.attributes, g.options) for g in catalog.goals
    )


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MissingDependency, match="items_shuffle"):
        load_webshop_catalog(tmp_path)
    with pytest.raises(MissingDependency, match="does not exist"):
        load_webshop_catalog(tmp_path / "nope")


# -- generator ----------------------------------------------------------------------------
def test_the_generator_is_deterministic(catalog: Catalog) -> None:
    again = generate_catalog(600, seed=0, cache_dir=False)
    assert again.products == catalog.products and again.goals == catalog.goals
    assert again.fingerprint == catalog.fingerprint
    other = generate_catalog(600, seed=1, cache_dir=False)
    assert other.products != catalog.products
    assert len(generate_catalog(37, cache_dir=False)) == 37


def test_generated_goals_are_reachable_and_have_near_misses(catalog: Catalog) -> None:
    assert {p.category for p in catalog.products} == {
        "beauty",
        "grocery",
        "electronics",
        "fashion",
        "furniture",
    }
    near_misses = 0
    for goal in catalog.goals:
        target = catalog.product(goal.asin)
        assert score_purchase(target, goal.options, goal).success
        assert target.price <= goal.price_upper and goal.attributes
        assert goal.instruction.endswith("dollars") or goal.price_upper == NO_PRICE_LIMIT
        same_kind = [p for p in catalog.products if p.query == goal.query and p is not target]
        near_misses += sum(
            0.5 <= score_purchase(p, [v for v in goal.options if p.option_kind(v)], goal).score < 1
            for p in same_kind
        )
    assert near_misses / len(catalog.goals) >= 3


def test_generated_text_never_mentions_attributes_by_accident() -> None:
    vocabulary = load_vocabulary()
    attributes = {a for t in vocabulary.types for a in t.attributes}
    assert len(attributes) > 200 and len(vocabulary.types) >= 60
    fillers = [f.lower() for texts in _FILLERS.values() for f in texts]
    assert not [(a, f) for a in attributes for f in fillers if a in f]
    values = {v for vs in vocabulary.option_values.values() for v in vs}
    assert not values & {"back to search", "next >", "< prev", "buy now", "description"}


def test_the_default_catalog_searches_well(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WEBSHOP_DATA", raising=False)
    monkeypatch.setenv("ARMAP_CACHE_DIR", str(tmp_path))
    make = WebShopEnv.factory()
    catalog = make().catalog
    assert len(catalog) == 3000 and list(tmp_path.glob("webshop-index/bm25-*"))
    hits = sum(
        g.asin in [p.asin for p in catalog.search(g.instruction)[:10]] for g in catalog.goals
    )
    assert hits / len(catalog.goals) >= 0.9


# -- the expert (ExpertPolicy's hook) ----------------------------------------------------------
def test_the_expert_buys_the_target_of_test_goals_at_epsilon_zero(
    shop: WebShopEnv, catalog: Catalog
) -> None:
    for task_id in shop.task_ids("test")[:10]:
        t = run_episode(shop, ExpertPolicy(0.0), task_id, seed=0, max_steps=15)
        assert t.error is None and t.evaluation is not None
        assert t.evaluation.success, (task_id, [s.action for s in t.steps])
        assert all(step.valid for step in t.steps)
        assert shop.purchase is not None
        assert shop.purchase[0].asin == catalog.goal(task_id).asin
        assert shop.expert_action() is None  # nothing left to do once bought


def _detours(env: WebShopEnv, goal: Goal) -> list[list[str]]:
    """Scripted non-expert starts (``env`` just reset): another product and one of its tabs,
    back to search from the results, and the target with a wrong option value chosen."""
    probe = env.clone()
    search = probe.valid_actions()[-1]
    probe.step(search)
    products = [a for a in probe.valid_actions() if env.catalog.has_product(a[6:-1])]
    other = next(a for a in products if a != f"click[{goal.asin.lower()}]")
    detours = [[search, other, "click[reviews]"], [search, "click[back to search]"]]
    product = env.catalog.product(goal.asin)
    wrong = [v for vs in product.options.values() for v in vs if v not in goal.options]
    if wrong:
        opening = [f"search[{goal.instruction}]", *_target_clicks(env, goal)]
        detours.append([*opening, f"click[{wrong[0]}]"])
    return detours


def _target_clicks(env: WebShopEnv, goal: Goal) -> list[str]:
    """The clicks that open the target from the results of ``search[<instruction>]``."""
    probe = env.clone()
    probe.step(f"search[{goal.instruction}]")
    clicks = []
    while f"click[{goal.asin.lower()}]" not in probe.valid_actions():
        clicks.append("click[next >]")
        assert probe.step("click[next >]").valid
    return [*clicks, f"click[{goal.asin.lower()}]"]


def test_the_expert_recovers_after_detours(shop: WebShopEnv, catalog: Catalog) -> None:
    wrong_options = 0
    for task_id in shop.task_ids("test")[:5]:
        goal = catalog.goal(task_id)
        shop.reset(task_id)
        detours = _detours(shop, goal)
        wrong_options += len(detours) == 3
        for prefix in detours:
            t = run_episode(shop, ExpertPolicy(0.0), task_id, seed=0, max_steps=15, prefix=prefix)
            assert [s.action for s in t.steps[: len(prefix)]] == prefix
            assert all(s.valid for s in t.steps), [s.action for s in t.steps]
            assert t.evaluation is not None and t.evaluation.success, [s.action for s in t.steps]
    assert wrong_options >= 3


def test_the_expert_changes_nothing_on_any_page(shop: WebShopEnv, catalog: Catalog) -> None:
    goal = catalog.goal("0")
    shop.reset("0")
    pages = set()
    for action in [*_detours(shop, goal)[0], "click[< prev]", "click[< prev]", *[""] * 6]:
        before = shop.clone()
        expert = shop.expert_action()
        assert expert is not None and expert in shop.valid_actions()
        assert shop.page == before.page and shop.valid_actions() == before.valid_actions()
        assert shop.clone().step(expert).observation == before.step(expert).observation
        pages.add(shop.page)
        if shop.step(action or expert).done:
            break
    assert pages >= {"search", "results", "item", "reviews"}
    assert shop.evaluate().success


def test_the_expert_aims_at_the_best_product_when_no_search_finds_the_target() -> None:
    target = _shirt(title="Acme Crew Neck Tee", options=MappingProxyType({"color": ("red",)}))
    polo = _shirt(asin="B000000002", title="Acme Polo Shirt")  # navy blue and large on offer
    worse = _shirt(
        asin="B000000003",
        title="Acme Polo Shirt Classic",
        options=MappingProxyType({"color": ("black",), "size": ("small",)}),
    )
    goal = dataclasses.replace(
        _GOAL,
        instruction="i need a polo shirt in navy blue, large",
        attributes=("machine wash",),
        name="Acme Polo Shirt",
    )
    shop = WebShopEnv(Catalog([target, worse, polo], [goal], cache_dir=False))
    shop.reset("0")
    found = {p.asin for q in suggest_queries(goal.instruction) for p in shop.catalog.search(q)}
    assert target.asin not in found
    t = run_episode(shop, ExpertPolicy(0.0), "0", seed=0, max_steps=15)
    assert shop.purchase == (polo, {"color": "navy blue", "size": "large"})
    assert t.evaluation is not None and t.evaluation.success  # another product scoring 1.0


def test_an_expert_policy_webshop_episode_is_deterministic_for_a_seed(shop: WebShopEnv) -> None:
    def actions(seed: int) -> list[list[str]]:
        policy = ExpertPolicy(0.5)
        return [
            [s.action for s in run_episode(shop, policy, tid, seed=seed, max_steps=15).steps]
            for tid in shop.task_ids("test")[:5]
        ]

    assert actions(3) == actions(3)
    assert actions(3) != actions(4)
