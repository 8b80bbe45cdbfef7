"""rag.answering.terms: the share of the question's idf that passages or a sentence hold."""

from __future__ import annotations

import pytest

from fakes import FakeEmbedder
from rag.answering.evidence import SENTENCE_WEIGHTS, select_evidence
from rag.answering.terms import idf_share, rare_weights, term_coverage
from rag.records import Chunk, Passage


def passage(n, text, title="Title"):
    chunk = Chunk(id=f"c{n}", doc_id=f"d{n}", title=title, source=f"s{n}.txt", text=text, start=0, end=len(text))
    return Passage(n=n, chunk=chunk, score=0.9, relevance=0.8)


def test_term_coverage_is_the_share_of_the_questions_idf_the_passages_hold():
    from rag.answering.terms import term_coverage

    weights = {"tesla": 1.0, "model": 3.0, "rang": 4.0, "mile": 2.0}  # tokens as rag.keyword.tokenize makes them
    near = [passage(1, "For exercise, Tesla walked between 8 to 10 miles per day.")]
    assert term_coverage(weights, near) == pytest.approx(3.0 / 10.0)  # tesla + mile; the rare words are missing
    both = near + [passage(2, "The Model 3 has a range of 300 miles.")]
    assert term_coverage(weights, both) == pytest.approx(1.0)
    assert term_coverage({}, near) == 1.0  # no corpus statistics: nothing is missing
    assert term_coverage(weights, [passage(1, "Unrelated words.", title="Model range")]) == pytest.approx(
        7.0 / 10.0
    )  # titles count


def test_question_and_stop_words_carry_no_weight():
    weights = {"how": 2.0, "much": 2.0, "did": 2.0, "nvidia": 3.0, "fall": 1.0}
    assert rare_weights(weights) == {"nvidia": 3.0, "fall": 1.0}


def test_idf_share_weighs_a_sentence_by_the_rare_question_words_it_holds():
    weights = rare_weights({"what": 1.0, "grpo": 3.0, "stand": 1.0})
    assert idf_share(weights, "GRPO is short for Group Relative Policy Optimization.") == pytest.approx(0.75)
    assert idf_share(weights, "The abbreviations stand out.") == pytest.approx(0.25)
    assert idf_share({}, "anything") == 1.0


def test_the_idf_feature_puts_the_sentence_with_the_rare_word_first():
    """Two sentences share one question word each; with ``idf_overlap`` weighted the one holding
    the rare word ("Hangzhou") leads, whatever the plain overlap says."""
    text = "DeepSeek is based in a large city. The headquarters are in Hangzhou."
    question = "Where is the DeepSeek headquarters in Hangzhou based?"
    weights = {"deepseek": 0.2, "headquart": 1.0, "hangzhou": 4.0, "base": 0.3}
    only_idf = {k: 0.0 for k in SENTENCE_WEIGHTS} | {"idf_overlap": 1.0}
    ev = select_evidence(question, [passage(1, text)], FakeEmbedder(), weights=only_idf, term_weights=weights)
    assert ev.sentences[0].text == "The headquarters are in Hangzhou."
    # Without term statistics the feature is the plain overlap: "DeepSeek … based" has two of the words too.
    plain = select_evidence(question, [passage(1, text)], FakeEmbedder(), weights=only_idf)
    assert plain.sentences[0].text == "DeepSeek is based in a large city."
