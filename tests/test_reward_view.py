"""The reward model's view of a trajectory: every action kept, observations fitted to a budget,
an environment's rewrite rules, the same text whether a trajectory comes as data or as text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from armap_agents.errors import ConfigError
from armap_agents.reward_view import (
    FINAL_SHARE,
    MIN_SHOWN_CHARS,
    TrajectoryView,
    environment_view,
    parse_rendered,
    window_budget,
)
from armap_agents.types import Step, Trajectory, render_trajectory


def _trajectory(observations: list[str], actions: list[str]) -> Trajectory:
    return Trajectory(
        task_id="t",
        intent="do the thing",
        initial_observation=observations[0],
        steps=[
            Step(action=a, observation=o) for a, o in zip(actions, observations[1:], strict=True)
        ],
    )


LONG = _trajectory(
    ["You are in a shop. " * 30, "Results: " + "item, " * 200, "A page. " * 40, "Bought it."],
    ["search[socks]", "click[item 3]", "click[buy now]"],
)


def test_the_identity_and_an_unbudgeted_view_render_the_canonical_text() -> None:
    assert TrajectoryView.identity().is_identity
    assert TrajectoryView.identity().render(LONG) == render_trajectory(LONG)
    assert not TrajectoryView().is_identity  # fits the window once a model sets one
    assert TrajectoryView().render(LONG) == render_trajectory(LONG)  # no window yet: no cut


def test_a_budget_keeps_every_action_and_clips_observations_to_one_level() -> None:
    view = TrajectoryView(max_chars=400)
    text = view.render(LONG)
    assert len(text) <= 400
    assert [line for line in text.splitlines() if line.startswith("Action: ")] == [
        f"Action: {a}" for a in LONG.actions
    ]
    observations = [line for line in text.splitlines() if line.startswith("Observation: ")]
    assert len(observations) == 4
    assert observations[-1] == "Observation: Bought it."  # short ones are kept whole
    clipped = [o for o in observations if o.endswith(" …")]
    assert len(clipped) == 3
    lengths = [len(o) for o in clipped]
    assert max(lengths) - min(lengths) <= 2  # one level for all (ellipsis and rstrip aside)


def test_the_final_observation_may_take_more_than_the_others() -> None:
    long_end = _trajectory(["start " * 50, "middle " * 50, "the end " * 50], ["a", "b"])
    text = TrajectoryView(max_chars=300, final_weight=3).render(long_end)
    first, middle, final = (ln for ln in text.splitlines() if ln.startswith("Observation: "))
    assert len(final) > 2 * len(middle) and len(first) == len(middle)


def test_rewrite_rules_apply_in_order_and_caps_hold() -> None:
    view = TrajectoryView(
        rewrite=((r"Instruction: [^|]*\| ", ""), (r"\s*\|\s*", " / ")),
        max_observation_chars=20,
        max_action_chars=10,
    )
    t = _trajectory(
        ["Instruction: buy socks | Search", "Instruction: buy socks | a | b | c " * 5, "done"],
        ["search[socks and more socks]", "click[a]"],
    )
    lines = view.render(t).splitlines()
    assert lines[0] == "Observation: Search"
    assert lines[1] == "Action: search[s …"  # capped, never dropped
    assert lines[2].startswith("Observation: a / b / c") and len(lines[2]) <= 13 + 20
    assert lines[-1] == "Observation: done"  # the final observation has its own cap (none)


def test_a_bad_rewrite_pattern_is_refused_when_the_view_is_made() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        TrajectoryView(rewrite=(("(unclosed", ""),))


def test_rendered_text_parses_back_and_renders_through_the_view() -> None:
    multi_line = _trajectory(
        ["Room:\n\ta table\n\ta door", "You open the door.\nIt creaks."], ["open door"]
    )
    parsed = parse_rendered(render_trajectory(multi_line))
    assert parsed is not None and render_trajectory(parsed) == render_trajectory(multi_line)
    view = TrajectoryView(max_chars=64)
    assert view.render_text(render_trajectory(LONG)) == view.render(LONG)
    assert parse_rendered("Task: x\nsomething else") is None
    assert view.render_text("free text, not a trajectory") == "free text, not a trajectory"


def test_environments_propose_their_view() -> None:
    class Plain:
        pass

    class Proposes:
        reward_view = TrajectoryView(max_observation_chars=50)

    class AsDict:
        reward_view = {"max_observation_chars": 60}

    class Wrong:
        reward_view = "short please"

    assert environment_view(Plain) == TrajectoryView()
    assert environment_view(Proposes).max_observation_chars == 50
    assert environment_view(AsDict).max_observation_chars == 60
    with pytest.raises(ConfigError, match="make it a TrajectoryView"):
        environment_view(Wrong)


def test_a_window_sets_the_budget_once() -> None:
    view = TrajectoryView().for_window(512)
    assert view.max_chars == window_budget(512) and view.for_window(128) == view
    assert TrajectoryView.identity().for_window(512).max_chars is None
    assert window_budget(128) < window_budget(512) < window_budget(4096)


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    observations=st.lists(text, min_size=1, max_size=8),
    actions=st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), min_size=1, max_size=30
        ),
        max_size=7,
    ),
    budget=st.integers(64, 2000),
    elide=st.booleans(),
)
def test_any_trajectory_fits_its_budget_with_every_action(
    observations, actions, budget, elide
) -> None:
    n = min(len(observations) - 1, len(actions))
    t = _trajectory(observations[: n + 1], actions[:n])
    out = TrajectoryView(max_chars=budget, elide=elide).render(t)
    labels = 1 if elide else n + 1  # elided: the end state's label at least
    fixed = sum(len("Action: ") + len(a) + 1 for a in t.actions) + labels * len("Observation: \n")
    assert len(out) <= max(budget, fixed)
    assert out.count("Action: ") >= n
    if elide:  # clipped observations before the last keep a readable length
        middle = out.split("\n")[:-1]
        stubs = [x for x in middle if x.startswith("Observation: ") and x.endswith(" …")]
        assert all(len(x) >= len("Observation: ") + MIN_SHOWN_CHARS for x in stubs)


def _courier_episode() -> Trajectory:
    """14 short moves whose labels alone would fill a 128-token window, ending in the state
    that decides success at the end of its last observation."""
    steps = [
        Step(action=f"go {i % 3}", observation=f"You walk. Room: {i % 3}. " * 4) for i in range(13)
    ]
    last = "You drop the lamp. Room: 2. Exits: 0, 1, 3. Here: lamp, key, coin. Carrying: nothing."
    steps.append(Step(action="drop lamp", observation=last))
    return Trajectory(
        task_id="1", intent="bring the lamp to 2", initial_observation="A hall.", steps=steps
    )


def test_an_elided_view_gives_the_labels_room_to_the_end_state() -> None:
    episode = _courier_episode()
    view = TrajectoryView().for_window(128)  # a new model's view
    assert view.elide is True
    text = view.render(episode)
    assert text.startswith("Observation: A hall.\nAction: go 0") and text.count("Action: ") == 14
    assert text.count("Observation: ") == 2  # short ones whole; the middle ones were stubs
    assert text.endswith("Here: lamp, key, coin. Carrying: nothing.")  # the end state whole
    # the same view with every label kept (models saved before elide): the end state clipped
    labelled = view.model_copy(update={"elide": False}).render(episode)
    assert labelled.count("Observation: ") == 15 and labelled.endswith(" …")
    # with room to spare nothing is left out
    roomy = TrajectoryView(max_chars=5000, elide=True).render(episode)
    assert roomy == render_trajectory(episode)


# -- the view inside the reward model, the service and the export ---------------------------


@pytest.fixture(scope="module")
def webshop_model():
    from armap_agents.environments.registry import default_registry
    from armap_agents.reward.model import RewardModel, RewardModelConfig

    view = default_registry().reward_view("webshop")
    return RewardModel.create(RewardModelConfig(max_length=256, view=view))


def test_a_model_fits_its_view_to_its_window_and_scores_through_it(webshop_model) -> None:
    view = webshop_model.config.view
    assert view.max_chars == window_budget(256) and view.rewrite  # WebShop's rules, fitted
    assert webshop_model.render(LONG) == view.render(LONG) != render_trajectory(LONG)
    intent = "buy socks"
    assert webshop_model.score(intent, []) == []
    assert webshop_model.score(intent, [LONG]) == webshop_model.score_texts(
        [intent], [webshop_model.render(LONG)]
    )


def test_a_model_saved_before_views_reads_the_canonical_text(webshop_model, tmp_path) -> None:
    import json

    from armap_agents.reward.model import CONFIG_FILE, RewardModel

    path = webshop_model.save(tmp_path / "rm")
    saved = json.loads((path / CONFIG_FILE).read_text())
    assert saved["view"]["max_chars"] == window_budget(256)
    reloaded = RewardModel.load(path)
    assert reloaded.config.view == webshop_model.config.view
    assert reloaded.score("x", [LONG]) == webshop_model.score("x", [LONG])
    # as written by versions before views (which recorded no digests either)
    for key in ("view", "weights_sha256", "settings_sha256"):
        del saved[key]
    (path / CONFIG_FILE).write_text(json.dumps(saved))
    old = RewardModel.load(path)
    assert old.config.view.is_identity and old.render(LONG) == render_trajectory(LONG)


def test_the_service_reads_texts_and_trajectories_through_the_same_view(webshop_model) -> None:
    from armap_agents.reward.service import RewardRequest

    view = webshop_model.config.view
    as_json = RewardRequest(intent="buy socks", trajectories=[LONG]).pairs(view)
    as_text = RewardRequest(intent="buy socks", trajectories=[render_trajectory(LONG)]).pairs(view)
    query = RewardRequest(query=["Task: buy socks\n" + render_trajectory(LONG)]).pairs(view)
    assert as_json == as_text == query == (["buy socks"], [view.render(LONG)])


def test_the_export_writes_what_the_model_reads(webshop_model, tmp_path) -> None:
    from armap_agents.export import to_preference_record
    from armap_agents.types import Triplet

    negative = LONG.model_copy(update={"steps": LONG.steps[:1]})
    triplet = Triplet(intent="buy socks", positive=LONG, negative=negative)
    record = to_preference_record(triplet, "trl", webshop_model.config.view)
    assert record == {
        "prompt": "Task: buy socks\n",
        "chosen": webshop_model.render(LONG),
        "rejected": webshop_model.render(negative),
    }
    canonical = to_preference_record(triplet)  # no view: the canonical text, as before
    assert canonical["chosen"] == render_trajectory(LONG)


def test_webshop_view_keeps_every_action_and_what_was_bought() -> None:
    import re

    from armap_agents.environments.webshop import WebShopEnv
    from armap_agents.policies import RandomPolicy
    from armap_agents.rollout import run_episode

    env = WebShopEnv()
    view = WebShopEnv.reward_view.for_window(512)
    try:
        task = env.task_ids("train")[3]
        env.reset(task)
        env.step("search[bed frame]")
        product = next(a for a in env.valid_actions() if a.startswith("click[b0"))
        script = ["search[bed frame]", product, "click[buy now]"]
        bought = run_episode(env, RandomPolicy(), task, seed=0, max_steps=3, prefix=script)
        episodes = [bought] + [
            run_episode(env, RandomPolicy(), task, seed=s, max_steps=15) for s in range(5)
        ]
    finally:
        env.close()
    assert bought.actions == script and bought.done
    for t in episodes:
        text = view.render(t)
        assert len(text) <= view.max_chars
        actions = [ln[len("Action: ") :] for ln in text.splitlines() if ln.startswith("Action: ")]
        assert actions == [a[:200] for a in t.actions]
        assert "[SEP]" not in text and "Instruction:" not in text  # no echo, no BERT separators
    lines = view.render(bought).splitlines()
    assert re.match(r"Observation: [^|]+ \| Price: \$", lines[4])  # a product: title, price
    assert lines[-1].startswith("Observation: Thank you for shopping with us! | Purchased | asin")
    assert "attrs |" in lines[-1] and "Price: $" in lines[-1]  # what decides success, at the end


def _long_episode() -> Trajectory:
    """14 verbose steps whose actions alone fill a 128-token window, ending in the one
    observation that says the task was done."""
    steps = [
        Step(
            action=f"go to room number {i} and look around carefully",
            observation=f"Room {i}: a table, a chair, a lamp. " * 5,
        )
        for i in range(13)
    ]
    steps.append(Step(action="put the key in the box", observation="The box is locked. DONE."))
    return Trajectory(
        task_id="1", intent="lock the key away", initial_observation="A hall.", steps=steps
    )


def test_the_end_state_stays_in_view_however_little_the_actions_leave() -> None:
    view = TrajectoryView().for_window(128)  # a new model's view: the end state has a floor
    assert view.final_share == FINAL_SHARE
    text = view.render(_long_episode())
    assert text.endswith("Observation: The box is locked. DONE.")
    assert text.count("Action: ") == 14  # every action still there
    # a view saved before the floor existed renders as it did: the end state clipped away
    legacy = TrajectoryView(max_chars=view.max_chars)
    assert legacy.final_share is None
    assert legacy.render(_long_episode()).endswith("Observation: ")
    # a trajectory that fits is rendered whole, floor or not
    short = Trajectory(task_id="1", intent="x", initial_observation="A hall.", steps=[])
    assert view.render(short) == "Observation: A hall."
