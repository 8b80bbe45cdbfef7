"""A full disk during a build (rag/indexing/builder.py, rag/store/faiss.py): the previous index stays current and intact.

Unit tests make one write fail the way a full disk makes it fail, at each place a build
writes: the FAISS file (FAISS raises ``RuntimeError ... (No space left on device)``), the
chunk store (a real ``SQLITE_FULL`` from SQLite's page limit), the BM25 index, the MinHash
signatures, the manifest, its fsync and the ``CURRENT`` pointer (``OSError(ENOSPC)``). The
slow test fills a real tmpfs and runs real ``rag build`` subprocesses with the packaged
embedder; it is skipped where tmpfs cannot be mounted (not root, no mount permission).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder, FakeGenerator

from rag import RAG, Config
from rag.retrieval import keyword as keyword_module
from rag.store import faiss as store_module
from rag.indexing import BuildError, DiskFullError, remove_article
from rag.documents import NOT_ARTICLES
from rag.store import CURRENT, is_disk_full

ROOT = Path(__file__).resolve().parent.parent
NEW_ARTICLE = "Tides\n\nThe harbour tide tables are printed every Monday by the port office.\n"


def make_rag(index: Path, embedder=None, generator=None) -> RAG:
    return RAG(Config.load(None, {"index.path": str(index)}), embedder=embedder or FakeEmbedder(), generator=generator)


def enospc(path: object = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))


def fail_faiss(monkeypatch) -> None:
    import faiss

    def write_index(index, path):
        Path(path).write_bytes(b"\0" * 4096)  # FAISS writes what fits, then fails
        raise RuntimeError(
            f"Error in void faiss::write_index(const Index*, IOWriter*, int) at index_write.cpp:499: Error: "
            f"'ret == (size * 4)' failed: write error in {path}: 4096 != 1280000 (No space left on device)"
        )

    monkeypatch.setattr(faiss, "write_index", write_index)


class _FullSQLite:
    """``sqlite3`` whose write connections may hold only two pages: SQLite itself raises SQLITE_FULL."""

    def __getattr__(self, name):
        return getattr(sqlite3, name)

    def connect(self, path, *args, **kwargs):
        con = sqlite3.connect(path, *args, **kwargs)
        if not kwargs.get("uri"):  # readers open with ?mode=ro URIs
            con.execute("PRAGMA max_page_count=2")
        return con


def fail_sqlite(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "sqlite3", _FullSQLite())


def fail_bm25(monkeypatch) -> None:
    def save(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "data.csc.index.npy").write_bytes(b"\x93NUMPY")
        raise enospc(Path(folder) / "data.csc.index.npy")

    monkeypatch.setattr(keyword_module.KeywordIndex, "save", save)


def fail_signatures(monkeypatch) -> None:
    def savez(fh, **arrays):
        fh.write(b"PK\x03\x04")
        raise enospc(getattr(fh, "name", None))

    monkeypatch.setattr(np, "savez", savez)


class _FullJSON:
    def __getattr__(self, name):
        return getattr(json, name)

    def dump(self, obj, fh, **kwargs):
        fh.write(json.dumps(obj, **kwargs)[:100])
        raise enospc(fh.name)


def fail_manifest(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "json", _FullJSON())


def fail_fsync(monkeypatch) -> None:
    def fsync(fd):
        raise enospc()  # NFS and some FUSE disks report a full disk only when flushing

    monkeypatch.setattr(os, "fsync", fsync)


def fail_current(monkeypatch) -> None:
    def set_current(root, name):
        (Path(root) / f".{CURRENT}.dead").write_text(name[:5])
        raise enospc(Path(root) / f".{CURRENT}.dead")

    monkeypatch.setattr(store_module, "_set_current", set_current)


FAILURES = {
    "faiss": fail_faiss,
    "sqlite": fail_sqlite,
    "bm25": fail_bm25,
    "signatures": fail_signatures,
    "manifest": fail_manifest,
    "fsync": fail_fsync,
    "current": fail_current,
}


def index_entries(index: Path) -> list[str]:
    """What a build left in the index folder, beside the lock and the marker that keeps builds from reading it as articles."""
    return sorted(p.name for p in index.iterdir() if p.name not in (".build.lock", NOT_ARTICLES))


@pytest.mark.parametrize("where", sorted(FAILURES))
def test_full_disk_keeps_the_previous_index_and_says_what_to_do(
    where: str, articles_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Guards against a full disk leaving a half-written generation, moving CURRENT, or a raw OSError/RuntimeError."""
    index = tmp_path / "index"
    make_rag(index).build(articles_dir)
    before = (index / CURRENT).read_text()
    entries = index_entries(index)
    (articles_dir / "tides.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    with monkeypatch.context() as m:
        FAILURES[where](m)
        with pytest.raises(DiskFullError) as caught:
            make_rag(index).build(articles_dir)
    message = str(caught.value)
    assert isinstance(caught.value, BuildError) and is_disk_full(caught.value.__cause__)
    assert message.startswith(f"no space left on the disk holding index {str(index)!r}")
    assert f"The previous index ({before.strip()}) is unchanged and still answers questions" in message
    assert (
        "Free some disk space" in message
        and f"run the build again: rag build {articles_dir} --index {index}" in message
    )
    # CURRENT is unchanged, and nothing of the failed build is left: no temporary folder,
    # no renamed-but-unused generation, no temporary pointer file.
    assert (index / CURRENT).read_text() == before
    assert index_entries(index) == entries
    # The previous generation loads and answers.
    reader = make_rag(index, generator=FakeGenerator("DeepSeek released R1 on 20 January 2025 [1]."))
    answer = reader.ask("When did DeepSeek release R1?")
    assert answer.passages[0].chunk.source == "r1.md" and answer.citations
    assert all(p.chunk.source != "tides.txt" for p in reader.retrieve("tide tables printed every Monday", 3))
    # With space again, the same build goes through and adds the article.
    summary = make_rag(index).build(articles_dir)
    assert summary.added == 1 and summary.changes["added"] == ["tides.txt"]
    assert make_rag(index).retrieve("tide tables printed every Monday", 1)[0].chunk.source == "tides.txt"


def test_full_disk_on_the_first_build_leaves_no_index(articles_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Guards against a failed first build leaving a CURRENT pointer or a generation behind."""
    index = tmp_path / "index"
    fail_sqlite(monkeypatch)
    with pytest.raises(DiskFullError, match="No index was there before, so there is still none"):
        make_rag(index).build(articles_dir)
    assert index_entries(index) == []


def test_other_write_errors_are_not_called_a_full_disk(articles_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Guards against every OSError being reported as a full disk (a read-only disk needs another fix)."""
    index = tmp_path / "index"
    make_rag(index).build(articles_dir)

    def save(self, folder):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))

    monkeypatch.setattr(keyword_module.KeywordIndex, "save", save)
    (articles_dir / "tides.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    with pytest.raises(OSError) as caught:
        make_rag(index).build(articles_dir)
    assert caught.value.errno == errno.EROFS and not isinstance(caught.value, DiskFullError)
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp-")]


def test_full_disk_while_removing_an_article(articles_dir: Path, tmp_path: Path, monkeypatch) -> None:
    index = tmp_path / "index"
    make_rag(index).build(articles_dir)
    before = (index / CURRENT).read_text()
    fail_manifest(monkeypatch)
    with pytest.raises(DiskFullError, match=r"run the build again: rag index remove r1.md --index "):
        remove_article(index, "r1.md")
    assert (index / CURRENT).read_text() == before
    assert make_rag(index).retrieve("When did DeepSeek release R1?", 1)[0].chunk.source == "r1.md"


def test_leftovers_of_an_interrupted_write_are_removed_before_writing(
    articles_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Guards against a killed build's files taking the space the next build needs until after it succeeds."""
    index = tmp_path / "index"
    rag = make_rag(index)
    rag.build(articles_dir)
    current = rag.store.current_name()
    seen: list[list[str]] = []
    from rag.indexing import builder as indexing

    monkeypatch.setattr(
        indexing,
        "BUILD_WRITERS",
        (*indexing.BUILD_WRITERS, lambda tmp, chunks, rows: seen.append(sorted(p.name for p in tmp.parent.iterdir()))),
    )
    try:
        (index / ".tmp-gen-20000101T000000-dead01").mkdir()
        (index / ".tmp-gen-20000101T000000-dead01" / "vectors.faiss").write_bytes(b"x" * 10000)
        (index / "gen-99990101T000000-dead02").mkdir()  # renamed, never made current
        (index / f".{CURRENT}.dead").write_text("gen-99990101T000000-dead02\n")
        (articles_dir / "tides.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        rag.build(articles_dir)
    finally:
        monkeypatch.undo()
    during = seen[0]
    assert current in during and not [n for n in during if "dead" in n], during


def test_full_disk_when_taking_the_build_lock_leaves_no_owner_file(
    articles_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Guards against a 0-byte ``.build.owner.<pid>`` left behind when the holder's details cannot be written."""
    real_write_text = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.startswith(".build.owner."):
            real_write_text(self, "")  # created, then the disk is full
            raise enospc(self)
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    index = tmp_path / "index"
    summary = make_rag(index).build(articles_dir)  # the lock holds without its details
    assert summary.added == 3
    assert not [p.name for p in index.iterdir() if p.name.startswith(".build.owner")]


def test_cli_reports_a_full_disk_without_a_traceback(articles_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import rag.embedding as embedding
    from rag.cli import main

    monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: FakeEmbedder(name=cfg.model))
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    before = Path("idx", CURRENT).read_text()
    (articles_dir / "tides.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    capsys.readouterr()
    with monkeypatch.context() as m:
        fail_faiss(m)
        assert main(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "error: no space left on the disk holding index 'idx' while writing idx/.tmp-gen-" in err
    assert f"run the build again: rag build {articles_dir} --index idx" in err and "Traceback" not in out + err
    assert Path("idx", CURRENT).read_text() == before


# -- a real full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MB tmpfs, unmounted afterwards; skips where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the patched-write tests above cover the same paths")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); the patched-write tests above cover the same paths"
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int) -> None:
    """Write ``path`` so that about ``leave`` bytes stay free on its disk."""
    with open(path, "wb") as fh:
        fh.write(b"\0" * max(0, free_bytes(path.parent) - leave))


@pytest.mark.slow
def test_real_full_disk_with_rag_build(articles_dir: Path, small_disk: Path, real_embedder, real_generator) -> None:
    """A real `rag build` on a full tmpfs fails clearly; the index answers; freeing space and rerunning works."""
    index = small_disk / "index"
    make_rag(index, real_embedder).build(articles_dir)
    before = (index / CURRENT).read_text()
    (articles_dir / "tides.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    fill(small_disk / "filler", leave=24 * 1024)  # a generation of these articles takes ~60 KB

    cmd = [sys.executable, "-m", "rag.cli", "build", str(articles_dir), "--index", str(index), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=small_disk.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert f"error: no space left on the disk holding index {str(index)!r}" in done.stderr
    assert f"run the build again: rag build {articles_dir} --index {index}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (index / CURRENT).read_text() == before
    assert sorted(p.name for p in index.iterdir()) == sorted([".build.lock", NOT_ARTICLES, CURRENT, before.strip()])

    reader = make_rag(index, real_embedder, real_generator)
    answer = reader.ask("When did DeepSeek release R1?", max_new_tokens=48)
    assert answer.passages[0].chunk.source == "r1.md" and answer.text.strip()

    # Free the space, but leave what a build killed mid-write would: the rerun must clear it first.
    (small_disk / "filler").unlink()
    leftover = index / ".tmp-gen-20000101T000000-dead01"
    leftover.mkdir()
    fill(leftover / "vectors.faiss", leave=24 * 1024)
    done = subprocess.run(cmd, cwd=small_disk.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout and not leftover.exists()
    assert (
        make_rag(index, real_embedder).retrieve("When are the tide tables printed?", 1)[0].chunk.source == "tides.txt"
    )
