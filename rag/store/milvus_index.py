"""One physical Milvus collection, loaded: what retrievers ask of it (:class:`rag.store.SearchableIndex`).

Search is server-side: dense inner product on ``vector`` and BM25 on the ``sparse`` field
Milvus derives from the chunk text. Hybrid fusion stays in :class:`rag.retrieval.HybridRetriever`
(rank fusion of the two lists, the same code as for FAISS): Milvus Lite's BM25 scores can be
negative, so only ranks are fused and raw BM25 scores are never thresholded. Filters become a
boolean expression on each request (``day`` for dates; ``doc_id in [...]`` for source globs,
matched against the manifest's articles with the same :class:`MetadataFilter` code FAISS uses).
Reads are ``Strong`` so a build's writes and an alias switch are seen at once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..retrieval.filters import MetadataFilter
from ..records import Chunk, Manifest
from .base import Hit
from .milvus_schema import CHUNK_FIELDS, chunk_from_record


class MilvusConnection(Protocol):
    """What a loaded collection asks of the store it came from (:class:`rag.store.milvus.MilvusStore`)."""

    def client(self) -> Any: ...


# Milvus caps limit (top-k) and a query's result window at 16384.
MAX_LIMIT = 16384
_WORD = re.compile(r"(?u)\b\w\w+\b")
_NEIGHBOUR_CACHE = 256


def iterate(
    client: Any, collection: str, fields: list[str], expr: str = "", batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every entity of ``collection`` matching ``expr`` (all when empty), in batches."""
    # Milvus Lite has no MVCC timestamp to hand out (AllocTimestamp is not implemented): pymilvus
    # warns and uses a client-side one, and embedded Lite's in-process gRPC server logs the
    # unimplemented call as an error. Both are noise: reads stay Strong.
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    it = client.query_iterator(
        collection, batch_size=batch, filter=expr, output_fields=fields, consistency_level="Strong"
    )
    try:
        while True:
            page = it.next()
            if not page:
                return
            yield from page
    finally:
        it.close()


def filter_expr(filters: MetadataFilter | None, manifest: Manifest) -> str:
    """A Milvus boolean expression equal to ``filters`` over the chunks ("" when nothing is filtered)."""
    if filters is None or not filters.active:
        return ""
    parts = []
    if filters.since or filters.until:
        parts.append('day != ""')
    if filters.since:
        parts.append(f"day >= {json.dumps(filters.since)}")
    if filters.until:
        parts.append(f"day <= {json.dumps(filters.until)}")
    if filters.source:
        ids = [d.id for d in manifest.documents if filters.matches(d.source, d.date)]
        parts.append(f"doc_id in {json.dumps(ids)}")
    return " and ".join(parts)


class MilvusIndex:
    """A physical Milvus collection pinned at load time, with its manifest.

    Args:
        store: the :class:`~rag.store.milvus.MilvusStore` it came from (its connection is shared).
        collection: the physical collection.
        manifest: its manifest.

    Example:
        >>> index = MilvusStore(config.index).load()
        >>> index.chunks_by_rows([h.row for h in index.dense_search(query_vector, 4)])
    """

    path = None  # no generation folder: side files (MinHash signatures) are recomputed by the next build
    # Milvus Lite's BM25 scores (no stemming; they can be negative) are only good for their
    # order: hybrid retrieval fuses them by rank (RRF), never by score.
    bm25_scores_comparable = False

    def __init__(self, store: MilvusConnection, collection: str, manifest: Manifest) -> None:
        self.store = store
        self.collection = collection
        self.manifest = manifest
        self._lock = threading.Lock()
        self._order: dict[str, list[int]] = {}

    @property
    def _client(self) -> Any:
        return self.store.client()

    @property
    def size(self) -> int:
        return int(self.manifest.chunks)

    @property
    def dimension(self) -> int:
        return int(self.manifest.dimension)

    def matches_nothing(self, filters: MetadataFilter | None) -> bool:
        if filters is None or not filters.active:
            return False
        return not any(filters.matches(d.source, d.date) for d in self.manifest.documents)

    def _search(
        self, data: list[Any], field: str, top_k: int, filters: MetadataFilter | None, fields: list[str]
    ) -> list[dict[str, Any]]:
        n = min(top_k, self.size, MAX_LIMIT)
        if n <= 0:
            return []
        params = {"metric_type": "IP", "params": {"ef": max(64, n)}} if field == "vector" else {"metric_type": "BM25"}
        res = self._client.search(
            self.collection,
            data=data,
            anns_field=field,
            limit=n,
            filter=filter_expr(filters, self.manifest),
            search_params=params,
            output_fields=["row", *fields],
            consistency_level="Strong",
        )
        return list(res[0]) if res else []

    def dense_search(self, vector: np.ndarray, top_k: int, filters: MetadataFilter | None = None) -> list[Hit]:
        """The ``top_k`` rows most similar (inner product) to ``vector`` among those passing ``filters``."""
        q = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        return [
            Hit(int(h["entity"]["row"]), float(h["distance"]), float(h["distance"]))
            for h in self._search([q], "vector", top_k, filters, [])
        ]

    def term_weights(self, query: str) -> dict[str, float]:
        """``{}``: Milvus does not expose the corpus statistics, so the term-coverage decline does not apply."""
        return {}

    def bm25_retrieval(self, query: str, filters: MetadataFilter | None = None, top_k: int = 10) -> list[Hit]:
        """The ``top_k`` rows by Milvus BM25, best first (by rank: Lite's raw scores can be negative).

        ``relevance`` is the share of the query's distinct words (two letters or more) that
        the chunk's indexed text contains, in ``[0, 1]``: unlike FAISS's BM25 relevance it is
        not idf-weighted (Milvus does not expose the corpus statistics).
        """
        if not query.strip():
            return []
        hits = self._search([query], "sparse", top_k, filters, ["indexed"])
        words = set(_WORD.findall(query.lower()))
        out = []
        for h in hits:
            have = set(_WORD.findall(str(h["entity"].get("indexed", "")).lower()))
            out.append(
                Hit(int(h["entity"]["row"]), float(h["distance"]), len(words & have) / len(words) if words else 0.0)
            )
        return out

    def _query(self, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        return list(self._client.query(self.collection, filter=expr, output_fields=fields, consistency_level="Strong"))

    def chunks_by_rows(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """Chunk records by row."""
        out: dict[int, Chunk] = {}
        wanted = sorted({int(r) for r in rows})
        for i in range(0, len(wanted), MAX_LIMIT):
            for r in self._query(f"row in {wanted[i : i + MAX_LIMIT]}", CHUNK_FIELDS):
                out[int(r["row"])] = chunk_from_record(r)
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """Every chunk of the article ``doc_id``, in text order (``[]`` for an unknown id)."""
        found = [chunk_from_record(r) for r in self._query(f"doc_id == {json.dumps(str(doc_id))}", CHUNK_FIELDS)]
        return sorted(found, key=lambda c: (c.start, c.end))

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """Stored (normalised) vectors of ``rows``, in that order."""
        if not len(rows):
            return np.zeros((0, self.dimension), dtype=np.float32)
        got = {
            int(r["row"]): r["vector"]
            for r in self._query(f"row in {sorted({int(r) for r in rows})}", ["row", "vector"])
        }
        return np.asarray([got[int(r)] for r in rows], dtype=np.float32)

    def neighbours(self, row: int, distance: int) -> tuple[list[int], list[int]]:
        """Rows of up to ``distance`` chunks before and after ``row`` in its article (nearest first)."""
        found = self._query(f"row == {int(row)}", ["doc_id"])
        if not found:
            return [], []
        doc = found[0]["doc_id"]
        with self._lock:
            ordered = self._order.get(doc)
        if ordered is None:
            members = self._query(f"doc_id == {json.dumps(doc)}", ["row", "start"])
            ordered = [int(m["row"]) for m in sorted(members, key=lambda m: (m["start"], m["row"]))]
            with self._lock:
                if len(self._order) >= _NEIGHBOUR_CACHE:
                    self._order.pop(next(iter(self._order)))
                self._order[doc] = ordered
        j = ordered.index(int(row)) if int(row) in ordered else 0
        before = [ordered[i] for i in range(j - 1, max(-1, j - 1 - distance), -1)]
        after = [ordered[i] for i in range(j + 1, min(len(ordered), j + 1 + distance))]
        return before, after

    def rows_and_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row with its stored vector, in row order."""
        got = sorted(
            ((int(r["row"]), r["vector"]) for r in iterate(self._client, self.collection, ["row", "vector"])),
            key=lambda p: p[0],
        )
        if not got:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dimension), dtype=np.float32)
        return np.array([r for r, _ in got], dtype=np.int64), np.asarray([v for _, v in got], dtype=np.float32)

    def iter_rows(self) -> Iterator[tuple[int, Chunk]]:
        """``(row, chunk)`` for every chunk, in row order."""
        got = sorted(
            ((int(r["row"]), chunk_from_record(r)) for r in iterate(self._client, self.collection, CHUNK_FIELDS)),
            key=lambda p: p[0],
        )
        yield from got

    def iter_chunks(self) -> Iterator[Chunk]:
        for _row, chunk in self.iter_rows():
            yield chunk

    def close(self) -> None:
        """Nothing to release: the connection belongs to the store."""
