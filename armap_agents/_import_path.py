"""Objects named by an import path: ``package.module:Name`` or ``path/to/file.py:Name``.

This is how the command line takes user code (``armap explore --env mymod:MyEnv``) without
registering it anywhere. A module path must be importable as is (installed, or on
``PYTHONPATH``); a file path is loaded as a module of its own, once per process (a second load
of the same file returns the same objects, so classes compare equal).

While a file loads, the modules beside it are importable by their names, as when Python runs
the file as a script: ``from helpers import tidy`` in ``envs/my_env.py`` finds
``envs/helpers.py`` (or a package ``envs/helpers/``). This is a finder on ``sys.meta_path``
that searches the file's directory only, placed before the one that searches ``sys.path`` and
removed when the file has run; ``sys.path`` and the import caches are left as they were. The
sibling modules stay imported (in ``sys.modules``, by their own names), as any import would;
an import that runs later, inside a function, finds a sibling only if the file's top level
imported it already.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from armap_agents.errors import ConfigError

__all__ = ["is_import_path", "load_import_path"]


def is_import_path(spec: str) -> bool:
    """Whether ``spec`` looks like ``module:Name`` or ``file.py:Name`` (not a plain name)."""
    target, sep, name = spec.rpartition(":")
    return bool(sep and target and name) and all(part.isidentifier() for part in name.split("."))


def load_import_path(spec: str, what: str = "object") -> Any:
    """The object ``spec`` names; ``what`` (e.g. ``"environment"``) words the errors.

    Raises :class:`~armap_agents.errors.ConfigError` saying what is wrong: a malformed path, a
    missing file or module, an import that fails, a missing attribute.
    """
    if not is_import_path(spec):
        raise ConfigError(
            f"{what} {spec!r} is not an import path: write package.module:Name or "
            "path/to/file.py:Name"
        )
    target, _, name = spec.rpartition(":")
    module = _load_file(target, what) if _is_file(target) else _import(target, what)
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what} {spec!r}: {target} has no attribute {name!r}") from None
    return obj


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import(module_name: str, what: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"{what}: no module named {module_name!r} (install it or add its directory to "
                "PYTHONPATH; or give a file path, path/to/file.py:Name)"
            ) from exc
        raise ConfigError(f"{what}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any error in the user's module, reported plainly
        raise ConfigError(
            f"{what}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _load_file(target: str, what: str) -> Any:
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{what}: no such file {target!r}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"_armap_user_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{what}: cannot load {target!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, as an import would: dataclasses and pickling look it up
    sys.modules[module_name] = module
    try:
        with siblings_importable(path.parent):
            spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in the user's file, reported plainly
        del sys.modules[module_name]
        raise ConfigError(
            f"{what}: loading {target!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


class _DirectoryFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules and packages in one directory (a sibling's submodules are
    found through its package's ``__path__``, as usual)."""

    def __init__(self, directory: Path) -> None:
        # a finder of its own, not sys.path_importer_cache's: nothing global is cached
        self._finder = importlib.machinery.FileFinder(
            str(directory),
            (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
            (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
            (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
        )

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None:  # a submodule: its package's own path finds it
            return None
        return self._finder.find_spec(fullname, target)


@contextmanager
def siblings_importable(directory: Path) -> Iterator[None]:
    """Within the block, ``import name`` also finds ``directory/name.py`` (or the package
    ``directory/name/``), before ``sys.path`` is searched and after built-in modules, as for
    a script run from ``directory``; the finder is removed when the block ends."""
    finder = _DirectoryFinder(directory)
    position = next(
        (i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
        len(sys.meta_path),
    )
    sys.meta_path.insert(position, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
