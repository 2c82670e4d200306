"""Bring your own environment: the guide's example, import paths on the command line, the
generic OutcomeRelabeler, and ToolEnvironment over LangChain tools."""

from __future__ import annotations

import asyncio
import enum
import json
from pathlib import Path
from typing import Literal

import pytest
from langchain_core.tools import StructuredTool, tool
from pydantic import BaseModel

from armap_agents import (
    BestOfNConfig,
    ConfigError,
    Environment,
    Evaluation,
    ExploreConfig,
    OutcomeRelabeler,
    RandomPolicy,
    Relabeler,
    RelabelSynthesizer,
    RewardModel,
    RewardTrainer,
    RewardTrainerConfig,
    Step,
    ToolEnvironment,
    ToolTask,
    Trajectory,
    Triplet,
    build_best_of_n_graph,
    default_registry,
    explore,
    read_jsonl,
    run_episode,
    synthesize,
)
from armap_agents._import_path import load_import_path
from armap_agents.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GUESS = f"{EXAMPLES / 'guess_number.py'}:GuessNumber"
SHOP = f"{EXAMPLES / 'tool_shop.py'}:make_shop"


# -- the guide's environment ------------------------------------------------------------------
def test_guess_number_follows_the_protocol() -> None:
    env = load_import_path(GUESS)()
    assert isinstance(env, Environment)
    assert len(env.task_ids("train")) == 200 and len(env.task_ids("test")) == 20
    with pytest.raises(ValueError, match="unknown split"):
        env.task_ids("dev")
    first = env.reset("7")
    assert "secret number" in first.instruction and len(env.valid_actions()) == 30
    bad = env.step("guess 31")
    assert not bad.valid and "Invalid action" in bad.observation and env.guesses == []
    wrong = next(a for a in env.valid_actions() if int(a.split()[1]) != env.secret)
    result = env.step(wrong)
    assert result.valid and not result.done and ("too" in result.observation)
    assert wrong not in env.valid_actions()  # each number once
    win = env.step(f"guess {env.secret}")
    assert win.done and "correct" in win.observation
    assert env.evaluate() == Evaluation(success=True, score=1.0)
    assert env.valid_actions() == [] and not env.step("guess 1").valid
    # five misses end the game, lost
    env.reset("7")
    for action in [a for a in env.valid_actions() if a != f"guess {env.secret}"][:5]:
        done = env.step(action).done
    assert done and env.evaluate().success is False


def test_guess_number_is_under_50_lines_without_its_docstring() -> None:
    text = (EXAMPLES / "guess_number.py").read_text()
    body = text.split('"""', 2)[2]  # after the module docstring
    assert len(body.strip().splitlines()) < 50


# -- import paths -------------------------------------------------------------------------------
class _WithRelabeler:
    """An environment class carrying its own relabeler (for the registry test)."""

    relabeler = OutcomeRelabeler


def test_the_registry_resolves_import_paths() -> None:
    registry = default_registry()
    env = registry.make(GUESS, high=10)
    assert env.high == 10 and env.name == "guess-number"
    assert registry.prompt_guide(GUESS).action.startswith("Actions are `guess <n>`")
    assert registry.relabeler_constructor(GUESS) is OutcomeRelabeler  # the generic default
    assert isinstance(registry.relabeler(GUESS), Relabeler)
    # a file is loaded once per process: the same class twice
    assert load_import_path(GUESS) is load_import_path(GUESS)
    # a module path, and a class attribute naming the relabeler
    game24 = "armap_agents.environments.game24:Game24Env"
    assert registry.make(game24).name == "game24"
    here = f"{Path(__file__).resolve()}:_WithRelabeler"
    assert default_registry().relabeler_constructor(here) is OutcomeRelabeler
    factory = registry.factory(SHOP)
    assert factory().name == "tool-shop"
    # an environment's guide written per instance (ToolEnvironment) is found by making one
    assert "add_to_cart" in registry.prompt_guide(SHOP).action


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("no_such_env", KeyError, "or an import path"),
        ("examples/missing.py:Env", ConfigError, "no such file"),
        (f"{EXAMPLES / 'guess_number.py'}:Nope", ConfigError, "has no attribute 'Nope'"),
        (f"{EXAMPLES / 'tool_shop.py'}:CATALOG", ConfigError, "not a class or a function"),
        ("no_such_package.mod:Env", ConfigError, "no module named"),
    ],
)
def test_import_path_errors_say_what_is_wrong(spec, error, message) -> None:
    with pytest.raises(error, match=message):
        default_registry().make(spec)


def test_explore_and_synthesize_an_imported_environment_from_the_cli(tmp_path, capsys) -> None:
    trajectories = tmp_path / "t.jsonl"
    common = ["--env", GUESS, "--env-option", "high=8"]
    argv = ["explore", *common, "--out", str(trajectories), "--max-tasks", "6"]
    assert main([*argv, "--episodes-per-task", "4"]) == 0
    explored = read_jsonl(trajectories, Trajectory)
    assert len(explored) == 24 and any(t.evaluation.success for t in explored)
    assert "from 1 to 8" in explored[0].intent
    out = tmp_path / "synthesis"
    argv = ["synthesize", *common, "--trajectories", str(trajectories), "--out", str(out)]
    assert main([*argv, "--relabeler", "armap_agents.environments.outcome:OutcomeRelabeler"]) == 0
    triplets = read_jsonl(out / "triplets.train.jsonl", Triplet) + read_jsonl(
        out / "triplets.val.jsonl", Triplet
    )
    # final verdicts only: whole trajectories, a success's truncation, and their prefixes
    assert triplets and {t.source for t in triplets} <= {"outcome", "truncated", "prefix"}
    assert "prefix" in {t.source for t in triplets}
    capsys.readouterr()
    assert main([*argv[:-2], "--out", str(tmp_path / "x"), "--relabeler", "nope"]) == 2
    assert "not an import path" in capsys.readouterr().err


@pytest.mark.slow
def test_quickstart_runs_the_guide_environment_end_to_end(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["quickstart", "--env", GUESS, "--size", "tiny", "--run-dir", str(run)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Environment `guess-number`" in out and "| ARMAP-B (N=4) |" in out
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["tasks"] == 3
    assert [r["method"] for r in report["rows"]] == [
        "Sampling",
        "Greedy",
        "ARMAP-B (N=4)",
        "ARMAP-R",
        "ARMAP-M",
        "oracle Best-of-4",
    ]
    assert (run / "reward_model" / "armap_reward.json").is_file()


# -- the generic relabeler --------------------------------------------------------------------
def _played(task: str, actions: list[str], success: bool, *, score=None, done=True, **info):
    return Trajectory(
        task_id=task,
        intent=f"solve {task}",
        initial_observation="start",
        steps=[Step(action=a, observation=f"after {a}") for a in actions],
        episode_id=f"{task}#{'-'.join(actions)}",
        done=done,
        evaluation=Evaluation(success=success, score=float(success) if score is None else score),
        info=info,
    )


def test_outcome_relabeler_pairs_successes_with_failures_of_the_same_task() -> None:
    win = _played("a", ["x", "y", "z"], True)
    near = _played("a", ["x", "q"], False, score=0.5)
    loss = _played("a", ["q"], False)
    loss_too = _played("a", ["r"], False)
    crashed = _played("a", ["x"], False, error="boom")
    other = _played("b", ["x"], False)
    cut_short = _played("a", ["x", "y"], True, done=False)
    data = [win, near, loss, loss_too, crashed, other, cut_short]
    relabeler = OutcomeRelabeler(negatives_per_positive=5)
    triplets = relabeler.relabel(data, seed=0)
    assert triplets == relabeler.relabel(data, seed=0)
    pairs = {
        (t.positive.episode_id, t.negative.episode_id) for t in triplets if t.source == "outcome"
    }
    successes, failures = (
        {win.episode_id, cut_short.episode_id},
        {loss.episode_id, loss_too.episode_id},
    )
    assert pairs == (
        {(s, f) for s in successes for f in failures | {near.episode_id}}
        | {(near.episode_id, f) for f in failures}
    )  # failures rank by score; never a tie, the crashed episode, or another task
    truncated = [t for t in triplets if t.source == "truncated"]
    assert len(truncated) == 1  # only a success the environment ended
    assert truncated[0].negative.steps == win.steps[: len(truncated[0].negative.steps)]
    assert 1 <= len(truncated[0].negative.steps) < 3
    for t in triplets:
        assert t.intent == "solve a" and t.positive.evaluation is None
        assert t.negative.evaluation is None and t.negative.intent == "solve a"
    for t in triplets:  # final scores only: prefixes of the same length, where they differ
        if t.source == "prefix":
            assert len(t.positive.steps) == len(t.negative.steps)
            assert t.positive.render() != t.negative.render()
    assert not any(
        t.source == "truncated" for t in OutcomeRelabeler(truncated=False).relabel(data, 0)
    )


# -- ToolEnvironment ----------------------------------------------------------------------------
class Unit(enum.Enum):
    KG = "kg"
    LB = "lb"


@tool
def convert(amount: float, unit: Unit) -> str:
    """Convert an amount to the other unit."""
    return f"{amount * 2.2 if unit is Unit.KG else amount / 2.2:.1f}"


@tool
def weigh(fruit: Literal["apple", "melon"], precise: bool = False, note: str = "") -> str:
    """Weigh a fruit."""
    grams = {"apple": 150, "melon": 1200}[fruit]
    return f"{grams} g" if precise else f"about {round(grams, -2)} g"


@tool
def shout(text: str) -> str:
    """Repeat the text in capitals."""
    if text == "boom":
        raise RuntimeError("the tool broke")
    return text.upper()


TASKS = [
    {"id": "w1", "instruction": "Find the precise weight of an apple.", "data": {"grams": "150"}},
    {"id": "w2", "instruction": "Find the weight of a melon.", "split": "test"},
]


def _answered(task: ToolTask, episode) -> bool:
    return episode.answer == task.data.get("grams")


def test_tool_calls_parse_in_every_accepted_form() -> None:
    env = ToolEnvironment([weigh, shout, convert], TASKS, _answered, name="kitchen")
    assert isinstance(env, Environment) and env.task_ids() == ["w1"]
    assert env.task_ids("test") == ["w2"] and env.task_ids("all") == ["w1", "w2"]
    first = env.reset("w1")
    assert first.instruction == TASKS[0]["instruction"] and "weigh" in first.text
    for action, observation in [
        ('weigh[{"fruit": "apple", "precise": true}]', "150 g"),
        ('weigh[{"fruit": "melon"}]', "about 1200 g"),
        ('  Action: weigh["apple"] ', "about 200 g"),  # one required argument: a bare value
        ("shout[hello there]", "HELLO THERE"),  # a one-argument tool: plain text
        ('weigh(fruit="apple", precise=True)', "150 g"),  # the Python-call form
        ('convert[{"amount": 10, "unit": "kg"}]', "22.0"),
        ("convert(5, 'lb')", "2.3"),
    ]:
        result = env.step(action)
        assert result.valid and result.observation == observation, action
    calls = env.episode.calls
    assert [c.tool for c in calls][:2] == ["weigh", "weigh"] and calls[0].args["precise"] is True


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("weigh", "could not read 'weigh' as a tool call"),
        ('bake[{"x": 1}]', "there is no tool 'bake'; the tools are weigh, shout, convert, finish"),
        ('convert[{"amount": 1, unit: kg}]', "do not parse: not a JSON object"),
        ('convert[[1, "kg"]]', "expected a JSON object of arguments"),
        ('weigh[{"fruit": "kiwi"}]', "do not fit weigh's schema: fruit: Input should be"),
        (
            'weigh[{"fruit": "apple", "colour": "red"}]',
            "weigh takes fruit, precise, note, not 'colour'",
        ),
        ("convert[]", "do not fit convert's schema"),
        ("shout[boom]", "shout failed: RuntimeError: the tool broke"),
        ("weigh(fruit=open('x'))", "with literal values"),
    ],
)
def test_invalid_calls_are_answered_not_raised(action, why) -> None:
    env = ToolEnvironment([weigh, shout, convert], TASKS, _answered)
    env.reset("w1")
    result = env.step(action)
    assert not result.valid and not result.done and why in result.observation, result.observation
    assert env.episode.calls == [] and env.episode.invalid_actions == 1


def test_finish_the_step_limit_and_the_success_check() -> None:
    env = ToolEnvironment([weigh, shout], TASKS, _answered, max_steps=2)
    env.reset("w1")
    assert env.step('weigh[{"fruit": "apple", "precise": true}]').valid
    result = env.step('finish["150"]')
    assert result.done and "150" in result.observation and env.evaluate().success
    assert not env.step("shout[hi]").valid and env.valid_actions() == []
    env.reset("w1")
    assert env.step("finish[151]").done and env.evaluate() == Evaluation(success=False, score=0)
    env.reset("w1")
    assert not env.step("shout[a]").done and env.step("shout[b]").done  # two calls at most
    assert "the episode is over" in env.step("shout[c]").observation
    # a float verdict is a score; success from the threshold on
    scored = ToolEnvironment([shout], TASKS, lambda t, e: len(e.calls) / 4, success_threshold=0.5)
    scored.reset("w1")
    scored.step("shout[a]")
    assert scored.evaluate() == Evaluation(success=False, score=0.25)
    scored.step("shout[b]")
    assert scored.evaluate() == Evaluation(success=True, score=0.5)
    broken = ToolEnvironment([shout], TASKS, lambda t, e: "yes")
    broken.reset("w1")
    with pytest.raises(TypeError, match="return a bool or a number"):
        broken.evaluate()


def test_the_prompt_guide_describes_the_tools() -> None:
    guide = ToolEnvironment([weigh, convert], TASKS, _answered).prompt_guide
    assert 'weigh[{"fruit": "apple" | "melon", "precise": boolean (optional)' in guide.action
    assert '"unit": "kg" | "lb"' in guide.action and "Weigh a fruit." in guide.action
    assert "finish[answer] ends the episode" in guide.action
    assert "Example: Action: " in guide.action and "weigh, convert" in guide.synthesis


def test_enumerable_tools_list_their_calls() -> None:
    env = ToolEnvironment([weigh], TASKS, _answered)
    env.reset("w1")
    actions = env.valid_actions()
    # Literal x bool; the free optional `note` keeps its default; finish[] ends
    assert len(actions) == 5 and actions[-1] == "finish[]"
    assert 'weigh[{"fruit": "melon", "precise": false}]' in actions
    assert all(env.step(a).valid for a in actions[:4])
    both = ToolEnvironment([weigh, convert], TASKS, _answered)
    both.reset("w1")
    assert both.valid_actions() is None  # convert's amount is free: nothing is listed
    capped = ToolEnvironment([weigh], TASKS, _answered, max_enumerated=3)
    capped.reset("w1")
    assert capped.valid_actions() is None
    offered = ToolEnvironment(
        [shout],
        TASKS,
        _answered,
        action_candidates=lambda task, episode: [
            f"shout[{task.id}]",
            f"finish[{len(episode.calls)}]",
        ],
    )
    offered.reset("w1")
    assert offered.valid_actions() == ["shout[w1]", "finish[0]"]
    offered.step("shout[x]")
    assert offered.valid_actions() == ["shout[w1]", "finish[1]"]


def test_tools_made_per_episode_and_async_tools() -> None:
    def make(task: ToolTask):
        seen: list[str] = []

        def remember(word: str) -> str:
            """Remember a word; say all words so far."""
            seen.append(word)
            return " ".join(seen)

        async def arecall() -> str:
            await asyncio.sleep(0)
            return f"{len(seen)} words"

        return [
            StructuredTool.from_function(remember),
            StructuredTool.from_function(coroutine=arecall, name="recall", description="Count."),
        ]

    env = ToolEnvironment(make, TASKS, _answered)
    env.reset("w1")
    assert env.step("remember[a]").observation == "a"
    assert env.step("remember[b]").observation == "a b"
    assert env.step("recall[]").observation == "2 words"
    env.reset("w1")  # a fresh set of tools
    assert env.step("remember[c]").observation == "c"


def test_bad_configurations_are_refused() -> None:
    class Args(BaseModel):
        x: int

    finish = StructuredTool.from_function(
        lambda x: x, name="finish", description="Clashes.", args_schema=Args
    )
    for tools, tasks, message in [
        ([weigh, weigh], TASKS, "two tools are named 'weigh'"),
        ([finish], TASKS, "the finishing action"),
        ([lambda: 1], TASKS, "not a LangChain tool"),
        ([], TASKS, "at least one tool"),
        ([weigh], [TASKS[0], TASKS[0]], "two tasks have the id 'w1'"),
        ([weigh], [{"instruction": "no id"}], "not a task"),
        ([weigh], [], "at least one task"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ToolEnvironment(tools, tasks, _answered)
    env = ToolEnvironment([weigh], TASKS, _answered)
    with pytest.raises(ValueError, match="no task of split 'dev'"):
        env.task_ids("dev")
    with pytest.raises(KeyError, match="unknown task"):
        env.reset("w9")
    with pytest.raises(RuntimeError, match="reset"):
        env.step("weigh[apple]")


@pytest.mark.slow
def test_explore_synthesize_train_and_plan_over_tools(tmp_path, small_reward_model_config) -> None:
    make_shop = load_import_path(SHOP)
    trajectories = tmp_path / "trajectories.jsonl"
    explored = explore(
        RandomPolicy(),
        make_shop,
        trajectories,
        ExploreConfig(episodes_per_task=8, max_steps=8),
        progress=False,
    )
    assert explored.finished == 80 and explored.successes > 5
    synthesis = synthesize(
        RelabelSynthesizer(OutcomeRelabeler()), trajectories, tmp_path / "synthesis", progress=False
    )
    assert synthesis.train > 20
    train = read_jsonl(tmp_path / "synthesis" / "triplets.train.jsonl", Triplet)
    val = read_jsonl(tmp_path / "synthesis" / "triplets.val.jsonl", Triplet)
    model = RewardModel.create(small_reward_model_config)
    result = RewardTrainer(model, RewardTrainerConfig(epochs=1, batch_size=16)).train(
        train, val, output_dir=tmp_path / "rm"
    )
    assert result.history and (tmp_path / "rm" / "armap_reward.json").is_file()
    graph = build_best_of_n_graph(RandomPolicy(), make_shop, model, BestOfNConfig(n=6, max_steps=8))
    state = graph.invoke({"task_id": "buy-pear"})
    assert len(state["scores"]) == 6 and state["best"].evaluation is not None
    best = state["best"]
    assert best.steps and best.steps[0].action.startswith("search[")
    assert state["scores"][state["best_index"]] == max(state["scores"])
    # and the winning episode replays to the same verdict
    replayed = run_episode(
        make_shop(), RandomPolicy(), "buy-pear", seed=best.info["seed"], max_steps=8
    )
    assert replayed.evaluation == best.evaluation
