"""pytest runs every notebook in this folder top to bottom with nbmake (``--nbmake`` in
pyproject.toml's addopts), in a kernel on the interpreter running pytest. Each notebook is an
end-to-end run (explore, synthesize, train, plan), hence ``slow``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
