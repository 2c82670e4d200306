"""Matplotlib without a display, and one way to write a figure."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the non-interactive Agg backend (works with no screen) unless
    a backend was already chosen: by importing pyplot first (a notebook's inline backend) or by
    ``$MPLBACKEND``. A chosen backend is kept, so ``plt.show()`` still works after training."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG (creating the folder) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
