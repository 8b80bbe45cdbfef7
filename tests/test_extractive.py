"""Tests for rag/extractive.py: the fallback answer made of cited passage sentences."""

from __future__ import annotations

import socket

import pytest

from fakes import FakeEmbedder
from rag import RAG, Config
from rag.records import Chunk
from rag.citations import parse_markers
from rag.extractive import EXTRACTIVE_HEADER, extractive_answer, passage_sentences, rank_sentences
from rag.records import Passage


def passage(n, text, title="Title"):
    return Passage(n=n, chunk=Chunk(id=f"c{n}", doc_id=f"d{n}", title=title, source=f"s{n}.txt", text=text, start=0, end=len(text)), score=0.9)


PASSAGES = [
    passage(1, "Nvidia shares plunge\nDate: 2025-01-27\nSource: Markets Daily\n\nOn 27 January 2025 Nvidia shares fell 17 percent. "
               "Traders blamed the DeepSeek launch.", title="Nvidia shares plunge"),
    passage(2, "# DeepSeek\nDeepSeek is based in Hangzhou. DeepSeek released R1 under the MIT licence."),
    passage(3, "Sourdough bread needs a starter. Bake the loaf for 40 minutes."),
    passage(4, "Nvidia shares fell 17 percent, said a fourth passage that is not considered."),
]


def test_best_sentence_first_with_its_citation():
    text = extractive_answer("How much did Nvidia shares fall?", PASSAGES, FakeEmbedder(), max_sentences=2)
    assert text.startswith("On 27 January 2025 Nvidia shares fell 17 percent [1].")
    assert all(n in (1, 2, 3) for n in parse_markers(text))


def test_titles_headings_and_metadata_lines_are_not_sentences():
    assert passage_sentences(PASSAGES[0]) == ["On 27 January 2025 Nvidia shares fell 17 percent.", "Traders blamed the DeepSeek launch."]
    assert passage_sentences(PASSAGES[1]) == ["DeepSeek is based in Hangzhou.", "DeepSeek released R1 under the MIT licence."]


def test_only_top_passages_are_used():
    """max_passages=3: the fourth passage's sentence never appears, even when it matches best."""
    ranked = rank_sentences("Nvidia shares fell 17 percent", PASSAGES, FakeEmbedder(), max_passages=3)
    assert {n for _, n, _ in ranked} <= {1, 2, 3}


def test_max_sentences_and_no_duplicates():
    dup = [passage(1, "Nvidia fell 17 percent. Nvidia fell 17 percent. Other news today."), passage(2, "Nvidia fell 17 percent.")]
    text = extractive_answer("Nvidia fell", dup, FakeEmbedder(), max_sentences=5)
    assert text.count("Nvidia fell 17 percent") == 1


def test_no_passages_gives_empty_text():
    """Guards against an IndexError on an empty candidate list."""
    assert extractive_answer("anything", [], FakeEmbedder()) == ""
    assert extractive_answer("anything", [passage(1, "# Only a heading")], FakeEmbedder()) == ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_server_down_gives_extractive_answer_with_real_models(tmp_path, articles_dir, real_embedder):
    """The openai backend pointed at a port nothing listens on: `ask` answers extractively."""
    port = free_port()  # closed again: connections are refused
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "generation.backend": "openai", "generation.base_url": f"http://127.0.0.1:{port}/v1",
                             "generation.retries": 0})
    rag = RAG(cfg, embedder=real_embedder)
    rag.build(articles_dir)
    answer = rag.ask("By how much did Nvidia's share price fall on 27 January 2025?")
    assert answer.extractive and answer.text.startswith(EXTRACTIVE_HEADER)
    assert "17 percent" in answer.text and "[1]" in answer.text
    assert answer.citations[0].source == "markets/nvidia.txt"
    assert any(f"127.0.0.1:{port}" in n and "Connection refused" in n for n in answer.notes)
