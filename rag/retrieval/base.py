"""The :class:`Retriever` protocol and what every retriever shares: top-k selection,
de-duplication (:data:`DEDUP_METHODS`), article aggregation, neighbour widening, and the
"not covered" reply.

A retriever subclasses :class:`RankedRetriever` and implements ``_candidates`` (hits, best
first); see :mod:`.dense`, :mod:`.bm25` and :mod:`.hybrid`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np

from ..records import Chunk, Passage
from ..store.base import Hit, SearchableIndex
from ..text import get_encoding
from .filters import MetadataFilter
from .fusion import aggregate_articles, mmr_order

NOT_COVERED = "The articles don't cover this question."


@runtime_checkable
class Retriever(Protocol):
    """Returns up to ``k`` passages for ``query``, best first, numbered from 1."""

    def retrieve(self, query: str, k: int) -> list[Passage]: ...


def _count_tokens(text: str) -> int:
    return len(get_encoding("cl100k_base").encode_ordinary(text))


def _merge_span(chunks: Sequence[Chunk]) -> Chunk:
    """One chunk covering consecutive chunks of an article (they overlap or nearly touch).

    Offsets stay exact; a gap between two chunks (whitespace the chunker trimmed) is filled
    with as many spaces, so ``text`` keeps the length of the article span it stands for.
    """
    ordered = sorted(chunks, key=lambda c: c.start)
    text, end = ordered[0].text, ordered[0].end
    for c in ordered[1:]:
        if c.end <= end:
            continue
        if c.start >= end:
            text += " " * (c.start - end) + c.text
        else:
            text += c.text[end - c.start :]
        end = c.end
    return replace(
        ordered[0],
        text=text,
        start=ordered[0].start,
        end=end,
        pages=tuple(sorted({p for c in ordered for p in c.pages})),
    )


class RankedRetriever:
    """Shared top-k selection: candidates -> filter -> de-duplication -> top-k -> neighbours.

    Subclasses implement :meth:`_candidates`, returning hits best first.
    """

    #: Whether a hit's ``score`` is a similarity in [0, 1] that MMR may weigh against
    #: redundancy (else MMR uses ``relevance``).
    score_is_similarity = False

    def __init__(
        self,
        index: SearchableIndex,
        *,
        dedup: str = "none",
        dedup_threshold: float = 0.95,
        mmr_lambda: float = 0.7,
        pool: int = 50,
        neighbours: int = 0,
        neighbour_budget_tokens: int = 1200,
        article_weight: float = 0.0,
    ) -> None:
        # Values come checked from RetrievalConfig (rag/config/stages.py): no second check here.
        self.index = index
        self.dedup = dedup
        self.dedup_threshold = dedup_threshold
        self.mmr_lambda = mmr_lambda
        self.pool = pool
        self.neighbours = neighbours
        self.neighbour_budget_tokens = neighbour_budget_tokens
        self.article_weight = article_weight

    def _candidates(self, query: str, n: int, filters: MetadataFilter | None) -> list[Hit]:
        raise NotImplementedError

    def retrieve(self, query: str, k: int, filters: MetadataFilter | None = None) -> list[Passage]:
        """Top-``k`` passages for ``query`` (fewer when fewer chunks match).

        Args:
            query: the search text.
            k: passages wanted (>= 1).
            filters: optional date/source restriction.

        Raises:
            ValueError: ``k`` < 1.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}")
        if self.index.size == 0 or not query.strip():
            return []
        if self.index.matches_nothing(filters):
            return []
        n = k if self.dedup == "none" and not self.article_weight else max(k, self.pool)
        hits = self._candidates(query, n, filters)
        fetched: dict[int, Chunk] = {}
        if self.article_weight and len(hits) > 1:
            fetched = self.index.chunks_by_rows([h.row for h in hits])  # read once: reused for the top k below
            hits = aggregate_articles(
                hits, [fetched[h.row].doc_id if h.row in fetched else str(h.row) for h in hits], self.article_weight
            )
        if self.dedup != "none" and len(hits) > 1:
            hits = DEDUP_METHODS[self.dedup](self, hits, k)
        hits = hits[:k]
        by_row = (
            {h.row: fetched[h.row] for h in hits if h.row in fetched}
            if fetched
            else self.index.chunks_by_rows([h.row for h in hits])
        )
        hits = [h for h in hits if h.row in by_row]
        chunks = [by_row[h.row] for h in hits]
        if self.neighbours > 0:
            chunks, hits = self._widen(chunks, hits)
        return [
            Passage(n=i + 1, chunk=c, score=float(h.score), relevance=float(h.relevance))
            for i, (c, h) in enumerate(zip(chunks, hits))
        ]

    # -- de-duplication ---------------------------------------------------------------
    def _similarity_cut(self, hits: list[Hit], k: int) -> list[Hit]:
        vecs = self.index.vectors([h.row for h in hits])
        chosen: list[int] = []
        for i in range(len(hits)):
            if chosen and float(np.max(vecs[chosen] @ vecs[i])) >= self.dedup_threshold:
                continue
            chosen.append(i)
            if len(chosen) == k:
                break
        return [hits[i] for i in chosen]

    def _mmr(self, hits: list[Hit], k: int) -> list[Hit]:
        vecs = self.index.vectors([h.row for h in hits])
        # Both MMR terms must be similarities: the question-independent relevance (cosine;
        # BM25 / its maximum), or the ranking score where the retriever declares it one (convex
        # fusion's scores lie in [0, 1]). RRF scores are not: they would make every candidate
        # look alike, so an rrf hybrid re-sorts by cosine below its first passage.
        rel = np.array([h.score if self.score_is_similarity else h.relevance for h in hits], dtype=np.float64)
        return [hits[i] for i in mmr_order(rel, vecs, self.mmr_lambda, k)]

    # -- neighbour widening -------------------------------------------------------------
    def _widen(self, chunks: list[Chunk], hits: list[Hit]) -> tuple[list[Chunk], list[Hit]]:
        """Grow each hit (best first) by neighbouring chunks while the token budget lasts.

        Neighbours are chunks of the hit's own article, and filters select whole articles
        (date, source), so a neighbour passes whatever filter its hit passed.
        """
        budget = self.neighbour_budget_tokens - sum(_count_tokens(c.text) for c in chunks)
        widened = list(chunks)
        for i, hit in enumerate(hits):
            if budget <= 0:
                break
            before, after = self.index.neighbours(hit.row, self.neighbours)
            wanted = [
                r
                for pair in zip(before + [None] * len(after), after + [None] * len(before))
                for r in pair
                if r is not None
            ]
            wanted = list(dict.fromkeys(wanted))
            extra = self.index.chunks_by_rows(wanted)
            parts = [chunks[i]]
            for r in wanted:
                if r not in extra:
                    continue
                candidate = _merge_span(parts + [extra[r]])
                cost = _count_tokens(candidate.text) - _count_tokens(_merge_span(parts).text)
                if cost > budget:
                    continue
                parts.append(extra[r])
                budget -= cost
            widened[i] = _merge_span(parts)
        # A hit whose span another (better) widened hit already covers adds nothing.
        out_chunks: list[Chunk] = []
        out_hits: list[Hit] = []
        for c, h in zip(widened, hits):
            if any(o.doc_id == c.doc_id and o.start <= c.start and c.end <= o.end for o in out_chunks):
                continue
            out_chunks.append(c)
            out_hits.append(h)
        return out_chunks, out_hits


DEDUP_METHODS: dict[str, Callable[[RankedRetriever, list[Hit], int], list[Hit]]] = {
    "none": lambda self, hits, k: hits,
    "cut": RankedRetriever._similarity_cut,
    "mmr": RankedRetriever._mmr,
}


def not_covered_text(passages: Sequence[Passage], limit: int = 3, why: str = "") -> str:
    """The reply when no passage is relevant enough: says so (and ``why``, a sentence) and names the closest sources."""
    seen: dict[str, str] = {}
    for p in passages:
        if p.chunk.source not in seen:
            seen[p.chunk.source] = f"{p.chunk.title} ({p.chunk.source})"
        if len(seen) == limit:
            break
    head = f"{NOT_COVERED} {why}" if why else NOT_COVERED
    if not seen:
        return head
    return f"{head} The closest sources are: " + "; ".join(seen.values()) + "."
