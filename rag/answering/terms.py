"""The question's rare words, weighted by the index's own idf: how much of them a text holds.

:meth:`rag.store.SearchableIndex.term_weights` gives each token of the question its idf in the
corpus (BM25's document frequencies). Two uses:

- :func:`term_coverage`: the share of that weight the top passages hold. An off-topic question
  that shares one common word with the articles misses its rare words everywhere (the
  pipeline's term-coverage decline).
- :func:`idf_share`: the same share for one sentence, a feature of the evidence score: the
  sentence naming the question's rarest words ("Hangzhou", "GRPO") counts for more than one
  sharing its common ones.

Question and stop words ("how", "much", "did", "name") never count.

Example:
    >>> idf_share({"grpo": 3.2, "stand": 0.4}, "GRPO is short for Group Relative Policy Optimization.")
    0.888...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..records import Passage
from ..retrieval.keyword import tokenize
from ..text import STOPWORDS

__all__ = ["GENERIC_WORDS", "idf_share", "rare_weights", "term_coverage"]

# Words of a question that say what kind of answer is wanted, not what it is about.
GENERIC_WORDS = frozenset("many much year name number call use first long time kind type mean happen make".split())


@lru_cache(maxsize=1)
def _ignored_tokens() -> frozenset[str]:
    """Question and stop words as :func:`rag.retrieval.keyword.tokenize` stems them ("how", "much", "did"): never the rare words."""
    return frozenset(t for w in (*STOPWORDS, *GENERIC_WORDS) for t in tokenize(w))


def rare_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` without question and stop words."""
    ignored = _ignored_tokens()
    return {t: w for t, w in weights.items() if t not in ignored}


def _share(weights: Mapping[str, float], seen: set[str]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 1.0
    return sum(w for t, w in weights.items() if t in seen) / total


def term_coverage(weights: Mapping[str, float], passages: Sequence[Passage]) -> float:
    """Share of the question's idf (``weights``: :meth:`rag.store.SearchableIndex.term_weights`) that ``passages`` hold.

    An off-topic question that shares a common word with the articles ("What is Tesla's Model 3
    range in miles?" beside an article on Nikola Tesla) has its rare words ("model", "range")
    missing from every passage: most of its idf is not covered. Question and stop words do not count.
    1.0 without weights.
    """
    seen: set[str] = set()
    for p in passages:
        seen.update(tokenize(p.chunk.indexed_text))
    return _share(rare_weights(weights), seen)


def idf_share(weights: Mapping[str, float], text: str) -> float:
    """Share of the question's idf (``weights``, already :func:`rare_weights`) that ``text`` holds; 1.0 without weights."""
    return _share(weights, set(tokenize(text)))
