"""Retrieve passages for a question: dense, BM25 or both fused, de-duplicated, optionally widened.

The :class:`Retriever` protocol is the seam: dense FAISS, keyword, hybrid or fake retrievers
all fit. :func:`make_retriever` picks one by name from :data:`RETRIEVERS`, the registry: a new
retriever is one module here plus one line there.

- :class:`DenseRetriever`: cosine top-k over the FAISS index (MiniLM vectors).
- :class:`BM25Retriever`: Lucene BM25 over the same chunks (:mod:`.keyword`).
- :class:`HybridRetriever`: the two fused by one of :data:`FUSION_METHODS`: ``convex`` (the
  default) mixes their scores, each min-max normalised over the question's candidates,
  ``dense_share * dense + (1 - dense_share) * bm25`` (:func:`.fusion.convex_score_fusion`); ``rrf`` is
  weighted reciprocal-rank fusion, ``sum_r w_r / (rrf_k + rank_r(c))``, blind to how far apart
  the scores are (:func:`.fusion.reciprocal_rank_fusion`; both re-exported here). ``eval/studies/fusion_study.py`` measured both.
  Convex fusion then adds match bonuses (:mod:`.term_match`): a candidate holding the
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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..records import Passage
from ..registry import Registry
from .base import DEDUP_METHODS, NOT_COVERED, RankedRetriever, Retriever, not_covered_text
from .bm25 import BM25Retriever
from .dense import DenseRetriever
from .filters import MetadataFilter
from .fusion import FUSION_METHODS, aggregate_articles, convex_score_fusion, reciprocal_rank_fusion
from .hybrid import RARE_DENSE_AGREES, HybridRetriever

if TYPE_CHECKING:
    from ..config import RetrievalConfig
    from ..embedding.base import Embedder
    from ..store.base import SearchableIndex

__all__ = [
    "DEDUP_METHODS",
    "FUSION_METHODS",
    "NOT_COVERED",
    "RARE_DENSE_AGREES",
    "RETRIEVERS",
    "BM25Retriever",
    "DenseRetriever",
    "HybridRetriever",
    "MetadataFilter",
    "Passage",
    "RankedRetriever",
    "Retriever",
    "aggregate_articles",
    "convex_score_fusion",
    "make_retriever",
    "not_covered_text",
    "ranking_options",
    "reciprocal_rank_fusion",
]


def ranking_options(config: RetrievalConfig) -> dict[str, Any]:
    """The settings every :class:`RankedRetriever` takes: de-duplication, neighbours, article weight."""
    return dict(
        dedup=config.dedup,
        dedup_threshold=config.dedup_threshold,
        mmr_lambda=config.mmr_lambda,
        neighbours=config.neighbours,
        neighbour_budget_tokens=config.neighbour_budget_tokens,
        article_weight=config.article_weight,
    )


def _hybrid(config: RetrievalConfig, index: SearchableIndex, embedder: Embedder) -> HybridRetriever:
    return HybridRetriever(
        index,
        embedder,
        fusion=config.fusion,
        dense_share=config.dense_share,
        dense_weight=config.dense_weight,
        bm25_weight=config.bm25_weight,
        rrf_k=config.rrf_k,
        number_match_weight=config.number_match_weight,
        date_match_weight=config.date_match_weight,
        candidates=config.candidates,
        rare_match_relevance=config.rare_match_relevance,
        rare_match_margin=config.rare_match_margin,
        **ranking_options(config),
    )


# name -> factory taking the validated ``retrieval`` section, the loaded index and the embedder.
# Config validation, the CLI and ``rag eval`` take the allowed names from here.
RETRIEVERS: Registry[Callable[[RetrievalConfig, SearchableIndex, Embedder], Retriever]] = Registry(
    "retriever",
    {
        "dense": lambda cfg, index, embedder: DenseRetriever(
            index, embedder, pool=cfg.candidates, **ranking_options(cfg)
        ),
        "bm25": lambda cfg, index, embedder: BM25Retriever(index, pool=cfg.candidates, **ranking_options(cfg)),
        "hybrid": _hybrid,
    },
)


def make_retriever(
    config: RetrievalConfig, index: SearchableIndex, embedder: Embedder, retriever: str | None = None
) -> RankedRetriever:
    """The retriever named by ``retriever`` (default ``config.retriever``) with the config's settings.

    Raises:
        ConfigError: unknown retriever name (a ValueError; the message lists :data:`RETRIEVERS`).
    """
    return RETRIEVERS[retriever or config.retriever](config, index, embedder)
