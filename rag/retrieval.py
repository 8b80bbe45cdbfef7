"""Retrieve passages for a question: dense, BM25 or both fused, de-duplicated, optionally widened.

The :class:`Retriever` protocol is the seam: dense FAISS, keyword, hybrid or fake retrievers
all fit. :func:`make_retriever` picks one by name from :data:`RETRIEVERS`.

- :class:`DenseRetriever`: cosine top-k over the FAISS index (MiniLM vectors).
- :class:`BM25Retriever`: Lucene BM25 over the same chunks (:mod:`rag.keyword`).
- :class:`HybridRetriever`: the two fused by one of :data:`FUSION_METHODS`: ``convex`` (the
  default) mixes their scores, each min-max normalised over the question's candidates,
  ``dense_share * dense + (1 - dense_share) * bm25`` (:func:`rag.fusion.convex_score_fusion`); ``rrf`` is
  weighted reciprocal-rank fusion, ``sum_r w_r / (rrf_k + rank_r(c))``, blind to how far apart
  the scores are (:func:`rag.fusion.reciprocal_rank_fusion`; both re-exported here). ``eval/fusion_study.py`` measured both.
  Convex fusion then adds match bonuses (:mod:`rag.term_match`): a candidate holding the
  question's numbers ("2018", "Q1", "93rd") rises over near-identical snippets about another
  year, and for a question asking when, one holding a full date.

Any retriever can add article-level aggregation (``article_weight``: each candidate gains
that share of the mean of its article's other three best candidates' scores, so an article
that matches in several chunks rises), and each can drop near-duplicates from its top-k (``dedup="cut"``: a candidate whose vector has
cosine >= ``dedup_threshold`` with an already chosen one is skipped; ``dedup="mmr"``: maximal
marginal relevance), widen each hit with neighbouring chunks of the same article up to a token
budget, and restrict results with a :class:`MetadataFilter` (date range, source glob).
Retrievers are thin: the loaded index (:class:`rag.store.LoadedIndex`) runs the dense and
BM25 searches, applies the filters and hands out chunks and stored vectors; a retriever
fuses, de-duplicates and widens.

Every :class:`Passage` carries a ``relevance`` on a scale that does not depend on the question:
cosine similarity for dense and hybrid, ``BM25 / max attainable BM25`` for bm25. The pipeline
declines without calling the generator when the best relevance is below the configured
threshold (:meth:`rag.config.RetrievalConfig.min_relevance_for`).

Example:
    >>> retriever = make_retriever(config.retrieval, loaded_index, embedder)
    >>> [(p.n, p.chunk.title, round(p.score, 3)) for p in retriever.retrieve("Who made R1?", k=3)]
    >>> retriever.retrieve("chip exports", k=3, filters=MetadataFilter(since="2025-01-01", source="news/*"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .embedding import Embedder
from .filters import MetadataFilter
from .fusion import (
    FUSION_METHODS,
    aggregate_articles,
    convex_score_fusion,
    reciprocal_rank_fusion,
)
from .records import Chunk, Passage
from .store import Hit, SearchableIndex
from .term_match import bonus_applies, match_bonus

if TYPE_CHECKING:
    from .config import RetrievalConfig

__all__ = ["DEDUP_METHODS", "FUSION_METHODS", "NOT_COVERED", "RETRIEVERS", "BM25Retriever", "DenseRetriever", "HybridRetriever", "MetadataFilter",
           "Passage", "Retriever", "aggregate_articles", "convex_score_fusion", "make_retriever", "not_covered_text", "reciprocal_rank_fusion"]

NOT_COVERED = "The articles don't cover this question."


@runtime_checkable
class Retriever(Protocol):
    """Returns up to ``k`` passages for ``query``, best first, numbered from 1."""

    def retrieve(self, query: str, k: int) -> list[Passage]: ...


def _count_tokens(text: str) -> int:
    from .text import get_encoding

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
    return replace(ordered[0], text=text, start=ordered[0].start, end=end, pages=tuple(sorted({p for c in ordered for p in c.pages})))


class _RankedRetriever:
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
        if dedup not in DEDUP_METHODS:
            raise ValueError(f"unknown dedup method {dedup!r}; choose from {sorted(DEDUP_METHODS)}")
        if not 0.0 < dedup_threshold <= 1.0:
            raise ValueError(f"dedup_threshold must be in (0, 1], got {dedup_threshold}")
        if not 0.0 <= mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be between 0 and 1, got {mmr_lambda}")
        if pool < 1:
            raise ValueError(f"candidates must be >= 1, got {pool}")
        if neighbours < 0:
            raise ValueError(f"neighbours must be >= 0, got {neighbours}")
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
            hits = aggregate_articles(hits, [fetched[h.row].doc_id if h.row in fetched else str(h.row) for h in hits], self.article_weight)
        if self.dedup != "none" and len(hits) > 1:
            hits = DEDUP_METHODS[self.dedup](self, hits, k)
        hits = hits[:k]
        by_row = {h.row: fetched[h.row] for h in hits if h.row in fetched} if fetched else self.index.chunks_by_rows([h.row for h in hits])
        hits = [h for h in hits if h.row in by_row]
        chunks = [by_row[h.row] for h in hits]
        if self.neighbours > 0:
            chunks, hits = self._widen(chunks, hits)
        return [Passage(n=i + 1, chunk=c, score=float(h.score), relevance=float(h.relevance)) for i, (c, h) in enumerate(zip(chunks, hits))]

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
        sims = vecs @ vecs.T
        chosen: list[int] = [0]
        left = list(range(1, len(hits)))
        while left and len(chosen) < k:
            redundancy = sims[np.ix_(left, chosen)].max(axis=1)
            mmr = self.mmr_lambda * rel[left] - (1 - self.mmr_lambda) * redundancy
            pick = left[int(np.argmax(mmr))]
            chosen.append(pick)
            left.remove(pick)
        return [hits[i] for i in chosen]

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
            wanted = [r for pair in zip(before + [None] * len(after), after + [None] * len(before)) for r in pair if r is not None]
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


DEDUP_METHODS: dict[str, Callable[[_RankedRetriever, list[Hit], int], list[Hit]]] = {
    "none": lambda self, hits, k: hits,
    "cut": _RankedRetriever._similarity_cut,
    "mmr": _RankedRetriever._mmr,
}


class DenseRetriever(_RankedRetriever):
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


class BM25Retriever(_RankedRetriever):
    """Lucene BM25 over the index's chunks; ``relevance`` is BM25 divided by its maximum for the query.

    Args:
        index: a loaded index (its ``bm25/`` files are loaded, or built once when missing).
        **options: de-duplication and neighbour settings.

    Example:
        >>> BM25Retriever(loaded_index).retrieve("H800 GPUs", k=3)
    """

    def _candidates(self, query: str, n: int, filters: MetadataFilter | None) -> list[Hit]:
        return self.index.bm25_retrieval(query, filters, n)




class HybridRetriever(_RankedRetriever):
    """Dense + BM25, fused by convex score fusion (default) or weighted reciprocal-rank fusion.

    Args:
        index: a loaded index.
        embedder: the embedder the index was built with.
        fusion: ``"convex"`` (:func:`convex_score_fusion`) or ``"rrf"`` (:func:`reciprocal_rank_fusion`).
        dense_share: convex: the weight of the normalised dense scores.
        dense_weight: rrf: weight of the dense ranking in the fusion.
        bm25_weight: rrf: weight of the BM25 ranking.
        rrf_k: rrf: the RRF constant.
        number_match_weight: convex: bonus for a candidate holding the question's numbers
            (:func:`rag.term_match.number_match`, the share of them it holds; 0: off).
        date_match_weight: convex: bonus, when the question asks when, for a candidate holding
            a full date (:func:`rag.term_match.date_match`; 0: off).
        candidates: how many candidates each retriever contributes (and the pool de-duplication picks from).
        dedup: ``"none"``, ``"cut"`` (drop near-duplicates above ``dedup_threshold`` cosine) or ``"mmr"``.
        dedup_threshold: cosine at or above which two chunks count as duplicates.
        mmr_lambda: MMR trade-off; 1 is pure relevance.
        neighbours: chunks to add on each side of a hit (0: off).
        neighbour_budget_tokens: total cl100k tokens all passages may grow to by widening.

    ``relevance`` of a fused passage is its cosine similarity to the query (its vector is
    read from FAISS when only BM25 found it). With convex fusion, ``score`` is the fused score
    plus the match bonuses, which re-rank the candidates before de-duplication.

    Example:
        >>> HybridRetriever(loaded_index, embedder, dense_weight=1.0, bm25_weight=0.5).retrieve("H800 GPUs", k=4)
    """

    def __init__(self, index: SearchableIndex, embedder: Embedder, *, fusion: str = "convex", dense_share: float = 0.9, dense_weight: float = 1.0,
                 bm25_weight: float = 1.0, rrf_k: int = 60, number_match_weight: float = 0.3, date_match_weight: float = 0.2,
                 candidates: int = 50, rare_match_relevance: float = 0.0, rare_match_margin: float = 1.5, **options) -> None:
        super().__init__(index, pool=candidates, **options)
        if fusion not in FUSION_METHODS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {sorted(FUSION_METHODS)}")
        self.fusion = fusion
        self.dense_share = dense_share
        # A store whose BM25 scores are only good for their order (Milvus Lite) is fused by rank.
        self.score_is_similarity = fusion == "convex" and index.bm25_scores_comparable
        if dense_weight < 0 or bm25_weight < 0 or dense_weight + bm25_weight == 0:
            raise ValueError(f"dense_weight and bm25_weight must be >= 0 and not both 0, got {dense_weight} and {bm25_weight}")
        if rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.rrf_k = rrf_k
        if number_match_weight < 0 or date_match_weight < 0:
            raise ValueError(f"number_match_weight and date_match_weight must be >= 0, got {number_match_weight} and {date_match_weight}")
        self.number_match_weight = number_match_weight
        self.date_match_weight = date_match_weight
        self.candidates = candidates
        self.rare_match_relevance = rare_match_relevance
        self.rare_match_margin = rare_match_margin

    def _candidates(self, query: str, n: int, filters: MetadataFilter | None) -> list[Hit]:
        depth = max(n, self.candidates)
        vector = self.embedder.encode([query])
        dense = self.index.dense_search(vector, depth, filters)
        sparse = self.index.bm25_retrieval(query, filters, depth)
        if self.fusion == "convex" and self.index.bm25_scores_comparable:
            fused = convex_score_fusion([(h.row, h.score) for h in dense], [(h.row, h.score) for h in sparse], self.dense_share)[:depth]
            fused = self._keep_rare_match(dense, sparse, self._match_terms(query, fused))[:n]
        else:
            fused = reciprocal_rank_fusion([[h.row for h in dense], [h.row for h in sparse]], [self.dense_weight, self.bm25_weight], self.rrf_k)[:n]
        cosine = {h.row: h.score for h in dense}
        missing = [row for row, _ in fused if row not in cosine]
        if missing:
            q = np.asarray(vector, dtype=np.float32).reshape(-1)
            for row, sim in zip(missing, self.index.vectors(missing) @ q):
                cosine[row] = float(sim)
        return [Hit(row, score, cosine[row]) for row, score in fused]

    def _keep_rare_match(self, dense: list[Hit], sparse: list[Hit], fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """``fused`` with BM25's best hit first when it is an exact match of rare words the dense side missed.

        BM25's relevance is the share of the question's idf-weighted words a chunk matches, so a
        high one with a clear lead over BM25's second hit means the rare words of the question (a
        made-up name, a code) are in this chunk and hardly anywhere else; MiniLM has never seen
        such words and can rank five chunks of another article above it.
        """
        if self.rare_match_relevance <= 0 or not sparse or not fused:
            return fused
        top = sparse[0]
        second = sparse[1].score if len(sparse) > 1 else 0.0
        if top.relevance < self.rare_match_relevance or top.score < self.rare_match_margin * second:
            return fused
        if top.row in {h.row for h in dense[:RARE_DENSE_AGREES]} or fused[0][0] == top.row:
            return fused
        return [(top.row, fused[0][1] + 1e-6)] + [(row, score) for row, score in fused if row != top.row]

    def _match_terms(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """``fused`` with each score plus its match bonus (:func:`rag.term_match.match_bonus`), best first."""
        if len(fused) < 2 or not bonus_applies(query, self.number_match_weight, self.date_match_weight):
            return fused  # no bonus for anyone: the order stands, and no chunk is read
        chunks = self.index.chunks_by_rows([row for row, _ in fused])
        texts = [chunks[row].text if row in chunks else "" for row, _ in fused]
        bonus = match_bonus(query, texts, self.number_match_weight, self.date_match_weight)
        scored = [(row, score + b) for (row, score), b in zip(fused, bonus)]
        order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))
        return [scored[i] for i in order]


RETRIEVERS = ("dense", "bm25", "hybrid")
# The dense side "agrees" with BM25's best hit when it ranks it this high itself.
RARE_DENSE_AGREES = 4


def make_retriever(config: RetrievalConfig, index: SearchableIndex, embedder: Embedder, retriever: str | None = None) -> _RankedRetriever:
    """The retriever named by ``retriever`` (default ``config.retriever``) with the config's settings.

    Raises:
        ValueError: unknown retriever name.
    """
    name = retriever or config.retriever
    options = dict(dedup=config.dedup, dedup_threshold=config.dedup_threshold, mmr_lambda=config.mmr_lambda,
                   neighbours=config.neighbours, neighbour_budget_tokens=config.neighbour_budget_tokens, article_weight=config.article_weight)
    if name == "dense":
        return DenseRetriever(index, embedder, pool=config.candidates, **options)
    if name == "bm25":
        return BM25Retriever(index, pool=config.candidates, **options)
    if name == "hybrid":
        return HybridRetriever(index, embedder, fusion=config.fusion, dense_share=config.dense_share, dense_weight=config.dense_weight,
                               bm25_weight=config.bm25_weight, rrf_k=config.rrf_k, number_match_weight=config.number_match_weight,
                               date_match_weight=config.date_match_weight, candidates=config.candidates,
                               rare_match_relevance=config.rare_match_relevance, rare_match_margin=config.rare_match_margin, **options)
    raise ValueError(f"unknown retriever {name!r}; choose from {sorted(RETRIEVERS)}")


def not_covered_text(passages: Sequence[Passage], limit: int = 3) -> str:
    """The reply when no passage is relevant enough: says so and names the closest sources."""
    seen: dict[str, str] = {}
    for p in passages:
        if p.chunk.source not in seen:
            seen[p.chunk.source] = f"{p.chunk.title} ({p.chunk.source})"
        if len(seen) == limit:
            break
    if not seen:
        return NOT_COVERED
    return f"{NOT_COVERED} The closest sources are: " + "; ".join(seen.values()) + "."
