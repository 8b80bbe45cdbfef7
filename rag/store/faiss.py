"""The FAISS folder store (``index.backend: faiss``): generations of a FAISS index, its chunks and manifest.

An index folder holds generations; ``CURRENT`` names the active one::

    index/default/
      CURRENT                 -> "gen-20250101T120000-ab12cd"
      gen-.../manifest.json   embedder, dimension, chunker settings, format version, documents
      gen-.../vectors.faiss   FAISS index of type index.type (rag/store/ann.py); ids = chunk rows
      gen-.../vectors.npy     exact vectors, only beside lossy (PQ) indexes, for incremental builds
      gen-.../chunks.sqlite   chunk text and metadata, read by row at query time (not all in RAM)

A build writes a complete new generation and then replaces ``CURRENT`` atomically, so a
crash mid-build leaves the previous index loadable, and readers can notice a new build.
The generation that was current before a build is kept (older ones are deleted), so a reader
that read ``CURRENT`` just before the switch can still open it.

This module writes generations (:func:`write_generation`) and holds :class:`IndexStore`;
:mod:`.loaded` holds :class:`LoadedIndex` (what retrievers ask of a generation) and
:mod:`.ann` the FAISS index types.

Example:
    >>> store = IndexStore("index/default")
    >>> index = store.load(expect_embedder="all-MiniLM-L6-v2", expect_chunker=chunker.settings)
    >>> hits = index.dense_search(query_vector, top_k=4)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..documents import mark_not_articles
from ..faults import pause_point
from ..records import Chunk, Manifest
from .ann import build_index, prepare_for_queries
from .base import (
    CHUNK_COLUMNS,
    CHUNKS,
    CURRENT,
    EXACT_VECTORS,
    FORMAT_VERSION,
    GENERATION_NAME,
    MANIFEST,
    VECTORS,
    GenerationWriter,
    IndexBackend,
    IndexCorruptError,
    IndexNotFoundError,
    check_compatible,
    chunk_to_row,
)
from .loaded import LoadedIndex


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
    manifest: Manifest | Mapping[str, Any],
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
        manifest: settings and document list (a :class:`Manifest`, or its JSON form);
            ``format_version``, ``chunks``, ``generation`` and what index was built are filled in.
        rows: FAISS ids for the chunks (default ``0..n-1``), ascending.
        writers: per-generation writers (e.g. :func:`rag.retrieval.keyword.write_keyword_index`); only
            these are written beside the vectors and chunks.
        show_progress: show the writing steps as a progress bar (when they take over half a second).

    Returns:
        The new generation folder.
    """
    from tqdm.auto import tqdm

    manifest = manifest if isinstance(manifest, Manifest) else Manifest.from_dict(manifest)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mark_not_articles(root)  # a build of a folder that holds this index skips it
    previous = IndexStore(root).current_name_or_none()
    _remove_leftovers(root, previous)
    if len(vectors) != len(chunks):
        raise ValueError(f"got {len(vectors)} vectors for {len(chunks)} chunks")
    row_ids = np.arange(len(chunks), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    tmp = root / f".tmp-{name}"
    tmp.mkdir()
    bar = tqdm(total=4 + len(writers), desc="Writing index", unit="step", disable=not show_progress, delay=0.5)
    try:
        _write_files(tmp, vectors, chunks, row_ids, manifest, name, writers, bar)
        os.rename(tmp, root / name)
        _fsync_dir(root)
        pause_point("switch")
        _set_current(root, name)
        bar.update()
    except BaseException:
        _abandon(root, name, previous)
        raise
    finally:
        bar.close()
    _collect_garbage(root, keep={name, previous} - {None})
    return root / name


def _write_files(
    tmp: Path,
    vectors: np.ndarray,
    chunks: Sequence[Chunk],
    row_ids: np.ndarray,
    manifest: Manifest,
    name: str,
    writers: Sequence[GenerationWriter],
    bar: Any,
) -> None:
    """Write every file of generation ``name`` into ``tmp``, the manifest last, all fsynced."""
    import faiss

    # manifest.index holds the index.* settings (type, recall_target, pq_bytes); the index
    # type is resolved here, by corpus size for "auto", and what was built recorded.
    wanted = manifest.index_settings
    x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), manifest.dimension)
    built = build_index(
        x,
        row_ids,
        str(wanted.get("type", "auto")),
        pq_bytes=int(wanted.get("pq_bytes", 0)),
        recall_target=float(wanted.get("recall_target", 0.95)),
    )
    bar.update()
    faiss.write_index(built.index, str(tmp / VECTORS))
    if built.info.get("pq_bytes"):
        np.save(tmp / EXACT_VECTORS, x)  # PQ codes are lossy; incremental builds reuse these
    bar.update()
    pause_point("writing")
    _write_chunks(tmp / CHUNKS, chunks, row_ids)
    bar.update()
    for writer in writers:
        writer(tmp, chunks, row_ids)
        bar.update()
    done = manifest.to_dict() | {
        "index": {**wanted, "built": built.info},
        "format_version": FORMAT_VERSION,
        "chunks": len(chunks),
        "generation": name,
    }
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(done, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def _abandon(root: Path, name: str, previous: str | None) -> None:
    """Remove what a failed write of generation ``name`` left; ``CURRENT`` keeps naming ``previous``."""
    shutil.rmtree(root / f".tmp-{name}", ignore_errors=True)
    try:
        if IndexStore(root).current_name_or_none() != name:
            # Renamed but never made current (e.g. no space left for the CURRENT pointer): a
            # complete generation no reader will open, taking the space the next build needs.
            shutil.rmtree(root / name, ignore_errors=True)
        _remove_leftovers(root, previous)
    except OSError:
        pass  # the original error matters more; the next write cleans up


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
        con.execute(
            "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT, doc_id TEXT, title TEXT, source TEXT, text TEXT, start INTEGER, "
            "end_ INTEGER, url TEXT, date TEXT, pages TEXT, headings TEXT)"
        )
        con.executemany(
            f"INSERT INTO chunks VALUES ({','.join('?' * len(CHUNK_COLUMNS))})",
            (chunk_to_row(int(r), c) for r, c in zip(rows, chunks)),
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


class IndexStore(IndexBackend):
    """Reads the current generation of an index folder.

    Args:
        root: the index folder (e.g. ``index/default``).
    """

    keeps_term_statistics: ClassVar[bool] = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def label(self) -> str:
        """The index as messages name it: its folder."""
        return str(self.root)

    def stale_reason(self) -> str | None:
        """Why the current generation cannot be updated in place: never (a build always writes a whole new generation)."""
        return None

    def write(
        self,
        vectors: np.ndarray,
        chunks: Sequence[Chunk],
        manifest: Manifest,
        rows: Sequence[int] | np.ndarray,
        *,
        incremental: bool,
        writers: Sequence[GenerationWriter] = (),
        show_progress: bool = False,
    ) -> str:
        """Write a new generation (:func:`write_generation`; ``incremental`` changes nothing here) and return its name."""
        return write_generation(
            self.root, vectors, chunks, manifest, rows, writers=writers, show_progress=show_progress
        ).name

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
        return {
            "current_bytes": du(self.root / name) if name else 0,
            "total_bytes": du(self.root) if self.root.is_dir() else 0,
        }

    def read_manifest(self) -> dict[str, Any]:
        """The current generation's manifest as its JSON object (:meth:`manifest` gives it typed)."""
        name = self.current_name()
        if name is None:
            raise IndexNotFoundError(
                f"no index at {str(self.root)!r}; build one with: rag build ARTICLES_DIR --index {self.root}"
            )
        try:
            manifest = json.loads((self.root / name / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError(f"expected a JSON object, got {type(manifest).__name__}")
            return manifest
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, not an object
            raise IndexCorruptError(
                f"index manifest {str(self.root / name / MANIFEST)!r} is unreadable ({exc}); rebuild with: rag build ARTICLES_DIR --index {self.root}"
            ) from exc

    def manifest(self) -> Manifest:
        """The current generation's :class:`Manifest`.

        Raises:
            IndexNotFoundError: nothing built at ``root``.
            IndexCorruptError: the manifest is unreadable or lacks what an index needs.
        """
        raw = self.read_manifest()
        try:
            return Manifest.from_dict(raw)
        except ValueError as exc:
            raise IndexCorruptError(
                f"index manifest in {str(self.root / str(raw.get('generation')))!r} is damaged ({exc}); "
                f"rebuild with: rag build ARTICLES_DIR --index {self.root} --full"
            ) from exc

    def load(self, expect_embedder: str | None = None, expect_chunker: Mapping[str, Any] | None = None) -> LoadedIndex:
        """Load the current generation and check it was built with the expected settings.

        Raises:
            IndexNotFoundError: nothing built at ``root``.
            IndexMismatchError: built with another embedder, chunker or format version.
            IndexCorruptError: files missing or unreadable.
        """
        import faiss

        manifest = self.manifest()
        check_compatible(manifest, expect_embedder, expect_chunker, self.root)
        prepare_for_queries()
        path = self.root / manifest.generation
        try:
            index = faiss.read_index(str(path / VECTORS))
        except RuntimeError as exc:
            raise IndexCorruptError(
                f"FAISS file {str(path / VECTORS)!r} is unreadable; rebuild with: rag build ARTICLES_DIR --index {self.root} --full"
            ) from exc
        if not (path / CHUNKS).is_file():
            raise IndexCorruptError(
                f"chunk store {str(path / CHUNKS)!r} is missing; rebuild with: rag build ARTICLES_DIR --index {self.root} --full"
            )
        if index.ntotal != manifest.chunks:
            raise IndexCorruptError(
                f"index at {str(path)!r} holds {index.ntotal} vectors but its manifest lists {manifest.chunks} chunks; rebuild with --full"
            )
        return LoadedIndex(path, manifest, index)
