"""Incremental builds (rag/indexing/): diffing, vector reuse, duplicates, settings changes, locking, crashes.

Unit tests use FakeEmbedder wrapped to record every text it encodes; the slow tests use the
real packaged embedder, real FAISS files on disk and real ``rag build`` subprocesses.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTICLES, write_articles
from fakes import FakeEmbedder

from rag import RAG, Config, IndexMismatchError
from rag.indexing import builder as indexing_module
from rag import store as store_module
from rag.faults import PAUSE_ENV
from rag.indexing import (
    BuildError,
    BuildLockedError,
    build_lock,
    find_near_duplicates,
    minhash_signature,
    read_lock_holder,
    remove_article,
)
from rag.store import CURRENT

ROOT = Path(__file__).resolve().parent.parent

LONG = (
    "# Harbour history\n\n"
    + " ".join(
        f"In year {1800 + i} the harbour of town number {i} handled {i * 7} ships and {i * 3} tons of grain."
        for i in range(40)
    )
    + "\n"
)

# A syndicated copy: the same article with a note appended (word 3-shingle Jaccard 0.88).
SYNDICATED = ARTICLES["r1.md"] + "\nThis article first appeared in Test Tech Review.\n"


class Counting:
    """Wraps an embedder and records every text it is asked to encode."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts: list[str] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts, show_progress: bool = False):
        self.texts.extend(texts)
        return self.inner.encode(texts, show_progress=show_progress)

    def take(self) -> list[str]:
        out, self.texts = self.texts, []
        return out


def make_rag(tmp_path: Path, embedder, **overrides) -> RAG:
    return RAG(Config.load(None, {"index.path": str(tmp_path / "index"), **overrides}), embedder=embedder)


def all_chunks(rag: RAG):
    return list(rag.index().iter_chunks())


# -- unit tests with fakes ------------------------------------------------------------------


def test_first_build_records_content_hashes_and_counts_everything_added(articles_dir: Path, tmp_path: Path) -> None:
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    s = rag.build(articles_dir)
    assert (s.mode, s.added, s.updated, s.removed, s.unchanged, s.articles) == ("full", 3, 0, 0, 0, 3)
    docs = rag.store.read_manifest()["documents"]
    assert sorted(d["source"] for d in docs) == ["bread.html", "markets/nvidia.txt", "r1.md"]
    assert all(len(d["content_hash"]) == 32 and d["chunks"] >= 1 for d in docs)
    assert len(emb.take()) == s.chunks == s.embedded_chunks


def test_unchanged_folder_embeds_nothing_and_keeps_the_generation(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against re-embedding (or rewriting) everything when nothing changed."""
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(articles_dir)
    gen = rag.store.current_name()
    emb.take()
    s = rag.build(articles_dir)
    assert (s.mode, s.unchanged, s.added, s.updated, s.removed) == ("unchanged", 3, 0, 0, 0)
    assert emb.take() == [] and rag.store.current_name() == gen


def test_edit_embeds_only_changed_chunks_and_drops_stale_ones(tmp_path: Path) -> None:
    """Guards against stale chunks surviving an edit, and against re-embedding the unchanged part of an edited article."""
    folder = write_articles(tmp_path / "a", {**ARTICLES, "harbour.md": LONG})
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb, **{"chunking.chunk_tokens": 64, "chunking.overlap_tokens": 0})
    first = rag.build(folder)
    before = {c.text for c in all_chunks(rag) if c.source == "harbour.md"}
    assert len(before) >= 5
    emb.take()
    (folder / "harbour.md").write_text(
        LONG.replace("In year 1839 the harbour", "In year 1839 the rebuilt harbour"), encoding="utf-8"
    )
    s = rag.build(folder)
    assert (s.updated, s.unchanged, s.added, s.removed) == (1, 3, 0, 0)
    encoded = emb.take()
    assert encoded and len(encoded) < len(before) / 2, "only the edited end of the article is re-embedded"
    assert all("1839" in t or "1838" in t or "1837" in t for t in encoded)
    texts = [c.text for c in all_chunks(rag)]
    assert not any("In year 1839 the harbour" in t for t in texts)
    assert sum("In year 1839 the rebuilt harbour" in t for t in texts) == 1
    assert len(texts) == first.chunks
    assert s.reused_chunks + s.embedded_chunks == len(before)


def test_delete_removes_the_articles_chunks(articles_dir: Path, tmp_path: Path) -> None:
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(articles_dir)
    emb.take()
    (articles_dir / "markets" / "nvidia.txt").unlink()
    s = rag.build(articles_dir)
    assert (s.removed, s.unchanged, s.articles) == (1, 2, 2) and s.changes["removed"] == ["markets/nvidia.txt"]
    assert emb.take() == []
    assert not any(c.source == "markets/nvidia.txt" for c in all_chunks(rag))
    assert all(p.chunk.source != "markets/nvidia.txt" for p in rag.retrieve("Nvidia share price fell", 3))


def test_rename_costs_no_embedding(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against a renamed (or moved) file being re-embedded."""
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(articles_dir)
    emb.take()
    (articles_dir / "archive").mkdir()
    (articles_dir / "r1.md").rename(articles_dir / "archive" / "deepseek-r1.md")
    s = rag.build(articles_dir)
    assert (s.renamed, s.added, s.removed, s.unchanged) == (1, 0, 0, 2)
    assert s.changes["renamed"] == ["r1.md -> archive/deepseek-r1.md"]
    assert emb.take() == [] and s.embedded_chunks == 0
    assert {c.source for c in all_chunks(rag)} == {"archive/deepseek-r1.md", "bread.html", "markets/nvidia.txt"}


def test_exact_duplicate_is_indexed_once_with_both_sources(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against a copy under another name doubling the chunks (and the hits) of one article."""
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    first = rag.build(articles_dir)
    emb.take()
    shutil.copy(articles_dir / "markets" / "nvidia.txt", articles_dir / "nvidia-copy.txt")
    s = rag.build(articles_dir)
    assert s.duplicates == [("nvidia-copy.txt", "markets/nvidia.txt")]
    assert (s.added, s.chunks, s.articles) == (1, first.chunks, 3)
    assert emb.take() == []
    m = rag.store.read_manifest()
    entry = next(d for d in m["documents"] if d["source"] == "markets/nvidia.txt")
    assert entry["duplicates"] == ["nvidia-copy.txt"]
    assert (
        m["duplicates"][0]["source"] == "nvidia-copy.txt" and m["duplicates"][0]["duplicate_of"] == "markets/nvidia.txt"
    )
    # Deleting the original promotes the copy without embedding anything.
    (articles_dir / "markets" / "nvidia.txt").unlink()
    s = rag.build(articles_dir)
    assert emb.take() == [] and s.removed == 1 and s.duplicates == []
    assert "nvidia-copy.txt" in {c.source for c in all_chunks(rag)}


def test_duplicates_within_a_first_build(articles_dir: Path, tmp_path: Path) -> None:
    """In one build the first source in sorted order is indexed; the copy is recorded against it."""
    (articles_dir / "syndicated").mkdir()
    shutil.copy(articles_dir / "r1.md", articles_dir / "syndicated" / "r1.md")
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    s = rag.build(articles_dir)
    assert s.duplicates == [("syndicated/r1.md", "r1.md")] and s.articles == 3 and s.added == 4
    assert len(emb.take()) == s.chunks


def test_near_duplicates_are_reported_and_kept_by_default(articles_dir: Path, tmp_path: Path) -> None:
    (articles_dir / "syndicated.md").write_text(SYNDICATED, encoding="utf-8")
    rag = make_rag(tmp_path, FakeEmbedder())
    s = rag.build(articles_dir)
    assert len(s.near_duplicates) == 1
    n = s.near_duplicates[0]
    assert (n.source, n.similar_to, n.kept) == ("syndicated.md", "r1.md", True) and 0.8 <= n.similarity < 1.0
    assert "syndicated.md" in {c.source for c in all_chunks(rag)}
    assert rag.store.read_manifest()["near_duplicates"][0]["source"] == "syndicated.md"


def test_near_duplicates_can_be_dropped(articles_dir: Path, tmp_path: Path) -> None:
    rag = make_rag(tmp_path, FakeEmbedder(), **{"indexing.near_duplicates": "drop"})
    rag.build(articles_dir)
    (articles_dir / "syndicated.md").write_text(SYNDICATED, encoding="utf-8")
    (articles_dir / "syndicated-copy.md").write_text(SYNDICATED, encoding="utf-8")
    s = rag.build(articles_dir)
    assert [n.kept for n in s.near_duplicates] == [False]
    reasons = {x.source: x.reason for x in s.skipped}
    assert (
        "near-duplicate of r1.md" in reasons["syndicated-copy.md"]
        and "indexing.near_duplicates: keep" in reasons["syndicated-copy.md"]
    )
    assert reasons["syndicated.md"] == "copy of syndicated-copy.md, a dropped near-duplicate"
    assert not {"syndicated.md", "syndicated-copy.md"} & {c.source for c in all_chunks(rag)}
    assert s.embedded_chunks == 0 and s.articles == 3 and s.duplicates == []


def test_near_duplicate_threshold_is_respected() -> None:
    a = minhash_signature(ARTICLES["r1.md"])
    b = minhash_signature(SYNDICATED)
    c = minhash_signature(ARTICLES["markets/nvidia.txt"])
    sigs = {"a": a, "b": b, "c": c}
    assert find_near_duplicates(["a", "b", "c"], sigs, 0.8) == {
        "b": ("a", pytest.approx(find_near_duplicates(["a", "b"], sigs, 0.8)["b"][1]))
    }
    assert find_near_duplicates(["a", "b", "c"], sigs, 0.99) == {}
    assert minhash_signature("  ...  ") is None


def test_chunker_change_rebuilds_fully_and_says_why(articles_dir: Path, tmp_path: Path) -> None:
    emb = Counting(FakeEmbedder())
    make_rag(tmp_path, emb).build(articles_dir)
    emb.take()
    messages: list[str] = []
    rag = make_rag(tmp_path, emb, **{"chunking.chunk_tokens": 48, "chunking.overlap_tokens": 8})
    s = rag.build(articles_dir, on_message=messages.append)
    assert s.mode == "full" and "chunk_tokens 160 -> 48" in s.reason and "chunk_tokens 160 -> 48" in messages[0]
    assert len(emb.take()) == s.chunks
    assert rag.store.read_manifest()["chunker"]["chunk_tokens"] == 48


def test_embedder_change_never_mixes_vectors(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against an update that keeps vectors of the old embedder beside ones of the new."""
    make_rag(tmp_path, FakeEmbedder(dimension=64, name="old-embedder")).build(articles_dir)
    new = Counting(FakeEmbedder(dimension=32, name="new-embedder"))
    rag = make_rag(tmp_path, new)
    (articles_dir / "extra.txt").write_text("Extra\n\nA new article about harbours.", encoding="utf-8")
    s = rag.build(articles_dir)
    assert s.mode == "full" and "embedder changed ('old-embedder' -> 'new-embedder')" in s.reason
    assert len(new.take()) == s.chunks
    index = rag.index()
    assert (index.manifest.embedder, index.manifest.dimension, index.manifest.normalized) == ("new-embedder", 32, True)
    assert index.index.d == 32 and index.size == s.chunks


def test_settings_change_can_be_refused(articles_dir: Path, tmp_path: Path) -> None:
    make_rag(tmp_path, FakeEmbedder()).build(articles_dir)
    gen = make_rag(tmp_path, FakeEmbedder()).store.current_name()
    rag = make_rag(tmp_path, FakeEmbedder(), **{"chunking.chunk_tokens": 48, "indexing.on_settings_change": "refuse"})
    with pytest.raises(IndexMismatchError, match="--full"):
        rag.build(articles_dir)
    assert rag.store.current_name() == gen
    assert rag.build(articles_dir, full=True).mode == "full"


def test_full_flag_re_embeds_everything(articles_dir: Path, tmp_path: Path) -> None:
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(articles_dir)
    emb.take()
    s = rag.build(articles_dir, full=True)
    assert s.mode == "full" and s.reason == "--full was requested" and len(emb.take()) == s.chunks


def test_generation_writers_see_every_chunk_in_row_order_on_incremental_builds(
    articles_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Guards against an incremental generation whose keyword index only holds the new chunks."""
    calls = []
    monkeypatch.setattr(
        indexing_module, "BUILD_WRITERS", [lambda d, chunks, rows: calls.append((Path(d), list(chunks), rows.copy()))]
    )
    rag = make_rag(tmp_path, FakeEmbedder())
    rag.build(articles_dir)
    old_rows = {c.id: r for r, c in zip(calls[-1][2], calls[-1][1])}
    (articles_dir / "extra.txt").write_text("Extra\n\nA new article about harbours and lighthouses.", encoding="utf-8")
    s = rag.build(articles_dir)
    tmp_dir, chunks, rows = calls[-1]
    assert tmp_dir.name.startswith(".tmp-gen-") and rows.dtype == np.int64
    assert len(chunks) == s.chunks and list(rows) == sorted(rows)
    assert [c.id for c in chunks] == [c.id for c in all_chunks(rag)]
    for c, r in zip(chunks, rows):
        if c.id in old_rows:
            assert old_rows[c.id] == r, "unchanged chunks keep their rows"
    assert chunks[-1].source == "extra.txt"


def test_no_readable_articles_leaves_the_index(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against an emptied (or wrongly named) folder wiping the index."""
    rag = make_rag(tmp_path, FakeEmbedder())
    rag.build(articles_dir)
    gen = rag.store.current_name()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuildError, match="no readable articles.*left as it was"):
        rag.build(empty)
    assert rag.store.current_name() == gen and rag.retrieve("sourdough", 1)


def test_lock_names_the_holder_and_is_released(articles_dir: Path, tmp_path: Path) -> None:
    rag = make_rag(tmp_path, FakeEmbedder())
    with build_lock(rag.store.root):
        assert read_lock_holder(rag.store.root)["pid"] == os.getpid()
        with pytest.raises(BuildLockedError, match=f"pid {os.getpid()}") as exc:
            rag.build(articles_dir)
        assert exc.value.holder_pid == os.getpid()
    assert read_lock_holder(rag.store.root) is None
    assert rag.build(articles_dir).articles == 3


def test_readers_keep_the_old_generation_during_a_build_and_pick_up_the_new_one(
    articles_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    reader = make_rag(tmp_path, FakeEmbedder())
    reader.build(articles_dir)
    first = reader.store.current_name()
    assert reader.retrieve("sourdough starter", 1)[0].chunk.source == "bread.html"
    started, release = threading.Event(), threading.Event()

    def slow_writer(d, chunks, rows):
        started.set()
        release.wait(10)

    monkeypatch.setattr(indexing_module, "BUILD_WRITERS", [slow_writer])
    (articles_dir / "tides.txt").write_text(
        "Tides\n\nThe tide tables for the harbour are printed every Monday.", encoding="utf-8"
    )
    writer = make_rag(tmp_path, FakeEmbedder())
    t = threading.Thread(target=writer.build, args=(articles_dir,))
    t.start()
    assert started.wait(10)
    hits = reader.retrieve("tide tables harbour Monday", 3)  # mid-build: the old generation answers
    assert hits and all(p.chunk.source != "tides.txt" for p in hits) and reader.store.current_name() == first
    release.set()
    t.join(10)
    assert reader.retrieve("tide tables harbour Monday", 1)[0].chunk.source == "tides.txt"
    gens = sorted(p.name for p in reader.store.root.iterdir() if p.name.startswith("gen-"))
    assert first in gens and len(gens) == 2, "the previous generation is kept for readers that opened it"
    (articles_dir / "more.txt").write_text("More\n\nAnother article about ferries.", encoding="utf-8")
    writer.build(articles_dir)
    gens = sorted(p.name for p in reader.store.root.iterdir() if p.name.startswith("gen-"))
    assert first not in gens and len(gens) == 2, "older generations are deleted"


def test_crash_while_writing_leaves_the_previous_index(articles_dir: Path, tmp_path: Path, monkeypatch) -> None:
    rag = make_rag(tmp_path, FakeEmbedder())
    rag.build(articles_dir)
    gen = rag.store.current_name()

    def boom(d, chunks, rows):
        raise OSError("disk full")

    monkeypatch.setattr(indexing_module, "BUILD_WRITERS", [boom])
    (articles_dir / "tides.txt").write_text("Tides\n\nThe tide tables are printed every Monday.", encoding="utf-8")
    with pytest.raises(OSError, match="disk full"):
        rag.build(articles_dir)
    assert rag.store.current_name() == gen
    assert not [p for p in rag.store.root.iterdir() if p.name.startswith(".tmp-")]
    assert make_rag(tmp_path, FakeEmbedder()).retrieve("sourdough", 1)
    monkeypatch.setattr(indexing_module, "BUILD_WRITERS", [])
    assert rag.build(articles_dir).added == 1


def test_remove_article_drops_it_and_promotes_a_copy(articles_dir: Path, tmp_path: Path) -> None:
    shutil.copy(articles_dir / "bread.html", articles_dir / "syndicated-bread.html")
    rag = make_rag(tmp_path, FakeEmbedder())
    rag.build(articles_dir)
    r = remove_article(rag.store.root, "markets/nvidia.txt")
    assert r.removed == ["markets/nvidia.txt"] and r.chunks_removed >= 1 and r.articles == 2
    assert "markets/nvidia.txt" not in {c.source for c in all_chunks(rag)}
    r = remove_article(rag.store.root, str(articles_dir / "bread.html"))  # a path to the file works too
    assert r.promoted == [("bread.html", "syndicated-bread.html")] and r.chunks_removed == 0
    chunks = all_chunks(rag)
    assert {c.source for c in chunks} == {"syndicated-bread.html", "r1.md"}
    m = rag.store.read_manifest()
    assert [d["source"] for d in m["documents"]] == ["r1.md", "syndicated-bread.html"] and m["duplicates"] == []
    assert (articles_dir / "bread.html").exists() and (articles_dir / "markets" / "nvidia.txt").exists()
    with pytest.raises(KeyError, match="did you mean 'r1.md'"):
        remove_article(rag.store.root, "r1.mdx")
    # The next build adds the removed articles back (their files are still there).
    s = rag.build(articles_dir)
    assert s.added == 2 and "markets/nvidia.txt" in {c.source for c in all_chunks(rag)}
    assert s.duplicates == [("bread.html", "syndicated-bread.html")], "the copy already indexed stays the indexed one"


def test_jsonl_records_are_diffed_one_by_one(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    lines = [f'{{"title": "Item {i}", "text": "Record number {i} talks about topic {i} in detail."}}' for i in range(5)]
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(folder)
    emb.take()
    lines[2] = '{"title": "Item 2", "text": "Record number 2 was corrected today."}'
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    s = rag.build(folder)
    assert (s.updated, s.unchanged) == (1, 4) and s.changes["updated"] == ["feed.jsonl#2"]
    assert emb.take() == ["Item 2\nRecord number 2 was corrected today."]  # the title, then the record's text


# -- through the real path --------------------------------------------------------------------


def _faiss_count(rag: RAG) -> int:
    import faiss

    path = rag.store.root / rag.store.current_name() / store_module.VECTORS
    return int(faiss.read_index(str(path)).ntotal)


@pytest.mark.slow
def test_real_add_edit_delete_rename_duplicate(articles_dir: Path, tmp_path: Path, real_embedder) -> None:
    emb = Counting(real_embedder)
    rag = make_rag(tmp_path, emb)
    reader = make_rag(tmp_path, real_embedder)  # a long-lived reader: queries are not counted, new builds are picked up
    first = rag.build(articles_dir)
    assert len(emb.take()) == first.chunks == _faiss_count(rag)

    # add
    (articles_dir / "tides.txt").write_text(
        "Harbour tides\n\nThe harbour master prints the tide tables every Monday morning.", encoding="utf-8"
    )
    s = rag.build(articles_dir)
    assert s.added == 1 and s.unchanged == 3
    added = [c for c in all_chunks(rag) if c.source == "tides.txt"]
    assert [c.text for c in added] == [
        "Harbour tides\n\nThe harbour master prints the tide tables every Monday morning."
    ]
    assert emb.take() == [c.indexed_text for c in added]  # only the new article's chunk, with its title
    assert reader.retrieve("When are the tide tables printed?", 1)[0].chunk.source == "tides.txt"

    # edit
    nvidia = articles_dir / "markets" / "nvidia.txt"
    nvidia.write_text(
        nvidia.read_text(encoding="utf-8").replace("fell about 17 percent", "fell by a record seventeen percent"),
        encoding="utf-8",
    )
    s = rag.build(articles_dir)
    assert (s.updated, s.unchanged) == (1, 3)
    assert emb.take() and not any("about 17 percent" in c.text for c in all_chunks(rag))
    top = reader.retrieve("How far did the Nvidia share price fall?", 1)[0]
    assert top.chunk.source == "markets/nvidia.txt" and "record seventeen percent" in top.chunk.text

    # rename: nothing embedded
    (articles_dir / "r1.md").rename(articles_dir / "deepseek-r1.md")
    s = rag.build(articles_dir)
    assert s.renamed == 1 and emb.take() == []
    assert reader.retrieve("Who released DeepSeek-R1 and under which licence?", 1)[0].chunk.source == "deepseek-r1.md"

    # exact duplicate: indexed once, both sources recorded, nothing embedded
    shutil.copy(articles_dir / "bread.html", articles_dir / "bread-syndicated.html")
    s = rag.build(articles_dir)
    assert s.duplicates == [("bread-syndicated.html", "bread.html")] and emb.take() == []
    hits = reader.retrieve("How long does sourdough bake?", 4)
    assert [p.chunk.source for p in hits].count("bread.html") == 1 and "bread-syndicated.html" not in [
        p.chunk.source for p in hits
    ]

    # near-duplicate: reported, kept
    (articles_dir / "r1-syndicated.md").write_text(SYNDICATED, encoding="utf-8")
    s = rag.build(articles_dir)
    assert [(n.source, n.similar_to, n.kept) for n in s.near_duplicates] == [
        ("r1-syndicated.md", "deepseek-r1.md", True)
    ]
    emb.take()

    # delete
    nvidia.unlink()
    s = rag.build(articles_dir)
    assert s.removed == 1 and emb.take() == []
    assert all(c.source != "markets/nvidia.txt" for c in all_chunks(rag))
    assert all(p.chunk.source != "markets/nvidia.txt" for p in reader.retrieve("Nvidia market value loss", 4))
    assert _faiss_count(rag) == rag.store.read_manifest()["chunks"] == s.chunks

    # a fresh process-like reader sees the same index
    fresh = make_rag(tmp_path, real_embedder)
    assert fresh.retrieve("When are the tide tables printed?", 1)[0].chunk.source == "tides.txt"


@pytest.mark.slow
def test_real_settings_change(articles_dir: Path, tmp_path: Path, real_embedder) -> None:
    make_rag(tmp_path, real_embedder).build(articles_dir)
    refuse = make_rag(
        tmp_path,
        real_embedder,
        **{"chunking.chunk_tokens": 40, "chunking.overlap_tokens": 8, "indexing.on_settings_change": "refuse"},
    )
    with pytest.raises(IndexMismatchError, match="chunk_tokens 160 -> 40.*--full"):
        refuse.build(articles_dir)
    messages: list[str] = []
    emb = Counting(real_embedder)
    rag = make_rag(tmp_path, emb, **{"chunking.chunk_tokens": 40, "chunking.overlap_tokens": 8})
    s = rag.build(articles_dir, on_message=messages.append)
    assert s.mode == "full" and messages and "chunker settings changed" in messages[0]
    assert len(emb.take()) == s.chunks == _faiss_count(rag)
    assert rag.retrieve("Who released DeepSeek-R1?", 1)[0].chunk.source == "r1.md"


def _article(i: int, rng: random.Random) -> str:
    words = [
        "harbour",
        "ferry",
        "lantern",
        "tide",
        "market",
        "river",
        "bridge",
        "engine",
        "harvest",
        "council",
        "festival",
        "library",
        "railway",
        "orchard",
        "factory",
        "museum",
        "garden",
        "quarry",
        "mill",
        "canal",
    ]
    sentences = [
        f"Report {i}-{j}: the {rng.choice(words)} near the {rng.choice(words)} opened in {1900 + rng.randrange(120)} "
        f"after {rng.randrange(2, 90)} {rng.choice(words)}s were counted by the {rng.choice(words)} committee."
        for j in range(24)
    ]
    return f"Local report {i}\n\n" + " ".join(sentences)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 300) -> str:
    """Read ``proc``'s stderr (progress bars write no newlines) until it shows ``marker``; return what it wrote."""
    seen = b""
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s: {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            data = os.read(fd, 65536)
            assert data or proc.poll() is None, (
                f"the build ended (exit {proc.wait()}) before {marker!r}: {seen[-2000:]!r}"
            )
            seen += data
    return seen.decode("utf-8", "replace")


@pytest.mark.slow
def test_killed_build_leaves_the_previous_index_usable(articles_dir: Path, tmp_path: Path, real_embedder) -> None:
    """SIGKILL real `rag build` processes at three observed phases; each time the previous generation still answers.

    The phases are observed, not guessed with timers: the embedding progress bar on stderr
    (the build is embedding), the new generation folder half written, and the complete new
    generation just before CURRENT is switched (both held there by rag.faults.PAUSE_ENV). A
    rebuild then completes and removes what the killed builds left.
    """
    index = tmp_path / "index"
    rag = make_rag(tmp_path, real_embedder)
    rag.build(articles_dir)
    rng = random.Random(4)
    n = 0
    orphans: list[str] = []
    for phase, new_articles in (("embedding", 40), ("writing", 8), ("switch", 8)):
        for _ in range(new_articles):  # fresh work for every kill, so each lands in a real build
            (articles_dir / f"report-{n}.txt").write_text(_article(n, rng), encoding="utf-8")
            n += 1
        before = (index / CURRENT).read_text().strip()
        env = _env() if phase == "embedding" else {**_env(), PAUSE_ENV: phase}
        proc = subprocess.Popen(
            _cli("build", str(articles_dir), "--index", str(index)),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            said = _wait_for(proc, "Embedding" if phase == "embedding" else f"paused at {phase}")
            tmp_gens = [p for p in index.iterdir() if p.name.startswith(".tmp-gen-")]
            new_gens = [p.name for p in index.iterdir() if p.name.startswith("gen-") and p.name > before]
            if phase == "embedding":
                assert not tmp_gens and not new_gens, f"writing had begun: {said[-300:]!r}"
            elif phase == "writing":
                assert len(tmp_gens) == 1 and (tmp_gens[0] / store_module.VECTORS).is_file()
                assert not (tmp_gens[0] / store_module.MANIFEST).exists()  # half written
            else:
                assert not tmp_gens and len(new_gens) == 1 and (index / new_gens[0] / store_module.MANIFEST).is_file()
                orphans += new_gens  # complete, but never made current
        finally:
            proc.kill()
        assert proc.wait() == -9, f"the build was not running at {phase}"
        assert (index / CURRENT).read_text().strip() == before, f"CURRENT moved though the build died at {phase}"
        reader = make_rag(tmp_path, real_embedder)
        hits = reader.retrieve("When did DeepSeek release R1?", 2)
        assert hits and hits[0].chunk.source == "r1.md", f"kill at {phase}: {hits}"
        loaded = reader.index()
        assert loaded.manifest.generation == before
        assert loaded.size == loaded.manifest.chunks == _faiss_count(reader)
    # A rerun completes normally, and readers answer throughout it.
    reader = make_rag(tmp_path, real_embedder)
    assert reader.retrieve("When did DeepSeek release R1?", 1)
    proc = subprocess.Popen(
        _cli("build", str(articles_dir), "--index", str(index), "--quiet", "--json"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answered = 0
    while proc.poll() is None:
        assert reader.retrieve("When did DeepSeek release R1?", 1)[0].chunk.source == "r1.md"
        answered += 1
        time.sleep(0.2)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert answered >= 1
    assert reader.retrieve("Report 23-0", 3) and any(
        p.chunk.source.startswith("report-") for p in reader.retrieve("report committee counted", 5)
    )
    assert len(reader.index().manifest.documents) == 3 + n
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp-")]
    assert len([p for p in index.iterdir() if p.name.startswith("gen-")]) <= 2
    assert orphans and not [name for name in orphans if (index / name).exists()], (
        "the killed build's complete generation was left behind"
    )
    assert (index / CURRENT).read_text().strip() == reader.index().manifest.generation


@pytest.mark.slow
def test_concurrent_build_gets_a_clear_error_naming_the_holder(
    articles_dir: Path, tmp_path: Path, real_embedder
) -> None:
    index = tmp_path / "index"
    rag = make_rag(tmp_path, real_embedder)
    rag.build(articles_dir)
    gen = rag.store.current_name()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom rag.indexing import build_lock\nwith build_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n",
            str(index),
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (articles_dir / "tides.txt").write_text("Tides\n\nThe tide tables are printed every Monday.", encoding="utf-8")
        proc = subprocess.run(
            _cli("build", str(articles_dir), "--index", str(index), "--quiet"),
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 1
        assert f"another build of index {str(index)!r} is running (pid {holder.pid}" in proc.stderr
        assert f"kill {holder.pid}" in proc.stderr
        with pytest.raises(BuildLockedError) as exc:
            rag.build(articles_dir)
        assert exc.value.holder_pid == holder.pid
        assert rag.store.current_name() == gen
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder (even on SIGKILL): the next build runs.
    assert rag.build(articles_dir).added == 1


def test_unreadable_stored_vectors_fall_back_to_a_full_build(articles_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Guards against an index type that cannot reconstruct vectors breaking updates (it re-embeds instead)."""
    from rag.store import LoadedIndex

    emb = Counting(FakeEmbedder())
    rag = make_rag(tmp_path, emb)
    rag.build(articles_dir)
    emb.take()

    def no_vectors(self):
        raise RuntimeError("Error in reconstruct: direct map not initialized")

    monkeypatch.setattr(LoadedIndex, "rows_and_vectors", no_vectors)
    (articles_dir / "extra.txt").write_text("Extra\n\nA new article about harbours.", encoding="utf-8")
    messages: list[str] = []
    s = rag.build(articles_dir, on_message=messages.append)
    assert s.mode == "full" and "cannot be read back" in s.reason and messages
    assert len(emb.take()) == s.chunks == 4


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch, tmp_path: Path):
    """Run ``rag`` in-process with FakeEmbedder standing in for the configured model."""
    import rag.embedding as embedding
    from rag.cli import main

    monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: FakeEmbedder(name=cfg.model))
    monkeypatch.chdir(tmp_path)
    return main


def test_cli_build_prints_what_changed_and_full_rebuilds(fake_cli, articles_dir: Path, capsys) -> None:
    assert fake_cli(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Built index idx" in out and "3 added, 0 updated, 0 removed, 0 renamed, 0 unchanged, 0 skipped" in out
    (articles_dir / "empty.txt").write_text("")
    (articles_dir / "r1.md").rename(articles_dir / "r1-renamed.md")
    assert fake_cli(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Updated index idx" in out and "0 added, 0 updated, 0 removed, 1 renamed, 2 unchanged, 1 skipped" in out
    assert "  empty.txt: empty file" in out
    assert fake_cli(["build", str(articles_dir), "--index", "idx", "--quiet", "--full", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "full" and summary["reason"] == "--full was requested" and summary["added"] == 3
    assert summary["skipped"] == [{"source": "empty.txt", "reason": "empty file"}] and summary["skipped_count"] == 1


def test_cli_build_reports_a_held_lock(fake_cli, articles_dir: Path, capsys) -> None:
    with build_lock(Path("idx")):
        assert fake_cli(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"error: another build of index 'idx' is running (pid {os.getpid()}" in err


def test_cli_index_info_and_remove(fake_cli, articles_dir: Path, capsys) -> None:
    assert fake_cli(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    capsys.readouterr()
    assert fake_cli(["index", "info", "--index", "idx"]) == 0
    out = capsys.readouterr().out
    for field in (
        "articles         3",
        "chunker          chunk_tokens=160, overlap_tokens=32",
        "built_at",
        "embedder         all-MiniLM-L6-v2",
        "size             ",
    ):
        assert field in out
    assert fake_cli(["index", "info", "--index", "idx", "--json", "--sources"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size_bytes"] > 0 and info["size_on_disk_bytes"] >= info["size_bytes"] and info["articles"] == 3
    assert info["sources"] == ["bread.html", "markets/nvidia.txt", "r1.md"]
    assert fake_cli(["index", "remove", "markets/nvidia.txt", "--index", "idx"]) == 0
    out = capsys.readouterr().out
    assert "Removed markets/nvidia.txt from idx" in out and "now holds 2 articles" in out
    assert fake_cli(["index", "remove", "markets/nvidia.txt", "--index", "idx"]) == 1
    assert "no article 'markets/nvidia.txt'" in capsys.readouterr().err
    assert (articles_dir / "markets" / "nvidia.txt").is_file()
