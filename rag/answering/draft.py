"""The draft decision: whether the model's checked draft leads the answer, or the best evidence sentence does."""

from __future__ import annotations

from ..config import EvidenceConfig
from ..text import sentence_spans
from .evidence import EvidenceSet, draft_shortfall
from .lead import disagrees, unresponsive


def without_cut_sentence(draft: str) -> str:
    """A draft cut off in a repeating loop, without its last sentence (it was still being written)."""
    spans = sentence_spans(draft)
    return draft[: spans[-2][1]] if len(spans) > 1 else draft


def draft_rejection(draft: str, evidence: EvidenceSet, question: str, rules: EvidenceConfig) -> str:
    """Why a faithful draft is not the lead ("" when it leads).

    It does not answer (``evidence.draft_must_answer``: :func:`rag.answering.lead.unresponsive`), its
    answer is not the best evidence sentence's (``evidence.draft_must_agree``), or, where the
    completeness rules are on (``evidence.draft_must_keep``), it says less than the evidence.
    """
    if rules.draft_must_answer:
        why = unresponsive(draft, question, evidence)
        if why:
            return why
    if rules.draft_must_agree:
        why = disagrees(draft, question, evidence)
        if why:
            return why
    return draft_shortfall(
        draft,
        evidence,
        question,
        keep=rules.draft_must_keep,
        sentences=rules.draft_must_keep_from,
        words=rules.draft_must_keep_words,
    )
