"""Tests for rag/retrieval/keyword.py: BM25 scores against a hand-computed case, persistence per index generation."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from fakes import FakeEmbedder
from rag import Config, RAG
from rag.records import Chunk
from rag.retrieval.keyword import KEYWORD_DIR, KeywordIndex, tokenize, write_keyword_index
from rag.indexing import BUILD_WRITERS
from rag.store import IndexStore, write_generation

# Three documents of the tokens apple/banana/cherry/date/elder (unchanged by stemming,
# not stop words): lengths 3, 3 and 1, so avgdl = 7/3.
DOCS = ["apple banana cherry", "banana banana date", "elder"]


def test_tokenize_lowercases_drops_stopwords_and_stems():
    assert tokenize("The Runners are RUNNING to a banana and an apple") == ["runner", "run", "banana", "appl"]
    assert tokenize("") == [] and tokenize("a I") == []


def test_bm25_scores_match_hand_computation():
    """Lucene BM25 with k1=1.2, b=0.75, worked out by hand.

    Query "banana": N=3, df=2, idf = ln(1 + (3-2+0.5)/(2+0.5)) = ln(1.6) = 0.470004.
    doc0: tf=1, dl=3: 1 / (1 + 1.2*(0.25 + 0.75*3/(7/3))) = 1/2.457143 = 0.406977 -> 0.191280
    doc1: tf=2, dl=3: 2 / (2 + 1.457143) = 0.578512 -> 0.271903
    doc2: no "banana" -> 0
    """
    kw = KeywordIndex.build(DOCS, rows=[10, 11, 12])
    scores = kw.scores("banana")
    assert scores == pytest.approx([0.191280, 0.271903, 0.0], abs=1e-5)
    assert kw.rows.tolist() == [10, 11, 12]
    # Two terms add up: "elder" has df=1, idf = ln(1 + 2.5/1.5) = 0.980829; doc2 has dl=1:
    # 1 / (1 + 1.2*(0.25 + 0.75*1/(7/3))) = 1/1.685714 = 0.593220 -> 0.581849
    assert kw.scores("banana elder") == pytest.approx([0.191280, 0.271903, 0.581849], abs=1e-5)


def test_relevance_divides_by_the_sum_of_query_idf_with_unknown_words_at_max_idf():
    """max_score("banana zebra") = ln(1.6) + ln(1 + 3.5/0.5) = 0.470004 + 2.079442 = 2.549446."""
    kw = KeywordIndex.build(DOCS)
    assert kw.max_score("banana zebra") == pytest.approx(2.549446, abs=1e-5)
    assert kw.max_score("banana banana") == pytest.approx(math.log(1.6), abs=1e-6)  # repeats count once
    rel = kw.relevance("banana zebra", kw.scores("banana zebra"))
    assert rel == pytest.approx([0.191280 / 2.549446, 0.271903 / 2.549446, 0.0], abs=1e-5)
    assert rel.max() < 1.0


def test_mask_zeroes_excluded_chunks():
    kw = KeywordIndex.build(DOCS)
    assert kw.scores("banana", mask=np.array([False, True, True])) == pytest.approx([0.0, 0.271903, 0.0], abs=1e-5)


def test_empty_query_and_unknown_words_score_zero():
    """A query with no indexed word must give all-zero scores, not a bm25s error about token ids."""
    kw = KeywordIndex.build(DOCS)
    assert not kw.scores("").any()
    assert not kw.scores("the of and").any()
    assert not kw.scores("zebra").any()


def test_empty_corpus():
    """An index of no chunks must build, save, load and score (an empty array)."""
    kw = KeywordIndex.build([])
    assert kw.size == 0 and kw.scores("banana").shape == (0,)


def test_save_load_roundtrip(tmp_path):
    kw = KeywordIndex.build(DOCS, rows=[5, 6, 7])
    kw.save(tmp_path / "bm25")
    again = KeywordIndex.load(tmp_path / "bm25")
    assert again.rows.tolist() == [5, 6, 7]
    assert again.scores("banana elder") == pytest.approx(kw.scores("banana elder"))


def _chunk(i: int, text: str) -> Chunk:
    """A chunk without a title, so BM25 sees exactly ``text`` (the hand-computed case)."""
    return Chunk(id=f"c{i}", doc_id=f"d{i}", title="", source=f"s{i}.txt", text=text, start=0, end=len(text))


def test_builds_pass_the_bm25_writer_explicitly_and_it_persists_bm25_in_the_generation(tmp_path):
    """Guards against whether BM25 is written depending on what was imported (it used to register itself on import)."""
    assert write_keyword_index in BUILD_WRITERS
    chunks = [_chunk(i, t) for i, t in enumerate(DOCS)]
    vectors = FakeEmbedder().encode(DOCS)
    manifest = {"embedder": {"name": "fake-embedder", "dimension": vectors.shape[1]}, "chunker": {}}
    plain = write_generation(tmp_path / "plain", vectors, chunks, manifest)
    assert not (plain / KEYWORD_DIR).exists()  # importing rag.retrieval.keyword (above) added nothing to a write
    gen = write_generation(tmp_path / "idx", vectors, chunks, manifest, rows=[3, 4, 5], writers=[write_keyword_index])
    assert (gen / KEYWORD_DIR / "keyword.json").is_file()
    loaded = IndexStore(tmp_path / "idx").load()
    kw = loaded.keyword_index()
    assert kw.rows.tolist() == [3, 4, 5]
    assert kw.scores("banana") == pytest.approx([0.191280, 0.271903, 0.0], abs=1e-5)
    assert loaded.keyword_index() is kw  # cached beside the loaded index


def test_generation_without_bm25_is_built_on_the_fly_and_saved(tmp_path, capsys):
    """An index built before BM25 existed must still answer BM25 queries (and say why it is slower once)."""
    chunks = [_chunk(i, t) for i, t in enumerate(DOCS)]
    vectors = FakeEmbedder().encode(DOCS)
    manifest = {"embedder": {"name": "fake-embedder", "dimension": vectors.shape[1]}, "chunker": {}}
    gen = write_generation(tmp_path / "idx", vectors, chunks, manifest, writers=[write_keyword_index])
    shutil.rmtree(gen / KEYWORD_DIR)
    kw = IndexStore(tmp_path / "idx").load().keyword_index()
    assert kw.scores("banana") == pytest.approx([0.191280, 0.271903, 0.0], abs=1e-5)
    assert "has no BM25 index" in capsys.readouterr().err
    assert (gen / KEYWORD_DIR / "keyword.json").is_file()  # saved for next time


def test_outdated_bm25_settings_are_rebuilt(tmp_path, capsys):
    chunks = [_chunk(i, t) for i, t in enumerate(DOCS)]
    vectors = FakeEmbedder().encode(DOCS)
    manifest = {"embedder": {"name": "fake-embedder", "dimension": vectors.shape[1]}, "chunker": {}}
    gen = write_generation(tmp_path / "idx", vectors, chunks, manifest, writers=[write_keyword_index])
    meta = gen / KEYWORD_DIR / "keyword.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "k1": 9.0}))
    kw = IndexStore(tmp_path / "idx").load().keyword_index()
    assert kw.scores("banana")[1] == pytest.approx(0.271903, abs=1e-5)
    assert "outdated BM25 index" in capsys.readouterr().err


def test_rebuild_through_rag_updates_bm25(tmp_path, articles_dir):
    """BM25 follows the index: a rebuild after adding an article finds the new article by keyword."""
    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=FakeEmbedder())
    rag.build(articles_dir)
    assert not any(p.source == "kiwi.txt" for p in rag.retrieve("kiwifruit orchard", 3, retriever="bm25"))
    (articles_dir / "kiwi.txt").write_text(
        "Kiwifruit orchard news\n\nThe kiwifruit orchard in Te Puke had a record harvest.", encoding="utf-8"
    )
    rag.build(articles_dir)
    hits = rag.retrieve("kiwifruit orchard", 3, retriever="bm25")
    assert hits[0].source == "kiwi.txt"


def test_bm25_sees_the_title_and_heading_path(tmp_path):
    """Issue 12: a question naming an article's title or section finds it by keyword, though the passage text lacks the words."""
    folder = tmp_path / "articles"
    folder.mkdir()
    section = " ".join(f"Delivery {i} came by boat in month {i} of the year." for i in range(6))
    (folder / "guide.md").write_text(
        f"# Lighthouse keepers\n\nSome intro.\n\n## Paraffin logistics\n\n{section}\n", encoding="utf-8"
    )
    (folder / "feed.jsonl").write_text(
        '{"title": "Sourdough starters", "text": "Flour and water ferment for days."}\n'
        '{"title": "Bakery", "text": "Bread is baked at dawn every day."}\n',
        encoding="utf-8",
    )
    rag = RAG(
        Config.load(
            None, {"index.path": str(tmp_path / "index"), "chunking.chunk_tokens": 24, "chunking.overlap_tokens": 0}
        ),
        embedder=FakeEmbedder(),
    )
    rag.build(folder)
    hits = rag.retrieve("paraffin logistics", 10, retriever="bm25")
    assert {h.source for h in hits} == {"guide.md"}
    later = [h for h in hits if "paraffin" not in h.text.lower()]
    assert later and all(h.chunk.headings == ("Paraffin logistics",) for h in later)  # found through their heading
    top = rag.retrieve("sourdough starters", 1, retriever="bm25")[0]
    assert top.source == "feed.jsonl#0" and top.text == "Flour and water ferment for days."  # found through its title


def test_term_weights_give_each_query_word_its_idf_and_unknown_words_the_largest():
    kw = KeywordIndex.build(["The cat sat.", "A dog barked.", "The cat ran."])
    weights = kw.term_weights("cats and zebras")
    assert set(weights) == {"cat", "zebra"}  # stemmed, stop words dropped
    assert weights["zebra"] == pytest.approx(math.log(1 + 3.5 / 0.5)) and weights["cat"] == pytest.approx(
        math.log(1 + 1.5 / 2.5)
    )
    assert weights["zebra"] > weights["cat"]
