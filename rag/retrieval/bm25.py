"""Keyword retrieval: Lucene BM25 over the index's chunks (``retrieval.retriever: bm25``; the index is :mod:`.keyword`)."""

from __future__ import annotations

from ..store.base import Hit
from .base import RankedRetriever
from .filters import MetadataFilter


class BM25Retriever(RankedRetriever):
    """Lucene BM25 over the index's chunks; ``relevance`` is BM25 divided by its maximum for the query.

    Args:
        index: a loaded index (its ``bm25/`` files are loaded, or built once when missing).
        **options: de-duplication and neighbour settings.

    Example:
        >>> BM25Retriever(loaded_index).retrieve("H800 GPUs", k=3)
    """

    def _candidates(self, query: str, n: int, filters: MetadataFilter | None) -> list[Hit]:
        return self.index.bm25_retrieval(query, filters, n)
