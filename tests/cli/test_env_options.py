"""The command line on ScienceWorld, ALFWorld and WebShop (slow, real simulators): a JVM killed
during an exploration, and the tiny quickstart on each environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pytest

from armap_agents.cli import main

ALFWORLD_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alfworld"

needs_scienceworld = pytest.mark.skipif(
    shutil.which("java") is None or find_spec("scienceworld") is None,
    reason="needs the [scienceworld] extra and Java",
)
needs_alfworld = pytest.mark.skipif(
    find_spec("alfworld") is None or not (ALFWORLD_DATA / "json_2.1.1").is_dir(),
    reason="needs the [alfworld] extra and ../shared/data/alfworld",
)


def _java_children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid), "java"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()] if path.exists() else []


@pytest.mark.slow
@needs_scienceworld
def test_a_jvm_killed_during_exploration_costs_no_episode_and_leaves_no_java(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    command = [
        sys.executable, "-m", "armap_agents.cli", "explore", "--env", "scienceworld",
        "--task", "boil", "--max-tasks", "2", "--episodes-per-task", "3", "--max-steps", "25",
        "--concurrency", "1", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    killed = None
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        seen |= _java_children(process.pid)
        if killed is None and out.exists() and out.read_text().count("\n") >= 1 and seen:
            killed = next(iter(_java_children(process.pid)), None)
            if killed is not None:
                os.kill(killed, signal.SIGKILL)  # mid-run: the next episode's JVM dies
        time.sleep(0.05)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert killed is not None, "the run ended before a JVM could be killed"
    trajectories = _lines(out)
    failures = _lines(out.with_name("t.failures.jsonl"))
    ids = [t["episode_id"] for t in trajectories] + [f["episode_id"] for f in failures]
    assert sorted(ids) == sorted({*ids}) and len(ids) == 6, output  # each episode once
    print(
        f"\nJVM killed mid-exploration: {len(trajectories)} episodes recorded, "
        f"{len(failures)} failed with a reason, {len(seen)} JVMs seen, none left"
    )
    for pid in seen:  # every JVM of the run, the replacement included, is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.slow
@needs_scienceworld
def test_quickstart_on_scienceworld(tmp_path, capsys) -> None:
    run = tmp_path / "sw"
    assert (
        main(["quickstart", "--env", "scienceworld", "--size", "tiny", "--run-dir", str(run)]) == 0
    )
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["env"] == "scienceworld" and report["tasks"] == 1
    assert "| ARMAP-M |" in capsys.readouterr().out


@pytest.mark.slow
@needs_alfworld
def test_quickstart_on_alfworld(tmp_path, capsys) -> None:
    run = tmp_path / "alf"
    argv = ["quickstart", "--env", "alfworld", "--size", "tiny", "--run-dir", str(run)]
    assert main([*argv, "--env-option", f"data_dir={ALFWORLD_DATA}"]) == 0
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["env"] == "alfworld" and report["tasks"] == 1
    assert (run / "synthesis" / "triplets.train.jsonl").is_file()


@pytest.mark.slow
def test_quickstart_on_webshop(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARMAP_CACHE_DIR", str(tmp_path / "cache"))  # the search index
    run = tmp_path / "ws"
    assert main(["quickstart", "--env", "webshop", "--size", "tiny", "--run-dir", str(run)]) == 0
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["env"] == "webshop" and report["tasks"] == 2
    assert (tmp_path / "cache").is_dir()
