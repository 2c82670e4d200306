"""Every bad input gets one line on stderr and exit status 2 (issue 26): non-finite objective
weights, serve-rm's ports and limits, JSONL files that are not UTF-8 text, environment options
of the wrong type, and long values echoed in error lines."""

from __future__ import annotations

import pytest

from armap_agents import _builders as build
from armap_agents._jsonl import iter_jsonl, read_jsonl
from armap_agents.cli import _user_error, main
from armap_agents.environments.registry import EnvRegistry, make_env, make_env_factory
from armap_agents.errors import ConfigError
from armap_agents.types import Trajectory


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err  # progress bars or warnings may come before it
    errors = [line for line in err.splitlines() if line.startswith("armap ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# -- 1. objective weights ---------------------------------------------------------------------
@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_a_non_finite_objective_weight_is_refused(weight, capsys) -> None:
    with pytest.raises(ConfigError, match="finite"):
        build.objectives([f"fewer_steps:{weight}"])
    argv = ["plan", "--env", "game24", "--task", "1", "--selection", "oracle", "--n", "1"]
    assert main([*argv, "--objective", f"fewer_steps:{weight}"]) == 2
    err = _one_line_error(capsys)
    assert f"fewer_steps:{weight}" in err and "finite" in err


def test_finite_objective_weights_still_work() -> None:
    (objective,) = build.objectives(["fewer_steps:-0.5"])
    assert objective.weight == -0.5


# -- 2. serve-rm's port and limits ------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "70000", "1..65535"),
        ("--port", "0", "1..65535"),
        ("--port", "-1", "1..65535"),
        ("--max-batch", "0", "--max-batch"),
        ("--max-batch", "-3", "--max-batch"),
        ("--max-body-mb", "0", "--max-body-mb"),
        ("--max-body-mb", "-1", "--max-body-mb"),
        ("--max-body-mb", "nan", "--max-body-mb"),
    ],
)
def test_serve_rm_refuses_bad_ports_and_limits_before_loading(
    flag, value, says, tmp_path, capsys, monkeypatch
) -> None:
    from armap_agents.reward import service

    served: list = []
    monkeypatch.setattr(service, "serve", lambda *a, **k: served.append((a, k)))
    assert main(["serve-rm", "--model", str(tmp_path), f"{flag}={value}"]) == 2
    assert says in _one_line_error(capsys)
    assert served == []
    # good values reach the service
    assert main(["serve-rm", "--model", str(tmp_path), "--port", "65535"]) == 0
    assert served[0][1]["port"] == 65535


# -- 3. JSONL files that are not UTF-8 text ---------------------------------------------------
def test_synthesizing_a_binary_file_is_one_line_naming_it(tmp_path, capsys) -> None:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"task_id": "1"}\n\xff\xfe\x00\x81 not text\n' + bytes(range(256)))
    argv = ["synthesize", "--trajectories", str(binary), "--out", str(tmp_path / "out")]
    assert main([*argv, "--env", "game24", "--adopt"]) == 2
    err = _one_line_error(capsys)
    assert str(binary) in err and "UTF-8" in err


def test_reading_jsonl_that_is_not_utf8_raises_config_error(tmp_path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"x": "café"}\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="line 1 is not UTF-8"):
        read_jsonl(path, Trajectory)
    path.write_bytes(b"\x89PNG\r\n\x1a")  # one line, no newline: still not ours
    with pytest.raises(ConfigError, match=str(path.name)):
        list(iter_jsonl(path, Trajectory))


def test_a_record_torn_inside_a_character_is_still_skipped(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes('{"task_id": "caf\u00e9'.encode()[:-1])  # cut inside the é
    assert read_jsonl(path, Trajectory) == []


# -- 4. environment options of the wrong type -------------------------------------------------
def test_an_env_option_of_the_wrong_type_is_a_config_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["explore", "--env", "game24", "--env-option", "puzzles=3", "--out", "t.jsonl"]
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert "'game24'" in err and "puzzles=3" in err and "not iterable" in err
    for build_env in (make_env, make_env_factory):
        with pytest.raises(ConfigError, match="puzzles=3"):
            build_env("game24", puzzles=3)


def test_a_constructor_bug_without_options_keeps_its_traceback() -> None:
    class Broken:
        def __init__(self) -> None:
            raise TypeError("a bug in the environment")

    registry = EnvRegistry()
    registry.register("broken", Broken)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a bug") as info:
        registry.make("broken")
    assert not isinstance(info.value, ConfigError)


# -- 5. long values in error lines ------------------------------------------------------------
def test_a_long_value_is_shortened_in_the_error_line(capsys) -> None:
    task = "x" * 100_000
    assert main(["plan", "--env", "game24", "--task", task, "--selection", "oracle"]) == 2
    err = _one_line_error(capsys)
    assert len(err) < 600 and "…" in err and "characters)" in err
    assert "x" * 79 in err and "x" * 201 not in err

    assert _user_error("cmd", f"no task {'y' * 100_000} here") == 2
    line = capsys.readouterr().err.strip()
    assert line == f"armap cmd: error: no task {'y' * 80}… (100,000 characters) here"
    _user_error("cmd", "short " + "z" * 200)  # 200 characters: kept whole
    assert capsys.readouterr().err.strip().endswith("z" * 200)
