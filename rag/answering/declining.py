"""Declining: whether a question is answered at all, decided before the model is called.

:func:`decline_text` is the reply for a declined question ("" when it is answered). In order:

- **not covered**, naming the closest sources (:func:`rag.retrieval.not_covered_text`), when
  - the top passage is far off: below the relevance floor (configured, calibrated for the
    index by ``rag calibrate``, or shipped per embedder), whatever the word overlap;
  - the passages are only loosely related (top relevance below ``below_relevance``) and hold
    less than ``min_coverage`` of the question's rare words, weighted by the index's idf
    (:func:`rag.answering.terms.term_coverage`; no term statistics, as on Milvus: not applied);
  - the question names a year no retrieved passage writes
    (:func:`rag.answering.facts.unmentioned_years`: "Who won the 2022 FIFA World Cup final?" over
    passages on other cups);
- **NOT_FOUND** when there is no evidence sentence or the answerability score is below
  ``min_answerability`` (:func:`rag.answering.evidence.answerability_score`).

Example:
    >>> rule = DeclineRule(floor=0.2, min_answerability=0.12, min_coverage=0.5, below_relevance=0.45, max_passages=3)
    >>> decline_text("Who won the 2022 FIFA World Cup final?", evidence, passages, term_weights, rule)
    "The articles don't cover this question. No passage found mentions 2022. The closest sources are: ..."
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..records import Passage
from ..retrieval.base import not_covered_text
from .evidence import EvidenceSet
from .facts import unmentioned_years
from .prompting import NOT_FOUND
from .terms import term_coverage

__all__ = ["DeclineRule", "decline_text"]


@dataclass(frozen=True)
class DeclineRule:
    """The thresholds in force for one index and embedder (the pipeline resolves them from the config)."""

    floor: float  # top relevance below this: not covered
    min_answerability: float  # answerability below this: NOT_FOUND
    min_coverage: float = 0.0  # term coverage below this (0: never) ...
    below_relevance: float = 0.0  # ... with the top relevance below this: not covered
    max_passages: int = 3  # the passages the term coverage reads


def decline_text(
    question: str,
    evidence: EvidenceSet,
    passages: Sequence[Passage],
    term_weights: Mapping[str, float],
    rule: DeclineRule,
) -> str:
    """The reply when ``question`` is declined without the generator ("" when it is answered); see the module."""
    top = max((p.relevance_or_score for p in passages), default=0.0)
    if top < rule.floor or _uncovered(term_weights, passages, top, rule):
        return not_covered_text(passages)
    years = unmentioned_years(question, (p.chunk.indexed_text for p in passages))
    if years:
        return not_covered_text(passages, why=f"No passage found mentions {' or '.join(years)}.")
    if not evidence.sentences or evidence.answerability < rule.min_answerability:
        return NOT_FOUND
    return ""


def _uncovered(term_weights: Mapping[str, float], passages: Sequence[Passage], top: float, rule: DeclineRule) -> bool:
    """Loosely related passages (top relevance below ``rule.below_relevance``) that hold less than
    ``rule.min_coverage`` of the question's idf (``term_weights``; {} without term statistics: never)."""
    if rule.min_coverage <= 0 or top >= rule.below_relevance or not term_weights:
        return False
    return term_coverage(term_weights, passages[: rule.max_passages]) < rule.min_coverage
