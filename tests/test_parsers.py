"""Every parser of model replies and actions takes any string: its documented result or its
documented error, in linear time (issue 17, findings 2 and 3).

Property tests (hypothesis) feed each parser random text and hostile structures (deep nesting,
integers beyond Python's 4,300-digit conversion limit, long runs of spaces, lone surrogates,
near-miss JSON, NaN and infinities) and check only what the docstrings promise. The inputs
that used to hang or raise are regression tests. Every call runs under a 10 s alarm, so a
regression to super-linear matching fails instead of hanging the suite; no test times anything
tighter than that.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.memory import InMemorySaver

from armap_agents.environments.game24 import Game24Env
from armap_agents.environments.tools import ToolEnvironment
from armap_agents.environments.webshop import WebShopEnv, generate_catalog
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph
from armap_agents.graphs.reflexion import ReflexionConfig, build_reflexion_graph
from armap_agents.llm import RetryPolicy, json_object_reply, reply_text
from armap_agents.memory import TrajectoryMemory
from armap_agents.policies import ActionChoice, LLMPolicy, PolicyContext, parse_action
from armap_agents.reward.judge import parse_rating
from armap_agents.synthesizers import SynthesisOutput, parse_synthesis
from armap_agents.testing import FunctionReward, ScriptedChatModel, toy_tools
from armap_agents.types import StepResult

LIMIT_S = 10
NO_WAIT = RetryPolicy(max_attempts=1, initial_wait=0.0, max_wait=0.0, jitter=0.0)
VALID = ["4 + 8 = 12", "4 * 8 = 32", "4 - 8 = -4", "8 / 4 = 2", "click[buy now]"]


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_S) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging when the body runs past ``seconds``. A signal,
    not a thread: a regular expression holds the GIL, but the regex engine checks signals."""
    if not hasattr(signal, "setitimer"):  # no SIGALRM (Windows): no guard
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: super-linear parsing?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- hostile inputs ------------------------------------------------------------------------
ANY_CHAR = st.characters(codec=None, exclude_categories=())  # lone surrogates included
PIECES = [
    *'{}[]":,()-./*=`',
    '{"action": ',
    '{"score": ',
    '{"rating": ',
    '{"intent": "obtain 24 from 4 4 6 8", "negative": [',
    '{"action": "obtain", "observation": "Numbers left: 24"}',
    "```json\n",
    "```",
    "Action:",
    "action ：",
    "Score",
    "score is",
    "rating of",
    "**",
    "/10",
    " out of 10",
    "10",
    "7",
    "0",
    "1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 40,
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "\u3000",
    "\ud800",
    "\udfff",
    "\x00",
    "search[",
    "click[",
    "finish[",
    "echo(",
    "add(",
    "4 + 8 = 12",
    "x",
    "÷",
    "−",
]
_OPENERS = ['{"action": ', '{"score": ', '{"intent": ', "finish[", "echo[", "add(", "x = ", ""]
_CLOSERS = {"{": "}", "[": "]", "(": ")", "x": "", "": ""}
_RUN_PREFIXES = ["Score", "rating", "Action:", "1 + 2", "search[", "click[", "7", "{", "echo(", ""]


def _run(prefix: str, char: str, n: int, suffix: str) -> str:
    return prefix + char * n + suffix


def _wrap(opener: str, inner: str) -> str:
    """``inner`` as the value of ``opener`` (a JSON key, a call...), closed as it opened."""
    return opener + inner + "".join(_CLOSERS[c] for c in reversed(opener) if c in "{[(")


# deeper than the json module's recursion limit (1,000), longer than Python converts (4,300)
deep_nesting = st.builds(
    lambda opener, bracket, n: _wrap(opener, bracket * n + _CLOSERS[bracket] * n),
    st.sampled_from(_OPENERS),
    st.sampled_from(["[", "{", "("]),
    st.integers(1_000, 20_000),
)
huge_integers = st.builds(
    lambda opener, n, sign: _wrap(opener, sign + "7" * n),
    st.sampled_from(_OPENERS),
    st.integers(4_301, 9_000),
    st.sampled_from(["", "-"]),
)
long_runs = st.builds(
    _run,
    st.sampled_from(_RUN_PREFIXES),
    st.sampled_from([" ", "\n", "{", "1", "-", "[", "1.", "score "]),
    st.integers(100, 20_000),
    st.sampled_from(["x", "", "]", ")", "/", "}"]),
)


def _mutate(text: str, where: int, how: str) -> str:
    i = where % (len(text) + 1)
    if how == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i:] * 2 if how == "dup" else text[:i]


near_miss_json = st.builds(
    _mutate,
    st.sampled_from(
        [
            json.dumps({"action": "4 + 8 = 12"}),
            json.dumps({"score": 7}),
            '{"score": NaN}',
            '{"score": -Infinity}',
            json.dumps(
                {
                    "intent": "obtain 24 from 4 4 6 8",
                    "negative": [{"action": "4 + 4 = 8", "observation": "Numbers left: 6 8 8"}],
                }
            ),
        ]
    ),
    st.integers(0, 200),
    st.sampled_from(["drop", "dup", "cut"]),
)
hostile_texts = st.one_of(
    st.text(ANY_CHAR, max_size=300),
    st.lists(st.sampled_from(PIECES) | st.text(ANY_CHAR, max_size=3), max_size=40).map("".join),
    deep_nesting,
    huge_integers,
    long_runs,
    near_miss_json,
)

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# -- properties ------------------------------------------------------------------------------
@PROPERTY
@given(hostile_texts, st.sampled_from([None, VALID, []]))
def test_parse_action_returns_an_action_or_a_reason(text: str, valid: list[str] | None) -> None:
    with time_limit():
        action, reason = parse_action(text, valid)
    if action is None:
        assert isinstance(reason, str) and reason
    else:
        assert isinstance(action, str) and action and reason == ""
        assert valid is None or action in valid


@PROPERTY
@given(hostile_texts)
def test_json_object_reply_returns_a_dict_or_none(text: str) -> None:
    with time_limit():
        value = json_object_reply(text)
    assert value is None or isinstance(value, dict)


@PROPERTY
@given(hostile_texts)
def test_parse_synthesis_returns_an_output_or_raises_value_error(text: str) -> None:
    with time_limit():
        try:
            out = parse_synthesis(text)
        except ValueError as exc:
            assert str(exc)
            return
    assert isinstance(out, SynthesisOutput)


@PROPERTY
@given(hostile_texts)
def test_parse_rating_returns_a_rating_in_range_or_none(text: str) -> None:
    with time_limit():
        rating = parse_rating(text)
    assert rating is None or (isinstance(rating, float) and 1 <= rating <= 10)


@PROPERTY
@given(hostile_texts)
def test_game24_step_answers_any_action(text: str) -> None:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    env.reset("1")
    with time_limit():
        result = env.step(text)
    assert isinstance(result, StepResult)
    assert len(env.numbers) == (3 if result.valid else 4)
    if not result.valid:
        assert result.observation.startswith("Invalid action:") and result.info["error"]


@pytest.fixture(scope="module")
def shop() -> WebShopEnv:
    return WebShopEnv(generate_catalog(100, seed=0).warm())


@PROPERTY
@given(text=st.one_of(hostile_texts, hostile_texts.map(lambda t: f"search[{t}]")))
def test_webshop_step_answers_any_action(shop: WebShopEnv, text: str) -> None:
    shop.reset("0")
    before = shop.valid_actions()
    with time_limit():
        result = shop.step(text)
    assert isinstance(result, StepResult) and not result.done
    if not result.valid:
        assert result.observation.startswith("Invalid action:") and shop.valid_actions() == before


def _tool_env() -> ToolEnvironment:
    tasks = [{"id": "1", "instruction": "Say hello."}]
    return ToolEnvironment(toy_tools(), tasks, lambda task, episode: episode.finished)


tool_actions = st.one_of(
    hostile_texts,
    st.builds(
        lambda name, open_, body, close: name + open_ + body + close,
        st.sampled_from(["echo", "add", "pick", "finish", "nope"]),
        st.sampled_from(["[", "("]),
        hostile_texts,
        st.sampled_from(["]", ")", ""]),
    ),
)


@PROPERTY
@given(tool_actions)
def test_tool_environment_step_answers_any_action(text: str) -> None:
    env = _tool_env()
    env.reset("1")
    with time_limit():
        result = env.step(text)
    assert isinstance(result, StepResult)
    assert len(env.episode.calls) + env.episode.finished + env.episode.invalid_actions == 1


def _context() -> PolicyContext:
    return PolicyContext(
        task_id="1",
        instruction="Use the numbers 4 4 6 8 to obtain 24.",
        initial_observation="Numbers left: 4 4 6 8",
        valid_actions=VALID,
    )


@PROPERTY
@given(st.lists(hostile_texts, min_size=1, max_size=3))
def test_llm_policy_turns_any_reply_into_an_action(replies: list[str]) -> None:
    policy = LLMPolicy(ScriptedChatModel(replies=replies), retry=NO_WAIT, max_reasks=1)
    with time_limit():
        choice = policy.act(_context(), seed=0)
        many = policy.act_many(_context(), 2, seed=0)
    for c in (choice, *many):
        assert isinstance(c, ActionChoice)
        assert not c.parsed or c.action in VALID
        c.model_dump_json()  # what a trajectory file or a checkpoint will write: no surrogate


# -- the inputs of the issue, and scaled-up variants -------------------------------------------
@pytest.mark.parametrize("n", [200, 2_000, 200_000])
@pytest.mark.parametrize("prefix", ["Score", "rating", "score is", "7", "7 out"])
def test_rating_replies_that_backtracked_are_read_at_once(prefix: str, n: int) -> None:
    with time_limit():
        assert parse_rating(prefix + " " * n + "x") == (7.0 if prefix.startswith("7") else None)


@pytest.mark.parametrize("n", [2_000, 20_000, 1_000_000])
def test_game24_actions_that_backtracked_are_read_at_once(n: int) -> None:
    env = Game24Env(puzzles=[(1, 2, 3, 4)])
    env.reset("1")
    with time_limit():
        results = [env.step("1 + 2" + " " * n + "x"), env.step("1" * n + " + 2")]
    assert not any(r.valid for r in results)
    assert env.step("1 + 2 = 3 . ").valid  # spaces and a final period are still accepted


def test_parsers_take_many_braces_and_long_digit_runs_in_linear_time() -> None:
    with time_limit():
        with pytest.raises(ValueError, match="no JSON object"):
            parse_synthesis("{" * 90_000)
        assert parse_rating("1" * 19_000 + "/10") is None  # not a rating in range
        assert parse_rating("1." * 9_000) == 1.1
        assert parse_action("action" + " " * 500_000 + "x", VALID)[0] is None


# under every cap (so parsed, not refused for length), beyond the json module's limits
DEEP = '{"action": ' + "[" * 5_000 + "]" * 5_000 + "}"
HUGE = '{"action": ' + "1" * 4_500 + ', "score": ' + "1" * 4_500 + "}"


@pytest.mark.parametrize("text", [DEEP, HUGE])
def test_json_that_used_to_raise_is_no_structured_reply(text: str) -> None:
    with time_limit():
        assert json_object_reply(text) is None
        assert parse_rating(text) is None
        action, reason = parse_action(text, VALID)
        assert action is None and "not one of the valid actions" in reason
        with pytest.raises(ValueError, match="the JSON does not parse"):
            parse_synthesis(text)


def test_a_score_beyond_float_range_or_not_finite_is_no_rating() -> None:
    assert parse_rating('{"score": ' + "9" * 400 + "}") is None
    assert parse_rating('{"score": NaN}') is None
    assert parse_rating('{"rating": Infinity}') is None
    assert parse_rating('{"score": "1e999"}') is None
    assert parse_rating("Score: 1" + "0" * 400) is None
    assert parse_rating('{"score": 7.0}') == 7.0


def test_long_replies_are_read_where_their_answer_is() -> None:
    thinking = "Let me think. " * 3_000  # 42,000 characters before the answer
    assert parse_action(thinking + "\nAction: 4 + 8 = 12", VALID) == ("4 + 8 = 12", "")
    assert parse_rating("Score: 8\n" + thinking) == 8.0
    with pytest.raises(ValueError, match="characters long"):
        parse_synthesis("{" + " " * 200_000 + "}")


def test_lone_surrogates_become_replacement_characters() -> None:
    assert reply_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert reply_text("fine ✓") == "fine ✓"
    policy = LLMPolicy(ScriptedChatModel(replies=["Action: 4 + 8 = 12\ud800"]), max_reasks=0)
    choice = policy.act(_context(), seed=0)
    assert not choice.parsed and choice.action == "Action: 4 + 8 = 12\ufffd"


def test_tool_arguments_that_used_to_raise_are_answered() -> None:
    env = _tool_env()
    deep = "[" * 5_000 + "]" * 5_000
    for action, valid in [
        (f"echo[{deep}]", True),  # not JSON: the plain text is the one argument
        (f"add[{deep}]", False),  # not JSON: as text, not an integer
        ('add[{"a": ' + "9" * 5_000 + "}]", False),  # an integer too long to parse
        ("add(" + "-" * 19_000 + "1)", False),  # the parser's own stack overflows (MemoryError)
        ("add(" + "(" * 300 + "1" + ")" * 300 + ")", False),
        ("add({[1]: 2})", False),  # unhashable: a TypeError from literal_eval
        ("add(1) + add(2)", False),  # not one call
        ("echo[" + "x" * 30_000 + "]", False),  # beyond MAX_ACTION_CHARS
    ]:
        env.reset("1")
        with time_limit():
            result = env.step(action)
        assert result.valid == valid and (valid or result.info["error"]), action[:40]
    env.reset("1")
    with time_limit():
        result = env.step(f"finish[{deep}]")
    assert result.done and env.episode.answer == deep  # an answer is any text
    env.reset("1")
    assert env.step("add(2, b=3)").observation == "5"  # the forms that parse still do


def test_webshop_actions_beyond_the_cap_are_invalid_unread(shop: WebShopEnv) -> None:
    shop.reset("0")
    with time_limit():
        result = shop.step("search[" + "shirt " * 1_000 + "]")
    assert not result.valid and "6,008 characters long" in result.observation
    assert shop.step("search[" + "]" + " " * 1_900 + "x").valid is False
    assert shop.step("search[red shirt]").valid


# -- a bad reply does not end a search ---------------------------------------------------------
HOSTILE_REPLIES = [
    DEEP,
    HUGE,
    "Action: 4 + 8 = 12\ud800",
    "Action: 1 + 2" + " " * 5_000 + "x",
    "",
    "\udfff",
    "{" * 50_000,
    "Action: " + "9" * 5_000 + " * 1",
]


def step_count_reward() -> FunctionReward:
    """A fake reward model: more valid steps are better."""
    return FunctionReward(lambda intent, t: sum(s.valid for s in t.steps))


def _hostile_model() -> ScriptedChatModel:
    """Hostile replies, with a valid move (the first one listed) every third reply."""
    counter = itertools.count()

    def respond(messages) -> str:
        i = next(counter)
        if i % 3 == 2:
            listed = re.findall(r"^- (.+)$", str(messages[-1].content), re.MULTILINE)
            return f"Action: {listed[0]}"
        return HOSTILE_REPLIES[i % len(HOSTILE_REPLIES)]

    return ScriptedChatModel(responder=respond)


def test_hostile_replies_do_not_end_an_mcts_search() -> None:
    policy = LLMPolicy(_hostile_model(), retry=NO_WAIT, max_reasks=1)
    graph = build_mcts_graph(
        policy,
        lambda: Game24Env(puzzles=[(4, 4, 6, 8)]),
        step_count_reward(),
        MCTSConfig(iterations=6, max_policy_calls=None, expansion_k=3),
        checkpointer=InMemorySaver(),  # the state, actions included, is serialized
    )
    with time_limit(60):
        state = graph.invoke({"task_id": "1"}, {"configurable": {"thread_id": "hostile"}})
    assert state["iteration"] == 6 and len(state["nodes"]) > 1
    assert state["best"].error is None
    json.dumps(state["nodes"]).encode()  # plain data that UTF-8 encodes: no surrogate got in


def test_hostile_replies_are_invalid_steps_in_best_of_n() -> None:
    policy = LLMPolicy(_hostile_model(), retry=NO_WAIT, max_reasks=0)
    graph = build_best_of_n_graph(
        policy,
        lambda: Game24Env(puzzles=[(4, 4, 6, 8)]),
        step_count_reward(),
        BestOfNConfig(n=4, max_steps=4),
    )
    with time_limit(60):
        state = graph.invoke({"task_id": "1"}, {"max_concurrency": 1})
    candidates = state["candidates"]
    assert len(candidates) == 4 and not any(t.failed for t in candidates)
    steps = [s for t in candidates for s in t.steps]
    assert any(not s.valid for s in steps) and any(s.valid for s in steps)
    assert all(math.isfinite(v) for v in state["values"])
    for t in candidates:
        t.model_dump_json()


class HashEmbedder:
    """A fake embedder for the memory: one dimension per character code, mod 16."""

    name = "fake-hash"
    dim = 16

    def embed(self, texts):
        import numpy as np

        out = np.ones((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for c in text:
                out[i, ord(c) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_a_hostile_reflection_does_not_end_a_reflexion_search(tmp_path) -> None:
    store = tmp_path / "memory"
    graph = build_reflexion_graph(
        LLMPolicy(_hostile_model(), retry=NO_WAIT, max_reasks=0),
        lambda: Game24Env(puzzles=[(4, 4, 6, 8)]),
        step_count_reward(),
        ReflexionConfig(max_trials=3, threshold=100, max_steps=3),
        reflector=ScriptedChatModel(replies=["Try \ud800 the largest numbers last.", DEEP]),
        memory=TrajectoryMemory.open(store, HashEmbedder()),
        memory_path=store,
    )
    with time_limit(60):
        state = graph.invoke({"task_id": "1"})
    assert len(state["attempts"]) == 3 and not any(t.failed for t in state["attempts"])
    assert state["reflections"][0] == "Try \ufffd the largest numbers last."
    assert len(TrajectoryMemory.load(store, HashEmbedder()).records) == 2
