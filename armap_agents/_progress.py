"""Progress bars on long work (exploration, synthesis, training, evaluation), and a graph's
custom stream events rendered as one (:func:`run_with_progress`).

Every bar is made by :func:`progress_bar`, which suits it to where it is shown:

* in a terminal, a bar redrawn in place several times a second;
* in a Jupyter notebook with ``ipywidgets``, tqdm's widget;
* anywhere else (a notebook without ``ipywidgets``, a CI log, output redirected to a file),
  a text bar that writes a new state at most every :data:`QUIET_INTERVAL` seconds: there every
  redraw is kept as one more line, so a fast bar would fill the output with hundreds of them.

``ARMAP_PROGRESS=0`` (or ``false``/``off``) turns every bar off, wherever it is shown; a
``progress=False`` argument turns off one call's. tqdm's own ``TQDM_*`` variables (e.g.
``TQDM_MININTERVAL``) still apply where they are set.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.std import tqdm

PROGRESS_SWITCH = "ARMAP_PROGRESS"
"""The environment variable that turns every bar off when it is ``0``, ``false`` or ``off``."""
QUIET_INTERVAL = 15.0
"""Seconds between two states of a bar that cannot redraw itself in place."""


def progress_enabled(progress: bool = True) -> bool:
    """Whether a bar asked for with ``progress`` is shown: not when ``ARMAP_PROGRESS`` is
    ``0``, ``false`` or ``off``."""
    switch = os.environ.get(PROGRESS_SWITCH, "").strip().lower()
    return progress and switch not in ("0", "false", "off", "no")


def progress_bar(*, progress: bool = True, **options: Any) -> tqdm:
    """A tqdm bar (``options`` are tqdm's: ``total``, ``desc``, ``unit`` ...) suited to where
    it is shown (module docstring); ``progress=False`` or ``ARMAP_PROGRESS=0``: disabled (its
    ``write`` still prints)."""
    options["disable"] = options.get("disable", False) or not progress_enabled(progress)
    widget = _notebook_widget_bar()
    if widget is not None:
        return widget(**options)
    stream = options.get("file") or sys.stderr
    if not _redraws_in_place(stream) and "TQDM_MININTERVAL" not in os.environ:
        options.setdefault("mininterval", QUIET_INTERVAL)
        options.setdefault("miniters", 1)  # time decides, not a count learnt from fast updates
    return tqdm(**options)


def _redraws_in_place(stream: Any) -> bool:
    """Whether ``stream`` is a terminal, where a carriage return redraws the bar's line."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _notebook_widget_bar() -> type[tqdm] | None:
    """tqdm's widget bar when running in a Jupyter kernel that has ``ipywidgets``, else None
    (checked without importing ``tqdm.auto``, which warns where ``ipywidgets`` is missing)."""
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    if get_ipython is None or get_ipython() is None:
        return None
    if "IPKernelApp" not in get_ipython().config:  # a terminal IPython: text bars
        return None
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return None
    from tqdm.notebook import tqdm as notebook_tqdm

    return notebook_tqdm


def run_with_progress(
    graph: Any,
    inputs: dict[str, Any],
    *,
    desc: str,
    unit: str,
    max_concurrency: int | None = None,
    progress: bool = True,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stream ``graph`` to completion and return its final state.

    Understands two custom events: ``{"event": "start", "total": n, "done": k}`` and one
    event per finished unit of work (any other dict; ``failed``/``success`` keys are counted
    in the bar's postfix).
    """
    run_config: dict[str, Any] = dict(config or {})
    if max_concurrency is not None:
        # While streaming, LangGraph parks one task of the same executor on its stream queue;
        # without the extra slot, max_concurrency=1 with a chat-model call in a node deadlocks
        # (seen with langgraph 1.2). With it, max_concurrency + 1 nodes may run at once when the
        # waiter is between two waits: the graphs bound their own work to max_concurrency.
        run_config["max_concurrency"] = max_concurrency + 1
    final: dict[str, Any] = {}
    bar = None
    failed = succeeded = 0
    try:
        for mode, chunk in graph.stream(inputs, run_config, stream_mode=["custom", "values"]):
            if mode == "values":
                final = chunk
                continue
            if not isinstance(chunk, dict):
                continue
            if chunk.get("event") == "start":
                bar = progress_bar(
                    total=chunk["total"],
                    initial=chunk.get("done", 0),
                    desc=desc,
                    unit=unit,
                    progress=progress,
                )
                continue
            if bar is None:
                continue
            failed += bool(chunk.get("failed"))
            succeeded += bool(chunk.get("success"))
            bar.update(1)
            bar.set_postfix(success=succeeded, failed=failed, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return final
