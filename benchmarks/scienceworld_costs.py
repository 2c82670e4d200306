"""What ScienceWorld costs per operation: JVM start, reset, step, valid actions, prefix replay.

MCTS and other planners without state copies reach a node by reset + replaying its actions, so
the replay row is the price of one visit. Run::

    python benchmarks/scienceworld_costs.py [--tasks boil/0,find-animal/0] [--repeats 5]

Prints a markdown table (medians; min-max in brackets) with the command and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from armap_agents.environments.scienceworld import ScienceWorldEnv, parse_task_id
from armap_agents.rollout import replay


def _ms(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"{statistics.median(ms):.1f} ms [{min(ms):.1f}-{max(ms):.1f}], n={len(ms)}"


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rss_mib(pid: int | None) -> str:
    status = Path(f"/proc/{pid}/status")
    if pid is None or not status.exists():
        return "n/a"
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return f"{int(line.split()[1]) / 1024:.0f} MiB"
    return "n/a"


def _java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "java not found"
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="boil/0,find-animal/0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jvm-heap", default="512m")
    args = parser.parse_args()
    task_ids = [t.strip() for t in args.tasks.split(",") if t.strip()]
    rows: list[tuple[str, str]] = []

    starts: list[float] = []
    closes: list[float] = []
    for _ in range(max(2, args.repeats // 2)):
        env = ScienceWorldEnv(jvm_heap=args.jvm_heap)
        starts.append(_timed(lambda env=env: env.max_variations("boil")))  # start + one call
        closes.append(_timed(env.close))
    rows.append(("JVM start (first call of a new env)", _ms(starts)))
    rows.append(("close (stop and reap the JVM)", _ms(closes)))

    env = ScienceWorldEnv(jvm_heap=args.jvm_heap)
    try:
        for task_id in task_ids:
            name, _ = parse_task_id(task_id)
            gold = env.gold_actions(task_id)
            resets = [_timed(lambda t=task_id: env.reset(t)) for _ in range(args.repeats)]
            rows.append((f"reset `{task_id}` (load + look around)", _ms(resets)))

            env.reset(task_id)
            steps, raw_valid, curated_valid, sizes = [], [], [], []
            for action in gold:
                steps.append(_timed(lambda a=action: env.step(a)))
                if len(raw_valid) < args.repeats * 2:
                    raw: list[str] = []
                    raw_valid.append(_timed(lambda r=raw: r.extend(env._raw_valid_actions())))
                    env._valid_cache = None
                    curated_valid.append(_timed(env.valid_actions))
                    sizes.append((len(raw), len(env.valid_actions())))
                if env._episode is not None and env._episode.done:
                    break
            rows.append((f"step `{name}` (raw simulator step)", _ms(steps)))
            rows.append((f"valid actions `{name}`, simulator list", _ms(raw_valid)))
            rows.append((f"valid_actions() `{name}`, incl. curation", _ms(curated_valid)))
            raw_sizes = [r for r, _ in sizes]
            cur_sizes = [c for _, c in sizes]
            rows.append(
                (
                    f"valid-action list size `{name}` (raw -> curated)",
                    f"{statistics.median(raw_sizes):.0f} -> {statistics.median(cur_sizes):.0f} "
                    f"(max {max(raw_sizes)} -> {max(cur_sizes)})",
                )
            )
            prefix = gold[:10]
            replays = [
                _timed(lambda t=task_id, p=prefix: replay(env, t, p)) for _ in range(args.repeats)
            ]
            label = f"replay {len(prefix)}-action prefix `{task_id}` from reset"
            rows.append((label, _ms(replays)))
        rows.append(("JVM resident memory after the runs", _rss_mib(env.jvm_pid)))
    finally:
        env.close()

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print("## ScienceWorld costs\n")
    print(f"- command: `{command}`")
    print(
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {_java_version()}, JVM heap cap -Xmx{args.jvm_heap}"
    )
    print()
    print("| operation | time (median [min-max]) |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
