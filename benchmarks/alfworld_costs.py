"""What the ALFWorld environment costs: construction, resets, steps and prefix replay.

Planners without state copies (MCTS) reach a tree node by ``reset()`` plus replaying its
actions, so the cost of a reset and of a step decides how affordable a search is. This script
measures them on two games (a small bedroom and a larger kitchen) and prints a markdown table
with the command and the machine. Times are medians over ``--repeat`` runs (wall clock).

    python benchmarks/alfworld_costs.py --data-dir /path/to/alfworld   # or set ALFWORLD_DATA

Without ``--data-dir`` it uses ``$ALFWORLD_DATA``, else the repository's sibling
``shared/data/alfworld`` (the development data folder).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from armap_agents.environments.alfworld import AlfWorldEnginePool, AlfWorldEnv

GAMES = {
    "bedroom": "valid_seen/pick_and_place_simple-Book-None-SideTable-329/"
    "trial_T20190908_050633_745514",
    "kitchen": "valid_seen/pick_heat_then_place_in_recep-Apple-None-DiningTable-26/"
    "trial_T20190907_060234_011675",
}


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _fmt(seconds: float) -> str:
    if seconds < 1e-5:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _replay(env: AlfWorldEnv, task_id: str, prefix: list[str], step_times: list[float]) -> None:
    env.reset(task_id)
    for action in prefix:
        started = time.perf_counter()
        env.step(action)
        step_times.append(time.perf_counter() - started)


def _measure_game(data_dir: str, task_id: str, args: argparse.Namespace) -> dict[str, object]:
    """Costs on one game."""
    m: dict[str, object] = {}

    def first_reset() -> None:
        env = AlfWorldEnv(data_dir)
        env.reset(task_id)
        env.close()

    m["first"] = _median(first_reset, args.repeat)
    env = AlfWorldEnv(data_dir)
    reference = AlfWorldEnv(data_dir, fast_reset=False)
    env.reset(task_id)
    reference.reset(task_id)
    m["rewind"] = _median(lambda: env.reset(task_id), args.repeat)
    m["textworld_reset"] = _median(lambda: reference.reset(task_id), args.repeat)
    # a fixed random walk of valid, state-changing actions
    rng = random.Random(0)
    env.reset(task_id)
    prefix: list[str] = []
    for _ in range(args.prefix):
        actions = [a for a in env.valid_actions() if a not in ("help", "look", "inventory")]
        if not actions:
            break
        prefix.append(rng.choice(actions))
        env.step(prefix[-1])
    m["admissible"] = str(len(env.valid_actions()))
    step_times: list[float] = []
    m["replay"] = _median(lambda: _replay(env, task_id, prefix, step_times), args.repeat)
    m["step"] = statistics.median(step_times)
    m["replay_reference"] = _median(lambda: _replay(reference, task_id, prefix, []), args.repeat)
    m["valid_actions"] = _median(env.valid_actions, args.repeat * 20)
    m["invalid"] = _median(lambda: env.step("fly to the moon"), args.repeat * 20)
    env.close()
    reference.close()

    pool = AlfWorldEnginePool()
    warm = AlfWorldEnv(data_dir, pool=pool)
    warm.reset(task_id)
    warm.close()

    def pooled() -> None:
        env = AlfWorldEnv(data_dir, pool=pool)
        env.reset(task_id)
        env.close()

    m["pooled"] = _median(pooled, args.repeat)
    pool.close()
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="ALFWorld data (default: see above)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--prefix", type=int, default=10, help="length of the replayed prefix")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or os.environ.get("ALFWORLD_DATA")
    if data_dir is None:
        data_dir = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld")

    start = time.perf_counter()
    import textworld  # noqa: F401  (measured: the first import in a process)
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler  # noqa: F401

    import_time = time.perf_counter() - start

    rows: list[tuple[str, dict[str, str]]] = []

    def row(label: str, values: dict[str, object]) -> None:
        rows.append(
            (label, {k: v if isinstance(v, str) else _fmt(float(v)) for k, v in values.items()})
        )

    row(
        "import textworld + ALFWorld wrappers (once per process)", dict.fromkeys(GAMES, import_time)
    )
    row(
        "`AlfWorldEnv(data_dir)` construction",
        dict.fromkeys(GAMES, _median(lambda: AlfWorldEnv(data_dir), args.repeat)),
    )
    row(
        '`task_ids("test")`, first listing (134 games)',
        dict.fromkeys(GAMES, _median(lambda: AlfWorldEnv(data_dir).task_ids("test"), args.repeat)),
    )

    per_game = {name: _measure_game(data_dir, task_id, args) for name, task_id in GAMES.items()}

    def game_row(label: str, key: str) -> None:
        row(label, {name: per_game[name][key] for name in GAMES})

    game_row("admissible commands at the end of the prefix", "admissible")
    game_row("first `reset` in a new environment (engine start + game load)", "first")
    game_row("`reset` of the loaded game (rewind, the default)", "rewind")
    game_row("`reset` with `fast_reset=False` (TextWorld's own reset)", "textworld_reset")
    game_row("new environment sharing a pool (`AlfWorldEnv.factory()`) + `reset`", "pooled")
    game_row("one valid `step` (median over the prefix's steps)", "step")
    game_row("one invalid `step` (not sent to the game)", "invalid")
    game_row("`valid_actions()`", "valid_actions")
    game_row(f"replay of a {args.prefix}-action prefix (`reset` + steps)", "replay")
    game_row(f"replay of a {args.prefix}-action prefix, `fast_reset=False`", "replay_reference")

    import fast_downward

    lib = Path(fast_downward.__file__).with_name("libdownward.so")
    lib_mb = lib.stat().st_size / 1e6 if lib.exists() else float("nan")

    command = "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:]
    )
    print(f"Command: `{command}`\n")
    print(
        f"Machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; textworld {_version('textworld')}, "
        f"alfworld {_version('alfworld')}; medians of {args.repeat} runs.\n"
    )
    print("| operation | " + " | ".join(f"{n} game" for n in GAMES) + " |")
    print("| --- | " + " | ".join("---:" for _ in GAMES) + " |")
    for label, values in rows:
        print(f"| {label} | " + " | ".join(values[n] for n in GAMES) + " |")
    print(
        f"\nEvery engine holds a private copy of fast-downward's library ({lib_mb:.0f} MB, "
        "a deleted temporary file) until the process exits; pooled factories bound their "
        "number. Games: " + ", ".join(f"{n} = `{t}`" for n, t in GAMES.items()) + "."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
