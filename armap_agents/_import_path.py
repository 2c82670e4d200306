"""Objects named by an import path: ``package.module:Name`` or ``path/to/file.py:Name``.

This is how the command line takes user code (``armap explore --env mymod:MyEnv``) without
registering it anywhere. A module path must be importable as is (installed, or on
``PYTHONPATH``); a file path is loaded as a module of its own, once per process (a second load
of the same file returns the same objects, so classes compare equal).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
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
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in the user's file, reported plainly
        del sys.modules[module_name]
        raise ConfigError(
            f"{what}: loading {target!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module
