"""Dense retrieval: cosine top-k over the index's normalised embeddings (``retrieval.retriever: dense``)."""

from __future__ import annotations

from ..embedding.base import Embedder
from ..store.base import Hit, SearchableIndex
from .base import RankedRetriever
from .filters import MetadataFilter


class DenseRetriever(RankedRetriever):
    """Dense top-k over a FAISS inner-product index of normalised embeddings (cosine).

    Args:
        index: a loaded index.
        embedder: the embedder the index was built with.
        **options: de-duplication and neighbour settings (see :class:`HybridRetriever`).

    Example:
        >>> DenseRetriever(loaded_index, embedder).retrieve("Who made R1?", k=3)
    """

    def __init__(self, index: SearchableIndex, embedder: Embedder, **options) -> None:
        super().__init__(index, **options)
        self.embedder = embedder

    def _candidates(self, query: str, n: int, filters: MetadataFilter | None) -> list[Hit]:
        return self.index.dense_search(self.embedder.encode([query]), n, filters)
