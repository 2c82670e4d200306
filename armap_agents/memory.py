"""TrajectoryMemory: a FAISS index over past (intent, trajectory, reflection) records.

Embeddings come from a local sentence encoder — by default the same all-MiniLM-L6-v2 the reward
model starts from (mean pooling, L2-normalised, so inner product is cosine similarity).
Metadata lives beside the index as JSONL; the index is written in FAISS's own binary format.
No pickle. The same inserts in the same order give the same index and the same search results.

Reflexion uses it to bring lessons learned on *other* tasks, in earlier runs, into a new task.

A saved memory names its embedder in ``memory.json``; loading it uses that embedder only if it
is the default (``all-MiniLM-L6-v2``) or one the operator lists in ``ARMAP_ALLOWED_EMBEDDERS``
(comma-separated, exact: the rule of the deployment's ``ARMAP_DEPLOY_ALLOWED_*`` lists), and
only from a local directory or the local cache: a memory never starts a download by itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from armap_agents._jsonl import read_jsonl, write_jsonl
from armap_agents.errors import CheckpointError, ConfigError
from armap_agents.types import Trajectory, render_example

__all__ = ["Embedder", "MemoryRecord", "MiniLMEmbedder", "TrajectoryMemory"]

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
RECORDS_FILE = "records.jsonl"
META_FILE = "memory.json"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
ALLOWED_EMBEDDERS_ENV = "ARMAP_ALLOWED_EMBEDDERS"
"""Embedders (besides the default) a saved memory may name: comma-separated, exact."""
_DEFAULT_ALIASES = frozenset({DEFAULT_EMBEDDER, "sentence-transformers/all-MiniLM-L6-v2"})


class Embedder(Protocol):
    """Texts -> L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """Mean-pooled sentence embeddings from a local transformers encoder (default MiniLM)."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, max_length: int = 256, batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from armap_agents.reward.model import resolve_backbone

        source = resolve_backbone(model)
        self.name = model
        self.max_length = max_length
        self.batch_size = batch_size
        missing = (
            f"embedder {model!r} is neither a local model directory nor in the local model "
            "cache (an embedder is never downloaded here: fetch it first, e.g. "
            f"`huggingface-cli download {model}`)"
        )
        if not _is_local(source):  # checked first: transformers would ask the hub anyway
            raise ConfigError(missing)
        try:  # local files only: a directory, or a model already in the cache
            self._tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            self._model = AutoModel.from_pretrained(source, local_files_only=True).eval()
        except OSError as exc:
            raise ConfigError(f"{missing}: {str(exc).splitlines()[0]}") from None
        self._torch = torch
        self.dim = int(self._model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start : start + self.batch_size])
                batch = self._tokenizer(
                    chunk,
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = self._model(**batch)[0]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[start : start + len(chunk)] = pooled.numpy()
        return out


class MemoryRecord(BaseModel):
    """One remembered attempt."""

    id: int
    task_id: str = ""
    intent: str
    text: str
    """The canonical (intent, trajectory) text that was embedded, plus the reflection."""
    reflection: str = ""
    score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def memory_text(intent: str, trajectory: Trajectory | None, reflection: str = "") -> str:
    """What is embedded: the canonical (intent, trajectory) text and the reflection."""
    text = render_example(intent, trajectory) if trajectory is not None else f"Task: {intent}"
    return f"{text}\nReflection: {reflection}" if reflection else text


class TrajectoryMemory:
    """Add, search top-k, save and load remembered attempts (see the module docstring)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        import faiss

        self.embedder = embedder or MiniLMEmbedder()
        self.index: faiss.Index = faiss.IndexFlatIP(self.embedder.dim)
        self.records: list[MemoryRecord] = []

    def __len__(self) -> int:
        return len(self.records)

    def add(
        self,
        intent: str,
        trajectory: Trajectory | None = None,
        reflection: str = "",
        *,
        task_id: str = "",
        score: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> MemoryRecord:
        """Remember one attempt; returns its record."""
        record = MemoryRecord(
            id=len(self.records),
            task_id=task_id or (trajectory.task_id if trajectory else ""),
            intent=intent,
            text=memory_text(intent, trajectory, reflection),
            reflection=reflection,
            score=score,
            metadata=metadata or {},
        )
        self.index.add(self.embedder.embed([record.text]))
        self.records.append(record)
        return record

    def search(
        self,
        query: str,
        k: int = 3,
        *,
        with_reflection: bool = False,
        exclude_task: str | None = None,
    ) -> list[tuple[MemoryRecord, float]]:
        """The ``k`` most similar records to ``query`` with their cosine similarity, best first.

        ``with_reflection`` keeps only records that carry a reflection; ``exclude_task`` drops
        records of one task (e.g. the task being solved, to retrieve only transferable lessons).
        """
        if not self.records or k <= 0:
            return []
        wanted = min(
            len(self.records), k if not (with_reflection or exclude_task) else len(self.records)
        )
        sims, ids = self.index.search(self.embedder.embed([query]), wanted)
        hits = []
        for sim, i in zip(sims[0].tolist(), ids[0].tolist(), strict=True):
            if i < 0:
                continue
            record = self.records[i]
            if with_reflection and not record.reflection:
                continue
            if exclude_task is not None and record.task_id == exclude_task:
                continue
            hits.append((record, float(sim)))
            if len(hits) == k:
                break
        return hits

    def save(self, path: str | Path) -> Path:
        """Write ``index.faiss``, ``records.jsonl`` and ``memory.json`` to directory ``path``."""
        import faiss

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (INDEX_FILE + ".tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path / INDEX_FILE)
        write_jsonl(path / RECORDS_FILE, self.records)
        meta = {
            "format_version": FORMAT_VERSION,
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
            "records": len(self.records),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None) -> TrajectoryMemory:
        """Read a saved memory; the embedder must match the one it was built with."""
        import faiss

        path = Path(path)
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path} is not a saved TrajectoryMemory ({META_FILE}: {exc})"
            ) from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: memory format {meta.get('format_version')} is not supported"
            )
        memory = cls(embedder or MiniLMEmbedder(allowed_embedder(meta.get("embedder"), path)))
        if memory.embedder.dim != meta["dim"]:
            raise CheckpointError(
                f"{path} holds {meta['dim']}-d embeddings; "
                f"the embedder gives {memory.embedder.dim}-d"
            )
        try:
            memory.index = faiss.read_index(str(path / INDEX_FILE))
        except RuntimeError as exc:
            raise CheckpointError(f"cannot read {path / INDEX_FILE}: {exc}") from exc
        memory.records = read_jsonl(path / RECORDS_FILE, MemoryRecord)
        if memory.index.ntotal != len(memory.records):
            raise CheckpointError(
                f"{path}: the index has {memory.index.ntotal} vectors but there are "
                f"{len(memory.records)} records"
            )
        return memory

    @classmethod
    def open(cls, path: str | Path, embedder: Embedder | None = None) -> TrajectoryMemory:
        """Load the memory at ``path`` if it exists, else start an empty one."""
        if (Path(path) / META_FILE).is_file():
            return cls.load(path, embedder)
        return cls(embedder)


def allowed_embedder(
    name: object, path: str | Path, environ: Mapping[str, str] | None = None
) -> str:
    """``name`` (what the memory at ``path`` records) if a memory may load it: the default
    embedder or one listed in ``ARMAP_ALLOWED_EMBEDDERS``; else :class:`ConfigError`."""
    environ = os.environ if environ is None else environ
    listed = {n.strip() for n in environ.get(ALLOWED_EMBEDDERS_ENV, "").split(",") if n.strip()}
    if isinstance(name, str) and (name in _DEFAULT_ALIASES or name in listed):
        return name
    shown = repr(name) if len(repr(name)) <= 100 else repr(name)[:100] + "..."
    raise ConfigError(
        f"{Path(path) / META_FILE} names the embedder {shown}, which is refused: a memory "
        f"uses {DEFAULT_EMBEDDER} or an embedder the operator lists in {ALLOWED_EMBEDDERS_ENV} "
        f"(here: {', '.join(sorted(listed)) or 'none'})"
    )


def _is_local(source: str) -> bool:
    """Whether ``source`` is a directory or file here, or a hub id in the local cache
    (looked up without the network)."""
    if Path(source).expanduser().exists():
        return True
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(source, "config.json"), str)
    except ValueError:  # not a repository id (HFValidationError)
        return False
