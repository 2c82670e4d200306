"""Durable JSONL files: appends that survive a crash, reads that tolerate a torn last line."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[M]:
    """Yield the records of ``path`` as ``model``; a torn (crash-truncated) line is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValueError:
                logger.warning("%s:%d: skipping an unreadable line (torn write?)", path, lineno)


def read_jsonl(path: str | Path, model: type[M]) -> list[M]:
    """All records of ``path`` as ``model`` (empty when the file does not exist)."""
    return list(iter_jsonl(path, model))


def write_jsonl(path: str | Path, records: Iterable[BaseModel]) -> int:
    """Write ``records`` to ``path`` atomically (temp file + rename). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(record.model_dump_json() + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


class JsonlAppender:
    """Thread-safe, line-atomic appender: each record is flushed and fsynced before return.

    A torn last line left by a crash is repaired (cut off) when the appender opens the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        _drop_torn_tail(self.path)

    def append(self, record: BaseModel | dict) -> None:
        line = record.model_dump_json() if isinstance(record, BaseModel) else json.dumps(record)
        data = (line + "\n").encode("utf-8")
        with self._lock, self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


class AppenderPool:
    """One :class:`JsonlAppender` per path, created once under a lock (safe across threads).

    Keep a pool for the lifetime of a graph: opening an appender repairs a torn tail, which
    must never happen while another thread is writing to the same file.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._appenders: dict[str, JsonlAppender] = {}

    def get(self, path: str | Path) -> JsonlAppender:
        key = str(path)
        with self._lock:
            if key not in self._appenders:
                self._appenders[key] = JsonlAppender(key)
            return self._appenders[key]


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)
        logger.warning("%s: dropped a torn last line (%d bytes)", path, len(data) - cut)
