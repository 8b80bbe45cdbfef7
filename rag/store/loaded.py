"""One loaded index generation, and everything a retriever asks of it.

Retrievers never open the generation's files or reach into FAISS: they ask the loaded
index for chunks by row, stored vectors, dense search, BM25 search (``bm25_retrieval``, as
Haystack's document stores offer it) and the rows that pass a metadata filter. What it reads
once (the chunk table, the keyword index) is kept here, beside the index it belongs to.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..retrieval.filters import MetadataFilter
from ..records import Chunk, Manifest
from .base import (
    CHUNK_COLUMNS,
    CHUNKS,
    EXACT_VECTORS,
    Hit,
    IndexCorruptError,
    chunk_from_row,
)

if TYPE_CHECKING:
    from ..retrieval.keyword import KeywordIndex

# Allowed-row sets kept per filter: a hybrid query asks for the same filter twice, and a
# conversation often repeats it; a handful covers both without growing with the traffic.
_FILTER_CACHE = 16


def assemble_text(chunks: Sequence[Chunk]) -> str:
    """One text from chunks of one article placed at their offsets (see :meth:`LoadedIndex.article_text`)."""
    parts: list[str] = []
    length = 0
    for c in sorted(chunks, key=lambda c: (c.start, c.end)):
        if c.end <= length:
            continue
        if c.start > length:
            parts.append(" " * (c.start - length))
            length = c.start
        parts.append(c.text[length - c.start :])
        length = c.end
    return "".join(parts)


class ChunkTable:
    """Row, document, offsets, source and date of every chunk (no text), read once per index."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = np.array([r[0] for r in rows], dtype=np.int64)
        self.doc_ids = [r[1] for r in rows]
        self.starts = [int(r[2]) for r in rows]
        self.sources = [r[3] for r in rows]
        self.dates = [r[4] for r in rows]
        # Chunks of one article in text order, for neighbour widening.
        by_doc: dict[str, list[int]] = {}
        for i, doc in enumerate(self.doc_ids):
            by_doc.setdefault(doc, []).append(i)
        self._order: dict[int, tuple[list[int], int]] = {}
        for members in by_doc.values():
            members.sort(key=lambda i: self.starts[i])
            ordered = [int(self.rows[i]) for i in members]
            for j, i in enumerate(members):
                self._order[int(self.rows[i])] = (ordered, j)

    def allowed_rows(self, flt: MetadataFilter) -> np.ndarray:
        """Rows whose article passes ``flt``."""
        keep = [i for i in range(len(self.rows)) if flt.matches(self.sources[i], self.dates[i])]
        return self.rows[keep]

    def neighbours(self, row: int, distance: int) -> tuple[list[int], list[int]]:
        """Rows of up to ``distance`` chunks before and after ``row`` in the same article (nearest first)."""
        ordered, j = self._order.get(int(row), ([int(row)], 0))
        before = [ordered[i] for i in range(j - 1, max(-1, j - 1 - distance), -1)]
        after = [ordered[i] for i in range(j + 1, min(len(ordered), j + 1 + distance))]
        return before, after


class LoadedIndex:
    """One loaded index generation: FAISS vectors in memory, chunk text read on demand.

    Args:
        path: the generation folder.
        manifest: its manifest.
        index: the FAISS index (an ``IndexIDMap`` whose ids are chunk rows).

    Example:
        >>> index = IndexStore("index/default").load()
        >>> hits = index.dense_search(query_vector, top_k=4, filters=MetadataFilter(since="2025-01-01"))
        >>> index.chunks_by_rows([h.row for h in hits])
    """

    # BM25 scores from bm25s are Lucene BM25: hybrid retrieval may mix them by value.
    bm25_scores_comparable = True

    def __init__(self, path: Path, manifest: Manifest, index: Any) -> None:
        self.path = path
        self.manifest = manifest
        self.index = index
        self._lock = threading.Lock()  # the SQLite connection
        self._state_lock = threading.Lock()  # what is read once: the chunk table, the keyword index
        self._table: ChunkTable | None = None
        self._keyword: KeywordIndex | None = None
        self._allowed: dict[MetadataFilter, np.ndarray] = {}
        try:
            self._con = sqlite3.connect(f"file:{path / CHUNKS}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        try:
            self._query("SELECT max(row) FROM chunks")  # reads the header and schema: catches a garbled file now
            have = {r[1] for r in self._query("PRAGMA table_info(chunks)")}
        except IndexCorruptError:
            self._con.close()
            raise
        # A format 1 chunk store has no pages column: its chunks load with no pages.
        self._columns = ",".join(c if c in have else f"'' AS {c}" for c in CHUNK_COLUMNS)

    def _damaged(self, exc: BaseException) -> IndexCorruptError:
        return IndexCorruptError(
            f"chunk store {str(self.path / CHUNKS)!r} is unreadable ({exc}); "
            f"rebuild with: rag build ARTICLES_DIR --index {self.path.parent} --full"
        )

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a read on the chunk store; a damaged file raises :class:`IndexCorruptError`."""
        with self._lock:
            try:
                return self._con.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError:
                raise  # e.g. used after close(): a bug here, not a damaged file
            except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
                raise self._damaged(exc) from exc

    @property
    def size(self) -> int:
        """Number of chunks in the index."""
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        """Dimension of the stored vectors."""
        return int(self.index.d)

    # -- what is read once ----------------------------------------------------------------
    def chunk_table(self) -> ChunkTable:
        """Row, article, offset, source and date of every chunk, read on first use."""
        with self._state_lock:
            if self._table is None:
                self._table = ChunkTable(
                    self._query("SELECT row, doc_id, start, source, date FROM chunks ORDER BY row")
                )
            return self._table

    def keyword_index(self) -> KeywordIndex:
        """The generation's BM25 index, loaded on first use (built from the chunks when missing; :mod:`rag.retrieval.keyword`)."""
        with self._state_lock:
            if self._keyword is None:
                from ..retrieval.keyword import open_keyword_index

                self._keyword = open_keyword_index(self.path, self.iter_rows)
            return self._keyword

    def term_weights(self, query: str) -> dict[str, float]:
        """The idf of each distinct query word in this generation's BM25 index (:meth:`rag.keyword.KeywordIndex.term_weights`)."""
        return self.keyword_index().term_weights(query)

    def allowed_rows(self, filters: MetadataFilter | None) -> np.ndarray | None:
        """Rows whose article passes ``filters``; None when nothing is filtered."""
        if filters is None or not filters.active:
            return None
        table = self.chunk_table()
        with self._state_lock:
            allowed = self._allowed.get(filters)
        if allowed is None:
            allowed = table.allowed_rows(filters)
            with self._state_lock:
                if len(self._allowed) >= _FILTER_CACHE:
                    self._allowed.pop(next(iter(self._allowed)))
                self._allowed[filters] = allowed
        return allowed

    def matches_nothing(self, filters: MetadataFilter | None) -> bool:
        """Whether ``filters`` leave no chunk at all (a retriever then returns nothing)."""
        allowed = self.allowed_rows(filters)
        return allowed is not None and len(allowed) == 0

    def neighbours(self, row: int, distance: int) -> tuple[list[int], list[int]]:
        """Rows of up to ``distance`` chunks before and after ``row`` in its article (nearest first)."""
        return self.chunk_table().neighbours(row, distance)

    # -- vectors and search ---------------------------------------------------------------
    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """Stored (normalised) vectors of ``rows``, straight from FAISS: no re-embedding."""
        if not len(rows):
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64)), dtype=np.float32)

    def dense_search(self, vector: np.ndarray, top_k: int, filters: MetadataFilter | None = None) -> list[Hit]:
        """The ``top_k`` rows most similar (inner product) to ``vector``, among those passing ``filters``."""
        allowed = self.allowed_rows(filters)
        n = min(top_k, self.size if allowed is None else len(allowed))
        if n <= 0:
            return []
        q = np.ascontiguousarray(np.atleast_2d(vector), dtype=np.float32)
        if allowed is None:
            scores, ids = self.index.search(q, n)
        else:
            import faiss

            from .ann import search_parameters

            # Typed parameters: IVF refuses plain SearchParameters, and HNSW/IVF keep their tuned efSearch/nprobe.
            params = search_parameters(self.index, faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
            scores, ids = self.index.search(q, n, params=params)
        return [Hit(int(i), float(s), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def bm25_retrieval(self, query: str, filters: MetadataFilter | None = None, top_k: int = 10) -> list[Hit]:
        """The ``top_k`` rows by BM25 for ``query`` among those passing ``filters`` (only rows scoring above 0).

        ``relevance`` is BM25 divided by the best score any chunk could get for the query,
        in ``[0, 1)`` (:meth:`rag.retrieval.keyword.KeywordIndex.relevance`).
        """
        kw = self.keyword_index()
        allowed = self.allowed_rows(filters)
        mask = None if allowed is None else np.isin(kw.rows, allowed)
        scores = kw.scores(query, mask)
        n = min(top_k, int(np.count_nonzero(scores > 0)))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        # Ties broken by row so results are deterministic.
        top = sorted(top.tolist(), key=lambda i: (-float(scores[i]), int(kw.rows[i])))
        rel = kw.relevance(query, scores[top])
        return [Hit(int(kw.rows[i]), float(scores[i]), float(r)) for i, r in zip(top, rel)]

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[Chunk, float]]]:
        """Top-``k`` chunks by inner product for each query vector (fewer if the index is smaller)."""
        if self.size == 0 or k <= 0:
            return [[] for _ in range(len(query_vectors))]
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, self.size))
        results = []
        for row_scores, row_ids in zip(scores, ids):
            valid = [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            by_row = self.chunks_by_rows([i for i, _ in valid])
            results.append([(by_row[i], s) for i, s in valid if i in by_row])
        return results

    def chunks_by_rows(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """Fetch chunk records by FAISS id."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        fetched = self._query(f"SELECT {self._columns} FROM chunks WHERE row IN ({marks})", [int(r) for r in rows])
        return {r[0]: chunk_from_row(r) for r in fetched}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """Every chunk of the article ``doc_id``, in text order (``[]`` for an unknown id)."""
        fetched = self._query(f"SELECT {self._columns} FROM chunks WHERE doc_id = ? ORDER BY start", [str(doc_id)])
        return [chunk_from_row(r) for r in fetched]

    def article_text(self, doc_id: str) -> str:
        """The article's text as its chunks' offsets refer to it, reassembled from the chunks.

        Overlapping chunks are merged; a span no chunk covers (whitespace the chunker left
        out) is filled with spaces, so ``text[c.start:c.end] == c.text`` for every chunk.
        """
        return assemble_text(self.chunks_of(doc_id))

    def rows_and_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every FAISS id with its stored vector: ``(ids int64 (n,), vectors float32 (n, dim))``."""
        import faiss

        n = self.size
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.index.d), dtype=np.float32)
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        exact = self.path / EXACT_VECTORS
        vectors = np.load(exact) if exact.is_file() else self.index.index.reconstruct_n(0, n)
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def iter_rows(self) -> Iterator[tuple[int, Chunk]]:
        """``(row, chunk)`` pairs for every chunk, in row order."""
        for r in self._query(f"SELECT {self._columns} FROM chunks ORDER BY row"):
            yield r[0], chunk_from_row(r)

    def iter_chunks(self) -> Iterator[Chunk]:
        """All chunks in row order (streams from disk)."""
        for _row, chunk in self.iter_rows():
            yield chunk

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._con.close()
