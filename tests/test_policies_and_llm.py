import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage

from armap_agents.environments.game24 import Game24Env
from armap_agents.llm import RetryPolicy, UsageTracker, invoke_with_retries, make_chat_model
from armap_agents.policies import (
    LLMPolicy,
    PolicyContext,
    RandomPolicy,
    default_action_prompt,
    parse_action,
    sample_actions,
)
from armap_agents.prompts import action_response_format, prompt_guide
from armap_agents.rollout import policy_context, run_episode
from armap_agents.synthesizers import LLMSynthesizer
from armap_agents.testing import ScriptedChatModel

NO_WAIT = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=0.0, jitter=0.0)
VALID = ["4 + 8 = 12", "4 * 8 = 32", "4 - 8 = -4"]


def _context(valid=VALID) -> PolicyContext:
    return PolicyContext(
        task_id="1",
        instruction="reach 24",
        initial_observation="Numbers left: 4 8",
        valid_actions=valid,
    )


def test_random_policy_is_seeded_and_greedy_takes_the_first() -> None:
    policy = RandomPolicy()
    picks = {policy.act(_context(), seed=s).action for s in range(30)}
    assert picks == set(VALID)
    assert policy.act(_context(), seed=5).action == policy.act(_context(), seed=5).action
    assert policy.act(_context(), seed=5, greedy=True).action == VALID[0]
    with pytest.raises(ValueError, match="valid actions"):
        policy.act(_context(valid=None), seed=0)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Action: 4 + 8 = 12", "4 + 8 = 12"),
        ("I think so.\nACTION:  4+8=12.", "4 + 8 = 12"),
        ("action: `4 * 8`", "4 * 8 = 32"),  # unambiguous prefix of a valid action
        ("4 - 8 = -4", "4 - 8 = -4"),  # no 'Action:' line: the last line
    ],
)
def test_parse_action_maps_near_misses(reply: str, expected: str) -> None:
    assert parse_action(reply, VALID) == (expected, "")


def test_parse_action_explains_failures() -> None:
    action, reason = parse_action("Action: 4 / 8", VALID)
    assert action is None and "not one of the valid actions" in reason
    assert parse_action("", VALID)[0] is None
    assert parse_action("Action: anything", None) == ("anything", "")


def test_llm_policy_reasks_then_succeeds() -> None:
    model = ScriptedChatModel(replies=["no idea", "Action: 4 * 8 = 32"])
    choice = LLMPolicy(model, retry=NO_WAIT).act(_context(), seed=1)
    assert choice.action == "4 * 8 = 32" and choice.attempts == 2 and choice.parsed
    second_prompt = model.calls[1][0]
    assert "Not usable" in str(second_prompt[-1].content)


def test_llm_policy_gives_up_and_the_env_records_invalid() -> None:
    model = ScriptedChatModel(replies=["blah"])
    policy = LLMPolicy(model, max_reasks=1, retry=NO_WAIT)
    trajectory = run_episode(Game24Env(), policy, "1", seed=0, max_steps=2)
    assert len(model.calls) == 4  # 2 steps x (ask + 1 re-ask)
    assert all(not s.valid for s in trajectory.steps)
    assert trajectory.info["invalid_actions"] == 2 and trajectory.error is None


def test_llm_policy_plays_a_whole_game() -> None:
    env = Game24Env(puzzles=[(4, 4, 6, 8)])
    script = ["Action: 4 + 8 = 12", "Action: 6 - 4 = 2", "Action: 12 * 2 = 24"]
    trajectory = run_episode(env, LLMPolicy(ScriptedChatModel(replies=script)), "1", seed=0)
    assert trajectory.evaluation.success and trajectory.actions == [s[8:] for s in script]


def test_act_many_uses_n_when_the_server_honours_it() -> None:
    tracker = UsageTracker()
    model = ScriptedChatModel(
        replies=[f"Action: {a}" for a in VALID], honour_n=True, callbacks=[tracker]
    )
    choices = LLMPolicy(model, retry=NO_WAIT).act_many(_context(), 3, seed=5)
    assert [c.action for c in choices] == VALID
    assert len(model.calls) == 1 and model.calls[0][1]["n"] == 3
    # one request: its prompt is counted once, each choice's completion once
    assert tracker.usage.calls == 1
    assert tracker.usage.completion_tokens == sum(len(f"Action: {a}".split()) for a in VALID)


def test_act_many_falls_back_to_separate_seeded_requests_when_n_is_ignored() -> None:
    model = ScriptedChatModel(replies=[f"Action: {a}" for a in VALID])  # ignores n
    policy = LLMPolicy(model, retry=NO_WAIT)
    choices = policy.act_many(_context(), 3, seed=5)
    assert sorted(c.action for c in choices) == sorted(VALID)
    assert len(model.calls) == 3 and model.calls[0][1]["n"] == 3
    seeds = [kwargs["seed"] for _, kwargs in model.calls[1:]]
    assert len(set(seeds)) == 2 and all("n" not in kwargs for _, kwargs in model.calls[1:])
    # the server showed it ignores n: later calls go straight to separate requests
    policy.act_many(_context(), 2, seed=6)
    assert len(model.calls) == 5 and all("n" not in kwargs for _, kwargs in model.calls[3:])


def test_act_many_reasks_unusable_choices_only() -> None:
    model = ScriptedChatModel(replies=["Action: 4 + 8 = 12", "gibberish"], honour_n=True)
    choices = LLMPolicy(model, retry=NO_WAIT).act_many(_context(), 2, seed=0)
    assert choices[0].action == "4 + 8 = 12" and choices[0].attempts == 1
    assert choices[1].attempts >= 2  # re-asked with the reason, alone
    assert "Not usable" in str(model.calls[1][0][-1].content)


def test_sample_actions_falls_back_to_act_with_distinct_seeds() -> None:
    choices = sample_actions(RandomPolicy(), _context(), 8, seed=3)
    assert len(choices) == 8 and len({c.action for c in choices}) > 1


def test_structured_replies_are_constrained_to_the_valid_actions_and_parsed() -> None:
    model = ScriptedChatModel(replies=['{"action": "4 * 8 = 32"}'])
    choice = LLMPolicy(model, structured="json_object").act(_context(), seed=0)
    assert choice.action == "4 * 8 = 32" and choice.attempts == 1
    fmt = model.calls[0][1]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["action"]["enum"] == VALID
    openai_fmt = action_response_format(VALID, "json_schema")
    assert openai_fmt["json_schema"]["strict"] and openai_fmt["type"] == "json_schema"
    assert parse_action('```json\n{"action": "4+8=12"}\n```', VALID) == ("4 + 8 = 12", "")


def test_the_environment_prompt_guide_reaches_policy_and_synthesizer_prompts() -> None:
    env = Game24Env()
    context = policy_context(env, "1", env.reset("1"), [])
    system = default_action_prompt(context)[0].content
    assert "Game of 24 rules" in system and "12 * 2 = 24" in system
    model = ScriptedChatModel(replies=["{}"])
    synthesizer = LLMSynthesizer(model, guide=prompt_guide(env).synthesis, max_attempts=1)
    trajectory = run_episode(env, RandomPolicy(), "1", seed=0, max_steps=1)
    synthesizer.synthesize([trajectory], seed=0)
    assert "Game of 24 conventions" in model.calls[0][0][0].content


def _rate_limit() -> openai.RateLimitError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return openai.RateLimitError(
        "slow down", response=httpx.Response(429, request=request), body=None
    )


def _bad_request() -> openai.BadRequestError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return openai.BadRequestError("bad", response=httpx.Response(400, request=request), body=None)


class _Flaky(ScriptedChatModel):
    failures: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        if self.failures:
            raise self.failures.pop(0)
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_transient_errors_are_retried_with_a_bound() -> None:
    model = _Flaky(replies=["ok"], failures=[_rate_limit(), _rate_limit()])
    assert invoke_with_retries(model, [HumanMessage("hi")], NO_WAIT).content == "ok"
    model = _Flaky(replies=["ok"], failures=[_rate_limit()] * 3)
    with pytest.raises(openai.RateLimitError):
        invoke_with_retries(model, [HumanMessage("hi")], NO_WAIT)


def test_client_errors_are_not_retried() -> None:
    model = _Flaky(replies=["ok"], failures=[_bad_request(), _bad_request()])
    with pytest.raises(openai.BadRequestError):
        invoke_with_retries(model, [HumanMessage("hi")], NO_WAIT)
    assert len(model.failures) == 1  # one attempt only


def test_usage_tracker_counts_calls_and_tokens() -> None:
    tracker = UsageTracker()
    model = ScriptedChatModel(replies=["two words"])
    model.invoke([HumanMessage("one two three")], config={"callbacks": [tracker]})
    assert tracker.usage.calls == 1
    assert tracker.usage.prompt_tokens == 3 and tracker.usage.completion_tokens == 2


def test_make_chat_model_names() -> None:
    fake = ScriptedChatModel(replies=["x"])
    assert make_chat_model(fake) is fake
    model = make_chat_model("openai-compatible:http://127.0.0.1:9/v1:my-model")
    assert model.model_name == "my-model" and str(model.openai_api_base) == "http://127.0.0.1:9/v1"
    with pytest.raises(ValueError, match="openai-compatible:<base_url>:<model>"):
        make_chat_model("openai-compatible:my-model")
    with pytest.raises(ValueError, match="unknown model provider"):
        make_chat_model("nope:model")
    with pytest.raises(ValueError, match="cannot read model name"):
        make_chat_model("gpt-4o")


def test_retry_after_is_honoured() -> None:
    import time

    from armap_agents.llm import _retry_after

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(429, request=request, headers={"Retry-After": "0.3"})
    limited = openai.RateLimitError("slow down", response=response, body=None)
    assert _retry_after(limited) == 0.3
    assert _retry_after(_rate_limit()) is None and _retry_after(ValueError()) is None
    model = _Flaky(replies=["ok"], failures=[limited])
    started = time.perf_counter()
    policy = RetryPolicy(max_attempts=2, initial_wait=0.0, max_wait=5.0, jitter=0.0)
    assert invoke_with_retries(model, [HumanMessage("hi")], policy).content == "ok"
    assert time.perf_counter() - started >= 0.3  # waited what the server asked, not backoff's 0


def test_sqlite_cache_answers_identical_requests_from_disk(tmp_path) -> None:
    path = tmp_path / "llm-cache.sqlite"
    model = make_chat_model(ScriptedChatModel(replies=["first", "second", "third"]), cache=path)
    messages = [HumanMessage("pick an action")]
    assert model.invoke(messages, seed=1).content == "first"
    assert model.invoke(messages, seed=1).content == "first"  # cached: the script did not advance
    assert model.invoke(messages, seed=2).content == "second"  # another seed is another request
    assert len(model.calls) == 2
    # a new process's model with the same cache file
    fresh = make_chat_model(ScriptedChatModel(replies=["never used"]), cache=path)
    assert fresh.invoke(messages, seed=2).content == "second" and fresh.calls == []
    row = __import__("sqlite3").connect(path).execute("select value from llm_cache").fetchone()
    assert row[0].lstrip().startswith(("[", "{"))  # JSON, not pickle


def test_reply_length_is_bounded_for_every_kind_of_server(monkeypatch) -> None:
    from armap_agents.llm import max_tokens_kwargs

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    local = make_chat_model("openai-compatible:http://127.0.0.1:9/v1:m", extra_body={"top_k": 5})
    assert max_tokens_kwargs(local, 32) == {
        "max_tokens": 32,
        "extra_body": {"top_k": 5, "max_tokens": 32},  # llama.cpp reads max_tokens from the body
    }
    assert max_tokens_kwargs(make_chat_model("openai:gpt-4o-mini"), 32) == {"max_tokens": 32}
    assert max_tokens_kwargs(local, None) == {}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the server, named by env
    assert max_tokens_kwargs(make_chat_model("openai:m"), 32) == {
        "max_tokens": 32,
        "extra_body": {"max_tokens": 32},
    }
    model = ScriptedChatModel(replies=["Action: 4 + 8 = 12"])
    LLMPolicy(model, max_tokens=16).act(_context(), seed=0)
    assert model.calls[0][1]["max_tokens"] == 16
