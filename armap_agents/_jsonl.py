"""Durable JSONL files: appends that survive a crash, reads that tolerate a torn last line,
and no append to (or repair of) a file that is not ours."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

from pydantic import BaseModel

from armap_agents.errors import ConfigError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[M]:
    """Yield the records of ``path`` as ``model``; a torn (crash-truncated) line is skipped.

    A line that is not UTF-8 text (a binary file, another encoding) raises
    :class:`~armap_agents.errors.ConfigError` naming the file, unless it is the last line,
    unfinished and begun as a record (``{"``): one torn by a crash in a character."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if raw.endswith(b"\n") or not raw.startswith(b'{"'):
                    raise ConfigError(
                        f"{path} is not a JSONL file (line {lineno} is not UTF-8 text: "
                        f"{exc.reason} at byte {exc.start}): name a JSONL file"
                    ) from None
                logger.warning("%s:%d: skipping an unreadable line (torn write?)", path, lineno)
                continue
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

    Opening checks that the file is one of ours (see :func:`check_jsonl`: a file that is
    not is refused with a :class:`~armap_agents.errors.ConfigError` and left unchanged) and
    repairs a record torn by a crash: cut off, or ended with its newline when it is whole.
    ``model`` is the record type the file holds (None: any JSON objects).
    """

    def __init__(self, path: str | Path, model: type[BaseModel] | None = None) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ConfigError(f"cannot create a file in {self.path.parent}: {exc}") from exc
        self._lock = threading.Lock()
        _repair_tail(self.path, _inspect(self.path, model))

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

    def get(self, path: str | Path, model: type[BaseModel] | None = None) -> JsonlAppender:
        key = str(path)
        with self._lock:
            if key not in self._appenders:
                self._appenders[key] = JsonlAppender(key, model)
            return self._appenders[key]


def check_jsonl(path: str | Path, model: type[BaseModel] | None = None) -> None:
    """Raise :class:`~armap_agents.errors.ConfigError` unless ``path`` is absent, empty or a
    JSONL file of ``model`` records (None: of JSON objects); never modifies the file.

    A file is ours when its first line is such a record and its last line is one too, or is
    a record torn by a crash: a line our appender began (``{"``) that is not complete JSON,
    after whole records. A file whose only line is broken is refused, never emptied: nothing
    in it shows that it is ours.
    """
    _inspect(Path(path), model)


# what to do with the last line: nothing, cut it off at this offset, or end it with "\n"
_Repair = int | Literal["newline"] | None


def _inspect(path: Path, model: type[BaseModel] | None) -> _Repair:
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a JSONL file: name a file")
    if not path.exists():
        return None
    what = f"{model.__name__} records" if model is not None else "JSON records"
    with path.open("rb") as fh:
        lineno, first = 0, b""
        for line in fh:
            lineno += 1
            if line.strip():
                first = line
                break
        if first.endswith(b"\n") and not _is_record(first, model):
            raise ConfigError(
                f"{path} is not a JSONL file of {what} (line {lineno}: {_preview(first)}); "
                "it was left unchanged: choose another file"
            )
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        start = _last_line_start(fh, size)
        fh.seek(start)
        tail = fh.read()
    if _is_record(tail, model):
        return "newline"  # whole, only its newline is missing
    if tail.startswith(b'{"') and not _is_json(tail):
        if not first.endswith(b"\n"):  # its only line: nothing in it shows the file is ours
            raise ConfigError(
                f"{path} holds a single line that is not whole JSON ({_preview(tail)}) and no "
                "record: it was left unchanged; delete it if a crash cut its first write, "
                "or choose another file"
            )
        return start  # a record torn by a crash, after whole ones
    raise ConfigError(
        f"{path} ends with a line that is not one of its {what} ({_preview(tail)}); "
        "it was left unchanged: choose another file"
    )


def _repair_tail(path: Path, repair: _Repair) -> None:
    if repair is None:
        return
    with path.open("rb+") as fh:
        if repair == "newline":
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
            logger.warning("%s: ended its last record with the missing newline", path)
        else:
            torn = fh.seek(0, os.SEEK_END) - repair
            fh.truncate(repair)
            logger.warning("%s: dropped a record torn by a crash (%d bytes)", path, torn)
        fh.flush()
        os.fsync(fh.fileno())


def _last_line_start(fh: BinaryIO, size: int, block: int = 1 << 16) -> int:
    """The offset just after the last newline of a file that does not end with one."""
    end = size
    while end > 0:
        begin = max(0, end - block)
        fh.seek(begin)
        cut = fh.read(end - begin).rfind(b"\n")
        if cut >= 0:
            return begin + cut + 1
        end = begin
    return 0


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _is_record(line: bytes, model: type[BaseModel] | None) -> bool:
    try:
        if model is not None:
            model.model_validate_json(line)
            return True
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):  # ValidationError, JSON and Unicode errors; deep nesting
        return False


def _preview(line: bytes, width: int = 60) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    return repr(text if len(text) <= width else text[:width] + "...")
