"""The reward model as an HTTP service, and a client that planners use like a local model.

Serve a saved reward model::

    python -m armap_agents.reward.service --model runs/quickstart-game24/reward_model --port 8000

and plan against it from anywhere with :class:`RemoteRewardModel`, which has the
``score(intent, trajectories)`` of :class:`~armap_agents.reward.model.RewardModel` (the only
thing Best-of-N, MCTS and Reflexion call)::

    rm = RemoteRewardModel("http://127.0.0.1:8000")
    graph = build_best_of_n_graph(policy, Game24Env, rm)

Endpoints:

``GET /health``
    ``{"status": "ok", "backbone": ..., "max_length": ..., "max_batch": ...,
    "max_body_bytes": ..., "auth": ...}``.
``POST /get_reward``
    Returns ``{"rewards": [float, ...], "scores": [...same...]}``, one per item, in order.
    Two request forms:

    * ours: ``{"intents": [str, ...], "trajectories": [...]}`` where each trajectory is its
      rendered text (:func:`~armap_agents.types.render_trajectory`) or a
      :class:`~armap_agents.types.Trajectory` JSON object; ``{"intent": str, ...}`` gives one
      intent for every trajectory. Scores are ``RewardModel.score_texts``'s (to float
      rounding: the service pads smaller batches).
    * OpenRLHF's remote reward model (``--remote_rm_url``): ``{"query": [str, ...]}`` (its
      ``prompts``/``labels`` keys are accepted). Each query is one whole text, split into
      ``(intent, trajectory text)`` by :func:`split_query`: the canonical
      :func:`~armap_agents.types.render_example` form ``"Task: <intent>\\n<trajectory text>"``
      gives back exactly the pair a planner would have scored.

Errors, each with a message in ``detail``: 401 when a bearer token is configured and the
request's ``Authorization: Bearer <token>`` is missing or wrong (checked before a byte of the
body is read); 415 for a body not sent as ``Content-Type: application/json``; 403 for a request
from a browser page of another origin than the server's own or those allowed; 413 for a body
over ``max_body_bytes``, more than ``max_batch`` items or ``max_tokens_per_request`` tokens; 400
for a body that is not UTF-8 JSON, text with lone surrogates, or mismatched lengths; 422 for
JSON of the wrong shape; 500 if the model scores an item as NaN or infinite (never served as
a number or ``null``).

Texts longer than the model's window are cut (oldest steps first, as training does) before
they are tokenized, so the cost of a request is bounded by ``max_tokens_per_request`` (at most
``max_batch`` x the model's ``max_length``), whatever the texts' lengths; requests take turns
slice by slice (see :func:`build_app`), and :func:`serve` closes connections that do not send a
whole request within ``read_timeout`` seconds.

fastapi and uvicorn are optional (``pip install 'armap-agents[serve]'``); the client needs
only httpx.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the endpoint's ``Request``
# annotation as the class (imported inside build_app, as fastapi is optional), not a string.
import argparse
import hmac
import ipaddress
import json
import logging
import math
import os
import stat
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from armap_agents.errors import ConfigError, MissingDependency, RewardServiceError
from armap_agents.reward.scorer import TextScorer
from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Trajectory

if TYPE_CHECKING:
    import fastapi

    from armap_agents.reward.model import RewardModel

__all__ = [
    "RemoteRewardModel",
    "RewardRequest",
    "RewardResponse",
    "RewardServiceError",
    "build_app",
    "serve",
    "split_query",
]

logger = logging.getLogger(__name__)

TOKEN_ENV = "ARMAP_RM_TOKEN"
QUERY_PREFIX = "Task: "
DEFAULT_MAX_BATCH = 256
"""Most items (texts) in one request."""
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest request body: 8 MiB (256 items of 32 KB)."""
DEFAULT_SLICE_TOKENS = 2048
"""Padded tokens in one forward pass of the service: the most a request waits for another."""
DEFAULT_READ_TIMEOUT = 15.0
"""Seconds a client has to send a whole request (headers and body), from its first byte (or
the connection's opening); the connection is closed after that."""
DEFAULT_KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection stays open (uvicorn's ``timeout_keep_alive``)."""
_INSTALL_HINT = "pip install 'armap-agents[serve]'"


# -- request / response --------------------------------------------------------------------


class RewardRequest(BaseModel):
    """Body of ``POST /get_reward``: ``query`` (OpenRLHF) or ``intent(s)`` + ``trajectories``."""

    model_config = ConfigDict(extra="ignore")  # OpenRLHF may send more keys than we read

    query: list[str] | None = None
    prompts: list[str] | None = None
    """Sent by OpenRLHF beside ``query``; not used for scoring."""
    labels: list[Any] | None = None
    """Sent by OpenRLHF beside ``query``; not used for scoring."""
    intent: str | None = None
    intents: list[str] | None = None
    trajectories: list[str | Trajectory] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "RewardRequest":
        ours = self.trajectories is not None or self.intent is not None or self.intents is not None
        if self.query is not None and ours:
            raise ValueError("give either 'query' or 'intents' + 'trajectories', not both")
        if self.query is None:
            if self.trajectories is None:
                raise ValueError(
                    "give 'query' (a list of texts) or 'intents' + 'trajectories' (lists)"
                )
            if (self.intent is None) == (self.intents is None):
                raise ValueError("give exactly one of 'intent' (a string) or 'intents' (a list)")
        return self

    def size(self) -> int:
        return len(self.query if self.query is not None else self.trajectories or [])

    def pairs(self, view: TrajectoryView) -> tuple[list[str], list[str]]:
        """``(intents, texts)`` to score, each trajectory read through the model's ``view``
        (a text in :func:`~armap_agents.types.render_trajectory`'s form is parsed back and
        re-rendered, so texts and trajectory JSON score alike); lengths already checked."""
        if self.query is not None:
            split = [split_query(q) for q in self.query]
            return [i for i, _ in split], [view.render_text(t) for _, t in split]
        texts = [
            view.render_text(t) if isinstance(t, str) else view.render(t)
            for t in self.trajectories or []
        ]
        intents = self.intents if self.intents is not None else [self.intent or ""] * len(texts)
        return list(intents), texts


class RewardResponse(BaseModel):
    """``rewards`` is what OpenRLHF reads; ``scores`` is the same list (its newer key)."""

    rewards: list[float]
    scores: list[float]


class Health(BaseModel):
    status: str = "ok"
    backbone: str
    max_length: int
    max_batch: int
    max_body_bytes: int
    max_tokens_per_request: int
    auth: bool = Field(description="whether requests need a bearer token")


def split_query(text: str) -> tuple[str, str]:
    """One OpenRLHF query text as ``(intent, trajectory text)``.

    ``"Task: <intent>\\n<rest>"`` (the :func:`~armap_agents.types.render_example` form) splits
    at the first newline into ``(<intent>, <rest>)``. Any other text is scored whole as the
    trajectory, with an empty intent.
    """
    if text.startswith(QUERY_PREFIX) and "\n" in text:
        intent, rest = text[len(QUERY_PREFIX) :].split("\n", 1)
        return intent, rest
    return "", text


# -- server --------------------------------------------------------------------------------


def _require_server_deps():
    try:
        import fastapi
        import uvicorn
    except ImportError as exc:
        raise MissingDependency(
            f"the reward service needs fastapi and uvicorn: {_INSTALL_HINT}"
        ) from exc
    return fastapi, uvicorn


def build_app(
    reward_model: "RewardModel",
    *,
    token: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    batch_size: int = 64,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_tokens_per_request: int | None = None,
    slice_tokens: int = DEFAULT_SLICE_TOKENS,
    allow_origins: Sequence[str] = (),
) -> "fastapi.FastAPI":
    """A FastAPI app serving ``reward_model`` (see the module docstring for the API).

    ``max_batch`` caps the items in one request, ``max_body_bytes`` its body and
    ``max_tokens_per_request`` its tokens, summed over its items after each is cut to the
    model's window (413 above any; default ``max_batch`` x the window). ``batch_size`` is the
    forward pass size inside a request. The model is not thread-safe, so it works on one slice
    at a time (a forward pass of at most ``batch_size`` items and ``slice_tokens`` padded
    tokens), and requests take turns slice by slice (round robin): a small request waits for
    one slice of a large one, not for all of it. Scoring runs in FastAPI's thread pool, so
    ``/health`` stays responsive.

    A request that carries an ``Origin`` header other than the server's own or one of
    ``allow_origins`` is refused (403); the listed origins get CORS headers. With a ``token``,
    the API documentation (``/docs``, ``/redoc``, ``/openapi.json``) needs it too.
    """
    fastapi, _ = _require_server_deps()
    import torch
    from fastapi import Depends, Header, HTTPException, Request
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect

    from armap_agents.reward.model import _pack_by_tokens

    if max_batch < 1 or max_body_bytes < 1 or slice_tokens < 1:
        raise ConfigError("max_batch, max_body_bytes and slice_tokens must be at least 1")
    window = reward_model.config.max_length
    if max_tokens_per_request is None:
        max_tokens_per_request = max_batch * window
    if max_tokens_per_request < 1:
        raise ConfigError("max_tokens_per_request must be at least 1")
    origins = _checked_origins(allow_origins)
    turns = _Turns()
    reward_model.module.eval()
    docs = token is None  # with a token, the documentation routes below check it
    app = fastapi.FastAPI(
        title="armap reward model",
        version="1",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.turns = turns  # for tests and benchmarks: how many slices were scored
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(_OriginGuard, allow_origins=origins)  # outermost: runs first

    def check_token(authorization: str | None = Header(default=None)) -> None:  # noqa: B008
        """Runs before the body is read: the endpoint declares no body parameter, so FastAPI
        reads nothing and the endpoint reads the body itself, after this check."""
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("latin-1"), token.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def check_json(content_type: str | None = Header(default=None)) -> None:  # noqa: B008
        """415 unless the body is declared JSON: a browser sends a cross-site POST without
        asking first only as text/plain, a form or no type at all, and never as JSON."""
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise HTTPException(
                status_code=415,
                detail=f"the body must be JSON sent with 'Content-Type: application/json' "
                f"(got {_clip(content_type or 'none')})",
            )

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            raise HTTPException(status_code=413, detail=_too_large(max_body_bytes))
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise HTTPException(status_code=413, detail=_too_large(max_body_bytes))
                chunks.append(chunk)
        except ClientDisconnect:  # gone, or closed by the read timeout: nobody to answer
            raise HTTPException(status_code=408, detail="the body did not arrive") from None
        return b"".join(chunks)

    def score(raw: bytes) -> RewardResponse:
        body = _parse(raw)
        n = body.size()
        if n > max_batch:
            raise HTTPException(
                status_code=413,
                detail=f"{n} items in one request; this server takes at most {max_batch}: "
                "split the request",
            )
        if body.intents is not None and len(body.intents) != n:
            raise HTTPException(
                status_code=400,
                detail=f"{len(body.intents)} intents for {n} trajectories: "
                "give one intent per trajectory (or a single 'intent')",
            )
        intents, texts = body.pairs(reward_model.config.view)
        for kind, values in (("intent", intents), ("trajectory", texts)):
            for i, value in enumerate(values):
                problem = _not_unicode(value)
                if problem:
                    raise HTTPException(status_code=400, detail=f"{kind} {i} {problem}")
        if not texts:
            return RewardResponse(rewards=[], scores=[])
        with turns.turn():  # the tokenizer is not thread-safe either
            encoded = reward_model.encode(intents, texts, pad=False)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        cost = sum(lengths)
        if cost > max_tokens_per_request:
            raise HTTPException(
                status_code=413,
                detail=f"{n} items of {cost:,} tokens in all (each cut to the model's window of "
                f"{window}); this server takes at most {max_tokens_per_request:,} tokens per "
                "request: split the request",
            )
        # as RewardModel.score_texts: pairs of similar lengths batched together, each batch
        # padded to its longest; here each batch is one turn
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        rewards = [0.0] * len(texts)
        widths = [lengths[i] for i in order]
        for group in _pack_by_tokens(widths, slice_tokens, max_items=batch_size):
            chunk = [order[position] for position in group]
            with turns.turn(), torch.inference_mode():
                batch = reward_model.tokenizer.pad(
                    {key: [values[i] for i in chunk] for key, values in encoded.items()},
                    return_tensors="pt",
                )
                scored = reward_model.forward_batch(batch).tolist()
            for i, r in zip(chunk, scored, strict=True):
                rewards[i] = float(r)
        bad = next((i for i, r in enumerate(rewards) if not math.isfinite(r)), None)
        if bad is not None:
            logger.error("the reward model scored item %d as %s", bad, rewards[bad])
            raise HTTPException(
                status_code=500,
                detail=f"the reward model scored item {bad} as {rewards[bad]}, not a number: "
                "its weights are broken; no reward is served",
            )
        return RewardResponse(rewards=rewards, scores=rewards)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(
            backbone=reward_model.config.backbone,
            max_length=window,
            max_batch=max_batch,
            max_body_bytes=max_body_bytes,
            max_tokens_per_request=max_tokens_per_request,
            auth=token is not None,
        )

    @app.post(
        "/get_reward",
        response_model=RewardResponse,
        dependencies=[Depends(check_token), Depends(check_json)],
        openapi_extra={"requestBody": _request_body_schema()},
    )
    async def get_reward(request: Request) -> RewardResponse:  # no body parameter: see above
        raw = await read_body(request)
        return await run_in_threadpool(score, raw)  # parsing too: /health stays responsive

    if not docs:  # the same pages, behind the token
        from fastapi.responses import HTMLResponse, JSONResponse

        guarded = [Depends(check_token)]

        @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", include_in_schema=False, dependencies=guarded)
        def swagger() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

        @app.get("/redoc", include_in_schema=False, dependencies=guarded)
        def redoc() -> HTMLResponse:
            return get_redoc_html(openapi_url="/openapi.json", title=app.title)

    return app


class _Turns:
    """The model's lock, handed out in arrival order: a request that needs several turns (one
    per slice) queues again after each, behind every request that arrived meanwhile, so active
    requests alternate slice by slice (round robin) instead of one holding the lock to its
    end."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: deque[object] = deque()
        self._busy = False
        self.taken = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        me = object()
        with self._changed:
            self._queue.append(me)
            while self._busy or self._queue[0] is not me:
                self._changed.wait()
            self._queue.popleft()
            self._busy = True
            self.taken += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


class _OriginGuard:
    """Refuses (403) a request whose ``Origin`` header is neither the server's own (scheme +
    ``Host``) nor listed: a page of another site in a browser gets no answer, not even from
    ``/health``. Requests without an ``Origin`` (curl, httpx, OpenRLHF) pass."""

    def __init__(self, app: Any, allow_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(allow_origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin")
            if origin is not None:
                text = origin.decode("latin-1").rstrip("/")
                host = headers.get(b"host", b"").decode("latin-1")
                own = f"{scope.get('scheme', 'http')}://{host}"
                if text not in self.allowed and text != own:
                    from starlette.responses import JSONResponse

                    refusal = JSONResponse(
                        {
                            "detail": f"requests from origin {_clip(text)} are refused: "
                            "the operator lists allowed origins with --allow-origin"
                        },
                        status_code=403,
                    )
                    await refusal(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _checked_origins(origins: Sequence[str]) -> tuple[str, ...]:
    """``scheme://host[:port]`` origins, as browsers send them (no path, no trailing slash)."""
    out = []
    for origin in origins:
        text = origin.strip().rstrip("/")
        scheme, sep, rest = text.partition("://")
        if text == "*" or not sep or scheme not in {"http", "https"} or not rest or "/" in rest:
            raise ConfigError(
                f"--allow-origin {origin!r} is not an origin: give scheme://host[:port], "
                "e.g. https://dashboard.example.com (no path, no wildcard)"
            )
        out.append(text)
    return tuple(out)


def _clip(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _too_large(limit: int) -> str:
    return (
        f"the request body is over {limit:,} bytes, the most this server takes: "
        "send fewer or shorter items per request"
    )


def _not_unicode(text: str) -> str | None:
    """Why ``text`` cannot be tokenized (lone surrogates from ``\\ud800`` escapes), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode text: {exc.reason} at character {exc.start}"
    return None


def _parse(body: bytes) -> RewardRequest:
    """The request from the raw body: 400 unless it is UTF-8 JSON, 422 for the wrong shape."""
    from fastapi import HTTPException
    from fastapi.exceptions import RequestValidationError

    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status_code=400, detail=f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    except json.JSONDecodeError as exc:
        raise HTTPException(status_code=400, detail=f"the body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # integers over 4,300 digits, deep nesting
        raise HTTPException(
            status_code=400, detail=f"the body is not usable JSON: {type(exc).__name__}: {exc}"
        ) from None
    try:
        return RewardRequest.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(  # without "input": no echo of a large body
            [
                {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
        ) from None


def _request_body_schema() -> dict[str, Any]:
    """The OpenAPI entry of ``POST /get_reward``'s body (read by the endpoint itself)."""
    pointer = "#/paths/~1get_reward/post/requestBody/content/application~1json/schema/$defs/"
    schema = RewardRequest.model_json_schema(ref_template=pointer + "{model}")
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    *,
    token_file: str | Path | None = None,
    insecure: bool = False,
    allow_origins: Sequence[str] = (),
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_tokens_per_request: int | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    log_level: str = "info",
) -> None:
    """Load the reward model saved in ``model_dir`` and serve it until interrupted.

    The token is ``token``, else the first line of ``token_file``, else ``$ARMAP_RM_TOKEN``.
    Without one, only a loopback ``host`` is served unless ``insecure``: these checks (and the
    origins') raise :class:`ConfigError` before the model is loaded."""
    _, uvicorn = _require_server_deps()
    token = resolve_token(token, token_file)
    if token is None and not is_loopback(host):
        if not insecure:
            raise ConfigError(
                f"refusing to serve on {host} without a token: anyone who can reach it could "
                f"use it; set ${TOKEN_ENV} or --token-file, or pass --insecure"
            )
        logger.warning("serving on %s without a token: anyone who can reach it can use it", host)
    origins = _checked_origins(allow_origins)
    if not read_timeout > 0:  # also refuses nan
        raise ConfigError(f"read timeout {read_timeout}: give a positive number of seconds")
    from armap_agents.reward.model import RewardModel

    app = build_app(
        RewardModel.load(model_dir),
        token=token,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        max_tokens_per_request=max_tokens_per_request,
        allow_origins=origins,
    )
    uvicorn.run(app, **server_options(host, port, read_timeout=read_timeout), log_level=log_level)


def server_options(
    host: str, port: int, *, read_timeout: float = DEFAULT_READ_TIMEOUT
) -> dict[str, Any]:
    """``uvicorn.run`` / ``uvicorn.Config`` keywords of the service: idle keep-alive
    connections close after ``DEFAULT_KEEP_ALIVE`` seconds, and a request whose headers and
    body have not all arrived ``read_timeout`` seconds after its first byte (or after the
    connection opened) has its connection closed (uvicorn has no such limit of its own)."""
    return {
        "host": host,
        "port": port,
        "timeout_keep_alive": DEFAULT_KEEP_ALIVE,
        "http": _timed_protocol(read_timeout),
    }


def _timed_protocol(read_timeout: float) -> type:
    """uvicorn's HTTP protocol (httptools or h11, as ``http="auto"`` picks) with a deadline
    for reading each request."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class TimedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
        _read_timer: Any = None
        _timed_cycle: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle  # the request being read or answered, or the last one answered
            if (cycle is None or cycle.response_complete) and cycle is not self._timed_cycle:
                self._arm()  # the first bytes of a new request on a kept-alive connection
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._timed_cycle = self.cycle
            self._read_timer = self.loop.call_later(read_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _timed_out(self) -> None:
            self._read_timer = None
            cycle = self.cycle
            reading = cycle is None or cycle.response_complete or cycle.more_body
            if reading and not self.transport.is_closing():
                logger.info("closing a connection that sent no whole request in %gs", read_timeout)
                self.transport.close()

    return TimedHTTPProtocol


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None = None, token_file: str | Path | None = None) -> str | None:
    """The bearer token: ``token``, else the first line of ``token_file``, else
    ``$ARMAP_RM_TOKEN``, else None. A token is printable ASCII without spaces."""
    if token is not None and token_file is not None:
        raise ConfigError("give --token or --token-file, not both")
    source = "--token"
    if token_file is not None:
        path = Path(token_file)
        source = f"--token-file {path}"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc}") from None
        token = lines[0].strip() if lines else ""
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("the token file %s is readable by other users: chmod 600 it", path)
    elif token is None:
        token = os.environ.get(TOKEN_ENV) or None
        source = f"${TOKEN_ENV}"
    if token is None:
        return None
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(f"the token from {source} is empty or not printable ASCII without spaces")
    return token


# -- client --------------------------------------------------------------------------------


class RemoteRewardModel(TextScorer):
    """A reward model behind :func:`serve`, used exactly like a local ``RewardModel``.

    Connection errors, timeouts and 5xx are retried (``max_attempts`` in all, exponential
    backoff); a 4xx raises :class:`RewardServiceError` at once with the server's message.
    Requests larger than ``request_batch`` items are split.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 4,
        initial_wait: float = 0.5,
        max_wait: float = 8.0,
        request_batch: int = 256,
        transport: Any = None,
    ) -> None:
        import httpx

        if request_batch < 1 or max_attempts < 1:
            raise ConfigError("request_batch and max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.request_batch = request_batch
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def score_texts(
        self, intents: Sequence[str], texts: Sequence[str], *, batch_size: int | None = None
    ) -> list[float]:
        """Rewards for ``(intent, trajectory text)`` pairs, input order kept (``batch_size``
        is the server's business and is ignored here); planners call :meth:`score`."""
        if len(intents) != len(texts):
            raise ValueError("intents and texts must have the same length")
        out: list[float] = []
        for start in range(0, len(texts), self.request_batch):
            body = {
                "intents": list(intents[start : start + self.request_batch]),
                "trajectories": list(texts[start : start + self.request_batch]),
            }
            rewards = self._request("POST", "/get_reward", json=body)["rewards"]
            if len(rewards) != len(body["trajectories"]):
                raise RewardServiceError(
                    f"{self.base_url} answered {len(rewards)} rewards for "
                    f"{len(body['trajectories'])} trajectories"
                )
            out.extend(float(r) for r in rewards)
        return out

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer (backbone, max_length, ...)."""
        return self._request("GET", "/health")

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, httpx.HTTPStatusError):
                return exc.response.status_code >= 500
            return isinstance(exc, httpx.TransportError)

        def once() -> dict[str, Any]:
            response = self._client.request(method, path, **kwargs)
            if response.status_code >= 500:
                response.raise_for_status()
            return self._checked(response)

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
            ),
            retry=retry_if_exception(transient),
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "reward service %s failed (%s); retry %d of %d",
                self.base_url,
                state.outcome.exception(),  # type: ignore[union-attr]  # set by then
                state.attempt_number,
                self.max_attempts - 1,
            ),
        )
        try:
            return retrying(once)
        except httpx.HTTPStatusError as exc:
            raise RewardServiceError(
                f"reward service {self.base_url}{path} failed with HTTP "
                f"{exc.response.status_code} after {self.max_attempts} attempts: "
                f"{exc.response.text[:500]}"
            ) from exc
        except httpx.TransportError as exc:
            raise RewardServiceError(
                f"cannot reach the reward service at {self.base_url} after "
                f"{self.max_attempts} attempts: {type(exc).__name__}: {exc}"
            ) from exc

    def _checked(self, response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            hint = " (check the token)" if response.status_code == 401 else ""
            raise RewardServiceError(
                f"reward service {self.base_url} refused the request with HTTP "
                f"{response.status_code}{hint}: {detail}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise RewardServiceError(
                f"reward service {self.base_url} answered with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "RemoteRewardModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteRewardModel({self.base_url!r})"


# -- command line --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m armap_agents.reward.service",
        description="Serve a saved reward model over HTTP (POST /get_reward, GET /health).",
    )
    add_serve_arguments(parser)
    parser.add_argument("--log-level", default="info", help="uvicorn's (default: info)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        serve_arguments(args, log_level=args.log_level)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    return 0


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the service, declared once for ``armap serve-rm`` and ``python -m
    armap_agents.reward.service``; :func:`serve_arguments` checks them and serves."""
    parser.add_argument("--model", required=True, help="reward-model directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer <token>' (visible in the process list: prefer "
        f"--token-file or ${TOKEN_ENV}, read when neither flag is given)",
    )
    parser.add_argument(
        "--token-file", type=Path, help="a file whose first line is the bearer token"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve beyond loopback (--host 0.0.0.0 ...) without a token (refused otherwise)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin (scheme://host[:port]) allowed to call the service, with CORS "
        "headers; repeatable (default: none: a request with a foreign Origin gets 403)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help=f"most items per request (default {DEFAULT_MAX_BATCH}; 413 above)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_BYTES / 2**20,
        help=f"largest request body in MiB (default {DEFAULT_MAX_BODY_BYTES / 2**20:g}; 413 above)",
    )
    parser.add_argument(
        "--max-tokens-per-request",
        type=int,
        default=None,
        help="most tokens in one request, each item cut to the model's window, summed "
        "(default: --max-batch x the window; 413 above)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT,
        help=f"seconds a client has to send a whole request, headers and body (default "
        f"{DEFAULT_READ_TIMEOUT:g}; idle keep-alive connections close after {DEFAULT_KEEP_ALIVE})",
    )


def serve_arguments(args: argparse.Namespace, **options: Any) -> None:
    """:func:`serve` with the flags of :func:`add_serve_arguments` (and ``options``), each
    checked before the model is loaded: a bad one is a :class:`ConfigError`."""
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port: give one in 1..65535")
    if args.max_batch < 1:
        raise ConfigError(f"--max-batch {args.max_batch}: give at least 1 item per request")
    if not (0 < args.max_body_mb < float("inf")):  # also refuses nan
        raise ConfigError(f"--max-body-mb {args.max_body_mb}: give a positive size in MiB")
    if args.max_tokens_per_request is not None and args.max_tokens_per_request < 1:
        raise ConfigError(
            f"--max-tokens-per-request {args.max_tokens_per_request}: give at least 1 token"
        )
    if not (0 < args.read_timeout < float("inf")):
        raise ConfigError(f"--read-timeout {args.read_timeout}: give a positive number of seconds")
    if args.token is not None:  # said on the terminal, whatever the logging
        print(
            f"warning: a --token is visible in the process list; prefer --token-file or "
            f"${TOKEN_ENV}",
            file=sys.stderr,
        )
    # the token file, the host without a token and the origins are checked by serve, before
    # it loads the model
    serve(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        token_file=args.token_file,
        insecure=args.insecure,
        allow_origins=args.allow_origin,
        max_batch=args.max_batch,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_tokens_per_request=args.max_tokens_per_request,
        read_timeout=args.read_timeout,
        **options,
    )


if __name__ == "__main__":
    raise SystemExit(main())
