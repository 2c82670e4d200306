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
      intent for every trajectory. Scores are exactly ``RewardModel.score_texts``'s.
    * OpenRLHF's remote reward model (``--remote_rm_url``): ``{"query": [str, ...]}`` (its
      ``prompts``/``labels`` keys are accepted). Each query is one whole text, split into
      ``(intent, trajectory text)`` by :func:`split_query`: the canonical
      :func:`~armap_agents.types.render_example` form ``"Task: <intent>\\n<trajectory text>"``
      gives back exactly the pair a planner would have scored.

Errors, each with a message in ``detail``: 401 when a bearer token is configured and the
request's ``Authorization: Bearer <token>`` is missing or wrong (checked before a byte of the
body is read); 413 for a body over ``max_body_bytes`` or more than ``max_batch`` items; 400
for a body that is not UTF-8 JSON, text with lone surrogates, or mismatched lengths; 422 for
JSON of the wrong shape; 500 if the model scores an item as NaN or infinite (never served as
a number or ``null``).

Texts longer than the model's window are cut (oldest steps first, as training does) before
they are tokenized, so the cost of a request is bounded by ``max_batch`` and the model's
``max_length``, whatever the texts' lengths.

fastapi and uvicorn are optional (``pip install 'armap-agents[serve]'``); the client needs
only httpx.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the endpoint's ``Request``
# annotation as the class (imported inside build_app, as fastapi is optional), not a string.
import argparse
import hmac
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
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
) -> "fastapi.FastAPI":
    """A FastAPI app serving ``reward_model`` (see the module docstring for the API).

    ``max_batch`` caps the items in one request and ``max_body_bytes`` its body (413 above
    either); ``batch_size`` is the forward pass size inside a request. Requests are scored one
    at a time (the model is not thread-safe), each in FastAPI's thread pool so ``/health``
    stays responsive.
    """
    fastapi, _ = _require_server_deps()
    from fastapi import Depends, Header, HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    if max_batch < 1 or max_body_bytes < 1:
        raise ConfigError("max_batch and max_body_bytes must be at least 1")
    lock = threading.Lock()
    app = fastapi.FastAPI(title="armap reward model", version="1")

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

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            raise HTTPException(status_code=413, detail=_too_large(max_body_bytes))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise HTTPException(status_code=413, detail=_too_large(max_body_bytes))
            chunks.append(chunk)
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
        with lock:
            rewards = reward_model.score_texts(intents, texts, batch_size=batch_size, check=False)
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
            max_length=reward_model.config.max_length,
            max_batch=max_batch,
            max_body_bytes=max_body_bytes,
            auth=token is not None,
        )

    @app.post(
        "/get_reward",
        response_model=RewardResponse,
        dependencies=[Depends(check_token)],
        openapi_extra={"requestBody": _request_body_schema()},
    )
    async def get_reward(request: Request) -> RewardResponse:  # no body parameter: see above
        raw = await read_body(request)
        return await run_in_threadpool(score, raw)  # parsing too: /health stays responsive

    return app


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
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_level: str = "info",
) -> None:
    """Load the reward model saved in ``model_dir`` and serve it until interrupted."""
    _, uvicorn = _require_server_deps()
    from armap_agents.reward.model import RewardModel

    if token is None and host not in {"127.0.0.1", "localhost", "::1"}:
        logger.warning("serving on %s without a token: anyone who can reach it can use it", host)
    app = build_app(
        RewardModel.load(model_dir),
        token=token,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


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
    parser.add_argument("--model", required=True, help="a saved reward-model directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"require 'Authorization: Bearer <token>' (default: ${TOKEN_ENV}, else none)",
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
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    serve(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        max_batch=args.max_batch,
        max_body_bytes=int(args.max_body_mb * 2**20),
        log_level=args.log_level,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
