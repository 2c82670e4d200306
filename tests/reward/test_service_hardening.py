"""The reward service's hardening (issue 26, round two): content type, origins, read timeouts,
a cost bound with requests taking turns, the documentation behind the token, token sources and
binding beyond loopback.

In-process (FastAPI's TestClient) except the timeouts, which need uvicorn's real sockets: a
uvicorn server runs in a thread of the test on 127.0.0.1 and is stopped by the test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from armap_agents.cli import main  # noqa: E402
from armap_agents.local_llm import free_port  # noqa: E402
from armap_agents.reward import service  # noqa: E402
from armap_agents.reward.model import RewardModel  # noqa: E402
from armap_agents.reward.service import _Turns, build_app, server_options  # noqa: E402

TOKEN = "rm-hardening-token"
BODY = {"intent": "obtain 24", "trajectories": ["Action: 1 + 2 = 3\nObservation: 3 3 4"]}


@pytest.fixture(scope="module")
def model(small_reward_model_config) -> RewardModel:
    return RewardModel.create(small_reward_model_config)


@pytest.fixture(scope="module")
def client(model) -> TestClient:
    return TestClient(build_app(model))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("armap serve-rm:")]
    errors = [line for line in errors if "warning" not in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# -- (a) content type ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},  # what a cross-site <form enctype=text/plain> sends
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},  # fetch() with a Blob body sends no type, and asks no permission
    ],
)
def test_a_post_that_is_not_declared_json_is_415_unscored(model, headers) -> None:
    app = build_app(model)
    raw = b'{"intent": "obtain 24", "trajectories": ["x"]}'
    reply = TestClient(app).post("/get_reward", content=raw, headers=headers)
    assert reply.status_code == 415, reply.text
    assert "Content-Type: application/json" in reply.json()["detail"]
    assert app.state.turns.taken == 0  # nothing tokenized or scored
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert TestClient(app).post("/get_reward", content=raw, headers=charset).status_code == 200


# -- (b) origins ---------------------------------------------------------------------------
def test_a_foreign_origin_gets_403_and_no_cors_headers(client) -> None:
    evil = {"Origin": "https://evil.example"}
    for reply in (
        client.post("/get_reward", json=BODY, headers=evil),
        client.get("/health", headers=evil),
        client.options("/get_reward", headers={**evil, "Access-Control-Request-Method": "POST"}),
        client.post("/get_reward", json=BODY, headers={"Origin": "null"}),  # sandboxed page
    ):
        assert reply.status_code == 403, reply.text
        assert "--allow-origin" in reply.json()["detail"]
        assert "access-control-allow-origin" not in reply.headers
    # the server's own pages (its /docs) and clients that send no Origin are served
    assert client.post("/get_reward", json=BODY, headers={"Origin": "http://testserver"}).is_success
    assert client.post("/get_reward", json=BODY).is_success


def test_a_listed_origin_gets_cors_headers(model) -> None:
    site = "https://dashboard.example"
    listed = TestClient(build_app(model, allow_origins=[site]))
    preflight = listed.options(
        "/get_reward",
        headers={
            "Origin": site,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == site
    reply = listed.post("/get_reward", json=BODY, headers={"Origin": site})
    assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == site
    other = listed.post("/get_reward", json=BODY, headers={"Origin": "https://evil.example"})
    assert other.status_code == 403


@pytest.mark.parametrize("origin", ["*", "evil.example", "https://a.example/path", "ftp://a"])
def test_allow_origin_takes_origins_only(model, origin) -> None:
    with pytest.raises(service.ConfigError, match="not an origin"):
        build_app(model, allow_origins=[origin])


# -- (d) cost bound and turns --------------------------------------------------------------
def test_a_request_over_the_token_bound_is_413_unscored(model) -> None:
    app = build_app(model, max_tokens_per_request=40)
    small = TestClient(app)
    assert small.get("/health").json()["max_tokens_per_request"] == 40
    long = {"intent": "obtain 24", "trajectories": ["Action: 1 + 2 = 3 " * 10] * 3}
    reply = small.post("/get_reward", json=long)
    assert reply.status_code == 413, reply.text
    assert "at most 40 tokens per request" in reply.json()["detail"]
    assert app.state.turns.taken == 1  # tokenized, never scored
    assert small.post("/get_reward", json=BODY).status_code == 200


def test_a_large_request_is_scored_in_slices_with_the_same_scores(model) -> None:
    texts = [
        f"Action: {i} + 2 = {i + 2}\nObservation: left {i} 3 4 " * (1 + i % 5) for i in range(16)
    ]
    app = build_app(model, slice_tokens=256)
    reply = TestClient(app).post("/get_reward", json={"intent": "obtain 24", "trajectories": texts})
    assert reply.status_code == 200
    assert app.state.turns.taken > 4  # one turn to tokenize, then one per slice
    expected = model.score_texts(["obtain 24"] * len(texts), texts)
    assert reply.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_turns_alternate_between_requests() -> None:
    """A request that arrives while a long one is being scored waits for one slice, not for
    the whole of the long one (with one lock held to the end, it waited for all 20)."""
    turns, log = _Turns(), []

    def request(name: str, slices: int) -> None:
        for i in range(slices):
            with turns.turn():
                log.append((name, i))
                time.sleep(0.01)

    big = threading.Thread(target=request, args=("big", 20))
    big.start()
    while len(log) < 3:
        time.sleep(0.001)
    small = threading.Thread(target=request, args=("small", 2))
    small.start()
    big.join()
    small.join()
    order = [name for name, _ in log]
    first = order.index("small")
    assert order[first : first + 4] == ["small", "big", "small", "big"]
    assert first <= 5


# -- (e) documentation behind the token ----------------------------------------------------
def test_the_documentation_needs_the_token_when_one_is_set(model) -> None:
    guarded = TestClient(build_app(model, token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert guarded.get(path).status_code == 401, path
        assert guarded.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert guarded.get(path, headers=auth).status_code == 200, path
    spec = guarded.get("/openapi.json", headers=auth).json()
    assert "/get_reward" in spec["paths"] and "/docs" not in spec["paths"]
    open_ = TestClient(build_app(model))
    assert all(open_.get(p).status_code == 200 for p in ("/docs", "/redoc", "/openapi.json"))


# -- (c) read timeouts, on real sockets ----------------------------------------------------
@pytest.fixture
def live(model):
    """A uvicorn server of the service in a thread, with a 1 s read timeout."""
    port = free_port()
    options = server_options("127.0.0.1", port, read_timeout=1.0)
    server = uvicorn.Server(uvicorn.Config(build_app(model), log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (reading what it answers)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_and_incomplete_requests_are_closed_after_the_read_timeout(live) -> None:
    head = (
        b"POST /get_reward HTTP/1.1\r\nHost: rm\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    sends = [
        b"",  # connects and says nothing
        b"POST /get_reward HTTP/1.1\r\nHost: rm\r\n",  # headers never finished
        head + b'{"intent": "a", ',  # body never finished
    ]
    socks = []
    for data in sends * 10:
        sock = socket.create_connection(("127.0.0.1", live), timeout=5)
        sock.sendall(data)
        socks.append(sock)
    # a slow drip does not reset the deadline
    drip = socket.create_connection(("127.0.0.1", live), timeout=5)
    drip.sendall(b"POST /get_reward HTTP/1.1\r\n")
    started = time.monotonic()
    for _ in range(3):
        time.sleep(0.3)
        drip.sendall(b"X-Drip: 1\r\n")
    assert all(_closed_within(sock, 3) for sock in [*socks, drip])
    assert time.monotonic() - started < 4
    for sock in [*socks, drip]:
        sock.close()
    # a whole request on a kept-alive connection is answered, and the connection reused
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{live}") as client:
        assert client.post("/get_reward", json=BODY).status_code == 200
        time.sleep(1.5)  # past the read timeout, within keep-alive's 5 s
        assert client.post("/get_reward", json=BODY).status_code == 200


# -- (f, g) token sources and binding, from the command line ---------------------------------
@pytest.fixture
def fake_server(monkeypatch) -> list[dict]:
    """serve-rm up to uvicorn.run, without loading a model: what build_app and run got."""
    calls: list[dict] = []
    monkeypatch.setattr(service, "build_app", lambda model, **kw: calls.append(kw) or "app")
    monkeypatch.setattr(
        RewardModel, "load", classmethod(lambda cls, path: calls.append({"load": path}))
    )
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"run": kw}))
    monkeypatch.delenv("ARMAP_RM_TOKEN", raising=False)
    return calls


def test_serving_beyond_loopback_without_a_token_is_refused(fake_server, tmp_path, capsys) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10", "rm.example"):
        assert main(["serve-rm", "--model", str(tmp_path), "--host", host]) == 2
        line = _one_line_error(capsys)
        assert "without a token" in line and "--insecure" in line and host in line
    assert fake_server == []  # nothing loaded
    assert main(["serve-rm", "--model", str(tmp_path), "--host", "0.0.0.0", "--insecure"]) == 0
    run = fake_server[-1]["run"]
    assert run["host"] == "0.0.0.0" and run["timeout_keep_alive"] == 5
    assert issubclass(run["http"], asyncio.Protocol)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert main(["serve-rm", "--model", str(tmp_path), "--host", host]) == 0


def test_the_token_comes_from_a_file_or_the_environment(
    fake_server, tmp_path, capsys, monkeypatch
) -> None:
    model = str(tmp_path)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    argv = ["serve-rm", "--model", model, "--host", "0.0.0.0"]
    assert main([*argv, "--token-file", str(secret)]) == 0
    assert fake_server[-2]["token"] == TOKEN
    monkeypatch.setenv("ARMAP_RM_TOKEN", "from-env")
    assert main(argv) == 0 and fake_server[-2]["token"] == "from-env"
    assert main([*argv, "--token-file", str(secret)]) == 0  # the file wins over the variable
    assert fake_server[-2]["token"] == TOKEN
    assert "process list" not in capsys.readouterr().err
    assert main([*argv, "--token", "on-the-line"]) == 0
    assert "visible in the process list" in capsys.readouterr().err
    calls = len(fake_server)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for extra, says in [
        (["--token-file", str(tmp_path / "missing")], "cannot read the token file"),
        (["--token-file", str(empty)], "empty"),
        (["--token", "x", "--token-file", str(secret)], "not both"),
        (["--allow-origin", "*"], "not an origin"),
        (["--max-tokens-per-request", "0"], "--max-tokens-per-request"),
        (["--read-timeout", "nan"], "--read-timeout"),
    ]:
        assert main([*argv, *extra]) == 2, extra
        assert says in _one_line_error(capsys)
    assert len(fake_server) == calls  # nothing loaded
