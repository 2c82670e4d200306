"""Issue 26, round two: a memory directory's ``memory.json`` naming another embedder started a
hub download, then a traceback. It is refused in one line unless the operator lists it, and
a listed one is loaded from local files only."""

from __future__ import annotations

import json
import socket

import pytest

from armap_agents.cli import main
from armap_agents.errors import ConfigError
from armap_agents.memory import ALLOWED_EMBEDDERS_ENV, TrajectoryMemory, allowed_embedder

OTHER = "someone/other-embedder"


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every attempt to open a network connection, refused and recorded."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


def _memory_dir(tmp_path, embedder: object):
    memory = tmp_path / "memory"
    memory.mkdir()
    meta = {"format_version": 1, "embedder": embedder, "dim": 384}
    (memory / "memory.json").write_text(json.dumps(meta))
    return memory


@pytest.mark.parametrize("embedder", [OTHER, "../../elsewhere", None, ["a"]])
def test_a_memory_naming_an_unlisted_embedder_is_refused(
    tmp_path, embedder, no_network, monkeypatch
) -> None:
    monkeypatch.delenv(ALLOWED_EMBEDDERS_ENV, raising=False)
    memory = _memory_dir(tmp_path, embedder)
    with pytest.raises(
        ConfigError, match=f"memory.json names the embedder .* {ALLOWED_EMBEDDERS_ENV}"
    ):
        TrajectoryMemory.open(memory)
    assert no_network == []


def test_a_listed_embedder_is_never_downloaded(tmp_path, no_network, monkeypatch) -> None:
    monkeypatch.setenv(ALLOWED_EMBEDDERS_ENV, f"x/y, {OTHER}")
    assert allowed_embedder(OTHER, tmp_path) == OTHER
    assert allowed_embedder("all-MiniLM-L6-v2", tmp_path, {}) == "all-MiniLM-L6-v2"
    with pytest.raises(ConfigError, match=f"embedder '{OTHER}' is neither a local model"):
        TrajectoryMemory.open(_memory_dir(tmp_path, OTHER))
    assert no_network == []


def test_plan_refuses_such_a_memory_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv(ALLOWED_EMBEDDERS_ENV, raising=False)
    memory = _memory_dir(tmp_path, OTHER)
    argv = ["plan", "--planner", "reflexion", "--env", "game24", "--task", "1"]
    assert main([*argv, "--memory", str(memory), "--model", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("armap ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert OTHER in errors[0] and ALLOWED_EMBEDDERS_ENV in errors[0]
