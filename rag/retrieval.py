"""Retrieve passages for a question.

The :class:`Retriever` protocol is the seam: dense FAISS, keyword or fake retrievers all fit.

Example:
    >>> retriever = DenseRetriever(loaded_index, embedder)
    >>> [(p.n, p.chunk.title, round(p.score, 2)) for p in retriever.retrieve("Who made R1?", k=3)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .chunking import Chunk
from .embedding import Embedder
from .store import LoadedIndex


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its rank number ``n`` (1-based, as cited) and score."""

    n: int
    chunk: Chunk
    score: float

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def text(self) -> str:
        return self.chunk.text


@runtime_checkable
class Retriever(Protocol):
    """Returns up to ``k`` passages for ``query``, best first, numbered from 1."""

    def retrieve(self, query: str, k: int) -> list[Passage]: ...


class DenseRetriever:
    """Dense top-k over a FAISS inner-product index of normalised embeddings (cosine).

    Args:
        index: a loaded index.
        embedder: the embedder the index was built with.
    """

    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def retrieve(self, query: str, k: int) -> list[Passage]:
        """Top-``k`` passages by cosine similarity (fewer when the index holds fewer chunks)."""
        if k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}")
        vector = self.embedder.encode([query])
        hits = self.index.search(vector, k)[0]
        return [Passage(n=i + 1, chunk=chunk, score=score) for i, (chunk, score) in enumerate(hits)]
