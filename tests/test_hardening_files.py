"""Issue 26, round two: files. A file whose only line is broken is refused and left as it is,
never emptied by the torn-tail repair (36 bytes of ``{"...`` were deleted, exit 0)."""

from __future__ import annotations

import pytest

from armap_agents._jsonl import JsonlAppender, check_jsonl, read_jsonl
from armap_agents.cli import main
from armap_agents.errors import ConfigError
from armap_agents.types import Trajectory

BROKEN = b'{"note": "call Ann back on Monday!",'  # 36 bytes: begun as JSON, not JSON


@pytest.mark.parametrize("content", [BROKEN, b"\n\n" + BROKEN, b'{"task_id": "8", "inte'])
def test_a_file_whose_only_line_is_broken_is_refused_unchanged(tmp_path, content) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_bytes(content)
    for model in (Trajectory, None):
        with pytest.raises(ConfigError, match="notes.jsonl holds a single line"):
            JsonlAppender(path, model)
        with pytest.raises(ConfigError, match="left unchanged"):
            check_jsonl(path, model)
    assert path.read_bytes() == content


def test_a_torn_last_line_after_whole_records_is_still_repaired(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    whole = b'{"task_id": "1", "intent": "x", "initial_observation": "o"}\n'
    path.write_bytes(whole + b'{"task_id": "2", "inte')
    JsonlAppender(path, Trajectory)
    assert path.read_bytes() == whole and len(read_jsonl(path, Trajectory)) == 1


def test_explore_refuses_such_a_file_in_one_line(tmp_path, capsys) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_bytes(BROKEN)
    argv = ["explore", "--max-tasks", "1", "--episodes-per-task", "1", "--out", str(notes)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("armap ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "notes.jsonl holds a single line" in errors[0]
    assert notes.read_bytes() == BROKEN


class _EchoingGateway:
    """A fake environment whose step fails like a gateway that echoes the request's key."""

    name = "echoing-gateway"

    def task_ids(self, split: str = "train") -> list[str]:
        return ["0"]

    def reset(self, task_id: str):
        from armap_agents import Observation

        return Observation(instruction="reach the end", text="start")

    def valid_actions(self) -> list[str]:
        return ["go"]

    def step(self, action: str):
        import os

        key = os.environ["OPENAI_API_KEY"]
        raise RuntimeError(
            f"401 from gateway: invalid key {key}; headers Authorization: Bearer {key}; "
            "also sk-abcdefghijklmnopqrstuv"
        )

    def evaluate(self):
        from armap_agents import Evaluation

        return Evaluation(success=False, score=0.0)

    def close(self) -> None:
        pass


def test_error_texts_written_to_disk_hold_no_credentials(tmp_path, monkeypatch) -> None:
    from armap_agents._scrub import scrub_secrets
    from armap_agents.graphs.explore import ExploreConfig, explore, failures_path
    from armap_agents.policies import RandomPolicy

    secret = "gw-0123456789-secret-key"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ARMAP_DEBUG", "verbose-but-harmless")  # not a credential's name
    out = tmp_path / "t.jsonl"
    explore(
        RandomPolicy(), _EchoingGateway, out, ExploreConfig(episodes_per_task=1), progress=False
    )
    written = failures_path(out).read_text()
    assert "401 from gateway" in written and "***" in written
    assert secret not in written and "sk-abcdefghijklmnopqrstuv" not in written
    assert scrub_secrets("mode verbose-but-harmless") == "mode verbose-but-harmless"
