import json

import pytest

from armap_agents._jsonl import JsonlAppender, check_jsonl, read_jsonl, write_jsonl
from armap_agents.cli import main
from armap_agents.errors import ConfigError
from armap_agents.types import (
    Evaluation,
    Step,
    Trajectory,
    Triplet,
    render_example,
    render_trajectory,
)


def _trajectory(n_steps: int = 2) -> Trajectory:
    steps = [Step(action=f"a{i}", observation=f"o{i}") for i in range(n_steps)]
    return Trajectory(
        task_id="7",
        intent="reach 24",
        initial_observation="start",
        steps=steps,
        episode_id="7#0",
        done=True,
        evaluation=Evaluation(success=True, score=1.0),
        policy_calls=n_steps,
    )


def test_canonical_rendering() -> None:
    t = _trajectory()
    assert render_trajectory(t) == (
        "Observation: start\nAction: a0\nObservation: o0\nAction: a1\nObservation: o1"
    )
    assert render_example("reach 24", t) == "Task: reach 24\n" + render_trajectory(t)
    # the evaluation (metrics only) never enters the text a model sees
    assert "success" not in render_trajectory(t).lower()


def test_prefix_drops_the_evaluation() -> None:
    t = _trajectory(3)
    p = t.prefix(1)
    assert p.actions == ["a0"] and p.evaluation is None and not p.done
    assert t.prefix(3).evaluation == t.evaluation


def test_jsonl_round_trip(tmp_path) -> None:
    t = _trajectory()
    triplet = Triplet(intent="i", positive=t, negative=t.prefix(1), task_id="7", source="x")
    write_jsonl(tmp_path / "t.jsonl", [t, t.prefix(0)])
    assert read_jsonl(tmp_path / "t.jsonl", Trajectory) == [t, t.prefix(0)]
    write_jsonl(tmp_path / "x.jsonl", [triplet])
    (back,) = read_jsonl(tmp_path / "x.jsonl", Triplet)
    assert back == triplet and back.key() == triplet.key()
    # plain JSON per line: readable by `datasets.load_dataset("json")` and any JSON tool
    row = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert row["positive"]["steps"][0] == {"action": "a0", "observation": "o0", "valid": True}


def test_appender_repairs_a_torn_tail(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    appender = JsonlAppender(path)
    appender.append(_trajectory())
    with path.open("a") as fh:
        fh.write('{"task_id": "8", "inte')  # a crash in the middle of a write
    assert len(read_jsonl(path, Trajectory)) == 1  # readers skip the torn line
    JsonlAppender(path).append(_trajectory(1))  # a new appender cuts it off first
    records = read_jsonl(path, Trajectory)
    assert [len(r.steps) for r in records] == [2, 1]
    assert path.read_text().count("\n") == 2


def test_a_whole_last_record_missing_only_its_newline_is_kept(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(_trajectory().model_dump_json())  # torn right before the newline
    JsonlAppender(path, Trajectory).append(_trajectory(1))
    assert [len(r.steps) for r in read_jsonl(path, Trajectory)] == [2, 1]


def test_a_file_holding_only_a_torn_record_is_refused_unchanged(tmp_path) -> None:
    """Issue 26: such a file (36 bytes of someone's notes, say) was emptied; nothing in it
    shows it is ours, so it is refused and left as it is (tests/test_hardening_files.py)."""
    path = tmp_path / "t.jsonl"
    path.write_text('{"task_id": "8", "inte')  # the first write was cut by a crash, or not ours
    with pytest.raises(ConfigError, match="single line that is not whole JSON"):
        JsonlAppender(path, Trajectory)
    assert path.read_text() == '{"task_id": "8", "inte'


@pytest.mark.parametrize(
    "content",
    [
        b"line one\nIMPORTANT",  # the report's notes.txt
        b"line one\nIMPORTANT\n",
        b'{"task_id": "1", "intent": "x", "initial_observation": "o"}\nIMPORTANT',
        b'{"a": 1}\n{"b": 2}\n',  # JSONL, but not of trajectories
        b'{"a": 1}',  # one JSON object and no newline: whole, so not a torn record
        b'{"task_id": "1", "intent": "x", "initial_observation": "o"}\n{"a": 1}',
    ],
)
def test_a_file_that_is_not_ours_is_refused_and_left_unchanged(tmp_path, content) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="left unchanged"):
        JsonlAppender(path, Trajectory)
    with pytest.raises(ConfigError):
        check_jsonl(path, Trajectory)
    assert path.read_bytes() == content


def test_records_of_any_json_objects_when_no_model_is_named(tmp_path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2')
    JsonlAppender(path).append({"c": 3})
    assert path.read_bytes() == b'{"a": 1}\n{"c": 3}\n'
    path.write_bytes(b"[1, 2]\n")
    with pytest.raises(ConfigError, match="not a JSONL file of JSON records"):
        JsonlAppender(path)


def test_a_directory_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        JsonlAppender(tmp_path, Trajectory)


def test_explore_never_touches_an_output_that_is_not_ours(tmp_path, capsys) -> None:
    """Issue 17, finding 4: `armap explore --out notes.txt` deleted the line "IMPORTANT"."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"line one\nIMPORTANT")
    args = ["explore", "--max-tasks", "1", "--episodes-per-task", "1"]
    assert main([*args, "--out", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "notes.txt is not a JSONL file of Trajectory records" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert notes.read_bytes() == b"line one\nIMPORTANT"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no manifest either
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_missing_file_reads_empty(tmp_path) -> None:
    assert read_jsonl(tmp_path / "nope.jsonl", Trajectory) == []
