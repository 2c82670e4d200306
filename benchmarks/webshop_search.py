"""Search and step latency of the WebShop environment on a large generated catalog.

Builds a generated catalog (100,000 products by default), then measures: generation time, the
BM25 index build (cold: tokenize, index, save to a fresh cache directory), the index load from
that cache by a second catalog over the same products (what every later process pays), search
latency over goal instructions (median / p95), the latency of each kind of environment step,
search quality (the goal's target in the top 10 / top 50 for its own instruction, and whether
any top-10 product would score 1) and memory. The catalog's products take most of the memory:
they are plain Python objects; the index itself is memory-mapped.
Prints a markdown table with the command and the machine.

    python benchmarks/webshop_search.py                  # 100k products, 200 queries
    python benchmarks/webshop_search.py --products 20000 --queries 100
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import bm25s

from armap_agents.environments.webshop import (
    Catalog,
    WebShopEnv,
    generate_catalog,
    score_purchase,
)


def _rss_mib() -> float:
    """Resident memory now (MiB), from /proc when available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{1000 * statistics.median(ordered):.3g} / {1000 * p95:.3g}"


def _dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _timed(fn):  # noqa: ANN001, ANN202
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="index cache (default: a temp dir)")
    args = parser.parse_args()

    rss_start = _rss_mib()
    catalog, t_generate = _timed(
        lambda: generate_catalog(args.products, seed=args.seed, cache_dir=False)
    )
    rss_catalog = _rss_mib()

    with tempfile.TemporaryDirectory(prefix="webshop-bench-") as tmp:
        cache = Path(args.cache_dir) if args.cache_dir else Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob("bm25-*"):  # a cold build, whatever the cache held
            shutil.rmtree(old)
        cold = Catalog(catalog.products, catalog.goals, cache_dir=cache)
        _, t_build = _timed(cold.warm)
        rss_index = _rss_mib()
        index_dir = next(cache.glob("bm25-*"))
        index_mib = _dir_mib(index_dir)
        del cold
        gc.collect()

        warm = Catalog(catalog.products, catalog.goals, cache_dir=cache)
        _, t_fingerprint = _timed(lambda: warm.fingerprint)
        _, t_load = _timed(warm.warm)

        goals = list(warm.goals[: args.queries])
        search_times, top10, top50, satisfied = [], 0, 0, 0
        for goal in goals:
            found, seconds = _timed(lambda g=goal: warm.search(g.instruction))
            search_times.append(seconds)
            asins = [p.asin for p in found]
            top10 += goal.asin in asins[:10]
            top50 += goal.asin in asins
            satisfied += any(
                score_purchase(p, [v for v in goal.options if p.option_kind(v)], goal).success
                for p in found[:10]
            )
        short_times = [
            _timed(lambda g=goal: warm.search(" ".join(g.instruction.split()[3:8])))[1]
            for goal in goals
        ]

        make = WebShopEnv.factory(warm)
        env = make()
        steps: dict[str, list[float]] = defaultdict(list)
        for task_number in range(len(goals)):
            task = str(task_number)
            _, seconds = _timed(lambda t=task: env.reset(t))
            steps["reset"].append(seconds)
            query = env.valid_actions()[0]
            _, seconds = _timed(lambda q=query: env.step(q))
            steps["search[...] (suggested query)"].append(seconds)
            _, seconds = _timed(lambda: env.step("click[next >]"))
            steps["click[next >]"].append(seconds)
            product_click = env.valid_actions()[-1]
            _, seconds = _timed(lambda a=product_click: env.step(a))
            steps["click[<product>]"].append(seconds)
            option = next(
                (a for a in env.valid_actions()[2:] if a not in ("click[description]",)), None
            )
            if option and option != "click[features]":
                _, seconds = _timed(lambda a=option: env.step(a))
                steps["click[<option>]"].append(seconds)
            _, seconds = _timed(lambda: env.step("click[features]"))
            steps["click[features]"].append(seconds)
            _, seconds = _timed(lambda: env.step("click[< prev]"))
            steps["click[< prev]"].append(seconds)
            _, seconds = _timed(env.valid_actions)
            steps["valid_actions() (item page)"].append(seconds)
            _, seconds = _timed(lambda: env.step("click[buy now]"))
            steps["click[buy now]"].append(seconds)
            _, seconds = _timed(env.evaluate)
            steps["evaluate()"].append(seconds)
        rss_end = _rss_mib()

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)

    print(f"## WebShop search and steps, {args.products:,} generated products\n")
    print(f"Command: `{command}`  ")
    print(
        f"Machine: {_cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, bm25s {bm25s.__version__}  "
    )
    print(f"Catalog: {len(catalog):,} products, {len(catalog.goals):,} goals\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| generate the catalog | {t_generate:.2f} s |")
    print(f"| build the index (tokenize, index, save; cold) | {t_build:.2f} s |")
    print(f"| fingerprint the catalog (hash of the indexed text) | {t_fingerprint:.2f} s |")
    print(f"| load the persisted index (memory-mapped) | {t_load:.3f} s |")
    print(f"| index on disk | {index_mib:.1f} MiB |")
    print(f"| search, goal instruction as query, median / p95 | {_ms(search_times)} ms |")
    print(f"| search, 5-word query, median / p95 | {_ms(short_times)} ms |")
    for name, values in steps.items():
        print(f"| step: {name}, median / p95 | {_ms(values)} ms |")
    n = len(goals)
    print(
        f"| target in the top 10 / top 50 for its instruction | {top10 / n:.0%} / {top50 / n:.0%} |"
    )
    print(f"| a product scoring 1 (with the goal's options) in the top 10 | {satisfied / n:.0%} |")
    print(
        f"| resident memory: start / catalog / + index / end | {rss_start:.0f} / "
        f"{rss_catalog:.0f} / {rss_index:.0f} / {rss_end:.0f} MiB |"
    )
    print(f"| peak resident memory | {_peak_mib():.0f} MiB |")
    print(f"\n{n} queries and {n} episodes; step latencies include rendering the page.")


if __name__ == "__main__":
    main()
