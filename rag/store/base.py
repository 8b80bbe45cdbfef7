"""What the store's modules share: file names, format versions, errors, the settings check.

:func:`settings_difference` is the one comparison of an index's manifest with the settings
in use; :func:`check_compatible` (loading) and the builder's decision to rebuild
(:mod:`rag.indexing`) both call it.
"""

from __future__ import annotations

import errno
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ..errors import RagError
from ..records import Chunk, Manifest

if TYPE_CHECKING:
    from ..retrieval.filters import MetadataFilter

# 2: chunks carry the PDF pages they span and their heading path, and what is embedded and
# what BM25 indexes is "title — headings" plus the text (Chunk.indexed_text). Format 1
# indexes still load (no pages, no headings); the next build rebuilds them (a format change
# is a settings change for the builder).
# 3: a title is a short label (the file name made readable when an article declares none;
# never its first paragraph), and what is embedded is cut to the embedder's window by
# trimming the title and headings, never the chunk's words (rag/embedding/window.py). Format
# 2 indexes still load; the next build rebuilds them.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
EXACT_VECTORS = "vectors.npy"
CHUNKS = "chunks.sqlite"
CURRENT = "CURRENT"
# What build writes into CURRENT: gen-<UTC timestamp>-<hex>; also accepts older names of that shape.
GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9_.-]+")

# An extra per-generation artifact (e.g. the keyword index) written beside the vectors: it
# is called with the temporary generation folder and every chunk of the new generation (in
# row order, with their row ids) before the generation is made current. A build passes its
# writers to write_generation explicitly.
GenerationWriter = Callable[[Path, Sequence[Chunk], np.ndarray], None]


class IndexNotFoundError(RagError, FileNotFoundError):
    """No built index at the given path."""


class IndexMismatchError(RagError, RuntimeError):
    """The index was built with other settings (embedder, chunker, format) than requested."""


class IndexCorruptError(RagError, RuntimeError):
    """The index files are missing or unreadable."""


CHUNK_COLUMNS = ("row", "id", "doc_id", "title", "source", "text", "start", "end_", "url", "date", "pages", "headings")


def chunk_to_row(row: int, c: Chunk) -> tuple:
    """The row of :data:`CHUNK_COLUMNS` that stores ``c`` (pages as ``"2,3"``, headings as a JSON list)."""
    return (
        row,
        c.id,
        c.doc_id,
        c.title,
        c.source,
        c.text,
        c.start,
        c.end,
        c.url,
        c.date,
        ",".join(str(p) for p in c.pages),
        json.dumps(list(c.headings), ensure_ascii=False) if c.headings else "",
    )


def chunk_from_row(r: Sequence[Any]) -> Chunk:
    """A chunk from a row of :data:`CHUNK_COLUMNS` (``r[0]`` is the row id)."""
    return Chunk(
        id=r[1],
        doc_id=r[2],
        title=r[3],
        source=r[4],
        text=r[5],
        start=r[6],
        end=r[7],
        url=r[8],
        date=r[9],
        pages=tuple(int(p) for p in r[10].split(",")) if r[10] else (),
        headings=tuple(json.loads(r[11])) if r[11] else (),
    )


def settings_difference(
    manifest: Manifest,
    embedder: str | None,
    chunker: Mapping[str, Any] | None,
    formats: Sequence[int] = (FORMAT_VERSION,),
) -> str | None:
    """Why an index built as ``manifest`` does not fit these settings, or None when it does.

    Args:
        manifest: the index's manifest.
        embedder, chunker: the settings in use (None: not checked).
        formats: the format versions accepted (a build writes only the current one;
            loading also reads older ones).
    """
    if manifest.format_version not in formats:
        return f"the index format changed (version {manifest.format_version} -> {FORMAT_VERSION})"
    if embedder is not None and manifest.embedder != embedder:
        return f"the embedder changed ({manifest.embedder!r} -> {embedder!r}); vectors of two embedders are never mixed"
    old = dict(manifest.chunker)
    if chunker is not None and old != dict(chunker):
        diffs = [
            f"{k} {old.get(k)!r} -> {chunker.get(k)!r}"
            for k in sorted(set(old) | set(chunker))
            if old.get(k) != chunker.get(k)
        ]
        return "the chunker settings changed (" + ", ".join(diffs) + ")"
    return None


def check_compatible(
    manifest: Manifest, expect_embedder: str | None, expect_chunker: Mapping[str, Any] | None, root: Path | str
) -> None:
    """Raise :class:`IndexMismatchError` when ``manifest`` was built with other settings."""
    why = settings_difference(manifest, expect_embedder, expect_chunker, READABLE_FORMATS)
    if why is None:
        return
    hint = f" (or set embedding.model: {manifest.embedder})" if why.startswith("the embedder") else ""
    raise IndexMismatchError(
        f"index at {str(root)!r} was built with other settings: {why}; "
        f"rebuild it with: rag build ARTICLES_DIR --index {root} --full{hint}"
    )


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


@dataclass(frozen=True)
class Hit:
    """A candidate chunk by row, with its ranking score and a question-independent relevance."""

    row: int
    score: float
    relevance: float


class SearchableIndex(Protocol):
    """What retrievers, the pipeline, evaluation and the builder ask of a loaded index.

    :class:`rag.store.LoadedIndex` (a FAISS generation folder) and
    :class:`rag.store.milvus.MilvusIndex` (a Milvus collection) both fit. Rows are the stable
    int64 chunk ids a build assigns; ``path`` is the generation folder, or None for a backend
    that keeps no local folder (then no per-generation side files, such as the MinHash
    signatures, are reused by the next build).
    """

    manifest: Manifest
    path: Path | None
    #: Whether ``bm25_retrieval`` scores may be mixed by value (convex fusion); False: use their order only.
    bm25_scores_comparable: bool

    @property
    def size(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def matches_nothing(self, filters: MetadataFilter | None) -> bool: ...

    def dense_search(self, vector: np.ndarray, top_k: int, filters: MetadataFilter | None = None) -> list[Hit]: ...

    def bm25_retrieval(self, query: str, filters: MetadataFilter | None = None, top_k: int = 10) -> list[Hit]: ...

    def term_weights(self, query: str) -> dict[str, float]:
        """How rare each distinct query word is in this index (its idf); ``{}`` when the backend keeps no
        corpus statistics (then answers are not declined for missing question words)."""
        ...

    def chunks_by_rows(self, rows: Sequence[int]) -> dict[int, Chunk]: ...

    def vectors(self, rows: Sequence[int]) -> np.ndarray: ...

    def neighbours(self, row: int, distance: int) -> tuple[list[int], list[int]]: ...

    def chunks_of(self, doc_id: str) -> list[Chunk]: ...

    def rows_and_vectors(self) -> tuple[np.ndarray, np.ndarray]: ...

    def iter_rows(self) -> Iterator[tuple[int, Chunk]]: ...

    def close(self) -> None: ...


class IndexBackend(Protocol):
    """Where an index is kept: reads its manifest, loads it, and writes a new state of it.

    ``root`` is a local folder in every backend: the build lock lives there (and, for the
    FAISS backend, the generations). ``label`` names the index in messages.
    """

    root: Path
    #: Whether its loaded index's ``term_weights`` gives corpus statistics (the term-coverage decline needs them).
    keeps_term_statistics: ClassVar[bool]

    @property
    def label(self) -> str: ...

    def exists(self) -> bool: ...

    def current_name(self) -> str | None: ...

    def current_name_or_none(self) -> str | None:
        """:meth:`current_name`, with a damaged pointer read as nothing built (for writers, which
        replace it). Shared by the backends that subclass this protocol."""
        try:
            return self.current_name()
        except IndexCorruptError:
            return None

    def read_manifest(self) -> dict[str, Any]: ...

    def manifest(self) -> Manifest: ...

    def size_on_disk(self) -> dict[str, int]: ...

    def stale_reason(self) -> str | None: ...

    def load(
        self, expect_embedder: str | None = None, expect_chunker: Mapping[str, Any] | None = None
    ) -> SearchableIndex: ...

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
    ) -> str: ...
