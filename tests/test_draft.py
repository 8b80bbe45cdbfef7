"""Tests for rag/answering/draft.py: the draft decision under the evidence.draft_must_* rules."""

from __future__ import annotations

from fakes import FakeEmbedder
from rag.answering.draft import draft_rejection, without_cut_sentence
from rag.answering.evidence import select_evidence
from rag.config import EvidenceConfig
from rag.records import Chunk, Passage

TEXT = "DeepSeek was founded in July 2023 by Liang Wenfeng. It is based in Hangzhou."
PASSAGES = [
    Passage(
        n=1,
        chunk=Chunk(id="c1", doc_id="d1", title="T", source="s.txt", text=TEXT, start=0, end=len(TEXT)),
        score=0.9,
        relevance=0.8,
    )
]


def evidence(question):
    return select_evidence(question, PASSAGES, FakeEmbedder(), max_sentences=3, max_passages=1)


def test_a_draft_that_answers_leads_and_one_that_does_not_is_refused_with_the_reason():
    question = "When was DeepSeek founded?"
    rules = EvidenceConfig()
    assert draft_rejection("DeepSeek was founded in July 2023 [1].", evidence(question), question, rules) == ""
    assert draft_rejection(
        "DeepSeek was founded by Liang Wenfeng [1].", evidence(question), question, rules
    ).startswith("it gives no date")
    # With draft_must_answer off the same draft is not refused for that.
    off = EvidenceConfig(draft_must_answer=False, draft_must_agree=False)
    assert draft_rejection("DeepSeek was founded by Liang Wenfeng [1].", evidence(question), question, off) == ""


def test_the_completeness_rule_refuses_a_draft_that_keeps_too_little_only_where_it_is_on():
    question = "Who founded DeepSeek?"
    short = "Liang Wenfeng founded DeepSeek [1]."  # leaves out July 2023
    assert draft_rejection(short, evidence(question), question, EvidenceConfig()) == ""
    strict = EvidenceConfig(draft_must_keep="all")
    assert "left out what the evidence says" in draft_rejection(short, evidence(question), question, strict)


def test_a_looping_draft_loses_its_unfinished_last_sentence():
    assert without_cut_sentence("It was founded in 2023 [1]. It was founded in 20") == "It was founded in 2023 [1]."
    assert without_cut_sentence("One sentence only") == "One sentence only"
