import json

from armap_agents._jsonl import JsonlAppender, read_jsonl, write_jsonl
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
        info={"policy_calls": n_steps},
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


def test_missing_file_reads_empty(tmp_path) -> None:
    assert read_jsonl(tmp_path / "nope.jsonl", Trajectory) == []
