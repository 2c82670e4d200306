"""Reward service: the latency of small requests while the largest allowed one is scored.

A server of ``armap serve-rm`` (the service's app under uvicorn, in a thread, on 127.0.0.1;
an untrained model of the default backbone and window) gets one maximal request (``--texts``
items of ``--chars`` characters: 256 x 30 KB, every item filling the model's window) and,
while it runs, a small request (one short trajectory) every ``--every`` seconds, each from its
own client thread. It is run twice, side by side:

* ``one turn per request``: the whole request scored in one turn (a slice as large as the
  request), as before: the model's lock held from its first item to its last;
* ``turns per slice``: the service's default: slices of ``DEFAULT_SLICE_TOKENS`` padded
  tokens, taken in turns by the requests in arrival order (round robin).

Run::

    python benchmarks/service_fairness.py [--texts 256] [--chars 30000] [--every 0.25]

Prints the command, the machine, the versions and a markdown table of the small requests'
p50 / p99 / max latency and the large request's own time, saved as
``benchmarks/results/service_fairness.md``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx
import uvicorn
from _report import header, save_results

from armap_agents.local_llm import free_port
from armap_agents.reward.configs import RewardModelConfig
from armap_agents.reward.model import RewardModel
from armap_agents.reward.service import DEFAULT_SLICE_TOKENS, build_app, server_options

SMALL = {"intent": "obtain 24", "trajectories": ["Action: 4 * 6 = 24\nObservation: 24"]}


def _big(texts: int, chars: int) -> dict:
    items = []
    for i in range(texts):
        step = (
            f"Action: {i % 13} + {i % 7} = {i % 13 + i % 7}\nObservation: Numbers left: {i} 3 4\n"
        )
        items.append((step * (chars // len(step) + 1))[:chars])
    return {"intent": "obtain 24", "trajectories": items}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(model: RewardModel, slice_tokens: int, batch_size: int, big: dict, every: float) -> dict:
    port = free_port()
    app = build_app(model, slice_tokens=slice_tokens, batch_size=batch_size)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", **server_options("127.0.0.1", port))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/get_reward"
    httpx.post(url, json=SMALL, timeout=60).raise_for_status()  # warm up
    latencies: list[float] = []
    big_time: list[float] = []

    def large() -> None:
        started = time.perf_counter()
        httpx.post(url, json=big, timeout=600).raise_for_status()
        big_time.append(time.perf_counter() - started)

    def small() -> None:
        started = time.perf_counter()
        httpx.post(url, json=SMALL, timeout=600).raise_for_status()
        latencies.append(time.perf_counter() - started)

    runner = threading.Thread(target=large)
    runner.start()
    time.sleep(0.5)  # the large request is being scored
    smalls = []
    while runner.is_alive():
        t = threading.Thread(target=small)
        t.start()
        smalls.append(t)
        time.sleep(every)
    for t in smalls:
        t.join()
    server.should_exit = True
    thread.join(timeout=30)
    return {
        "n": len(latencies),
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "max": max(latencies),
        "big": big_time[0],
        "slices": app.state.turns.taken,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--chars", type=int, default=30_000)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between small requests")
    args = parser.parse_args()
    model = RewardModel.create(RewardModelConfig())
    big = _big(args.texts, args.chars)
    rows = []
    for name, slice_tokens, batch_size in (
        ("one turn per request (before)", 10**9, args.texts),
        (f"turns per slice of {DEFAULT_SLICE_TOKENS} tokens (default)", DEFAULT_SLICE_TOKENS, 64),
    ):
        r = _run(model, slice_tokens, batch_size, big, args.every)
        rows.append(
            f"| {name} | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | "
            f"{r['big']:.1f} | {r['slices']} |"
        )
        print(rows[-1], flush=True)
    markdown = "\n".join(
        [
            "# Reward service: small requests while the largest one is scored",
            "",
            header(("fastapi", "uvicorn")),
            "",
            f"Backbone {model.config.backbone}, window {model.config.max_length} tokens; the "
            f"large request: {args.texts} texts x {args.chars:,} characters; a small request "
            f"(1 short text) every {args.every:g} s while it runs. Latencies in seconds. "
            "'Before' scores the whole request in one turn (one forward pass of all its "
            "items); the code before scored it in batches of 16,384 tokens, the lock held "
            "throughout, which a small request waits for just the same.",
            "",
            "| scheduling | small requests | p50 | p99 | max | large request (s) | turns |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    save_results("service_fairness", markdown)


if __name__ == "__main__":
    main()
