"""Public names imported on first use (PEP 562), so a package's import stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, exports: Mapping[str, tuple[str, ...]], *, relative: bool = False
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``exports`` (module -> the
    names it provides; submodules of ``package`` when ``relative``) is imported from its
    module when first read (Python keeps imported modules: later reads cost a lookup)."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}" if relative else module), name)

    return __getattr__
