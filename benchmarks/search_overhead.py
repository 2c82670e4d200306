"""The cost of search itself (table 5): framework overhead, and parallel LLM calls against the
critical-path limit. Run::

    python benchmarks/search_overhead.py [--latency 0.3] [--tasks 5] [--llm SPEC]

**(a) Overhead.** MCTS and Best-of-N on Game of 24 with pieces that cost (almost) nothing:
:class:`~armap_agents.RandomPolicy`, the in-memory ``Game24Env`` and ``FakeHashReward`` (a
fake reward model: a stable pseudo-random score per trajectory). Every policy, environment and
reward call is wrapped in a timer; the framework's overhead is the wall time minus the time
inside them, per MCTS simulation (select-expand-evaluate-backup round) and per Best-of-N
candidate. Runs are sequential (``max_concurrency=1``), so times add up. A second pass with a
callback that times each LangGraph task splits the overhead into *our node code* (building
policy contexts, trajectories, tree copies) and *LangGraph* (scheduling supersteps, channel
writes and reducers, checkpoints).

**(b) Parallelism.** ``LatencySimulatorChatModel`` (defined here; a stand-in for an API, not a
model) sleeps ``--latency`` seconds per request and answers a valid move picked at random from
the actions listed in the prompt; :class:`~armap_agents.LLMPolicy` drives Best-of-16 and MCTS
over it. The *critical path* is the number of LLM calls that must happen one after another:

* Best-of-N: the episodes are independent, the steps of one episode are not, so it is the
  longest episode's number of policy calls (3 for Game of 24);
* MCTS: the rounds are sequential (each selects from the tree the previous one updated); in a
  round, ``propose`` is one request for ``expansion_k`` samples (``n=k``, or ``k`` concurrent
  requests), then the new children's rollouts run in parallel, each a chain of calls. So it
  is the sum over rounds of ``1 + the longest rollout of that round`` (read off the tree).

The limit is ``critical-path calls x mean call latency``; the table reports wall time against
it, for several ``max_concurrency`` values. With ``--llm SPEC`` (e.g. ``openai:gpt-4o-mini``)
the same runs use that model and its measured latency.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from _report import figure_path, header, save_results
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ConfigDict, PrivateAttr

from armap_agents import (
    BestOfNConfig,
    Game24Env,
    LLMPolicy,
    MCTSConfig,
    RandomPolicy,
    build_best_of_n_graph,
    build_mcts_graph,
    make_chat_model,
)
from armap_agents._plotting import pyplot, save_figure
from armap_agents.rollout import policy_context
from armap_agents.types import Trajectory, render_trajectory

NAME = "search_overhead"


# -- timers and zero-cost pieces ------------------------------------------------------------
class StopWatch:
    """Seconds and calls per category, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def timed(self, category: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[category] = self.seconds.get(category, 0.0) + elapsed
                self.calls[category] = self.calls.get(category, 0) + 1

    def total(self, *categories: str) -> float:
        return sum(self.seconds.get(c, 0.0) for c in categories)


class TimedPolicy:
    """A policy whose ``act`` calls are timed as ``policy``."""

    def __init__(self, policy: Any, watch: StopWatch) -> None:
        self.policy, self.watch = policy, watch

    def act(self, context, *, seed: int, greedy: bool = False):
        return self.watch.timed("policy", self.policy.act, context, seed=seed, greedy=greedy)


class TimedEnv:
    """An environment whose every method call is timed as ``env`` (attributes pass through)."""

    _TIMED = frozenset({"reset", "step", "valid_actions", "evaluate", "close", "task_ids"})

    def __init__(self, env: Any, watch: StopWatch) -> None:
        self._env, self._watch = env, watch

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._env, name)
        if name in self._TIMED:
            return lambda *a, **k: self._watch.timed("env", value, *a, **k)
        return value


class FakeHashReward:
    """A fake reward model for measuring overhead: a stable pseudo-random score in [0, 1) per
    trajectory (a hash of its text), timed as ``reward``. Not a model."""

    def __init__(self, watch: StopWatch) -> None:
        self.watch = watch

    def _score(self, trajectories: Sequence[Trajectory]) -> list[float]:
        out = []
        for t in trajectories:
            digest = hashlib.sha256(render_trajectory(t).encode()).digest()
            out.append(int.from_bytes(digest[:4], "big") / 2**32)
        return out

    def score(self, intent: str, trajectories: Sequence[Trajectory], *, batch_size: int = 64):
        return self.watch.timed("reward", self._score, trajectories)


class TaskTimer(BaseCallbackHandler):
    """Times every LangGraph task (one node run) and counts supersteps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[Any, float] = {}
        self.task_seconds = 0.0
        self.tasks = 0
        self.steps = 0

    def on_chain_start(self, serialized, inputs, *, run_id, metadata=None, **kwargs) -> None:
        metadata = metadata or {}
        node = metadata.get("langgraph_node")
        if node is not None and kwargs.get("name") == node:
            with self._lock:
                self._started[run_id] = time.perf_counter()
                self.steps = max(self.steps, int(metadata.get("langgraph_step", 0)))

    def on_chain_end(self, outputs, *, run_id, **kwargs) -> None:
        with self._lock:
            start = self._started.pop(run_id, None)
            if start is not None:
                self.task_seconds += time.perf_counter() - start
                self.tasks += 1

    def on_chain_error(self, error, *, run_id, **kwargs) -> None:
        self.on_chain_end(None, run_id=run_id)


# -- (a) overhead ---------------------------------------------------------------------------
def overhead_row(label: str, build: Callable, tasks: Sequence[str], units_of) -> dict:
    """Run ``build(policy, env_factory, reward)`` on ``tasks`` twice (plain, then with the
    task timer) and return the overhead figures."""
    watch = StopWatch()
    graph = build(TimedPolicy(RandomPolicy(), watch), lambda: TimedEnv(Game24Env(), watch), watch)
    units = 0
    start = time.perf_counter()
    for task in tasks:
        state = graph.invoke({"task_id": task}, _thread({"max_concurrency": 1}, task))
        units += units_of(state)
    wall = time.perf_counter() - start
    inside = watch.total("policy", "env", "reward")
    # second pass: the same runs with LangGraph tasks timed
    watch2 = StopWatch()
    graph2 = build(
        TimedPolicy(RandomPolicy(), watch2), lambda: TimedEnv(Game24Env(), watch2), watch2
    )
    timer = TaskTimer()
    start = time.perf_counter()
    steps = 0
    for task in tasks:
        timer.steps = 0
        graph2.invoke(
            {"task_id": task}, _thread({"max_concurrency": 1, "callbacks": [timer]}, task)
        )
        steps += timer.steps
    wall2 = time.perf_counter() - start
    inside2 = watch2.total("policy", "env", "reward")
    overhead2 = max(wall2 - inside2, 1e-12)
    node_share = max(timer.task_seconds - inside2, 0.0) / overhead2
    return {
        "label": label,
        "units": units,
        "wall": wall,
        "policy": watch.total("policy"),
        "env": watch.total("env"),
        "reward": watch.total("reward"),
        "env_calls": watch.calls.get("env", 0),
        "overhead": wall - inside,
        "per_unit_ms": 1000 * (wall - inside) / max(units, 1),
        "steps": steps,
        "per_step_ms": 1000 * (wall - inside) / max(steps, 1),
        "node_share": node_share,
    }


def _thread(config: dict, task: str) -> dict:
    """Run config with a thread id (needed by graphs compiled with a checkpointer)."""
    return {**config, "configurable": {"thread_id": f"overhead-{task}"}}


def overhead_table(tasks: Sequence[str]) -> tuple[list[str], list[dict]]:
    def mcts(iterations: int, k: int, checkpointer: Any = None):
        config = MCTSConfig(iterations=iterations, expansion_k=k, max_policy_calls=None)

        def build(policy, env_factory, watch):
            saver = InMemorySaver() if checkpointer else None
            return build_mcts_graph(
                policy, env_factory, FakeHashReward(watch), config, checkpointer=saver
            )

        return build

    def best_of_n(n: int, checkpointer: bool = False):
        def build(policy, env_factory, watch):
            saver = InMemorySaver() if checkpointer else None
            return build_best_of_n_graph(
                policy, env_factory, FakeHashReward(watch), BestOfNConfig(n=n), checkpointer=saver
            )

        return build

    candidates = lambda s: len(s["candidates"])  # noqa: E731
    rounds = lambda s: s["iteration"]  # noqa: E731
    specs = [
        ("Best-of-16", best_of_n(16), candidates, "candidate"),
        ("Best-of-64", best_of_n(64), candidates, "candidate"),
        ("Best-of-16 + InMemorySaver", best_of_n(16, True), candidates, "candidate"),
        ("MCTS 16 rounds, k=3 (defaults)", mcts(16, 3), rounds, "simulation"),
        ("MCTS 64 rounds, k=6", mcts(64, 6), rounds, "simulation"),
        ("MCTS 64 rounds, k=6 + InMemorySaver", mcts(64, 6, True), rounds, "simulation"),
    ]
    rows = []
    for label, build, units_of, unit in specs:
        row = overhead_row(label, build, tasks, units_of)
        row["unit"] = unit
        rows.append(row)
        print(f"  {label}: {row['per_unit_ms']:.2f} ms per {unit}", file=sys.stderr)
    lines = [
        "| planner | units | wall (s) | policy / env / reward (s) | env calls | "
        "overhead (s) | overhead per unit (ms) | supersteps | per superstep (ms) | "
        "in node code |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['units']} {r['unit']}s | {r['wall']:.2f} | "
            f"{r['policy']:.3f} / {r['env']:.3f} / {r['reward']:.3f} | {r['env_calls']:,} | "
            f"{r['overhead']:.2f} | **{r['per_unit_ms']:.2f}** | {r['steps']} | "
            f"{r['per_step_ms']:.2f} | {r['node_share']:.0%} |"
        )
    return lines, rows


# -- (b) parallelism ------------------------------------------------------------------------
_LISTED = re.compile(r"^- (.+)$", re.MULTILINE)


class LatencySimulatorChatModel(BaseChatModel):
    """A latency simulator standing in for an API model (not a model): every request sleeps
    ``latency`` seconds, then answers ``Action: <a valid action listed in the prompt, picked
    at random by the request's seed>``. Honours ``n`` like OpenAI (``honour_n``). Records the
    peak number of requests in flight."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    latency: float = 0.3
    honour_n: bool = True
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _peak: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "latency-simulator"

    @property
    def peak_in_flight(self) -> int:
        return self._peak

    def reset_peak(self) -> None:
        with self._lock:
            self._peak = 0

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Sequence[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        try:
            time.sleep(self.latency)
        finally:
            with self._lock:
                self._in_flight -= 1
        prompt = str(messages[-1].content)
        actions = _LISTED.findall(prompt.rsplit("Valid actions:", 1)[-1]) or ["noop"]
        count = int(kwargs.get("n") or 1) if self.honour_n else 1
        seed = kwargs.get("seed", 0)
        texts = [f"Action: {random.Random(f'{seed}:{i}').choice(actions)}" for i in range(count)]
        usage = {
            "input_tokens": len(prompt.split()),
            "output_tokens": sum(len(t.split()) for t in texts),
            "total_tokens": len(prompt.split()) + sum(len(t.split()) for t in texts),
        }
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(t, usage_metadata=usage)) for t in texts]
        )


class LatencyMeter(BaseCallbackHandler):
    """Counts chat-model requests and measures their latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[Any, float] = {}
        self.latencies: list[float] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs) -> None:
        with self._lock:
            self._started[run_id] = time.perf_counter()

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        with self._lock:
            start = self._started.pop(run_id, None)
            if start is not None:
                self.latencies.append(time.perf_counter() - start)


def mcts_critical_calls(state: dict, propose_levels: int = 1) -> int:
    """Sequential LLM calls of an MCTS run: per expanded node (one round each), the proposal
    request(s) plus the longest rollout among its new children."""
    total = 0
    for node in state["nodes"].values():
        if node["children"]:
            rollouts = [len(state["nodes"][c]["rollout"]) for c in node["children"]]
            total += propose_levels + max(rollouts, default=0)
    return total


def parallel_table(
    model: BaseChatModel, tasks: Sequence[str], concurrency: Sequence[int | None]
) -> tuple[list[str], list[dict]]:
    bon_config = BestOfNConfig(n=16, max_steps=6)
    mcts_config = MCTSConfig(iterations=8, expansion_k=4, max_policy_calls=None, max_steps=6)
    rows = []
    default_workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
    for planner in ("Best-of-16", "MCTS 8 rounds, k=4"):
        for mc in concurrency:
            policy = LLMPolicy(model, max_reasks=1)
            watch = StopWatch()
            build = build_best_of_n_graph if planner.startswith("Best") else build_mcts_graph
            config = bon_config if planner.startswith("Best") else mcts_config
            graph = build(policy, Game24Env, FakeHashReward(watch), config)
            meter = LatencyMeter()
            if isinstance(model, LatencySimulatorChatModel):
                model.reset_peak()
            run_config: dict[str, Any] = {"callbacks": [meter]}
            if mc is not None:
                run_config["max_concurrency"] = mc
            wall = critical = 0.0
            for task in tasks:
                start = time.perf_counter()
                state = graph.invoke({"task_id": task}, run_config)
                wall += time.perf_counter() - start
                if planner.startswith("Best"):
                    critical += max(t.policy_calls for t in state["candidates"])
                else:
                    # a server that ignores n costs a second level on the first proposal
                    critical += mcts_critical_calls(state) + (policy.server_honours_n is False)
            latency = statistics.fmean(meter.latencies) if meter.latencies else 0.0
            limit = critical * latency
            row = {
                "planner": planner,
                "mc": f"default ({default_workers})" if mc is None else str(mc),
                "calls": len(meter.latencies),
                "critical": int(critical),
                "latency": latency,
                "limit": limit,
                "wall": wall,
                "sequential": len(meter.latencies) * latency,
                "peak": getattr(model, "peak_in_flight", None),
            }
            rows.append(row)
            print(
                f"  {planner} max_concurrency={row['mc']}: {wall:.2f} s, limit {limit:.2f} s",
                file=sys.stderr,
            )
    lines = [
        "| planner | max_concurrency | LLM requests | critical-path requests | mean latency (s) "
        "| limit (s) | wall (s) | wall / limit | all sequential (s) | peak in flight |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["wall"] / r["limit"] if r["limit"] else float("nan")
        peak = "—" if r["peak"] is None else r["peak"]
        lines.append(
            f"| {r['planner']} | {r['mc']} | {r['calls']} | {r['critical']} | "
            f"{r['latency']:.3f} | {r['limit']:.2f} | {r['wall']:.2f} | **{ratio:.2f}×** | "
            f"{r['sequential']:.1f} | {peak} |"
        )
    return lines, rows


def plot(overhead: list[dict], parallel: list[dict]) -> Any:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [r["label"] for r in overhead]
    left.barh(labels, [r["per_unit_ms"] for r in overhead], color="#1f77b4")
    left.invert_yaxis()
    left.set_xlabel("framework overhead per candidate / simulation (ms)")
    left.set_title("(a) overhead, zero-cost policy/env/reward")
    names = [
        f"{'BoN-16' if r['planner'].startswith('Best') else 'MCTS'}\n{r['mc'].replace(' ', '')}"
        for r in parallel
    ]
    xs = range(len(parallel))
    right.bar([x - 0.2 for x in xs], [r["wall"] for r in parallel], 0.4, label="wall")
    right.bar([x + 0.2 for x in xs], [r["limit"] for r in parallel], 0.4, label="critical path")
    right.set_xticks(list(xs), names, fontsize=7)
    right.set_xlabel("max_concurrency")
    right.set_ylabel("seconds (all tasks)")
    right.set_title("(b) wall time vs critical-path limit")
    right.legend()
    return save_figure(fig, figure_path(NAME))


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5, help="Game of 24 test puzzles per row")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated seconds per call")
    parser.add_argument("--llm", help="a real chat model for part (b) instead of the simulator")
    parser.add_argument(
        "--concurrency",
        default="default,1,4,16",
        help="max_concurrency values for part (b), comma-separated ('default': LangGraph's)",
    )
    args = parser.parse_args()
    if args.tasks < 1 or args.latency < 0:
        parser.error("--tasks must be at least 1 and --latency at least 0")
    concurrency = [None if c == "default" else int(c) for c in args.concurrency.split(",")]
    tasks = Game24Env().task_ids("test")[: args.tasks]
    started = time.perf_counter()
    print("(a) framework overhead ...", file=sys.stderr)
    overhead_lines, overhead_rows = overhead_table(tasks)
    print("(b) parallel LLM calls ...", file=sys.stderr)
    model = (
        make_chat_model(args.llm) if args.llm else LatencySimulatorChatModel(latency=args.latency)
    )
    # the first LLMPolicy call pays one-time imports (langchain_openai, ~seconds on a busy
    # 2-core machine): pay them before timing
    warm_start = time.perf_counter()
    warm_env = Game24Env()
    context = policy_context(warm_env, tasks[0], warm_env.reset(tasks[0]), [])
    LLMPolicy(model, max_reasks=0).act(context, seed=0)
    warm_up = time.perf_counter() - warm_start
    parallel_lines, parallel_rows = parallel_table(model, tasks, concurrency)
    png = plot(overhead_rows, parallel_rows)
    source = args.llm or f"LatencySimulatorChatModel, {args.latency * 1000:.0f} ms per request"
    markdown = "\n".join(
        [
            "# Search overhead and parallelism (table 5)",
            "",
            header(),
            "",
            f"Game of 24 test puzzles: {len(tasks)} ({', '.join(tasks)}). "
            f"Total run time {time.perf_counter() - started:.0f} s.",
            "",
            "## (a) Framework overhead per MCTS simulation and per Best-of-N candidate",
            "",
            "RandomPolicy, Game24Env, FakeHashReward; sequential (`max_concurrency=1`). "
            "Overhead = wall − time inside policy, environment and reward calls, summed over "
            "the puzzles. *In node code*: the share of the overhead spent inside our node "
            "functions (contexts, trajectories, tree copies); the rest is LangGraph "
            "(supersteps, channel writes, reducers, checkpoints).",
            "",
            *overhead_lines,
            "",
            "## (b) Parallel LLM calls against the critical-path limit",
            "",
            f"Policy: LLMPolicy over {source}; reward: FakeHashReward. MCTS proposes with "
            "one `n=k` request per expansion. Limit = critical-path requests × mean latency; "
            "*all sequential* = every request one after another. `default` is LangGraph's "
            "own: no `max_concurrency` key, so a thread pool of `min(32, cores + 4)` workers. "
            f"An untimed warm-up request first (one-time imports): {warm_up:.1f} s.",
            "",
            *parallel_lines,
            "",
            f"![search overhead]({png.name})",
        ]
    )
    save_results(NAME, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(run())
