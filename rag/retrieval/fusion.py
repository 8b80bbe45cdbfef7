"""How ranked candidates are combined: fusion of dense and BM25 lists, and article aggregation.

- :func:`convex_score_fusion`: min-max normalised scores mixed by ``dense_share`` (the
  hybrid default; it sees how far apart the scores are).
- :func:`reciprocal_rank_fusion`: weighted RRF, ``sum_r w_r / (k + rank_r)`` (ranks only).
- :func:`aggregate_articles`: lift a candidate whose article matches in several chunks.
- :func:`mmr_order`: maximal marginal relevance over candidates (``retrieval.dedup: mmr``).

Pure functions over ids and scores; :mod:`rag.retrieval` applies them to a store's hits.
``eval/studies/fusion_study.py`` measured the variants (README "Quality").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..store.base import Hit

__all__ = [
    "FUSION_METHODS",
    "aggregate_articles",
    "convex_score_fusion",
    "mmr_order",
    "reciprocal_rank_fusion",
    "rescaled",
]


def rescaled(scores: Sequence[float]) -> np.ndarray:
    """``scores`` min-max normalised to [0, 1] (all 1 when they are equal)."""
    v = np.asarray(scores, dtype=np.float64)
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 0.0)
    return (v - lo) / (hi - lo) if hi > lo else np.ones_like(v)


def aggregate_articles(hits: Sequence[Hit], doc_ids: Sequence[str], weight: float) -> list[Hit]:
    """Re-rank ``hits`` so that an article matching in several chunks rises.

    Each hit's score (min-max normalised over ``hits``) gains ``weight`` times the mean of
    the normalised scores of its article's three other best hits (missing ones count 0).

    Args:
        hits: candidates, best first.
        doc_ids: the article of each hit.
        weight: 0 leaves the order as it is.

    Returns:
        The hits with the aggregated score, best first (ties keep their order).
    """
    norm = rescaled([h.score for h in hits])
    by_doc: dict[str, list[float]] = {}
    for doc, s in zip(doc_ids, norm):
        by_doc.setdefault(doc, []).append(float(s))
    for scores in by_doc.values():
        scores.sort(reverse=True)
    out = []
    for h, doc, s in zip(hits, doc_ids, norm):
        others = list(by_doc[doc])
        others.remove(float(s))
        out.append(Hit(h.row, float(s) + weight * sum(others[:3]) / 3.0, h.relevance))
    order = sorted(range(len(out)), key=lambda i: (-out[i].score, i))
    return [out[i] for i in order]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids: ``score(id) = sum_r weights[r] / (k + rank_r(id))``, ranks from 1.

    Args:
        rankings: each a list of ids, best first.
        weights: one weight per ranking (default all 1).
        k: the RRF constant (60 in Cormack et al. 2009); larger flattens the rank bonus.

    Returns:
        ``(id, fused score)`` best first; ties keep the order of first appearance.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"got {len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {k}")
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    order = {item: i for i, item in enumerate(fused)}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def convex_score_fusion(
    dense: Sequence[tuple[int, float]], sparse: Sequence[tuple[int, float]], dense_share: float = 0.9
) -> list[tuple[int, float]]:
    """Fuse two scored lists: ``dense_share * d + (1 - dense_share) * b``, each min-max normalised.

    Unlike RRF it sees how far apart the scores are: a chunk far ahead on cosine stays ahead
    unless BM25 strongly prefers another. A chunk missing from a list scores 0 there.

    Args:
        dense, sparse: ``(id, score)`` lists (any scale; higher is better).
        dense_share: the weight of the dense scores, in [0, 1].

    Returns:
        ``(id, fused score in [0, 1])`` best first; ties keep the order of first appearance
        (dense, then sparse).

    Example:
        >>> convex_score_fusion([(1, 0.8), (2, 0.6)], [(2, 12.0), (3, 4.0)], 0.5)
        [(2, 0.75), (1, 0.5), (3, 0.0)]
    """
    if not 0.0 <= dense_share <= 1.0:
        raise ValueError(f"dense_share must be between 0 and 1, got {dense_share}")
    d = dict(zip([i for i, _ in dense], rescaled([s for _, s in dense]).tolist()))
    b = dict(zip([i for i, _ in sparse], rescaled([s for _, s in sparse]).tolist()))
    order = {i: n for n, i in enumerate(dict.fromkeys([i for i, _ in dense] + [i for i, _ in sparse]))}
    fused = {i: dense_share * d.get(i, 0.0) + (1 - dense_share) * b.get(i, 0.0) for i in order}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


#: Fusion name -> how the hybrid retriever combines its dense and BM25 candidates.
FUSION_METHODS = ("convex", "rrf")


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, lam: float, k: int) -> list[int]:
    """Maximal marginal relevance: positions of up to ``k`` candidates, the first always first.

    Each next pick maximises ``lam * relevance - (1 - lam) * (its highest cosine to a pick)``.

    Args:
        relevance: one similarity per candidate (best first).
        vectors: the candidates' L2-normalised vectors, in the same order.
        lam: the trade-off; 1 is pure relevance.
        k: how many to pick.
    """
    sims = vectors @ vectors.T
    chosen: list[int] = [0]
    left = list(range(1, len(relevance)))
    while left and len(chosen) < k:
        redundancy = sims[np.ix_(left, chosen)].max(axis=1)
        mmr = lam * relevance[left] - (1 - lam) * redundancy
        pick = left[int(np.argmax(mmr))]
        chosen.append(pick)
        left.remove(pick)
    return chosen
