"""Tests for rag/answering/verification.py: supported, weak, unsupported, out-of-range and uncited
sentences with hand-checked scores; strict mode; the real MiniLM embedder on labelled claims."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from fakes import FakeEmbedder, FakeGenerator, leads_with_evidence
from rag import NOT_FOUND, RAG, Config
from rag.records import Chunk
from rag.records import Passage
from rag.answering.evidence import SUPPORT_LABEL
from rag.answering.verification import CitationVerifier, is_factual


class WordEmbedder:
    """One dimension per distinct word, so cosines are countable by hand: shared / sqrt(|a| |b|)."""

    name = "word-embedder"
    dimension = 512

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, texts, show_progress=False):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in set(re.findall(r"[a-z0-9]+", text.lower())):
                out[row, self.vocab.setdefault(word, len(self.vocab))] = 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def passage(n, text):
    return Passage(
        n=n,
        chunk=Chunk(
            id=f"c{n}", doc_id=f"d{n}", title=f"Title {n}", source=f"s{n}.txt", text=text, start=0, end=len(text)
        ),
        score=0.9,
    )


PASSAGES = [
    passage(1, "DeepSeek released R1 on 20 January 2025 under the MIT licence."),
    passage(2, "Nvidia shares fell about 17 percent on 27 January 2025."),
    passage(3, "Sourdough bread is baked at 230 degrees."),
]


@pytest.fixture
def verifier():
    return CitationVerifier(WordEmbedder(), supported_threshold=0.5, weak_threshold=0.3)


def test_supported_citation(verifier):
    """Sentence words {nvidia, shares, fell, 17, percent} (5) all in passage 2 (10 words):
    lexical 5/5 = 1, cosine 5/sqrt(5*10) = 0.707, support (1 + 0.707)/2 = 0.854."""
    report = verifier.verify("Nvidia shares fell 17 percent [2].", PASSAGES)
    (check,) = report.sentences[0].citations
    assert check.n == 2 and check.lexical == 1.0
    assert check.similarity == pytest.approx(5 / math.sqrt(50), abs=1e-5)
    assert check.support == pytest.approx((1 + 5 / math.sqrt(50)) / 2, abs=1e-5)
    assert check.status == "supported" and report.sentences[0].status == "supported"


def test_unsupported_citation(verifier):
    """The bread claim cites the Nvidia passage: no shared word, so lexical 0, cosine 0."""
    report = verifier.verify("Sourdough is baked at 230 degrees [2].", PASSAGES)
    (check,) = report.sentences[0].citations
    assert (check.lexical, check.similarity, check.support) == (0.0, 0.0, 0.0)
    assert check.status == "unsupported" and check.missing_numbers == ("230",)
    assert report.flagged == report.sentences


def test_wrong_number_is_unsupported(verifier):
    """{deepseek, released, r1, 2024}: 3/4 content words in passage 1 -> lexical 0.75; cosine
    3/sqrt(5*11) = 0.405; support 0.577 would be supported, but 2024 is not in the passage."""
    report = verifier.verify("DeepSeek released R1 in 2024 [1].", PASSAGES)
    (check,) = report.sentences[0].citations
    assert check.lexical == 0.75
    assert check.similarity == pytest.approx(3 / math.sqrt(55), abs=1e-5)
    assert check.support == pytest.approx((0.75 + 3 / math.sqrt(55)) / 2, abs=1e-5)
    assert check.missing_numbers == ("2024",) and check.status == "unsupported"


def test_out_of_range_citation(verifier):
    report = verifier.verify("Nvidia shares fell 17 percent [2][7].", PASSAGES)
    statuses = [(c.n, c.status) for c in report.sentences[0].citations]
    assert statuses == [(2, "supported"), (7, "out_of_range")]
    assert report.out_of_range == [7]
    assert report.sentences[0].status == "supported"  # one good citation is enough for the sentence
    only_bad = verifier.verify("Nvidia shares fell 17 percent [9].", PASSAGES)
    assert only_bad.sentences[0].status == "unsupported" and only_bad.out_of_range == [9]


def test_uncited_factual_and_plain_sentences(verifier):
    report = verifier.verify("Here is what I found. Nvidia lost 600 billion dollars. It rose?", PASSAGES)
    assert [s.status for s in report.sentences] == ["plain", "uncited", "plain"]
    assert is_factual("The model was trained with reinforcement learning.")
    assert not is_factual(NOT_FOUND)


def test_best_check_per_passage(verifier):
    report = verifier.verify("Nvidia shares fell 17 percent [2]. The CEO resigned [2].", PASSAGES)
    assert report.by_passage()[2].status == "supported"
    assert [s.status for s in report.sentences] == ["supported", "unsupported"]


def test_bad_thresholds_are_named():
    with pytest.raises(ValueError, match="weak_threshold <= supported_threshold"):
        CitationVerifier(WordEmbedder(), supported_threshold=0.2, weak_threshold=0.4)


# -- through the pipeline ------------------------------------------------------------------------
REPLY = "Nvidia shares fell about 17 percent [1]. The chief executive resigned the next morning [1]."
GOOD = "Nvidia shares fell about 17 percent [1]."


def make_rag(tmp_path, reply, **overrides) -> RAG:
    # These tests are about the citation checker and reasoning; the draft's kept facts are tested in test_pipeline.py.
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "evidence.draft_must_keep": "none", **overrides})
    return RAG(cfg, embedder=FakeEmbedder(), generator=FakeGenerator(reply))


def test_flag_mode_replaces_a_draft_with_an_unsupported_sentence(tmp_path, articles_dir):
    """One invented sentence is enough: the user gets the evidence, the draft is kept for inspection."""
    rag = make_rag(tmp_path, REPLY)
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.mode == "evidence" and leads_with_evidence(answer) and "resigned" not in answer.text
    assert answer.draft == REPLY
    assert any("not used" in n and "unsupported" in n for n in answer.notes)
    assert answer.to_dict()["mode"] == "evidence"


def test_flag_mode_keeps_a_supported_draft_with_its_checks(tmp_path, articles_dir):
    rag = make_rag(tmp_path, GOOD)
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.mode == "generated" and answer.lead == GOOD
    assert [s.status for s in answer.checks] == ["supported"]
    (citation,) = answer.citations
    assert citation.status == "supported" and citation.verified >= 0.5 and citation.similarity > 0
    assert answer.to_dict()["sentences"][0]["status"] == "supported"


def test_strict_mode_also_replaces_weak_drafts(tmp_path, articles_dir):
    """With the supported bar out of reach the same draft is 'weak': flag shows it, strict does not."""
    flag = make_rag(tmp_path / "flag", GOOD, **{"citations.supported_threshold": 0.99, "citations.weak_threshold": 0.1})
    flag.build(articles_dir)
    shown = flag.ask("How much did Nvidia shares fall?")
    assert shown.mode == "generated" and shown.citations[0].status == "weak"
    strict = make_rag(
        tmp_path / "strict",
        GOOD,
        **{"citations.mode": "strict", "citations.supported_threshold": 0.99, "citations.weak_threshold": 0.1},
    )
    strict.build(articles_dir)
    replaced = strict.ask("How much did Nvidia shares fall?")
    assert replaced.mode == "evidence" and replaced.draft == GOOD


def test_strict_shorthand_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("citations: strict\n", encoding="utf-8")
    assert Config.load(path).citations.mode == "strict"


def test_out_of_range_markers_are_reported(tmp_path, articles_dir):
    rag = make_rag(tmp_path, "Nvidia shares fell about 17 percent [1][9].")
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.lead == "Nvidia shares fell about 17 percent [1]."
    assert answer.out_of_range == [9]


def test_mode_off_skips_verification(tmp_path, articles_dir):
    rag = make_rag(tmp_path, REPLY, **{"citations.mode": "off"})
    rag.build(articles_dir)
    answer = rag.ask("How much did Nvidia shares fall?")
    assert answer.checks == [] and answer.citations[0].status == "" and answer.citations[0].verified is None


# -- the real embedder -----------------------------------------------------------------------------
NVIDIA = passage(
    1,
    "On 27 January 2025 the share price of Nvidia fell about 17 percent, wiping close to 600 billion dollars from its market value. "
    "It was the largest one-day loss in value for any company in US history.",
)
DEEPSEEK = passage(
    2,
    "The Chinese company DeepSeek released DeepSeek-R1 on 20 January 2025 under the MIT licence. "
    "The reasoning model was trained with large-scale reinforcement learning. "
    "DeepSeek is based in Hangzhou and is funded by the hedge fund High-Flyer.",
)
BREAD = passage(
    3,
    "Sourdough bread needs a starter of flour and water that ferments for several days. Bake the loaf at 230 degrees Celsius for 40 minutes.",
)

# Hand-labelled: paraphrases are supported, claims cited to the wrong passage unsupported,
# claims with names or numbers the passage lacks unsupported.
LABELLED = [
    ("Nvidia lost about 600 billion dollars of market value on 27 January 2025 [1].", "supported"),
    ("Nvidia shares dropped roughly 17% in a single day [1].", "supported"),
    ("It was the biggest single-day loss of any company in American history [1].", "supported"),
    ("DeepSeek is headquartered in Hangzhou [2].", "supported"),
    ("The model was trained using reinforcement learning at scale [2].", "supported"),
    ("The loaf is baked at 230 degrees Celsius [3].", "supported"),
    ("Nvidia lost about 600 billion dollars of market value [2].", "unsupported"),
    ("DeepSeek released R1 under the MIT licence [1].", "unsupported"),
    ("Bake the bread for 40 minutes [1].", "unsupported"),
    # Names and a year the passage does not contain: never supported, whatever the overlap.
    ("DeepSeek was founded by Liang Wenfeng in 2023 [2].", "unsupported"),
    ("DeepSeek-R1 was made by DeepMind, a subsidiary of the AI Research Foundation [2].", "unsupported"),
    ("Nvidia shares fell 17.7% on 27 January 2025 [1].", "unsupported"),
]


@pytest.mark.slow
def test_real_embedder_on_labelled_claims(real_embedder):
    verifier = CitationVerifier(real_embedder)
    passages = [NVIDIA, DEEPSEEK, BREAD]
    got = [(text, verifier.verify(text, passages).sentences[0].citations[0].status) for text, _ in LABELLED]
    assert got == LABELLED
