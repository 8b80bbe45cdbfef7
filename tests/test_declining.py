"""Tests for rag/answering/declining.py: which questions are declined before the model is called, and with what reply."""

from __future__ import annotations

from rag.answering.declining import DeclineRule, decline_text
from rag.answering.evidence import EvidenceSet
from rag.answering.prompting import NOT_FOUND
from rag.records import Chunk, Evidence, Passage
from rag.retrieval import NOT_COVERED

TEXT = "Rugby union grew in popularity in Kenya after 2007, with the Safari Sevens tournament."


def _passage(relevance: float, text: str = TEXT) -> Passage:
    chunk = Chunk(id="c1", doc_id="d1", title="Kenya", source="Kenya.txt", text=text, start=0, end=len(text))
    return Passage(n=1, chunk=chunk, score=relevance, relevance=relevance)


def _evidence(answerability: float) -> EvidenceSet:
    sentence = Evidence(
        n=1, text=TEXT, start=0, end=len(TEXT), score=1.0, chunk_id="c1", source="Kenya.txt", title="Kenya"
    )
    return EvidenceSet((sentence,), answerability, {})


RULE = DeclineRule(floor=0.2, min_answerability=0.1, min_coverage=0.5, below_relevance=0.45)
WEIGHTS = {"rugbi": 2.0, "tournament": 1.0}  # the question's idf, as the index's BM25 statistics give it


def test_an_answerable_question_is_not_declined():
    assert (
        decline_text("Which rugby tournament is held in Kenya?", _evidence(0.6), [_passage(0.6)], WEIGHTS, RULE) == ""
    )


def test_below_the_relevance_floor_is_not_covered_naming_the_closest_source():
    text = decline_text("Which rugby tournament is held in Kenya?", _evidence(0.6), [_passage(0.1)], WEIGHTS, RULE)
    assert text.startswith(NOT_COVERED) and "Kenya (Kenya.txt)" in text


def test_loosely_related_passages_missing_the_rare_words_are_not_covered_only_below_the_relevance_limit():
    weights = {"cricket": 3.0, "tournament": 1.0}  # "cricket" is in no passage: coverage 0.25
    question = "Which cricket tournament is held in Kenya?"
    assert decline_text(question, _evidence(0.6), [_passage(0.4)], weights, RULE).startswith(NOT_COVERED)
    assert decline_text(question, _evidence(0.6), [_passage(0.5)], weights, RULE) == ""  # closer than 0.45: answered
    assert decline_text(question, _evidence(0.6), [_passage(0.4)], {}, RULE) == ""  # no term statistics (Milvus)


def test_a_year_no_passage_writes_is_not_covered_and_named():
    text = decline_text("Who won the 2019 Rugby World Cup?", _evidence(0.6), [_passage(0.6)], WEIGHTS, RULE)
    assert text.startswith(f"{NOT_COVERED} No passage found mentions 2019.")
    assert decline_text("What happened in 2007 in Kenyan rugby?", _evidence(0.6), [_passage(0.6)], WEIGHTS, RULE) == ""


def test_low_answerability_or_no_evidence_is_not_found():
    question = "Which rugby tournament is held in Kenya?"
    assert decline_text(question, _evidence(0.05), [_passage(0.6)], WEIGHTS, RULE) == NOT_FOUND
    assert decline_text(question, EvidenceSet((), 0.0, {}), [_passage(0.6)], WEIGHTS, RULE) == NOT_FOUND
