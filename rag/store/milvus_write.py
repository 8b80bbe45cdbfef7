"""Writing an index into Milvus: a full build into a new collection behind the alias, or an update in place.

See :mod:`rag.store.milvus` for the layout and the crash-safety rules these follow.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..faults import pause_point
from ..records import Chunk, Manifest
from .milvus_schema import BATCH, chunk_record
from .milvus_index import iterate


class MilvusCollections(Protocol):
    """What the writers ask of the store (:class:`rag.store.milvus.MilvusStore` fits)."""

    collection: str

    def client(self) -> Any: ...

    def ensure_meta(self) -> None: ...

    def ensure_loaded(self, name: str) -> None: ...

    def live_collection(self) -> str | None: ...

    def physical_collections(self) -> list[str]: ...

    def create_physical(self, name: str, dim: int, n: int) -> None: ...

    def drop(self, physical: str) -> None: ...

    def finished_manifest(self, manifest: Manifest, physical: str, n: int, generation: str) -> dict[str, Any]: ...

    def write_manifest(self, physical: str, manifest: Mapping[str, Any]) -> None: ...

    def set_state(self, physical: str, state: str) -> None: ...


def _bar(total: int, desc: str, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=not show, delay=0.5)


def _insert(
    store: MilvusCollections,
    name: str,
    vectors: np.ndarray,
    chunks: Sequence[Chunk],
    rows: np.ndarray,
    picks: Sequence[int],
    show_progress: bool,
    upsert: bool,
) -> None:
    c = store.client()
    put = c.upsert if upsert else c.insert
    with _bar(len(picks), f"Writing to Milvus ({name})", show_progress) as bar:
        for i in range(0, len(picks), BATCH):
            batch = picks[i : i + BATCH]
            put(name, [chunk_record(int(rows[j]), chunks[j], vectors[j]) for j in batch])
            bar.update(len(batch))


def write_full(
    store: MilvusCollections,
    name: str,
    vectors: np.ndarray,
    chunks: Sequence[Chunk],
    rows: np.ndarray,
    manifest: Manifest,
    show_progress: bool,
) -> None:
    """Write every chunk into the new collection ``name``, then point the alias at it.

    Collections newer than the live one (left by an interrupted build) are dropped first;
    after the switch, only the new and the previous live collection are kept (a reader that
    loaded the previous one keeps answering from it). If writing fails, ``name`` is dropped
    and the alias still names the previous collection.
    """
    store.ensure_meta()
    previous = store.live_collection()
    for leftover in store.physical_collections():
        if previous is None or leftover > previous:
            store.drop(leftover)  # never made live: an interrupted build's
    c = store.client()
    try:
        store.create_physical(
            name, int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[1] else manifest.dimension, len(chunks)
        )
        _insert(store, name, vectors, chunks, rows, range(len(chunks)), show_progress, upsert=False)
        c.flush(name)
        store.write_manifest(name, store.finished_manifest(manifest, name, len(chunks), name))
        store.set_state(name, "clean")
        pause_point("switch")
        if previous is None:
            if store.collection in c.list_aliases().get("aliases", []):
                c.alter_alias(name, store.collection)
            else:
                c.create_alias(name, store.collection)
        else:
            c.alter_alias(name, store.collection)
    except BaseException:
        try:
            if store.live_collection() != name:
                store.drop(name)
        except Exception:
            pass  # the original error matters more; the next build drops it
        raise
    for old in store.physical_collections():
        if old not in (name, previous):
            store.drop(old)


def write_in_place(
    store: MilvusCollections,
    live: str,
    vectors: np.ndarray,
    chunks: Sequence[Chunk],
    rows: np.ndarray,
    manifest: Manifest,
    show_progress: bool,
) -> None:
    """Update ``live`` to hold exactly ``chunks``: delete rows that are gone, upsert new and changed rows.

    Rows the builder kept carry the same chunk id and are not touched, so an update costs
    what changed, not the size of the index. The collection is marked dirty until the new
    manifest is stored; a build that finds it dirty rebuilds in full.
    """
    c = store.client()
    store.ensure_loaded(live)
    existing = {int(r["row"]): r["id"] for r in iterate(c, live, ["row", "id"])}
    wanted = {int(r) for r in rows}
    gone = sorted(r for r in existing if r not in wanted)
    changed = [j for j, (r, ch) in enumerate(zip(rows, chunks)) if existing.get(int(r)) != ch.id]
    generation = f"{live}@{time.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"
    store.set_state(live, f"dirty: updating to {generation}")
    for i in range(0, len(gone), BATCH):
        c.delete(live, ids=gone[i : i + BATCH])
    pause_point("update")
    _insert(store, live, vectors, chunks, rows, changed, show_progress, upsert=True)
    c.flush(live)
    store.write_manifest(live, store.finished_manifest(manifest, live, len(chunks), generation))
    store.set_state(live, "clean")
