"""Render a graph's custom stream events as a tqdm progress bar."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


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
                bar = tqdm(
                    total=chunk["total"],
                    initial=chunk.get("done", 0),
                    desc=desc,
                    unit=unit,
                    disable=not progress,
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
