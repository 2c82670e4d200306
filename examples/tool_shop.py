"""A tiny shop as a ToolEnvironment: LangChain tools over an in-memory catalog and a cart.

Tools: ``search(category)`` lists a category's items with prices, ``add_to_cart(item)`` and
``empty_cart()``; ``finish[]`` checks out. Tasks ask for one item ("Buy one pear.") or the
cheapest / priciest item of a category; an episode succeeds when the cart holds exactly that
item. The cart lives in the tools, so they are made anew for every episode (``make_tools``).

``shop_candidates`` lists what a random explorer may do next (``search`` takes only three values,
but ``add_to_cart`` takes any string, so the calls cannot be enumerated from the schemas): search
a category not searched yet; with an empty cart, add an item a search has shown; with a full one,
empty it or check out. A random explorer wins about one episode in eight.

    armap quickstart --env examples/tool_shop.py:make_shop --size tiny
"""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool, tool

from armap_agents import ToolEnvironment, ToolEpisode, ToolTask

Category = Literal["fruit", "dairy", "bakery"]
CATALOG: dict[str, tuple[str, float]] = {
    "apple": ("fruit", 0.50),
    "banana": ("fruit", 0.25),
    "pear": ("fruit", 0.75),
    "milk": ("dairy", 1.20),
    "cheese": ("dairy", 3.50),
    "yogurt": ("dairy", 0.90),
    "bread": ("bakery", 2.00),
    "bagel": ("bakery", 1.10),
}


def make_tools(task: ToolTask) -> list[BaseTool]:
    """The shop's tools, with a fresh cart (one set per episode)."""
    cart: list[str] = []

    @tool
    def search(category: Category) -> str:
        """The items of a category, with their prices."""
        items = [f"{name} ${price:.2f}" for name, (c, price) in CATALOG.items() if c == category]
        return f"{category}: " + ", ".join(items)

    @tool
    def add_to_cart(item: str) -> str:
        """Put one item in the cart."""
        if item not in CATALOG:
            raise ValueError(f"the shop has no {item!r}")
        cart.append(item)
        return "Cart: " + ", ".join(cart)

    @tool
    def empty_cart() -> str:
        """Take everything out of the cart."""
        cart.clear()
        return "Cart: empty"

    return [search, add_to_cart, empty_cart]


def final_cart(episode: ToolEpisode) -> list[str]:
    """The cart at the end of an episode, from its tool calls."""
    cart: list[str] = []
    for call in episode.calls:
        if call.tool == "add_to_cart":
            cart.append(call.args["item"])
        elif call.tool == "empty_cart":
            cart.clear()
    return cart


def bought_the_target(task: ToolTask, episode: ToolEpisode) -> bool:
    """Success: the cart holds exactly the task's item."""
    return final_cart(episode) == [task.data["item"]]


def shop_candidates(task: ToolTask, episode: ToolEpisode) -> list[str]:
    """Searching a category not searched yet; with an empty cart, adding an item a search has
    shown; with a full one, emptying it or checking out."""
    searched = {c.args["category"] for c in episode.calls if c.tool == "search"}
    shown = [n for n, (c, _) in CATALOG.items() if c in searched]
    cart = final_cart(episode)
    categories = [c for c in ("fruit", "dairy", "bakery") if c not in searched]
    actions = [f'search[{{"category": "{c}"}}]' for c in categories]
    if cart:
        return [*actions, "empty_cart[]", "finish[]"]
    return actions + [f'add_to_cart[{{"item": "{n}"}}]' for n in shown]


def shop_tasks() -> list[ToolTask]:
    """One task per item and two per category; the test split holds pear, yogurt, bagel and
    the priciest dairy."""
    tasks = [
        ToolTask(id=f"buy-{name}", instruction=f"Buy one {name}.", data={"item": name})
        for name in CATALOG
    ]
    for category in ("fruit", "dairy", "bakery"):
        items = sorted((p, n) for n, (c, p) in CATALOG.items() if c == category)
        for which, (_, name) in (("cheapest", items[0]), ("priciest", items[-1])):
            instruction = f"Buy the {which} {category} item."
            tasks.append(
                ToolTask(id=f"{which}-{category}", instruction=instruction, data={"item": name})
            )
    test = {"buy-pear", "buy-yogurt", "buy-bagel", "priciest-dairy"}
    return [t.model_copy(update={"split": "test" if t.id in test else "train"}) for t in tasks]


def make_shop() -> ToolEnvironment:
    """The shop environment (what ``--env examples/tool_shop.py:make_shop`` builds)."""
    return ToolEnvironment(
        make_tools,
        shop_tasks(),
        bought_the_target,
        name="tool-shop",
        max_steps=6,
        action_candidates=shop_candidates,
        instructions="Search a category before buying from it; finish[] checks out.",
    )
