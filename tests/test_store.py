"""Index generations on disk (rag/store.py): atomic switch, kept previous generation, clean-up, read-back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.records import Chunk
from rag.store import (
    CHUNKS,
    CURRENT,
    FORMAT_VERSION,
    MANIFEST,
    VECTORS,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStore,
    write_generation,
)

SETTINGS = {"chunk_tokens": 160, "overlap_tokens": 32, "encoding": "cl100k_base", "splitter": "sentence-v1"}


def chunks_and_vectors(n: int, dim: int = 8, seed: int = 0) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    chunks = [
        Chunk(
            id=f"c{seed}-{i}",
            doc_id=f"d{i % 3}",
            title=f"T{i}",
            source=f"s{i % 3}.txt",
            text=f"text {seed} {i}",
            start=0,
            end=6,
        )
        for i in range(n)
    ]
    return chunks, v


def manifest(dim: int = 8, name: str = "fake") -> dict:
    return {"embedder": {"name": name, "dimension": dim, "normalized": True}, "chunker": SETTINGS, "documents": []}


def gens(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))


def test_write_and_read_back_vectors_rows_and_chunks(tmp_path: Path) -> None:
    chunks, v = chunks_and_vectors(5)
    rows = np.array([3, 7, 8, 20, 21], dtype=np.int64)
    write_generation(tmp_path, v, chunks, manifest(), rows)
    index = IndexStore(tmp_path).load(expect_embedder="fake", expect_chunker=SETTINGS)
    ids, vectors = index.rows_and_vectors()
    order = np.argsort(ids)
    assert list(ids[order]) == list(rows)
    np.testing.assert_array_equal(vectors[order], v)
    assert [(r, c.id) for r, c in index.iter_rows()] == [(int(r), c.id) for r, c in zip(rows, chunks)]
    hits = index.search(v[2:3], 1)[0]
    assert hits[0][0].id == chunks[2].id and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert index.manifest.chunks == 5 and index.manifest.format_version == FORMAT_VERSION == 3


def test_empty_index_reads_back(tmp_path: Path) -> None:
    """Guards against a zero-chunk generation (every article removed) failing to load."""
    write_generation(tmp_path, np.zeros((0, 8), np.float32), [], manifest())
    index = IndexStore(tmp_path).load()
    ids, vectors = index.rows_and_vectors()
    assert index.size == 0 and ids.shape == (0,) and vectors.shape == (0, 8)
    assert index.search(np.ones((1, 8), np.float32), 3) == [[]]


def test_previous_generation_is_kept_and_older_ones_deleted(tmp_path: Path) -> None:
    """Guards against deleting the generation a reader read from CURRENT an instant before the switch."""
    names = []
    for seed in range(3):
        chunks, v = chunks_and_vectors(4, seed=seed)
        names.append(write_generation(tmp_path, v, chunks, manifest()).name)
        assert IndexStore(tmp_path).current_name() == names[-1]
    assert gens(tmp_path) == sorted(names[1:])
    # The kept previous generation is complete and loadable on its own.
    assert json.loads((tmp_path / names[1] / MANIFEST).read_text())["chunks"] == 4
    assert (tmp_path / names[1] / VECTORS).is_file() and (tmp_path / names[1] / CHUNKS).is_file()


def test_leftovers_of_killed_builds_are_ignored_then_removed(tmp_path: Path) -> None:
    chunks, v = chunks_and_vectors(4)
    first = write_generation(tmp_path, v, chunks, manifest()).name
    # A build killed while writing leaves a temporary folder; one killed between renaming its
    # folder and switching CURRENT leaves a complete but unused generation; one killed while
    # replacing CURRENT leaves a temporary pointer file.
    (tmp_path / ".tmp-gen-20000101T000000-dead01").mkdir()
    (tmp_path / ".tmp-gen-20000101T000000-dead01" / VECTORS).write_bytes(b"half a file")
    orphan = tmp_path / "gen-20000101T000000-dead02"
    orphan.mkdir()
    (tmp_path / f".{CURRENT}.dead").write_text("gen-20000101T000000-dead02\n")
    assert IndexStore(tmp_path).load().manifest.generation == first
    second = write_generation(tmp_path, v, chunks, manifest()).name
    assert gens(tmp_path) == sorted([first, second])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-") or p.name.startswith(f".{CURRENT}.")]


def test_extra_writers_run_inside_the_new_generation(tmp_path: Path) -> None:
    seen = []

    def writer(folder: Path, chunks, rows) -> None:
        seen.append((folder.name, len(chunks), list(rows)))
        (folder / "extra.bin").write_bytes(b"x")

    chunks, v = chunks_and_vectors(3)
    gen = write_generation(tmp_path, v, chunks, manifest(), writers=[writer])
    assert seen == [(f".tmp-{gen.name}", 3, [0, 1, 2])]
    assert (gen / "extra.bin").read_bytes() == b"x"


def test_failed_writer_leaves_the_current_generation(tmp_path: Path) -> None:
    chunks, v = chunks_and_vectors(3)
    first = write_generation(tmp_path, v, chunks, manifest()).name

    def broken(folder, chunks, rows):
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        write_generation(tmp_path, v, chunks, manifest(), writers=[broken])
    assert IndexStore(tmp_path).current_name() == first and gens(tmp_path) == [first]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_missing_or_broken_generation_errors_say_how_to_rebuild(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "none")
    with pytest.raises(IndexNotFoundError, match="rag build ARTICLES_DIR"):
        store.load()
    chunks, v = chunks_and_vectors(3)
    gen = write_generation(tmp_path, v, chunks, manifest())
    (gen / VECTORS).write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="--full"):
        IndexStore(tmp_path).load()
    (tmp_path / CURRENT).write_text("gen-missing\n")
    with pytest.raises(IndexCorruptError, match="unreadable"):
        IndexStore(tmp_path).load()


def test_settings_mismatch_names_both_and_the_fix(tmp_path: Path) -> None:
    chunks, v = chunks_and_vectors(3)
    write_generation(tmp_path, v, chunks, manifest(name="old-model"))
    with pytest.raises(
        IndexMismatchError,
        match=r"embedder changed \('old-model' -> 'new-model'\).*--full \(or set embedding.model: old-model\)",
    ):
        IndexStore(tmp_path).load(expect_embedder="new-model")
    with pytest.raises(IndexMismatchError, match="chunker settings"):
        IndexStore(tmp_path).load(expect_chunker={**SETTINGS, "chunk_tokens": 64})


def test_size_on_disk_counts_current_and_all(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    assert store.size_on_disk() == {"current_bytes": 0, "total_bytes": 0}
    chunks, v = chunks_and_vectors(50)
    write_generation(tmp_path, v, chunks, manifest())
    one = store.size_on_disk()
    cur = tmp_path / store.current_name()
    assert one["current_bytes"] == sum(f.stat().st_size for f in cur.rglob("*") if f.is_file()) > 50 * 8 * 4
    write_generation(tmp_path, v, chunks, manifest())
    two = store.size_on_disk()
    assert two["total_bytes"] >= 2 * one["current_bytes"] - 64 and two["current_bytes"] == pytest.approx(
        one["current_bytes"], rel=0.1
    )


def test_current_is_replaced_atomically(tmp_path: Path, monkeypatch) -> None:
    """Guards against CURRENT being rewritten in place (a reader could see it empty or half-written)."""
    chunks, v = chunks_and_vectors(3)
    write_generation(tmp_path, v, chunks, manifest())
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((Path(src).name, Path(dst).name))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_generation(tmp_path, v, chunks, manifest())
    assert any(dst == CURRENT and src.startswith(f".{CURRENT}.") for src, dst in replaced)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbled", b"../../elsewhere\n", b"/etc\n", b"gen-1/../../x\n"])
def test_damaged_current_pointer_is_a_clear_error_and_a_build_replaces_it(tmp_path: Path, content: bytes) -> None:
    """Guards against a garbled CURRENT raising a raw UnicodeDecodeError, or a path in it sending readers elsewhere."""
    chunks, v = chunks_and_vectors(4)
    write_generation(tmp_path, v, chunks, manifest())
    (tmp_path / CURRENT).write_bytes(content)
    store = IndexStore(tmp_path)
    assert store.exists()  # damaged, not absent: loading says what is wrong
    for read in (store.load, store.read_manifest):
        with pytest.raises(
            IndexCorruptError,
            match=rf"index pointer .*{CURRENT}.* is damaged .*rag build ARTICLES_DIR --index .* --full",
        ):
            read()
    assert store.size_on_disk()["current_bytes"] == 0
    new = write_generation(tmp_path, v, chunks, manifest())
    assert store.current_name() == new.name and store.load().size == 4


def test_chunk_pages_round_trip(tmp_path: Path) -> None:
    """Guards against the pages of a PDF chunk being lost between the build and a retrieved passage."""
    chunks, v = chunks_and_vectors(3)
    chunks[1] = Chunk(id="p", doc_id="d", title="T", source="a.pdf", text="x", start=0, end=1, pages=(2, 3))
    write_generation(tmp_path, v, chunks, manifest())
    index = IndexStore(tmp_path).load()
    assert [c.pages for c in index.iter_chunks()] == [(), (2, 3), ()]
    assert index.chunks_by_rows([1])[1].pages == (2, 3)
    index.close()


def test_format_1_index_loads_without_pages_and_the_next_build_rebuilds_it(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against an index built before chunks had pages failing to load, or staying without pages after a build.

    Format 1 (no ``pages`` column) still answers questions, with empty pages; the next
    build sees the format change and rebuilds every article.
    """
    import sqlite3

    from fakes import FakeEmbedder

    from rag import RAG, Config

    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=FakeEmbedder())
    rag.build(articles_dir)
    gen = tmp_path / "index" / rag.store.current_name()
    con = sqlite3.connect(gen / CHUNKS)
    con.execute("ALTER TABLE chunks DROP COLUMN pages")
    con.commit()
    con.close()
    m = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    (gen / MANIFEST).write_text(json.dumps({**m, "format_version": 1}), encoding="utf-8")
    old = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=FakeEmbedder())
    hits = old.retrieve("When did DeepSeek release R1?", 2)
    assert hits and all(p.chunk.pages == () for p in hits) and old.index().manifest.format_version == 1
    notes: list[str] = []
    summary = old.build(articles_dir, on_message=notes.append)
    assert summary.mode == "full" and summary.reason == f"the index format changed (version 1 -> {FORMAT_VERSION})"
    assert old.index().manifest.format_version == FORMAT_VERSION
    with pytest.raises(
        IndexMismatchError, match=rf"the index format changed \(version 0 -> {FORMAT_VERSION}\); rebuild it with"
    ):
        m = json.loads((tmp_path / "index" / old.store.current_name() / MANIFEST).read_text(encoding="utf-8"))
        (tmp_path / "index" / old.store.current_name() / MANIFEST).write_text(
            json.dumps({**m, "format_version": 0}), encoding="utf-8"
        )
        IndexStore(tmp_path / "index").load()


def test_the_loaded_index_answers_dense_and_bm25_searches_with_filters(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against retrievers having to open the chunk store or FAISS themselves (issue 14): the loaded index
    answers dense and BM25 searches with filters, and reads its chunk table and keyword index once."""
    from fakes import FakeEmbedder

    from rag import RAG, Config
    from rag.retrieval.filters import MetadataFilter

    emb = FakeEmbedder()
    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=emb)
    rag.build(articles_dir)
    index = rag.index()
    by_row = dict(index.iter_rows())
    q = emb.encode(["Nvidia share price fell"])
    dense = index.dense_search(q, 10)
    assert [h.row for h in dense] == sorted(by_row, key=lambda r: -float(emb.vector(by_row[r].indexed_text) @ q[0]))
    assert all(h.score == h.relevance for h in dense)
    news = MetadataFilter(source="markets/*")
    assert {by_row[h.row].source for h in index.dense_search(q, 10, news)} == {"markets/nvidia.txt"}
    bm25 = index.bm25_retrieval("DeepSeek", None, 10)
    assert {by_row[h.row].source for h in bm25} == {"r1.md", "markets/nvidia.txt"} and all(
        0 < h.relevance < 1 for h in bm25
    )
    assert {by_row[h.row].source for h in index.bm25_retrieval("DeepSeek", MetadataFilter(until="2025-01-21"), 10)} == {
        "r1.md"
    }
    assert index.bm25_retrieval("sourdough", news, 10) == []
    assert index.chunk_table() is index.chunk_table() and index.keyword_index() is index.keyword_index()
    assert index.vectors([dense[0].row])[0] @ q[0] == pytest.approx(dense[0].score, abs=1e-5)
