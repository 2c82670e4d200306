"""Episodes on Ray workers (extra ``[ray]``): the graphs stay here, the episodes run there.

:class:`RayExecutor` is an :class:`~armap_agents.executors.EpisodeExecutor` over a pool of Ray
actors. Each actor builds, inside its own process, the environment from its registry name and
options (a pooled one: one JVM or engine per actor, kept warm across episodes, as
:class:`~armap_agents.environments.pool.EnvPool` does in process) and the policy from its spec
(``random``, ``expert:0.3``, a chat-model name: LLM requests leave from the worker, with the
same retries) and plays the episodes it is sent, one at a time. Trajectories come back to the
driver, whose graph alone writes them, so what a run records and how it resumes do not depend
on the executor.

* A worker that dies mid-episode (its process killed, its node lost) restarts (Ray's actor
  restarts; it rejoins the pool once it answers again) and the episode is played again on the
  next free worker, up to ``attempts`` times; after that it comes back failed, with the
  reason, and the exploration graph writes it to its failures file. Either way each episode
  is recorded once.
* A usage budget (:class:`~armap_agents.llm.UsageLimits`) is counted in one place, a small
  budget actor: every worker asks it before each LLM request, so the whole cluster stops at
  the limit (:class:`~armap_agents.errors.BudgetExceeded` reaches the driver). Each episode's
  usage also comes back with it, to the driver's trackers; when the executor closes, the
  driver's tracker takes the account's total (which also has the requests of episodes the
  budget cut short).

:func:`ray_session` connects to a cluster (``address``) or starts a local one, and leaves
things as it found them. Ray is imported only here, only when used.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableLambda, ensure_config

from armap_agents.errors import ArmapError, BudgetExceeded, ConfigError
from armap_agents.executors import EpisodeJob, play
from armap_agents.llm import Usage, UsageLimits, UsageTracker
from armap_agents.policies import Policy
from armap_agents.types import Trajectory

__all__ = ["RayExecutor", "ray_session"]

PolicySpec = str | Callable[[], Policy]
"""A policy spec (``random``, ``expert:EPSILON``, a chat-model name), or a picklable function
returning a policy, called in each worker."""

_LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray reads this once, on import: ``0`` keeps a local cluster on 127.0.0.1 (otherwise Ray
advertises the machine's network address)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'armap-agents[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Connected to Ray within the block: to the cluster at ``address`` (``ray start`` prints
    it; ``auto`` finds a local one), or, without one, to a new local cluster of ``num_cpus``
    CPUs on 127.0.0.1 without dashboard, stopped at the end. A process already connected
    stays as it is (its connection is used, not closed)."""
    if address is None and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ONLY, "0")  # before Ray's import: see the constant
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    if address is not None:
        ray.init(address=address)
    else:
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        yield
    finally:
        ray.shutdown()


class _Budget:
    """The cluster's one usage account (a Ray actor): a :class:`UsageTracker` that every
    worker asks before each LLM request and tells after it."""

    def __init__(self, limits: UsageLimits, spent: Usage) -> None:
        self.tracker = UsageTracker(limits)
        self.tracker.set_usage(spent)

    def start(self) -> str | None:
        """Reserve a request; why not, when the budget is spent."""
        try:
            self.tracker.on_chat_model_start({}, [])
        except BudgetExceeded as exc:
            return str(exc)
        return None

    def end(self, response: LLMResult) -> None:
        self.tracker.on_llm_end(response)

    def error(self) -> None:
        self.tracker.on_llm_error(RuntimeError("a failed attempt"))

    def usage(self) -> Usage:
        return self.tracker.usage


class _BudgetClient(BaseCallbackHandler):
    """In a worker: asks the budget actor before each LLM request (raising
    :class:`BudgetExceeded` when it refuses) and reports the request's usage after it."""

    raise_error = True

    def __init__(self, budget: Any) -> None:
        self.budget = budget

    def _ask(self) -> None:
        reason = _ray().get(self.budget.start.remote())
        if reason is not None:
            raise BudgetExceeded(reason)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self._ask()

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        self._ask()

    # waited for (a millisecond), so the account is exact whenever the driver reads it
    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        _ray().get(self.budget.end.remote(response))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        if not isinstance(error, BudgetExceeded):
            _ray().get(self.budget.error.remote())


class _Worker:
    """A Ray actor: a warm environment and the policy, playing one episode at a time."""

    def __init__(
        self, env: str, env_options: dict[str, Any], policy: PolicySpec, budget: Any
    ) -> None:
        from armap_agents import _builders as build
        from armap_agents.environments.registry import make_env_factory

        self.budget = budget
        self.env_factory: Any = None
        self.broken: Exception | None = None
        try:
            self.env_factory = make_env_factory(env, **env_options)
            # built now, so that a wrong option fails at start; one that starts lazily
            # (ScienceWorld's JVM) does on the first episode, then stays warm in the pool
            with closing(self.env_factory()):
                pass
            self.policy = build.policy(policy) if isinstance(policy, str) else policy()
        except Exception as exc:  # noqa: BLE001 - the driver raises it, as it would in process
            self.broken = exc

    def pid(self) -> int:
        """This process's id, once the environment and the policy are ready (or what
        stopped them, raised)."""
        if self.broken is not None:
            raise self.broken
        return os.getpid()

    def run(self, job: EpisodeJob) -> tuple[Trajectory, Usage]:
        """Play ``job``; its trajectory and the LLM usage it took."""
        usage = UsageTracker()
        handlers: list[BaseCallbackHandler] = [usage]
        if self.budget is not None:
            handlers.append(_BudgetClient(self.budget))
        # the policy's model sees these callbacks as it does a graph's in process
        episode: RunnableLambda[EpisodeJob, Trajectory] = RunnableLambda(
            lambda j: play(j, self.env_factory, self.policy)
        )
        trajectory = episode.invoke(job, {"callbacks": handlers, "run_name": "episode"})
        return trajectory, usage.usage

    def close(self) -> None:
        """Stop the environments (a pool's JVMs ...)."""
        close = getattr(self.env_factory, "close", None)
        if close is not None:
            close()


def _config_trackers() -> list[UsageTracker]:
    """The usage trackers among the callbacks of the running graph (e.g. an evaluation's
    per-method ones), which requests made in process would have reached."""
    callbacks = ensure_config().get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks = callbacks.handlers
    return [c for c in callbacks or [] if isinstance(c, UsageTracker)]


class RayExecutor:
    """Episodes on ``workers`` Ray actors, each with an environment ``env`` (a registry name
    or import path, built with ``env_options``) and a policy from ``policy`` (a spec or a
    picklable function returning one).

    ``limits``: a usage budget for the whole cluster (default: ``usage``'s limits), counted
    from what ``usage`` has spent already. ``usage``: the driver's tracker, which also counts
    the workers' requests. ``attempts``: how many workers may die under one episode before it
    is given up as failed. ``address``: as for :func:`ray_session` (used only when this
    process is not connected yet; the connection made is closed by :meth:`close`).
    ``cpus_per_worker``: the CPUs Ray reserves for each actor.

    Use it as a context manager, or call :meth:`close`: the actors stop, and their
    environments with them.
    """

    def __init__(
        self,
        env: str,
        policy: PolicySpec,
        *,
        env_options: Mapping[str, Any] | None = None,
        workers: int = 2,
        limits: UsageLimits | None = None,
        usage: UsageTracker | None = None,
        attempts: int = 3,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"a Ray executor needs at least one worker, not {workers}")
        if attempts < 1:
            raise ConfigError(f"attempts must be >= 1, not {attempts}")
        self.usage = usage
        self.attempts = attempts
        self.retried = 0
        """How many times a worker died under an episode (each time the episode went to a
        worker again, up to ``attempts``)."""
        self._closed = False
        self._session = ExitStack()
        self._session.enter_context(ray_session(address, num_cpus=workers))
        try:
            ray = _ray()
            limits = limits or (usage.limits if usage is not None else None)
            self._budget = None
            if limits is not None:
                spent = usage.usage if usage is not None else Usage()
                self._budget = ray.remote(num_cpus=0)(_Budget).remote(limits, spent)
            actor = ray.remote(num_cpus=cpus_per_worker, max_restarts=-1, max_task_retries=0)
            worker = actor(_Worker)
            options = dict(env_options or {})
            self._workers = [
                worker.remote(env, options, policy, self._budget) for _ in range(workers)
            ]
            try:
                self.pids: list[int] = ray.get([w.pid.remote() for w in self._workers])
                """The workers' process ids when they started."""
            except ray.exceptions.RayTaskError as exc:  # the environment or policy refused
                raise (exc.cause or exc) from None
            except ray.exceptions.RayActorError as exc:
                raise ArmapError(f"the Ray workers could not start: {exc}") from None
            self._idle: queue.Queue[Any] = queue.Queue()
            for w in self._workers:
                self._idle.put(w)
            self._alive = workers
            self._lock = threading.Lock()
        except BaseException:
            self.close()
            raise

    def run(self, job: EpisodeJob) -> Trajectory:
        """Play ``job`` on the next free worker (see the class's docstring)."""
        ray = _ray()
        reasons: list[str] = []
        for _ in range(self.attempts):
            worker = self._take()
            try:
                trajectory, usage = ray.get(worker.run.remote(job))
            except ray.exceptions.RayActorError as exc:  # the worker died: Ray restarts it
                reasons.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                with self._lock:
                    self.retried += 1
                threading.Thread(target=self._revive, args=(worker,), daemon=True).start()
                continue
            except BaseException as exc:
                self._idle.put(worker)
                if not isinstance(exc, ray.exceptions.RayTaskError):
                    raise
                # raised in the worker (a spent budget, a configuration error): as in process
                if isinstance(exc.cause, BudgetExceeded) and self.usage is not None:
                    self.usage.exhausted = str(exc.cause)
                raise (exc.cause or exc) from None
            self._idle.put(worker)
            self._count(usage)
            return trajectory
        return Trajectory(
            task_id=job.task_id,
            intent="",
            initial_observation="",
            episode_id=job.episode_id,
            error=f"WorkerDied: {len(reasons)} workers died under this episode; last: "
            + reasons[-1],
        )

    def _take(self) -> Any:
        """The next free worker (waiting for one)."""
        while True:
            if self._closed:
                raise ArmapError("the Ray executor was closed while episodes were pending")
            if not self._alive:
                raise ArmapError("no Ray worker is left: each one failed to restart")
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                continue

    def _ready_pid(self, worker: Any) -> int | None:
        """``worker``'s process id once it answers (it may be restarting), or None when it
        cannot play any more (closed, or its environment failed to start again)."""
        ray = _ray()
        while not self._closed:
            try:
                return ray.get(worker.pid.remote(), timeout=120)
            except (ray.exceptions.RayTaskError, ray.exceptions.ActorDiedError):
                return None  # restarted but its environment failed, or gone for good
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                time.sleep(0.2)  # still restarting
        return None

    def _revive(self, worker: Any) -> None:
        """Give a worker that died back to the pool once Ray has restarted it."""
        if self._ready_pid(worker) is not None:
            self._idle.put(worker)
            return
        with self._lock:
            self._alive -= 1

    def _count(self, usage: Usage) -> None:
        if not (usage.calls or usage.errors):
            return
        trackers = _config_trackers()
        if self.usage is not None and self.usage not in trackers:
            trackers.append(self.usage)
        for tracker in trackers:
            tracker.add(usage)

    @property
    def callbacks(self) -> list[BaseCallbackHandler]:
        """LangChain callbacks for LLM requests the driver makes itself (e.g. the planners
        that stay in process): they count against the cluster's budget too."""
        return [_BudgetClient(self._budget)] if self._budget is not None else []

    def worker_pids(self) -> list[int | None]:
        """The workers' process ids now (a restarted worker has a new one; None: one that
        could not restart); waits for busy or restarting workers."""
        return [self._ready_pid(w) for w in self._workers]

    def close(self) -> None:
        """Stop the workers (and their environments) and leave the Ray session."""
        if self._closed:
            return
        self._closed = True
        try:
            ray = _ray()
            workers: Sequence[Any] = getattr(self, "_workers", ())
            if workers:
                closing_ = [w.close.remote() for w in workers]
                ray.wait(closing_, num_returns=len(closing_), timeout=30)
            for w in workers:
                ray.kill(w, no_restart=True)
            budget = getattr(self, "_budget", None)
            if budget is not None:
                if self.usage is not None:  # also the requests of episodes cut short
                    total = ray.get(budget.usage.remote())
                    self.usage.set_usage(total)
                ray.kill(budget, no_restart=True)
        finally:
            self._session.close()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
