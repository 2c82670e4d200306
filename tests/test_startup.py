"""Start-up stays light (no torch, transformers or faiss for ``import armap_agents`` or
``armap --help``), the lazy public names are complete, and the default registry is shared."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import armap_agents
from armap_agents import default_registry
from armap_agents.cli import main
from armap_agents.deploy import ServerConfig
from armap_agents.errors import UnknownName
from armap_agents.types import Trajectory

HEAVY = ("torch", "transformers", "faiss")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import armap_agents",
        # what the `armap` script runs; --help exits once the usage is printed
        "from armap_agents.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass",
    ],
    ids=["import", "armap --help"],
)
def test_start_up_loads_no_heavy_dependency(code) -> None:
    assert _heavy_modules_after(code) == []


def test_the_lazy_names_are_all_there_and_agree_with_the_type_checking_imports() -> None:
    exports = {name for names in armap_agents._EXPORTS.values() for name in names}
    assert set(armap_agents.__all__) == exports | {"__version__"}
    assert len(armap_agents.__all__) == len(set(armap_agents.__all__))
    # what type checkers read (the `if TYPE_CHECKING:` imports) is what runs
    tree = ast.parse(Path(armap_agents.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n))
    static = {
        node.module: {alias.name for alias in node.names}
        for node in block.body
        if isinstance(node, ast.ImportFrom)
    }
    assert static == {module: set(names) for module, names in armap_agents._EXPORTS.items()}
    assert set(armap_agents.__all__) <= set(dir(armap_agents))
    for name in armap_agents.__all__:
        assert getattr(armap_agents, name) is not None, name
    assert armap_agents.Trajectory is Trajectory
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        armap_agents.NoSuchName  # noqa: B018


# -- one registry per process -----------------------------------------------------------------
def test_a_registered_environment_reaches_the_command_line_and_the_deployment(
    tmp_path, capsys
) -> None:
    from armap_agents._import_path import load_import_path

    guess = load_import_path(f"{EXAMPLES / 'guess_number.py'}:GuessNumber")
    registry = default_registry()
    assert registry is default_registry()
    registry.register("my-guess", guess)
    try:
        out = tmp_path / "t.jsonl"
        argv = ["explore", "--env", "my-guess", "--env-option", "high=8", "--out", str(out)]
        assert main([*argv, "--max-tasks", "2", "--episodes-per-task", "1"]) == 0
        explored = armap_agents.read_jsonl(out, Trajectory)
        assert len(explored) == 2 and "from 1 to 8" in explored[0].intent
        assert ServerConfig(data_dir=tmp_path).env("my-guess") == "my-guess"
    finally:
        registry.unregister("my-guess")
    assert "my-guess" not in default_registry().names()
    with pytest.raises(UnknownName, match="unknown environment 'my-guess'"):
        ServerConfig(data_dir=tmp_path).env("my-guess")
    with pytest.raises(UnknownName, match="unknown environment 'my-guess'"):
        registry.unregister("my-guess")


def test_an_import_path_is_loaded_without_joining_the_registry(tmp_path) -> None:
    """The deployment accepts the registry's names: an import path a CLI run loaded in the same
    process must not become one of them."""
    spec = f"{EXAMPLES / 'guess_number.py'}:GuessNumber"
    assert default_registry().make(spec, high=5).high == 5
    assert spec not in default_registry().names()
    assert default_registry().names() == ["alfworld", "game24", "scienceworld", "webshop"]
