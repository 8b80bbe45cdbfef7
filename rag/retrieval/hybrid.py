"""Hybrid retrieval: dense and BM25 fused (``retrieval.retriever: hybrid``, the default).

Fused by one of :data:`~rag.retrieval.fusion.FUSION_METHODS`: ``convex`` mixes the min-max
normalised scores, then adds the match bonuses of :mod:`.term_match`; ``rrf`` is weighted
reciprocal-rank fusion.
"""

from __future__ import annotations

import numpy as np

from ..embedding.base import Embedder
from ..store.base import Hit, SearchableIndex
from .base import RankedRetriever
from .filters import MetadataFilter
from .fusion import convex_score_fusion, reciprocal_rank_fusion
from .term_match import bonus_applies, match_bonus

# The dense side "agrees" with BM25's best hit when it ranks it this high itself.
RARE_DENSE_AGREES = 4


class HybridRetriever(RankedRetriever):
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

    def __init__(
        self,
        index: SearchableIndex,
        embedder: Embedder,
        *,
        fusion: str = "convex",
        dense_share: float = 0.9,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        rrf_k: int = 60,
        number_match_weight: float = 0.3,
        date_match_weight: float = 0.2,
        candidates: int = 50,
        rare_match_relevance: float = 0.0,
        rare_match_margin: float = 1.5,
        **options,
    ) -> None:
        super().__init__(index, pool=candidates, **options)
        # Values come checked from RetrievalConfig (rag/config/stages.py): no second check here.
        self.fusion = fusion
        self.dense_share = dense_share
        # A store whose BM25 scores are only good for their order (Milvus Lite) is fused by rank.
        self.score_is_similarity = fusion == "convex" and index.bm25_scores_comparable
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.rrf_k = rrf_k
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
            fused = convex_score_fusion(
                [(h.row, h.score) for h in dense], [(h.row, h.score) for h in sparse], self.dense_share
            )[:depth]
            fused = self._keep_rare_match(dense, sparse, self._match_terms(query, fused))[:n]
        else:
            fused = reciprocal_rank_fusion(
                [[h.row for h in dense], [h.row for h in sparse]], [self.dense_weight, self.bm25_weight], self.rrf_k
            )[:n]
        cosine = {h.row: h.score for h in dense}
        missing = [row for row, _ in fused if row not in cosine]
        if missing:
            q = np.asarray(vector, dtype=np.float32).reshape(-1)
            for row, sim in zip(missing, self.index.vectors(missing) @ q):
                cosine[row] = float(sim)
        return [Hit(row, score, cosine[row]) for row, score in fused]

    def _keep_rare_match(
        self, dense: list[Hit], sparse: list[Hit], fused: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
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
