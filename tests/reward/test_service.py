"""The reward model as a service: a real server process on 127.0.0.1 and its client.

In-process tests (FastAPI's TestClient, httpx's MockTransport) cover validation, the token and
the client's retries; the ``slow`` ones start ``python -m armap_agents.reward.service``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from armap_agents.environments.game24 import Game24Env  # noqa: E402
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph  # noqa: E402
from armap_agents.local_llm import free_port  # noqa: E402
from armap_agents.policies import RandomPolicy  # noqa: E402
from armap_agents.reward.model import RewardModel  # noqa: E402
from armap_agents.reward.service import (  # noqa: E402
    RemoteRewardModel,
    RewardServiceError,
    build_app,
    split_query,
)
from armap_agents.rollout import run_episode  # noqa: E402
from armap_agents.types import Trajectory, render_example, render_trajectory  # noqa: E402

TOKEN = "rm-test-token"
JSON = {"Content-Type": "application/json"}  # raw bodies need it: 415 without


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, small_reward_model_config) -> tuple[RewardModel, str]:
    model = RewardModel.create(small_reward_model_config)
    path = model.save(tmp_path_factory.mktemp("rm") / "reward_model")
    return model, str(path)


@pytest.fixture(scope="module")
def trajectories() -> list[Trajectory]:
    env = Game24Env()
    return [run_episode(env, RandomPolicy(), "1", seed=s, max_steps=3) for s in range(5)]


@pytest.fixture(scope="module")
def client(saved_model) -> TestClient:
    return TestClient(build_app(saved_model[0], max_batch=8))


# -- in process ----------------------------------------------------------------------------


def test_health_and_our_request_form(client, saved_model, trajectories) -> None:
    model = saved_model[0]
    health = client.get("/health").json()
    assert health == {
        "status": "ok",
        "backbone": model.config.backbone,
        "max_length": 96,
        "max_batch": 8,
        "max_body_bytes": 8 * 1024 * 1024,
        "max_tokens_per_request": 8 * 96,
        "auth": False,
    }
    intent = trajectories[0].intent
    expected = model.score(intent, trajectories)
    texts = [render_trajectory(t) for t in trajectories]
    by_text = client.post("/get_reward", json={"intents": [intent] * 5, "trajectories": texts})
    assert by_text.status_code == 200
    assert by_text.json()["rewards"] == pytest.approx(expected, abs=1e-5)
    # Trajectory JSON objects, mixed with texts, and one 'intent' for all
    mixed = [t.model_dump(mode="json") for t in trajectories[:3]] + texts[3:]
    by_object = client.post("/get_reward", json={"intent": intent, "trajectories": mixed})
    assert by_object.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_openrlhf_query_form(client, saved_model, trajectories) -> None:
    model = saved_model[0]
    intent = trajectories[0].intent
    queries = [render_example(intent, t) for t in trajectories]
    assert split_query(queries[0]) == (intent, render_trajectory(trajectories[0]))
    assert split_query("no task line") == ("", "no task line")
    # what OpenRLHF's remote_rm_fn posts: query + prompts + labels, reads "rewards"
    reply = client.post(
        "/get_reward", json={"query": queries, "prompts": [intent] * 5, "labels": [None] * 5}
    )
    assert reply.status_code == 200
    assert reply.json()["rewards"] == pytest.approx(model.score(intent, trajectories), abs=1e-5)
    assert reply.json()["scores"] == reply.json()["rewards"]
    assert client.post("/get_reward", json={"query": []}).json()["rewards"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": "not a list"},
        {"query": [1, 2]},
        {"trajectories": ["x"]},  # no intent
        {"intent": "a", "intents": ["a"], "trajectories": ["x"]},
        {"query": ["x"], "intent": "a", "trajectories": ["x"]},
        {"intent": "a", "trajectories": [{"not": "a trajectory"}]},
    ],
)
def test_malformed_bodies_are_422_with_a_message(client, body) -> None:
    reply = client.post("/get_reward", json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"]


def test_mismatched_lengths_are_400_and_too_large_batches_413(client) -> None:
    reply = client.post("/get_reward", json={"intents": ["a", "b"], "trajectories": ["x"]})
    assert reply.status_code == 400 and "2 intents for 1 trajectories" in reply.json()["detail"]
    reply = client.post("/get_reward", json={"query": ["x"] * 9})
    assert reply.status_code == 413 and "at most 8" in reply.json()["detail"]


def test_an_oversized_body_is_413_declared_or_streamed(saved_model) -> None:
    small = TestClient(build_app(saved_model[0], max_body_bytes=2000))
    body = json.dumps({"query": ["x" * 3000]}).encode()
    declared = small.post("/get_reward", content=body, headers=JSON)  # a Content-Length
    assert declared.status_code == 413 and "over 2,000 bytes" in declared.json()["detail"]
    streamed = small.post("/get_reward", content=iter([body[:1500], body[1500:]]), headers=JSON)
    assert streamed.status_code == 413 and "over 2,000 bytes" in streamed.json()["detail"]
    assert small.post("/get_reward", json={"query": ["x" * 100]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"intent": "\xff", "trajectories": ["x"]}', "not UTF-8"),
        (b'{"intent": "a", "trajectories": ["\xed\xa0\x80"]}', "not UTF-8"),  # raw surrogate
        (b'{"intent": "\\ud800", "trajectories": ["x"]}', "intent 0 is not valid Unicode"),
        (b'{"query": ["Task: a\\nfine", "\\udfff"]}', "trajectory 1 is not valid Unicode"),
        (b"[" * 100_000, "RecursionError"),
        (b'{"query": [' + b"1" * 5000 + b"]}", "not usable JSON"),  # int over 4,300 digits
    ],
)
def test_undecodable_bodies_are_400_with_a_message(client, body, message) -> None:
    reply = client.post("/get_reward", content=body, headers=JSON)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["detail"]


def test_the_token_is_checked_before_the_body_is_read(saved_model) -> None:
    """An unauthenticated client cannot make the server read (or parse) its body."""
    app = build_app(saved_model[0], token=TOKEN, max_body_bytes=1000)
    pulled: list[int] = []

    async def counting(scope, receive, send):  # records what the app reads of the body
        async def counted():
            message = await receive()
            pulled.append(len(message.get("body", b"")))
            return message

        await app(scope, counted, send)

    guarded = TestClient(counting)
    oversized = b"[" * 50_000
    reply = guarded.post("/get_reward", content=oversized)
    assert reply.status_code == 401 and sum(pulled) == 0
    auth = {"Authorization": f"Bearer {TOKEN}", **JSON}
    assert guarded.post("/get_reward", content=oversized, headers=auth).status_code == 413
    small = json.dumps({"query": ["Task: a\nb"]}).encode()
    assert guarded.post("/get_reward", content=small, headers=auth).status_code == 200
    assert sum(pulled) == len(small)  # the 413 was refused by its Content-Length, unread


def test_long_texts_are_cut_to_the_model_window(client, saved_model) -> None:
    """A 6 MB trajectory costs what its last max_length tokens cost (seconds and gigabytes
    when it was tokenized whole), and scores as they do."""
    step = "Action: 1 + 2 = 3\nObservation: Numbers left: 3 3 4\n"
    huge, window = step * 120_000, step * 40
    started = time.perf_counter()
    reply = client.post("/get_reward", json={"intent": "obtain 24", "trajectories": [huge]})
    assert reply.status_code == 200 and time.perf_counter() - started < 5
    expected = saved_model[0].score_texts(["obtain 24"], [window])
    assert reply.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_a_non_finite_score_is_an_error_never_null(small_reward_model_config) -> None:
    broken = RewardModel.create(small_reward_model_config)
    with torch.no_grad():
        for name, param in broken.module.named_parameters():
            if "score_head" in name and name.endswith("bias"):
                param.fill_(float("nan"))
    reply = TestClient(build_app(broken)).post(
        "/get_reward", json={"intent": "a", "trajectories": ["x", "y"]}
    )
    assert reply.status_code == 500, reply.text
    assert "scored item 0 as nan" in reply.json()["detail"]
    assert "rewards" not in reply.json()


def test_bearer_token(saved_model) -> None:
    guarded = TestClient(build_app(saved_model[0], token=TOKEN))
    body = {"query": ["Task: a\nObservation: b"]}
    assert guarded.post("/get_reward", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert guarded.post("/get_reward", json=body, headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.post("/get_reward", json=body, headers=right).status_code == 200
    assert guarded.get("/health").json()["auth"] is True


def test_client_retries_5xx_and_fails_fast_on_4xx() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, text="warming up")
        return httpx.Response(200, json={"rewards": [0.5], "scores": [0.5]})

    rm = RemoteRewardModel(
        "http://rm", transport=httpx.MockTransport(flaky), initial_wait=0.01, max_wait=0.02
    )
    assert rm.score_texts(["a"], ["b"]) == [0.5] and len(calls) == 3

    calls.clear()
    rejecting = httpx.MockTransport(
        lambda request: calls.append(1) or httpx.Response(400, json={"detail": "too many"})
    )
    rm = RemoteRewardModel("http://rm", transport=rejecting, initial_wait=0.01)
    with pytest.raises(RewardServiceError, match="HTTP 400: too many"):
        rm.score_texts(["a"], ["b"])
    assert len(calls) == 1  # no retry

    down = RemoteRewardModel(
        "http://rm",
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        max_attempts=2,
        initial_wait=0.01,
    )
    with pytest.raises(RewardServiceError, match="HTTP 500 after 2 attempts"):
        down.score_texts(["a"], ["b"])


def test_client_gives_up_on_a_dead_server() -> None:
    rm = RemoteRewardModel(
        f"http://127.0.0.1:{free_port()}", max_attempts=2, initial_wait=0.01, timeout=2
    )
    assert rm.score("intent", []) == []  # nothing to ask
    with pytest.raises(RewardServiceError, match="cannot reach .* after 2 attempts"):
        rm.score_texts(["a"], ["b"])


def test_client_splits_large_requests(saved_model, trajectories) -> None:
    app_client = TestClient(build_app(saved_model[0], max_batch=2))
    seen: list[int] = []

    def through_app(request: httpx.Request) -> httpx.Response:
        seen.append(len(json.loads(request.content)["trajectories"]))
        reply = app_client.post(request.url.path, content=request.content, headers=request.headers)
        return httpx.Response(reply.status_code, content=reply.content)

    rm = RemoteRewardModel("http://rm", request_batch=2, transport=httpx.MockTransport(through_app))
    intent = trajectories[0].intent
    assert rm.score(intent, trajectories) == pytest.approx(
        saved_model[0].score(intent, trajectories), abs=1e-5
    )
    assert seen == [2, 2, 1]


# -- a real server process -----------------------------------------------------------------


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def server(saved_model):
    """``python -m armap_agents.reward.service`` with a token from ARMAP_RM_TOKEN."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "armap_agents.reward.service",
            "--model",
            saved_model[1],
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "ARMAP_RM_TOKEN": TOKEN},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the reward service exited during start-up"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the reward service did not come up"
            time.sleep(0.2)
        yield url, process
    finally:
        _stop(process)
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)  # reaped and gone


@pytest.mark.slow
def test_remote_scores_equal_local_scores(server, saved_model, trajectories) -> None:
    url, _ = server
    local = RewardModel.load(saved_model[1])
    intent = trajectories[0].intent
    with RemoteRewardModel(url, token=TOKEN) as remote:
        assert remote.health()["max_length"] == 96
        assert remote.score(intent, trajectories) == pytest.approx(
            local.score(intent, trajectories), abs=1e-5
        )
        assert remote.score(intent, []) == []


@pytest.mark.slow
def test_real_server_auth_validation_and_openrlhf_form(server, trajectories) -> None:
    url, _ = server
    intent = trajectories[0].intent
    body = {"query": [render_example(intent, t) for t in trajectories]}
    assert httpx.post(f"{url}/get_reward", json=body).status_code == 401
    with pytest.raises(RewardServiceError, match="401 \\(check the token\\)"):
        RemoteRewardModel(url).score(intent, trajectories)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reply = httpx.post(f"{url}/get_reward", json=body, headers=auth)
    assert reply.status_code == 200 and len(reply.json()["rewards"]) == 5
    bad = httpx.post(f"{url}/get_reward", json={"query": "x"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["detail"]
    mismatched = httpx.post(
        f"{url}/get_reward", json={"intents": [], "trajectories": ["x"]}, headers=auth
    )
    assert mismatched.status_code == 400 and "intents" in mismatched.json()["detail"]


@pytest.mark.slow
def test_best_of_n_plans_against_the_service(server, saved_model) -> None:
    url, process = server
    with RemoteRewardModel(url, token=TOKEN) as remote:
        graph = build_best_of_n_graph(
            RandomPolicy(), Game24Env, remote, BestOfNConfig(n=2, max_steps=3)
        )
        state = graph.invoke({"task_id": "3"}, {"max_concurrency": 2})
    assert len(state["candidates"]) == 2 and len(state["scores"]) == 2
    local = RewardModel.load(saved_model[1]).score(
        state["candidates"][0].intent, state["candidates"]
    )
    assert state["scores"] == pytest.approx(local, abs=1e-5)
    assert state["best"] is not None and process.poll() is None


def _head_only(url: str, headers: str) -> str:
    """Send a request's headers (announcing a 100 MB body) and none of its body; return the
    server's status line: a server that waited for the body would time out here."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /get_reward HTTP/1.1\r\nHost: rm\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n" + headers.encode() + b"\r\n"
        )
        return sock.makefile("rb").readline().decode().strip()


@pytest.mark.slow
def test_real_server_refuses_an_oversized_body_unread(server) -> None:
    url, process = server
    assert _head_only(url, "") == "HTTP/1.1 401 Unauthorized"
    assert _head_only(url, f"Authorization: Bearer {TOKEN}\r\n") == (
        "HTTP/1.1 413 Request Entity Too Large"
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    surrogate = httpx.post(
        f"{url}/get_reward", content=b'{"query": ["\\ud800"]}', headers=auth | JSON, timeout=10
    )
    assert surrogate.status_code == 400 and "not valid Unicode" in surrogate.json()["detail"]
    assert process.poll() is None
