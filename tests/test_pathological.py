"""Pathological inputs through the real build path (rag/documents.py, rag/chunking.py, rag/indexing/).

A 200 MB file, a single 5 MB line, files of only whitespace and 50,000 tiny files, each
built through ``rag build`` (the CLI's ``main``, in-process or as a subprocess) into a
real FAISS index on disk. The packaged MiniLM embedder (~25 chunks/s here) is used where
the embedded text is small; the 5 MB line (~6,000 chunks) and the 50,000 files use
FakeEmbedder, which changes nothing else in the build.

``RAG_TINY_FILES`` sets the number of tiny files (default 50,000; the test is marked
``long``, ~30 s for 50,000 on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder

from benchmarks.pathological_inputs import FILLER, RUNNER, one_line, runner_env, tiny_folder
from rag import RAG, Config
from rag.chunking import Chunker
from rag.text import get_encoding
from rag.documents import LINK_OUTSIDE, WHITESPACE_ONLY, has_text, load_documents, make_document
from rag.store import IndexStore

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
MODEL = Config().embedding.model


@pytest.fixture
def cli(monkeypatch, tmp_path: Path):
    """``rag`` in-process with ``embedder`` standing in for the configured model: ``cli(embedder, *argv)``."""
    import rag.embedding as embedding
    from rag.cli import main

    monkeypatch.chdir(tmp_path)

    def run(embedder, *argv: str) -> int:
        monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: embedder)
        return main(list(argv))

    return run


def reader(index: Path, embedder=None) -> RAG:
    return RAG(Config.load(None, {"index.path": str(index)}), embedder=embedder or FakeEmbedder(name=MODEL))


def check_chunks(text: str, chunks, chunk_tokens: int) -> None:
    """Offsets map back exactly, every visible character is covered, no chunk is empty or over the limit."""
    enc = get_encoding()
    covered = np.zeros(len(text), dtype=bool)
    for c in chunks:
        assert text[c.start : c.end] == c.text and has_text(c.text)
        assert len(enc.encode_ordinary(c.text)) <= chunk_tokens
        covered[c.start : c.end] = True
    visible = (
        np.array([not ch.isspace() for ch in text], dtype=bool)
        if len(text) < 100_000
        else np.frombuffer(text.encode("ascii"), dtype=np.uint8) != ord(" ")
    )
    assert covered[visible].all(), "some text is in no chunk"


# -- a 200 MB file --------------------------------------------------------------------------------


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: no disk space, instant
    return path


def test_200mb_file_is_skipped_by_size_without_being_read(tmp_path: Path) -> None:
    """Guards against reading a huge file into memory before (or instead of) checking its size."""
    folder = tmp_path / "articles"
    folder.mkdir()
    sparse_file(folder / "huge.txt", 200 * 2**20)
    (folder / "ok.txt").write_text("Harbour\n\nThe harbour opened in 1850.", encoding="utf-8")
    tracemalloc.start()
    try:
        result = load_documents(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.source for d in result.documents] == ["ok.txt"]
    [skip] = result.skipped
    assert skip.source == "huge.txt"
    assert (
        skip.reason
        == "file is 200.0 MB (209,715,200 bytes), over the 20 MB limit; raise loader.max_file_mb to include it"
    )
    assert peak < 5 * 2**20, f"loading allocated {peak / 2**20:.0f} MB: the big file was read"


def test_the_size_limit_is_the_configured_one(tmp_path: Path) -> None:
    """Guards against an off-by-one or MB/MiB mix-up at the limit: exactly the limit loads, one byte more does not."""
    folder = tmp_path / "articles"
    folder.mkdir()
    limit = 2**20
    text = "Edge\n\n" + "word " * ((limit - 6) // 5)
    (folder / "at-limit.txt").write_text(text + "x" * (limit - len(text)), encoding="utf-8")
    (folder / "over-limit.txt").write_text(text + "x" * (limit - len(text) + 1), encoding="utf-8")
    result = load_documents(folder, max_file_mb=1)
    assert [d.source for d in result.documents] == ["at-limit.txt"]
    assert [(s.source, s.reason) for s in result.skipped] == [
        (
            "over-limit.txt",
            "file is 1.0 MB (1,048,577 bytes), over the 1 MB limit; raise loader.max_file_mb to include it",
        )
    ]


def test_a_file_growing_after_the_size_check_is_not_read_whole(tmp_path: Path, monkeypatch) -> None:
    """Guards against trusting the stat alone: a log file appended to between stat and read is cut at the limit."""
    folder = tmp_path / "articles"
    folder.mkdir()
    growing = folder / "growing.txt"
    growing.write_bytes(b"Log\n\n" + b"line of the log\n" * 200_000)  # 3.2 MB on disk
    real_stat = Path.stat

    def stat(self, *args, **kwargs):
        st = real_stat(self, *args, **kwargs)
        if self.name == "growing.txt":  # as it was an instant before the writer appended
            return os.stat_result(
                (
                    st.st_mode,
                    st.st_ino,
                    st.st_dev,
                    st.st_nlink,
                    st.st_uid,
                    st.st_gid,
                    100,
                    int(st.st_atime),
                    int(st.st_mtime),
                    int(st.st_ctime),
                )
            )
        return st

    monkeypatch.setattr(Path, "stat", stat)
    tracemalloc.start()
    try:
        result = load_documents(folder, max_file_mb=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.documents == [] and [s.source for s in result.skipped] == ["growing.txt"]
    assert "over the 1 MB limit" in result.skipped[0].reason
    assert peak < 2.5 * 2**20, f"read {peak / 2**20:.1f} MB of a 3.2 MB file with a 1 MB limit"


def test_links_to_devices_are_never_opened(tmp_path: Path) -> None:
    """Guards against an article named *.txt that links to /dev/zero, /dev/urandom or a pipe reading forever.

    /dev/zero lies outside the folder, so it is refused as a link out (without saying it is a
    device); a pipe inside the folder is refused as not a regular file.
    """
    folder = tmp_path / "articles"
    folder.mkdir()
    os.symlink("/dev/zero", folder / "zeros.txt")
    os.mkfifo(folder / "fifo")
    os.symlink("fifo", folder / "pipe.txt")
    (folder / "ok.txt").write_text("Harbour\n\nThe harbour opened in 1850.", encoding="utf-8")
    result = load_documents(folder)
    assert [(s.source, s.reason) for s in result.skipped] == [
        ("pipe.txt", "not a regular file (a link to a device, pipe or socket)"),
        ("zeros.txt", LINK_OUTSIDE),
    ]
    assert [d.source for d in result.documents] == ["ok.txt"]


# -- a single 5 MB line ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["words", "no-spaces", "digits"])
def test_chunker_splits_a_5mb_line_exactly_in_bounded_time(kind: str) -> None:
    """Guards against the chunker blowing up on one huge sentence.

    encode_ordinary_batch made one thread-pool future per word: a 5 MB line of words took
    75 s and 1.5 GB; it now takes ~2 s (benchmarks/bench_pathological.py). The 60 s bound
    is a hang guard for a busy 2-core machine, not a speed measurement.
    """
    text = one_line(5 * 10**6, kind)
    doc = make_document(text, "line", "line.txt")
    assert doc.text == text
    chunker = Chunker()
    t0 = time.perf_counter()
    chunks = chunker.split(doc)
    seconds = time.perf_counter() - t0
    check_chunks(text, chunks, chunker.chunk_tokens)
    assert len(chunks) > 1000
    assert seconds < 60, f"chunking a 5 MB line took {seconds:.0f} s"


def test_pdf_hyphen_joining_is_linear_on_one_endless_word() -> None:
    """Guards against the PDF loader's line-end hyphen joining stalling a build on an uploaded PDF.

    Its first patterns restarted at every letter of a word: 40,000 letters without a space took
    60 s (quadratic: these 100,000 would take ~6 min, a 1 MB page hours). It now takes ~0.5 s per
    MB. The 60 s bound is a hang guard, not a speed measurement.
    """
    from rag.documents.formats import join_hyphenated

    word = "a" * 10**5
    hyphens = "infor-\nmation " * (10**6 // 14)  # a million characters of line-end hyphens, all joined
    t0 = time.perf_counter()
    joined = join_hyphenated([word + "-\nb", hyphens, word])
    seconds = time.perf_counter() - t0
    assert joined[0] == word + "b" and joined[2] == word
    assert joined[1] == "information " * (10**6 // 14)
    assert seconds < 60, f"joining hyphens over 1.2 MB took {seconds:.0f} s"


def test_chunker_memory_on_a_long_line_is_bounded() -> None:
    """Guards against per-word allocations piling up: 1 MB of one line peaked at ~300 MB before, ~20 MB now."""
    doc = make_document(one_line(10**6, "words"), "line", "line.txt")
    chunker = Chunker()
    chunker.count_tokens("warm up the encoding outside the measurement")
    tracemalloc.start()
    try:
        chunks = chunker.split(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunks and peak < 64 * 2**20, f"chunking 1 MB peaked at {peak / 2**20:.0f} MB"


def test_5mb_single_line_is_indexed_by_rag_build(cli, tmp_path: Path, capsys) -> None:
    """The default size limit (20 MB) lets a 5 MB file in, so it must be indexed whole, with exact offsets."""
    folder = tmp_path / "articles"
    folder.mkdir()
    text = one_line(5 * 10**6, "words", seed=1)
    (folder / "line.txt").write_text(text, encoding="utf-8")
    assert cli(FakeEmbedder(name=MODEL), "build", str(folder), "--index", "idx", "--quiet", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["articles"] == 1 and summary["skipped"] == [] and summary["chunks"] > 5000
    rag = reader(tmp_path / "idx")
    chunks = list(rag.index().iter_chunks())
    assert len(chunks) == summary["chunks"] == rag.index().size
    check_chunks(text, chunks, rag.chunker.chunk_tokens)


# -- files of only whitespace ---------------------------------------------------------------------

WHITESPACE_FILES = {
    "spaces.txt": b"   \n\t\n   ",
    "crlf.md": b"\r\n\r\n\r\n",
    "form-feeds.txt": b"\x0c\x0b \n",
    "unicode-spaces.txt": "\u00a0\u2003\u3000\n\u2028".encode(),
    "zero-width.md": "\u200b\u200c\u200d\ufeff\u200b".encode(),
    "utf16.txt": " \n\t \u3000".encode("utf-16"),
    "blank.html": b"<html><body>   <p> \n </p></body></html>",
}


def whitespace_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in WHITESPACE_FILES.items():
        (root / name).write_bytes(data)
    (root / "empty.txt").write_bytes(b"")
    (root / "padded.txt").write_text(
        "Padded\n\n" + " \n\t" * 300_000 + "\n\nThe padded article ends with one real sentence.", encoding="utf-8"
    )
    (root / "feed.jsonl").write_text(
        json.dumps({"title": "Blank", "text": " \n "})
        + "\n"
        + json.dumps({"title": "Ferry", "text": "The ferry leaves at noon."})
        + "\n",
        encoding="utf-8",
    )
    return root


def test_whitespace_only_files_are_reported_and_never_chunked(tmp_path: Path) -> None:
    """Guards against a blank file crashing the loader or the chunker, or becoming an empty chunk."""
    folder = whitespace_folder(tmp_path / "articles")
    result = load_documents(folder)
    reasons = {s.source: s.reason for s in result.skipped}
    for name in WHITESPACE_FILES:
        if name != "blank.html":
            assert reasons.pop(name) == WHITESPACE_ONLY, name
    assert reasons == {
        "blank.html": "no text found",
        "empty.txt": "empty file",
        "feed.jsonl#0": "record has no text (only whitespace)",
    }
    assert sorted(d.source for d in result.documents) == ["feed.jsonl#1", "padded.txt"]
    for doc in result.documents:
        chunks = Chunker().split(doc)
        assert chunks and all(has_text(c.text) and c.text == c.text.strip() for c in chunks)


def test_a_folder_of_only_whitespace_fails_clearly_and_keeps_the_index(
    cli, articles_dir: Path, tmp_path: Path, capsys
) -> None:
    embedder = FakeEmbedder(name=MODEL)
    assert cli(embedder, "build", str(articles_dir), "--index", "idx", "--quiet") == 0
    current = IndexStore(tmp_path / "idx").current_name()
    blank = tmp_path / "blank"
    blank.mkdir()
    for name, data in WHITESPACE_FILES.items():
        (blank / name).write_bytes(data)
    capsys.readouterr()
    assert cli(embedder, "build", str(blank), "--index", "idx", "--quiet") == 1
    err = capsys.readouterr().err
    assert (
        f"error: no readable articles in {str(blank)!r} (skipped: blank.html: no text found; crlf.md: {WHITESPACE_ONLY}"
        in err
    )
    assert "The index was left as it was" in err and "Traceback" not in err
    assert IndexStore(tmp_path / "idx").current_name() == current


@pytest.mark.slow
def test_real_build_over_pathological_files(cli, articles_dir: Path, tmp_path: Path, capsys, real_embedder) -> None:
    """`rag build` with the packaged embedder over a 200 MB file, blank files and a 30 KB single line."""
    sparse_file(articles_dir / "huge.txt", 200 * 2**20)
    whitespace_folder(articles_dir / "blank")
    filler = one_line(30_000, "words", seed=2)
    fact = " the lighthouse keeper Ada Vance counted 412 ships sheltering in the bay during the great fog of 1893 "
    (articles_dir / "line.txt").write_text(filler[:15_000] + fact + filler[15_000:], encoding="utf-8")
    assert cli(real_embedder, "build", str(articles_dir), "--index", "idx", "--quiet") == 0
    out = capsys.readouterr().out
    assert (
        "  huge.txt: file is 200.0 MB (209,715,200 bytes), over the 20 MB limit; raise loader.max_file_mb to include it"
        in out
    )
    assert (
        f"  blank/spaces.txt: {WHITESPACE_ONLY}" in out
        and "  blank/feed.jsonl#0: record has no text (only whitespace)" in out
    )
    rag = reader(tmp_path / "idx", real_embedder)
    doc_text = (articles_dir / "line.txt").read_text(encoding="utf-8")
    line_chunks = [c for c in rag.index().iter_chunks() if c.source == "line.txt"]
    assert len(line_chunks) > 20
    check_chunks(doc_text, line_chunks, rag.chunker.chunk_tokens)
    assert all(has_text(c.text) for c in rag.index().iter_chunks())
    hit = rag.retrieve("How many ships did the lighthouse keeper Ada Vance count during the great fog?", 1)[0]
    assert hit.chunk.source == "line.txt" and "412 ships" in hit.chunk.text


# -- 50,000 tiny files ----------------------------------------------------------------------------


@pytest.mark.long
def test_50k_tiny_files_build_with_progress_in_bounded_memory(tmp_path: Path) -> None:
    """Guards against per-file costs that grow with the folder (quadratic diffing, dedup or near-duplicate search).

    A `rag build` subprocess (FakeEmbedder in place of MiniLM, everything else real) over
    RAG_TINY_FILES files (default 50,000): every file counted, exact copies indexed once with
    every source recorded, progress bars on stderr, and peak RSS under 300 MB + 20 KB per
    file (measured: ~600 MB for 50,000, 220 MB for 10,000).
    """
    n = int(os.environ.get("RAG_TINY_FILES", "50000"))
    folder = tmp_path / "articles"
    unique, copies = tiny_folder(folder, n)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, "build", str(folder), "--index", str(tmp_path / "idx"), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env=runner_env(),
    )
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = int(done.stderr.rsplit("peak_rss_kb=", 1)[1].split()[0]) / 1024
    print(f"{n} tiny files: rag build {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    summary = json.loads(done.stdout)
    canonical = unique + (10 if copies else 0)
    assert summary["articles"] == summary["chunks"] == summary["added"] - len(summary["duplicates"]) == canonical
    assert summary["added"] == n and summary["skipped"] == [] and len(summary["duplicates"]) == max(0, copies - 10)
    if n >= 20_000:  # bars appear once a stage runs over half a second
        for bar in (
            "Reading articles: 100%",
            f"{n}/{n}",
            "Near-duplicates: comparing: 100%",
            "Chunking: 100%",
            "Writing index: 100%",
        ):
            assert bar in done.stderr, bar
    assert peak_mb < 300 + 20 * n / 1024, f"peak RSS {peak_mb:.0f} MB for {n} files"
    manifest = IndexStore(tmp_path / "idx").read_manifest()
    sources = {d["source"] for d in manifest["documents"]} | {d["source"] for d in manifest["duplicates"]}
    assert len(sources) == n and f"d000/n{0:05d}.txt" in sources
    i = unique // 2  # FakeEmbedder's 64 hashed dimensions cannot tell numbers apart; BM25 can
    bm25 = RAG(
        Config.load(None, {"index.path": str(tmp_path / "idx"), "retrieval.retriever": "bm25"}),
        embedder=FakeEmbedder(name=MODEL),
    )
    hit = bm25.retrieve(f"harbour log entry number {i} ferry crossing {i * 7}", 1)[0]
    assert hit.chunk.source == f"d{i // 1000:03d}/n{i:05d}.txt"


@pytest.mark.slow
def test_many_copies_embed_once_with_the_real_embedder(cli, tmp_path: Path, capsys, real_embedder) -> None:
    """2,000 tiny files holding 10 texts: MiniLM embeds 10 chunks and the index lists all 2,000 sources."""
    folder = tmp_path / "articles"
    for i in range(2000):
        text = f"Bulletin {i % 10}\n\nThe port bulletin number {i % 10} warns of a storm reaching the {FILLER[i % 10]} coast.\n"
        (folder / f"d{i // 500}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i // 500}" / f"b{i:04d}.txt").write_text(text, encoding="utf-8")
    assert cli(real_embedder, "build", str(folder), "--index", "idx", "--quiet", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["embedded_chunks"] == summary["articles"] == 10
        and len(summary["duplicates"]) == 1990
        and summary["added"] == 2000
    )
    assert cli(real_embedder, "index", "info", "--index", "idx", "--json", "--sources") == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["sources"]) == len(set(info["sources"])) == 2000
    hit = reader(tmp_path / "idx", real_embedder).retrieve("Which bulletin warns of a storm on the museum coast?", 1)[0]
    assert "museum coast" in hit.chunk.text and hit.chunk.source == "d0/b0005.txt"
