"""Remove one article from an index without a build (``rag index remove``).

The article's rows are dropped and a new generation is written from the remaining rows and
their stored vectors; an exact duplicate of a removed article takes its place.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..chunking import chunk_id
from ..documents import document_id
from ..retrieval.keyword import write_keyword_index
from ..records import Chunk, Manifest, ManifestDocument
from ..store import IndexBackend, IndexStore, is_disk_full
from .dedup import read_signatures, signature_writer
from .errors import BuildError, disk_full_error
from .lock import build_lock
from .summary import RemoveSummary


def _source_for(path: str, manifest: Manifest) -> str:
    """``path`` as a source of the index: relative to the articles folder, with ``/`` separators.

    A path to an existing file (or any absolute path) is taken relative to the folder the
    index was built from; anything else is taken as a source name as listed by the index.
    """
    p = Path(path)
    base = manifest.articles_dir
    if base and (p.is_absolute() or p.exists()):
        for candidate in (p.absolute(), p.resolve()):
            try:
                return candidate.relative_to(Path(base)).as_posix()
            except ValueError:
                continue
    return p.as_posix()


def remove_article(
    root: str | Path, path: str, *, lock_timeout: float = 0.0, store: IndexBackend | None = None
) -> RemoveSummary:
    """Drop one article (every record of a JSONL file, for a file) from the index at ``root``.

    The article's file is not touched; the next ``rag build`` adds it back if it is still
    in the folder. An exact duplicate of a removed article takes its place, reusing its
    vectors.

    Args:
        root: the index folder.
        path: the article as listed in the index (relative to the articles folder), or a
            path to the file.
        store: where the index is kept (default: the FAISS folder at ``root``); a Milvus
            store deletes the article's rows in place.

    Raises:
        IndexNotFoundError: nothing built at ``root``.
        KeyError: no such article in the index (the message suggests close names).
        BuildLockedError: a build of this index is running.
        DiskFullError: the disk filled up while writing (the index stays as it was).
    """
    try:
        return _remove_article(store if store is not None else IndexStore(root), path, lock_timeout)
    except (BuildError, KeyError):
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(Path(root), exc, f"rag index remove {path} --index {root}") from exc
        raise


def _matching(manifest: Manifest, source: str, root: Path | str) -> set[str]:
    """Sources of the index that are ``source`` or records of it (``file.jsonl#3``)."""
    names = [e.source for e in manifest.documents] + [e.source for e in manifest.duplicates]
    found = {s for s in names if s == source or s.startswith(source + "#")}
    if not found:
        close = difflib.get_close_matches(source, names, n=3)
        hint = (
            f"; did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "; see the sources with: rag index info --json"
        )
        raise KeyError(f"no article {source!r} in index {str(root)!r}{hint}")
    return found


def _promote(
    manifest: Manifest, gone_sources: set[str]
) -> tuple[list[ManifestDocument], list[ManifestDocument], dict[str, ManifestDocument], list[tuple[str, str]]]:
    """The documents and duplicates left, with a copy of each removed article promoted in its place.

    Returns:
        ``(documents, duplicates, heirs by the removed document's id, (removed, promoted) pairs)``.
    """
    docs = [e for e in manifest.documents if e.source not in gone_sources]
    dups = [e for e in manifest.duplicates if e.source not in gone_sources]
    heirs: dict[str, ManifestDocument] = {}
    promoted: list[tuple[str, str]] = []
    for e in manifest.documents:
        heir = next((d for d in dups if d.duplicate_of == e.source), None) if e.source in gone_sources else None
        if heir is None:
            continue
        dups.remove(heir)
        others = tuple(sorted(d.source for d in dups if d.duplicate_of == e.source))
        dups = [replace(d, duplicate_of=heir.source) if d.duplicate_of == e.source else d for d in dups]
        record = replace(
            heir, id=document_id(heir.source, heir.content_hash), duplicate_of=None, chunks=e.chunks, duplicates=others
        )
        docs.append(record)
        heirs[e.id] = record
        promoted.append((e.source, heir.source))
    docs = sorted(
        (replace(e, duplicates=tuple(s for s in e.duplicates if s not in gone_sources)) for e in docs),
        key=lambda e: e.source,
    )
    return docs, dups, heirs, promoted


def _remove_article(store: IndexBackend, path: str, lock_timeout: float) -> RemoveSummary:
    with build_lock(store.root, lock_timeout):
        manifest = store.manifest()
        gone_sources = _matching(manifest, _source_for(path, manifest), store.label)
        index = store.load()
        try:
            ids, vectors = index.rows_and_vectors()
            by_row = dict(index.iter_rows())
        finally:
            index.close()
        docs, dups, heirs, promoted = _promote(manifest, gone_sources)
        gone_ids = {e.id for e in manifest.documents if e.source in gone_sources} - set(heirs)
        rows: list[int] = []
        chunks: list[Chunk] = []
        for row in sorted(by_row):
            c = by_row[row]
            if c.doc_id in gone_ids:
                continue
            heir = heirs.get(c.doc_id)
            if heir is not None:  # same text at another name: same vector, records re-pointed
                c = replace(
                    c,
                    id=chunk_id(heir.id, c.start, c.end),
                    doc_id=heir.id,
                    title=heir.title,
                    source=heir.source,
                    url=heir.url,
                    date=heir.date,
                )
            rows.append(row)
            chunks.append(c)
        position = {int(r): i for i, r in enumerate(ids)}
        kept_vectors = (
            vectors[[position[r] for r in rows]] if rows else np.zeros((0, manifest.dimension), dtype=np.float32)
        )
        near = tuple(
            n for n in manifest.near_duplicates if n.source not in gone_sources and n.similar_to not in gone_sources
        )
        new_manifest = replace(
            manifest,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            documents=tuple(docs),
            duplicates=tuple(dups),
            near_duplicates=near,
            build={"mode": "remove", "removed": sorted(gone_sources), "promoted": [list(p) for p in promoted]},
        )
        signatures = read_signatures(store.root / manifest.generation)
        store.write(
            kept_vectors,
            chunks,
            new_manifest,
            np.asarray(rows, dtype=np.int64),
            incremental=True,
            writers=[write_keyword_index, signature_writer(signatures)],
        )
        return RemoveSummary(
            store.label, sorted(gone_sources), promoted, len(by_row) - len(chunks), len(docs), len(chunks)
        )
