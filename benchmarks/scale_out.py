"""Episodes per second in process and on Ray workers (extra ``[ray]``). Run::

    python benchmarks/scale_out.py [--episodes 32] [--repeats 2] [--game24-episodes 300]
        [--max-steps 15]

**(a) ScienceWorld exploration.** The random policy explores ``--episodes`` episodes of the
``find-*`` tasks (train variations, ``--max-steps`` steps at most): in process with
``max_concurrency`` 1 and 2 (warm JVMs from the environment's pool), and on a local Ray
cluster with 1 and 2 workers (one JVM per worker). Every configuration first plays the same
episodes once untimed (JVMs started and JIT-compiled: a fresh JVM is several times slower on
its first episodes, which on 2 cores would decide the comparison), then ``--repeats`` times
again, timed, each into a fresh file; the table has the fastest pass (runs of a few seconds on
a shared machine vary by 30%). The cluster's and the workers' start are measured apart.

**(b) Ray's overhead per episode on Game of 24**, where an episode costs almost nothing: the
same ``--game24-episodes`` episodes in process (``max_concurrency`` 1) and on one Ray worker;
the overhead is the difference in wall time per episode (an actor call, pickling the job and
the trajectory both ways, the driver's dispatch).

Also the memory of one ScienceWorld worker (the actor's process and its JVM, resident).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import closing
from pathlib import Path

from _report import header, save_results

from armap_agents.environments.registry import opened_factory
from armap_agents.graphs.explore import ExploreConfig, explore
from armap_agents.policies import RandomPolicy
from armap_agents.ray_executor import RayExecutor, ray_session

FAMILIES = ["find-living-thing", "find-non-living-thing", "find-plant", "find-animal"]


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (Linux)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(entry.name)[1]) == pid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children so far (a worker and its JVM)."""
    total = 0
    for p in _tree(pid):
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MiB (Linux)."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS")))
    return total / 1024


def _timed_explore(out_dir: Path, name: str, factory, config, repeats: int = 1, **kwargs) -> float:
    """Seconds to explore ``config``'s episodes into a fresh file (all must succeed): the
    fastest of ``repeats`` passes."""
    policy = kwargs.pop("policy", None)
    wanted = len(config.task_ids or []) * config.episodes_per_task
    times = []
    for k in range(repeats):
        out = out_dir / f"{name}-{k}.jsonl"
        started = time.perf_counter()
        result = explore(policy, factory, out, config, progress=False, **kwargs)
        times.append(time.perf_counter() - started)
        assert result.finished == wanted and result.failed == 0, result
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=int, default=32, help="ScienceWorld episodes a run (two a task)"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed passes of each run (the fastest counts)"
    )
    parser.add_argument("--max-steps", type=int, default=15, help="ScienceWorld episode length")
    parser.add_argument("--game24-episodes", type=int, default=300)
    args = parser.parse_args()
    options = {"tasks": FAMILIES}
    policy = RandomPolicy()
    rows: list[tuple[str, int, float, float]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, opened_factory("scienceworld", **options) as sw:
        out_dir = Path(tmp)
        started = time.perf_counter()
        with closing(sw()) as probe:
            train = probe.task_ids("train")
        notes.append(f"first JVM of the in-process pool: {time.perf_counter() - started:.1f} s")
        variations = max(1, args.episodes // (2 * len(FAMILIES)))  # two episodes each
        tasks = [
            t for f in FAMILIES for t in [t for t in train if t.startswith(f + "/")][:variations]
        ]
        config = ExploreConfig(
            task_ids=tasks, episodes_per_task=2, max_steps=args.max_steps, seed=0
        )
        episodes = len(tasks) * 2
        # the same episodes, untimed, two at a time: two JVMs started, JIT-compiled, pooled
        warm = config.model_copy(update={"max_concurrency": 2})
        _timed_explore(out_dir, "warm-local", sw, warm, policy=policy)
        for concurrency in (1, 2):
            run = config.model_copy(update={"max_concurrency": concurrency})
            seconds = _timed_explore(
                out_dir, f"local{concurrency}", sw, run, args.repeats, policy=policy
            )
            rows.append((f"in process, max_concurrency {concurrency}", episodes, seconds, 0))

        game24 = ExploreConfig(
            task_ids=[str(r) for r in range(1, 101)],
            episodes_per_task=max(1, args.game24_episodes // 100),
            max_steps=3,
            max_concurrency=1,
        )
        g_episodes = 100 * game24.episodes_per_task
        with opened_factory("game24") as g24:
            _timed_explore(out_dir, "g24-warm", g24, game24, policy=policy)  # imports, caches
            g_local = _timed_explore(out_dir, "g24-local", g24, game24, args.repeats, policy=policy)

        started = time.perf_counter()
        with ray_session(num_cpus=2):
            notes.append(f"local Ray cluster start (2 CPUs): {time.perf_counter() - started:.1f} s")
            for workers in (1, 2):
                started = time.perf_counter()
                with RayExecutor("scienceworld", "random", env_options=options,
                                 workers=workers) as executor:  # fmt: skip
                    notes.append(
                        f"{workers} ScienceWorld worker(s) started (processes; a JVM starts "
                        f"with a worker's first episode): {time.perf_counter() - started:.1f} s"
                    )
                    # the same episodes, untimed, as in process: JVMs started and JIT-compiled
                    run = config.model_copy(update={"max_concurrency": workers})
                    _timed_explore(out_dir, f"warm-ray{workers}", sw, run, executor=executor)
                    cpu = sum(_cpu_seconds(p) for p in executor.pids)
                    driver = time.process_time()
                    started = time.perf_counter()
                    seconds = _timed_explore(
                        out_dir, f"ray{workers}", sw, run, args.repeats, executor=executor
                    )
                    wall = time.perf_counter() - started
                    cpu = sum(_cpu_seconds(p) for p in executor.pids) - cpu
                    notes.append(
                        f"CPU cores busy during the {workers}-worker runs: workers (processes + "
                        f"JVMs) {cpu / wall:.2f}, driver "
                        f"{(time.process_time() - driver) / wall:.2f}"
                    )
                    if workers == 1:
                        notes.append(
                            "one ScienceWorld worker's resident memory after the run (actor "
                            f"process + its JVM): {_rss_mib(executor.pids[0]):.0f} MiB"
                        )
                rows.append((f"Ray, {workers} worker(s)", episodes, seconds, 0))
            with RayExecutor("game24", "random", workers=1) as executor:
                _timed_explore(out_dir, "g24-ray-warm", None, game24, executor=executor)
                g_ray = _timed_explore(
                    out_dir, "g24-ray", None, game24, args.repeats, executor=executor
                )

    rate = {name: n / s for name, n, s, _ in rows}
    local1, local2 = rate["in process, max_concurrency 1"], rate["in process, max_concurrency 2"]
    ray1, ray2 = rate["Ray, 1 worker(s)"], rate["Ray, 2 worker(s)"]
    overhead_ms = (g_ray - g_local) / g_episodes * 1000
    lines = [
        "# Scale-out: episodes on Ray workers vs in process",
        "",
        header(("ray", "scienceworld")),
        "",
        f"## (a) ScienceWorld exploration: {episodes} episodes (random policy, "
        f"{len(tasks)} find-* tasks x 2, at most {args.max_steps} steps)",
        "",
        f"Wall time: the fastest of {args.repeats} timed passes after an untimed warm-up.",
        "",
        "| executor | episodes | wall (s) | episodes/s |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {n} | {s:.1f} | {n / s:.2f} |" for name, n, s, _ in rows),
        "",
        f"* 2 Ray workers / 1 Ray worker: **{ray2 / ray1:.2f}x** (target >= 1.7x)",
        f"* Ray / in process at equal parallelism: 1: **{ray1 / local1:.2f}x**, "
        f"2: **{ray2 / local2:.2f}x** (target >= 0.9x)",
        f"* in process, 2 / 1: {local2 / local1:.2f}x",
        "",
        f"## (b) Ray overhead per Game of 24 episode ({g_episodes} episodes, sequential)",
        "",
        "| executor | wall (s) | ms per episode |",
        "|---|---:|---:|",
        f"| in process, max_concurrency 1 | {g_local:.2f} | {g_local / g_episodes * 1000:.2f} |",
        f"| Ray, 1 worker | {g_ray:.2f} | {g_ray / g_episodes * 1000:.2f} |",
        "",
        f"* overhead per episode: **{overhead_ms:.2f} ms** (target <= 5 ms)",
        "",
        "## Start-up and memory (not in the timings above)",
        "",
        *(f"* {note}" for note in notes),
        f"* CPU cores: {os.cpu_count()}",
    ]
    save_results("scale_out", "\n".join(lines))


if __name__ == "__main__":
    main()
