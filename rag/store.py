"""Persist and load the FAISS index with its chunk metadata and manifest.

An index folder holds generations; ``CURRENT`` names the active one::

    index/default/
      CURRENT                 -> "gen-20250101T120000-ab12cd"
      gen-.../manifest.json   embedder, dimension, chunker settings, format version, documents
      gen-.../vectors.faiss   FAISS index of type index.type (rag/ann.py); ids = chunk rows
      gen-.../vectors.npy     exact vectors, only beside lossy (PQ) indexes, for incremental builds
      gen-.../chunks.sqlite   chunk text and metadata, read by row at query time (not all in RAM)

A build writes a complete new generation and then replaces ``CURRENT`` atomically, so a
crash mid-build leaves the previous index loadable, and readers can notice a new build.
The generation that was current before a build is kept (older ones are deleted), so a reader
that read ``CURRENT`` just before the switch can still open it.

Example:
    >>> store = IndexStore("index/default")
    >>> index = store.load(expect_embedder="all-MiniLM-L6-v2", expect_chunker=chunker.settings)
    >>> hits = index.search(query_vector, k=4)
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .ann import build_index, prepare_for_queries
from .records import Chunk

# 2: chunks carry the PDF pages they span. Format 1 indexes still load (with no pages);
# the next build rebuilds them (rag.indexing treats a format change as a settings change).
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
EXACT_VECTORS = "vectors.npy"
CHUNKS = "chunks.sqlite"
CURRENT = "CURRENT"
# What build writes into CURRENT: gen-<UTC timestamp>-<hex>; also accepts older names of that shape.
GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9_.-]+")


# Extra per-generation artifacts (e.g. a keyword index) written beside the vectors:
# each writer is called with the temporary generation folder and every chunk of the new
# generation (in row order, with their row ids) before the generation is made current.
GenerationWriter = Callable[[Path, Sequence[Chunk], np.ndarray], None]
GENERATION_WRITERS: list[GenerationWriter] = []


# Test hook: a build with RAG_TEST_PAUSE_AT=<phase> says so on stderr and waits at that
# phase of write_generation ("writing": the new generation folder half written; "switch":
# complete and renamed, CURRENT not yet switched), so a test can kill it exactly there.
PAUSE_ENV = "RAG_TEST_PAUSE_AT"


def _pause_point(phase: str) -> None:
    if os.environ.get(PAUSE_ENV) == phase:
        print(f"rag: paused at {phase} ({PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(3600)


class IndexNotFoundError(FileNotFoundError):
    """No built index at the given path."""


class IndexMismatchError(RuntimeError):
    """The index was built with other settings (embedder, chunker, format) than requested."""


class IndexCorruptError(RuntimeError):
    """The index files are missing or unreadable."""


_CHUNK_COLUMNS = ("row", "id", "doc_id", "title", "source", "text", "start", "end_", "url", "date", "pages")


def _pages_text(pages: tuple[int, ...]) -> str:
    return ",".join(str(p) for p in pages)


def _chunk(r: Sequence[Any]) -> Chunk:
    """A chunk from a row of :data:`_CHUNK_COLUMNS` (``r[0]`` is the row id)."""
    return Chunk(id=r[1], doc_id=r[2], title=r[3], source=r[4], text=r[5], start=r[6], end=r[7], url=r[8], date=r[9],
                 pages=tuple(int(p) for p in r[10].split(",")) if r[10] else ())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_generation(
    root: str | Path,
    vectors: np.ndarray,
    chunks: Sequence[Chunk],
    manifest: dict[str, Any],
    rows: Sequence[int] | None = None,
    *,
    writers: Sequence[GenerationWriter] = (),
    show_progress: bool = False,
) -> Path:
    """Write a complete index generation under ``root`` and make it current atomically.

    Leftovers of an interrupted earlier write are removed first, so their space is free
    for this one. If writing fails (e.g. the disk is full), the unfinished generation is
    removed, ``CURRENT`` still names the previous generation, and the error is re-raised
    (:func:`is_disk_full` tells a full disk apart).

    Args:
        root: the index folder (created if missing).
        vectors: ``(len(chunks), dim)`` float32 normalised vectors.
        chunks: the chunk records, aligned with ``vectors``.
        manifest: settings and document list; ``format_version`` and counts are added.
        rows: FAISS ids for the chunks (default ``0..n-1``), ascending.
        writers: extra per-generation writers for this build only, called after
            :data:`GENERATION_WRITERS` with the same arguments.
        show_progress: show the writing steps as a progress bar (when they take over half a second).

    Returns:
        The new generation folder.
    """
    import faiss
    from tqdm.auto import tqdm

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    previous = IndexStore(root).current_name_or_none()
    _remove_leftovers(root, previous)
    if len(vectors) != len(chunks):
        raise ValueError(f"got {len(vectors)} vectors for {len(chunks)} chunks")
    row_ids = np.arange(len(chunks), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    tmp = root / f".tmp-{name}"
    final = root / name
    tmp.mkdir()
    extra = (*GENERATION_WRITERS, *writers)
    bar = tqdm(total=4 + len(extra), desc="Writing index", unit="step", disable=not show_progress, delay=0.5)
    try:
        dim = int(manifest["embedder"]["dimension"])
        # manifest["index"] holds the index.* settings (type, recall_target, pq_bytes); the
        # index type is resolved here, by corpus size for "auto", and what was built recorded.
        wanted = {k: v for k, v in (manifest.get("index") or {}).items() if k != "built"}
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), dim)
        built = build_index(x, row_ids, str(wanted.get("type", "auto")), pq_bytes=int(wanted.get("pq_bytes", 0)),
                            recall_target=float(wanted.get("recall_target", 0.95)))
        bar.update()
        faiss.write_index(built.index, str(tmp / VECTORS))
        if built.info.get("pq_bytes"):
            np.save(tmp / EXACT_VECTORS, x)  # PQ codes are lossy; incremental builds reuse these
        bar.update()
        _pause_point("writing")
        _write_chunks(tmp / CHUNKS, chunks, row_ids)
        bar.update()
        for writer in extra:
            writer(tmp, chunks, row_ids)
            bar.update()
        manifest = {**manifest, "index": {**wanted, "built": built.info}, "format_version": FORMAT_VERSION, "chunks": len(chunks), "generation": name}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        os.rename(tmp, final)
        _fsync_dir(root)
        _pause_point("switch")
        _set_current(root, name)
        bar.update()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if IndexStore(root).current_name_or_none() != name:
                # Renamed but never made current (e.g. no space left for the CURRENT pointer): a
                # complete generation no reader will open, taking the space the next build needs.
                shutil.rmtree(final, ignore_errors=True)
            _remove_leftovers(root, previous)
        except OSError:
            pass  # the original error matters more; the next write cleans up
        raise
    finally:
        bar.close()
    _collect_garbage(root, keep={name, previous} - {None})
    return final


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the disk or quota is full.

    Writers report it differently: ``OSError`` with ``ENOSPC``/``EDQUOT`` (files, NumPy,
    bm25s), ``sqlite3.OperationalError`` "database or disk is full" (``SQLITE_FULL``), and
    FAISS a ``RuntimeError`` whose text ends in "(No space left on device)".
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if isinstance(e, sqlite3.Error) and (getattr(e, "sqlite_errorcode", None) == 13 or "disk is full" in str(e)):
            return True
        if isinstance(e, RuntimeError) and ("No space left on device" in str(e) or "Disk quota exceeded" in str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def _remove_leftovers(root: Path, current: str | None) -> None:
    """Remove what interrupted writes left behind: temporary generation folders and pointer
    files, and generations newer than the current one that were never made current.

    Runs under the build lock, before and after a write, so no other writer owns them;
    older generations are left to :func:`_collect_garbage` (a reader may still use them).
    """
    for entry in root.iterdir():
        if entry.name.startswith(".tmp-gen-") and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}."):
            entry.unlink(missing_ok=True)
        elif current and entry.name.startswith("gen-") and entry.name[4:19] > current[4:19] and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _write_chunks(path: Path, chunks: Sequence[Chunk], rows: np.ndarray) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT, doc_id TEXT, title TEXT, source TEXT, text TEXT, start INTEGER, "
                    "end_ INTEGER, url TEXT, date TEXT, pages TEXT)")
        con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ((int(r), c.id, c.doc_id, c.title, c.source, c.text, c.start, c.end, c.url, c.date, _pages_text(c.pages)) for r, c in zip(rows, chunks)),
        )
        con.execute("CREATE INDEX chunks_doc ON chunks(doc_id)")
        con.commit()
    finally:
        con.close()


def _set_current(root: Path, name: str) -> None:
    tmp = root / f".{CURRENT}.{secrets.token_hex(4)}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)


def _collect_garbage(root: Path, keep: set[str]) -> None:
    """Remove generations other than ``keep`` and leftovers of interrupted builds.

    ``keep`` holds the new generation and the one current before it: a reader may have read
    ``CURRENT`` just before the switch and not opened its files yet, and a reader that loaded
    it may still open its keyword index lazily. Readers of older generations keep working:
    FAISS is read into memory and an open SQLite file stays readable after it is unlinked.
    """
    for entry in root.iterdir():
        if entry.name in keep:
            continue
        if entry.name.startswith(("gen-", ".tmp-gen-")) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}."):
            entry.unlink(missing_ok=True)


class LoadedIndex:
    """One loaded index generation: FAISS vectors in memory, chunk text read on demand."""

    def __init__(self, path: Path, manifest: dict[str, Any], index: Any) -> None:
        self.path = path
        self.manifest = manifest
        self.index = index
        self._lock = threading.Lock()
        try:
            self._con = sqlite3.connect(f"file:{path / CHUNKS}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        try:
            self._query("SELECT max(row) FROM chunks")  # reads the header and schema: catches a garbled file now
            have = {r[1] for r in self._query("PRAGMA table_info(chunks)")}
        except IndexCorruptError:
            self._con.close()
            raise
        # A format 1 chunk store has no pages column: its chunks load with no pages.
        self._columns = ",".join(c if c in have else f"'' AS {c}" for c in _CHUNK_COLUMNS)

    def _damaged(self, exc: BaseException) -> IndexCorruptError:
        return IndexCorruptError(f"chunk store {str(self.path / CHUNKS)!r} is unreadable ({exc}); "
                                 f"rebuild with: rag build ARTICLES_DIR --index {self.path.parent} --full")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a read on the chunk store; a damaged file raises :class:`IndexCorruptError`."""
        with self._lock:
            try:
                return self._con.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError:
                raise  # e.g. used after close(): a bug here, not a damaged file
            except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
                raise self._damaged(exc) from exc

    @property
    def size(self) -> int:
        """Number of chunks in the index."""
        return int(self.index.ntotal)

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[Chunk, float]]]:
        """Top-``k`` chunks by inner product for each query vector (fewer if the index is smaller)."""
        if self.size == 0 or k <= 0:
            return [[] for _ in range(len(query_vectors))]
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, self.size))
        results = []
        for row_scores, row_ids in zip(scores, ids):
            valid = [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            by_row = self.chunks_by_rows([i for i, _ in valid])
            results.append([(by_row[i], s) for i, s in valid if i in by_row])
        return results

    def chunks_by_rows(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """Fetch chunk records by FAISS id."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        fetched = self._query(f"SELECT {self._columns} FROM chunks WHERE row IN ({marks})", [int(r) for r in rows])
        return {r[0]: _chunk(r) for r in fetched}

    def rows_and_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every FAISS id with its stored vector: ``(ids int64 (n,), vectors float32 (n, dim))``."""
        import faiss

        n = self.size
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.index.d), dtype=np.float32)
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        exact = self.path / EXACT_VECTORS
        vectors = np.load(exact) if exact.is_file() else self.index.index.reconstruct_n(0, n)
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def iter_rows(self):
        """``(row, chunk)`` pairs for every chunk, in row order."""
        for r in self._query(f"SELECT {self._columns} FROM chunks ORDER BY row"):
            yield r[0], _chunk(r)

    def iter_chunks(self):
        """All chunks in row order (streams from disk)."""
        for _row, chunk in self.iter_rows():
            yield chunk

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._con.close()


class IndexStore:
    """Reads the current generation of an index folder.

    Args:
        root: the index folder (e.g. ``index/default``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def current_name(self) -> str | None:
        """Name of the current generation, or None when nothing is built.

        Raises:
            IndexCorruptError: ``CURRENT`` holds something other than a generation name
                (garbled bytes, a path); a rebuild replaces it.
        """
        path = self.root / CURRENT
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        name = raw.decode("utf-8", "replace").strip()  # garbled bytes become U+FFFD, which no name matches
        if not name:
            return None
        # Only a plain generation name: a path in CURRENT would make readers open files elsewhere.
        if not GENERATION_NAME.fullmatch(name):
            raise IndexCorruptError(
                f"index pointer {str(path)!r} is damaged (it holds {raw[:60]!r}, not a generation name); "
                f"rebuild with: rag build ARTICLES_DIR --index {self.root} --full"
            )
        return name

    def current_name_or_none(self) -> str | None:
        """:meth:`current_name`, with a damaged ``CURRENT`` read as nothing built (for writers, which replace it)."""
        try:
            return self.current_name()
        except IndexCorruptError:
            return None

    def exists(self) -> bool:
        """Whether a built index is present (a damaged one counts: loading it says what is wrong)."""
        try:
            return self.current_name() is not None
        except IndexCorruptError:
            return True

    def size_on_disk(self) -> dict[str, int]:
        """Bytes used by the current generation and by the whole index folder."""
        def du(path: Path) -> int:
            total = 0
            for f in path.rglob("*"):
                try:
                    if f.is_file() and not f.is_symlink():
                        total += f.stat().st_size
                except OSError:
                    pass  # deleted by a concurrent build while we walked
            return total

        name = self.current_name_or_none()
        return {"current_bytes": du(self.root / name) if name else 0, "total_bytes": du(self.root) if self.root.is_dir() else 0}

    def read_manifest(self) -> dict[str, Any]:
        """The current generation's manifest."""
        name = self.current_name()
        if name is None:
            raise IndexNotFoundError(f"no index at {str(self.root)!r}; build one with: rag build ARTICLES_DIR --index {self.root}")
        try:
            manifest = json.loads((self.root / name / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError(f"expected a JSON object, got {type(manifest).__name__}")
            return manifest
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, not an object
            raise IndexCorruptError(f"index manifest {str(self.root / name / MANIFEST)!r} is unreadable ({exc}); rebuild with: rag build ARTICLES_DIR --index {self.root}") from exc

    def load(self, expect_embedder: str | None = None, expect_chunker: dict | None = None) -> LoadedIndex:
        """Load the current generation and check it was built with the expected settings.

        Raises:
            IndexNotFoundError: nothing built at ``root``.
            IndexMismatchError: built with another embedder, chunker or format version.
            IndexCorruptError: files missing or unreadable.
        """
        import faiss

        manifest = self.read_manifest()
        check_compatible(manifest, expect_embedder, expect_chunker, self.root)
        prepare_for_queries()
        path = self.root / manifest["generation"]
        try:
            index = faiss.read_index(str(path / VECTORS))
        except RuntimeError as exc:
            raise IndexCorruptError(f"FAISS file {str(path / VECTORS)!r} is unreadable; rebuild with: rag build ARTICLES_DIR --index {self.root} --full") from exc
        if not (path / CHUNKS).is_file():
            raise IndexCorruptError(f"chunk store {str(path / CHUNKS)!r} is missing; rebuild with: rag build ARTICLES_DIR --index {self.root} --full")
        if index.ntotal != manifest.get("chunks", index.ntotal):
            raise IndexCorruptError(f"index at {str(path)!r} holds {index.ntotal} vectors but its manifest lists {manifest.get('chunks')} chunks; rebuild with --full")
        return LoadedIndex(path, manifest, index)


def check_compatible(manifest: dict[str, Any], expect_embedder: str | None, expect_chunker: dict | None, root: Path | str) -> None:
    """Raise :class:`IndexMismatchError` when ``manifest`` was built with other settings."""
    how = f"rebuild it with: rag build ARTICLES_DIR --index {root} --full"
    version = manifest.get("format_version")
    if version not in READABLE_FORMATS:
        raise IndexMismatchError(f"index at {str(root)!r} has format version {version}, this version of rag reads "
                                 f"{', '.join(map(str, READABLE_FORMATS))}; {how}")
    built_with = manifest.get("embedder", {}).get("name")
    if expect_embedder is not None and built_with != expect_embedder:
        raise IndexMismatchError(f"index at {str(root)!r} was built with embedder {built_with!r} but the config uses {expect_embedder!r}; {how} (or set embedding.model: {built_with})")
    if expect_chunker is not None and manifest.get("chunker") != expect_chunker:
        raise IndexMismatchError(f"index at {str(root)!r} was built with chunker settings {manifest.get('chunker')} but the config asks for {expect_chunker}; {how}")
