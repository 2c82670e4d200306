"""Start-up stays light (no torch, transformers or faiss for ``import armap_agents``,
``armap --help`` or any public name that does not compute with them), the lazy public names
are complete, and the default registry is shared."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest

import armap_agents
from armap_agents import default_registry
from armap_agents.cli import main
from armap_agents.deploy import ServerConfig
from armap_agents.errors import UnknownName
from armap_agents.types import Trajectory

HEAVY = ("torch", "transformers", "faiss")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LAZY_PACKAGES = (
    "armap_agents",
    "armap_agents.environments",
    "armap_agents.graphs",
    "armap_agents.reward",
)
"""The packages whose public names are imported on first use (PEP 562)."""
HEAVY_NAMES = frozenset(
    {
        # the local reward model and its trainer compute with torch (their modules load it)
        "RewardModel",
        "RewardTrainer",
        "TrainResult",
    }
)
"""The public names whose import may load torch, transformers or faiss; every other one must
not (MiniLMEmbedder and TrajectoryMemory load theirs when first used, not when imported)."""
OTHER_ENVIRONMENTS = {
    "Game24Env": (
        "armap_agents.environments.scienceworld",
        "armap_agents.environments.alfworld",
        "armap_agents.environments.webshop",
    ),
}
"""What importing an environment must leave unloaded: the other environments."""


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
    assert armap_agents.Trajectory is Trajectory


@pytest.mark.parametrize("package_name", LAZY_PACKAGES)
def test_each_lazy_package_exports_what_its_type_checking_imports_say(package_name) -> None:
    package = importlib.import_module(package_name)
    exports = _lazy_exports(package)
    assert set(package.__all__) - {"__version__"} == {n for ns in exports.values() for n in ns}
    assert len(package.__all__) == len(set(package.__all__))
    # what type checkers read (the `if TYPE_CHECKING:` imports) is what runs
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n))
    static = {
        node.module: {alias.name for alias in node.names}
        for node in block.body
        if isinstance(node, ast.ImportFrom)
    }
    assert static == {module: set(names) for module, names in exports.items()}
    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        package.NoSuchName  # noqa: B018


def test_only_the_names_that_compute_with_torch_load_it() -> None:
    """Each public name, imported as ``from armap_agents import <name>`` in a fresh
    interpreter, loads torch, transformers or faiss only if it is in :data:`HEAVY_NAMES`."""
    assert HEAVY_NAMES.issubset(armap_agents.__all__)
    names = [name for name in armap_agents.__all__ if name != "__version__"]
    heavy = _heavy_modules_per_name(names)
    assert {name for name, modules in heavy.items() if modules} == HEAVY_NAMES, heavy


def test_the_scorer_protocol_loads_no_torch() -> None:
    assert _heavy_modules_after("from armap_agents import RewardScorer") == []


@pytest.mark.parametrize("name", sorted(OTHER_ENVIRONMENTS))
def test_an_environment_loads_without_the_others(name) -> None:
    probe = (
        f"from armap_agents import {name}\nimport sys\n"
        f"print([m for m in {OTHER_ENVIRONMENTS[name]!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert ast.literal_eval(done.stdout.strip().splitlines()[-1]) == []


def _lazy_exports(package: ModuleType) -> dict[str, tuple[str, ...]]:
    """A lazy package's table of ``module -> names``, modules spelled in full."""
    return {
        module if module.startswith("armap_agents") else f"{package.__name__}.{module}": names
        for module, names in package._EXPORTS.items()
    }


def _providing_module(name: str) -> str:
    """The module whose import gives ``armap_agents.<name>``: the top-level table's module, or,
    where that is itself a lazy package, the submodule its own table names."""
    module = next(m for m, names in armap_agents._EXPORTS.items() if name in names)
    while module in LAZY_PACKAGES:
        exports = _lazy_exports(importlib.import_module(module))
        module = next(m for m, names in exports.items() if name in names)
    return module


# A fresh interpreter imports names of one providing module in turn: the first one imports the
# module, the others must import nothing more (else they do not share its cost and must not
# share its verdict). It prints the heavy modules then loaded and what each later name added.
_GROUP_PROBE = f"""
import json, sys
import armap_agents
added = []
for position, name in enumerate(sys.argv[1:]):
    before = set(sys.modules)
    getattr(armap_agents, name)
    added.append(sorted(set(sys.modules) - before) if position else [])
print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "added": added}}))
"""


def _heavy_modules_per_name(names: list[str]) -> dict[str, list[str]]:
    """For each of ``names``, the heavy modules ``from armap_agents import <name>`` loads in a
    fresh interpreter: one interpreter per providing module, several at once."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[_providing_module(name)].append(name)

    def probe(group: list[str]) -> dict[str, list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", _GROUP_PROBE, *group],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert not any(report["added"]), dict(zip(group, report["added"], strict=True))
        return {name: report["heavy"] for name in group}

    heavy: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for found in pool.map(probe, groups.values()):
            heavy.update(found)
    return heavy


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
