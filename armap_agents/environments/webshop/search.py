"""BM25 product search for the WebShop environment (``bm25s`` + the Snowball English stemmer).

WebShop searches its catalog with Lucene BM25 through pyserini. This module reproduces that
setup offline: the same document text (title, description, bullet points and option values),
Lucene's English stop words, a Porter-style stemmer (PyStemmer's Snowball "english") and
pyserini's default BM25 parameters (``k1 = 0.9``, ``b = 0.4``). A query returns at most 50
products, best first; products that share no term with the query are not returned, and ties
are broken by catalog order so results are deterministic.

An index is built once per catalog and persisted under a cache directory in a folder named by
the catalog's fingerprint (a hash of the indexed text and of these settings), so a second
process (or a second :class:`~armap_agents.environments.webshop.catalog.Catalog` over the same
products) loads it instead of building it again. Writes are atomic: a crash while saving
leaves no half-written index behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from armap_agents.errors import MissingDependency

__all__ = [
    "BM25_B",
    "BM25_K1",
    "DEFAULT_CACHE_DIR",
    "SEARCH_RESULTS",
    "SearchIndex",
    "default_cache_dir",
    "index_fingerprint",
    "tokenize",
]

logger = logging.getLogger(__name__)

SEARCH_RESULTS = 50
"""How many products a search returns, as in WebShop."""
BM25_K1 = 0.9
BM25_B = 0.4
INDEX_FORMAT = 1
"""Bumped whenever the tokenization or the saved layout changes (old caches are ignored)."""
DEFAULT_CACHE_DIR = "armap_agents/webshop-index"
"""Where indexes live under ``$XDG_CACHE_HOME`` (or ``~/.cache``), unless told otherwise."""

_TOKEN_RE = re.compile(r"[a-z0-9]+")


def _bm25s():  # noqa: ANN202 - the bm25s module
    try:
        import bm25s
        import bm25s.stopwords
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependency(
            f"WebShop search needs bm25s and PyStemmer: pip install bm25s PyStemmer ({exc})"
        ) from exc
    return bm25s


def _stopwords() -> frozenset[str]:
    """Lucene's English stop words (the ones pyserini's default analyzer drops)."""
    return frozenset(_bm25s().stopwords.STOPWORDS_EN)


def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    try:
        import Stemmer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependency(
            f"WebShop search needs PyStemmer and bm25s: pip install bm25s PyStemmer ({exc})"
        ) from exc
    return Stemmer.Stemmer("english")


def tokenize(texts: Iterable[str], *, stemmer=None, stopwords: frozenset[str] | None = None):  # noqa: ANN001,ANN201
    """Lower-cased alphanumeric tokens, stop words removed, stemmed: one list per text."""
    stemmer = stemmer or _stemmer()
    stop = _stopwords() if stopwords is None else stopwords
    return [
        stemmer.stemWords([t for t in _TOKEN_RE.findall(text.lower()) if t not in stop])
        for text in texts
    ]


def index_fingerprint(texts: Iterable[str]) -> str:
    """A hash of the documents (in order) and of every setting that shapes the index."""
    digest = hashlib.sha256(f"webshop-bm25/{INDEX_FORMAT}/{BM25_K1}/{BM25_B}\n".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$ARMAP_CACHE_DIR/webshop-index`` if set, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    root = os.environ.get("ARMAP_CACHE_DIR")
    if root:
        return Path(root) / "webshop-index"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / DEFAULT_CACHE_DIR


class SearchIndex:
    """A BM25 index over a fixed list of documents; :meth:`search` returns document positions.

    Build it with :meth:`build` (or :meth:`open`, which loads a persisted index when there is
    one); it is read-only afterwards and safe to share between threads.
    """

    def __init__(self, retriever, num_docs: int) -> None:  # noqa: ANN001 - a bm25s.BM25
        self._retriever = retriever
        self.num_docs = num_docs
        self._stop = _stopwords()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Sequence[str]) -> SearchIndex:
        """Index ``texts`` (position ``i`` is document ``i``)."""
        bm25s = _bm25s()
        stemmer = _stemmer()
        stop = _stopwords()
        vocab: dict[str, int] = {}
        ids: list[list[int]] = []
        for tokens in tokenize(texts, stemmer=stemmer, stopwords=stop):
            ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        retriever.index((ids, vocab), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index to ``directory`` (created)."""
        self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = True) -> SearchIndex:
        """Read an index written by :meth:`save`; ``mmap`` maps the arrays instead of reading
        them (fast to open, memory shared with other processes through the page cache)."""
        retriever = _bm25s().BM25.load(str(directory), mmap=mmap, show_progress=False)
        return cls(retriever, int(retriever.scores["num_docs"]))

    @classmethod
    def open(
        cls,
        texts: Sequence[str],
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        fingerprint: str | None = None,
    ) -> SearchIndex:
        """The index of ``texts``: loaded from ``cache_dir`` when a previous run saved it,
        otherwise built and saved there (atomically). ``cache_dir=None`` uses
        :func:`default_cache_dir`; an unwritable cache only costs the rebuild next time."""
        fingerprint = fingerprint or index_fingerprint(texts)
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        target = root / f"bm25-{fingerprint[:32]}"
        if (target / "params.index.json").exists():
            try:
                index = cls.load(target)
                if index.num_docs == len(texts):
                    return index
            except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt
                logger.warning("ignoring unreadable WebShop index %s: %r", target, exc)
        index = cls.build(texts)
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".bm25-", dir=root))
            index.save(staging)
            try:
                os.replace(staging, target)  # atomic; fails if another process won the race
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError as exc:
            logger.warning("could not save the WebShop search index to %s: %r", root, exc)
        return index

    # -- queries -----------------------------------------------------------------------
    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when no query term is known)."""
        tokens = tokenize([query], stopwords=self._stop)[0]
        ids = self._retriever.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self.num_docs, dtype=np.float32)
        return self._retriever.get_scores_from_ids(ids)

    def search(self, query: str, k: int = SEARCH_RESULTS) -> list[int]:
        """Positions of the best ``k`` documents with a positive score, best first (ties in
        document order)."""
        scores = self.scores(query)
        positive = int(np.count_nonzero(scores > 0))
        k = min(k, positive)
        if k <= 0:
            return []
        if k < len(scores):
            top = np.argpartition(-scores, k - 1)[:k]
            # argpartition does not break ties by position: take every document whose score
            # equals the k-th best, then order by (score desc, position asc)
            kth = scores[top].min()
            top = np.flatnonzero(scores >= kth)
        else:
            top = np.arange(len(scores))
        order = np.lexsort((top, -scores[top]))
        return [int(i) for i in top[order][:k]]
