"""The index in Milvus (``index.backend: milvus``): embedded Milvus Lite, a Lite server or a cluster.

One :class:`pymilvus.MilvusClient` covers the three deployments; ``index.milvus.uri`` picks one:

* ``index/milvus.db``: embedded Milvus Lite, a file opened by one process at a time;
* ``http://127.0.0.1:19530``: a ``milvus-lite server`` (or a Milvus cluster) that several
  processes share; the token, if any, comes from the variable ``index.milvus.token_env`` names
  (``MILVUS_TOKEN``), never from a file.

Layout (``C`` is ``index.milvus.collection``)::

    C                   alias -> the live physical collection
    C__gen_<ts>_<hex>   physical collections: one row per chunk (row id, metadata, text,
                        vector, and a BM25 sparse vector Milvus derives from the text)
    C__meta             the manifest of each physical collection, in parts, and its state

A full build writes a new physical collection, then switches the alias atomically; readers
keep answering from the old one, and an interrupted build leaves the alias where it was (the
next build drops what it left). An incremental build updates the live collection in place:
it deletes the rows of changed and removed articles and upserts the new chunks, marking the
collection "dirty" until the new manifest is written; a build that finds it dirty (an update
was interrupted) rebuilds in full. Search runs in :class:`~rag.store.milvus_index.MilvusIndex`.

pymilvus is imported only when this backend is used (``pip install '.[milvus]'``).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..records import Chunk, Manifest
from .base import (
    FORMAT_VERSION,
    GenerationWriter,
    IndexBackend,
    IndexCorruptError,
    IndexNotFoundError,
    check_compatible,
)

from .milvus_index import MilvusIndex
from .milvus_schema import (
    ANALYZER,
    FLAT_BELOW,
    GEN_INFIX,
    META_SUFFIX,
    MILVUS_INDEX,
    PART_CHARS,
    pymilvus_module,
)
from .milvus_write import write_full, write_in_place

if TYPE_CHECKING:
    from ..config import IndexConfig


class MilvusStore(IndexBackend):
    """An index kept in Milvus; the same interface as the FAISS folder's :class:`rag.store.IndexStore`.

    Args:
        config: the ``index`` section (``milvus.uri``, ``milvus.collection``, ``milvus.token_env``,
            ``type``; ``path`` is the local folder that holds the build lock).

    Example:
        >>> store = MilvusStore(IndexConfig(backend="milvus", milvus={"uri": "index/milvus.db"}))
        >>> index = store.load(expect_embedder="all-MiniLM-L6-v2")
        >>> index.dense_search(query_vector, top_k=4)
    """

    keeps_term_statistics: ClassVar[bool] = False  # Milvus does not expose document frequencies

    def __init__(self, config: IndexConfig) -> None:
        self.root = Path(config.path)
        options = config.options_for("milvus")  # index.milvus: MilvusOptions
        self.uri = options.uri
        self.collection = options.collection
        self.token_env = options.token_env
        self.index_type = config.type
        self._client: Any = None
        self._loaded: set[str] = set()

    @property
    def label(self) -> str:
        """The index as messages name it: the URI and the collection."""
        return f"{self.uri} (collection {self.collection})"

    @property
    def meta(self) -> str:
        return self.collection + META_SUFFIX

    def client(self) -> Any:
        """The shared :class:`pymilvus.MilvusClient` (connected on first use)."""
        if self._client is None:
            pymilvus = pymilvus_module()
            if not self.uri.startswith(("http://", "https://")):
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            self._client = pymilvus.MilvusClient(uri=self.uri, token=os.environ.get(self.token_env, ""))
        return self._client

    def close(self) -> None:
        """Close the connection (the next call reconnects)."""
        if self._client is not None:
            self._client.close()
            self._client = None
            self._loaded.clear()

    def ensure_loaded(self, name: str) -> None:
        """Load collection ``name`` for reads once per connection: Milvus (Lite included)
        reopens a stored collection released, and refuses to query it until it is loaded."""
        if name not in self._loaded:
            self.client().load_collection(name)
            self._loaded.add(name)

    # -- the live collection and its manifest --------------------------------------------
    def live_collection(self) -> str | None:
        """The physical collection the alias points to, or None when nothing is built."""
        c = self.client()
        if self.collection not in c.list_aliases().get("aliases", []):
            return None
        return str(c.describe_alias(self.collection)["collection_name"])

    def _meta_rows(self, physical: str, parts: str = "part >= 0") -> list[dict[str, Any]]:
        """Meta rows of ``physical``: manifest parts (``part >= 0``), its state (-1) or its generation (-2)."""
        c = self.client()
        if not c.has_collection(self.meta):
            return []
        self.ensure_loaded(self.meta)
        return c.query(
            self.meta,
            filter=f"physical == {json.dumps(physical)} and {parts}",
            output_fields=["part", "value"],
            consistency_level="Strong",
        )

    def current_name(self) -> str | None:
        """The live manifest's generation (it changes with every build, incremental ones too), or None.

        Read on every question (readers reload when it changes), so it is one small row, not the manifest.
        """
        physical = self.live_collection()
        if physical is None:
            return None
        row = self._meta_rows(physical, "part == -2")
        return str(row[0]["value"]) if row else self.read_manifest(physical).get("generation")

    def exists(self) -> bool:
        return self.live_collection() is not None

    def stale_reason(self) -> str | None:
        """Why the live collection cannot be updated in place: an in-place update was interrupted."""
        physical = self.live_collection()
        if physical is None:
            return None
        state = next((r["value"] for r in self._meta_rows(physical, "part == -1")), "clean")
        return None if state == "clean" else f"an update of collection {physical!r} was interrupted ({state})"

    def read_manifest(self, physical: str | None = None) -> dict[str, Any]:
        """The manifest of ``physical`` (default: the live collection) as its JSON object."""
        physical = physical or self.live_collection()
        if physical is None:
            raise IndexNotFoundError(
                f"no index in Milvus at {self.label}; build one with: rag build ARTICLES_DIR (index.backend: milvus)"
            )
        parts = sorted(self._meta_rows(physical), key=lambda r: r["part"])
        try:
            raw = json.loads("".join(r["value"] for r in parts))
            if not isinstance(raw, dict):
                raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
            return raw
        except ValueError as exc:
            raise IndexCorruptError(
                f"the manifest of Milvus collection {physical!r} is unreadable ({exc}); rebuild with: rag build ARTICLES_DIR --full"
            ) from exc

    def manifest(self) -> Manifest:
        raw = self.read_manifest()
        try:
            return Manifest.from_dict(raw)
        except ValueError as exc:
            raise IndexCorruptError(
                f"the manifest in Milvus at {self.label} is damaged ({exc}); rebuild with: rag build ARTICLES_DIR --full"
            ) from exc

    def size_on_disk(self) -> dict[str, int]:
        """Bytes of the embedded ``.db`` folder (0 for a server: its storage is not ours to measure)."""
        path = Path(self.uri)
        if self.uri.startswith(("http://", "https://")) or not path.exists():
            return {"current_bytes": 0, "total_bytes": 0}
        total = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return {"current_bytes": total, "total_bytes": total}

    def load(self, expect_embedder: str | None = None, expect_chunker: Mapping[str, Any] | None = None) -> MilvusIndex:
        """The live collection, pinned: a later alias switch does not change what it answers from.

        Raises:
            IndexNotFoundError: nothing built.
            IndexMismatchError: built with another embedder, chunker or format version.
        """
        physical = self.live_collection()
        if physical is None:
            raise IndexNotFoundError(
                f"no index in Milvus at {self.label}; build one with: rag build ARTICLES_DIR (index.backend: milvus)"
            )
        manifest = Manifest.from_dict(self.read_manifest(physical))
        check_compatible(manifest, expect_embedder, expect_chunker, self.label)
        self.ensure_loaded(physical)
        return MilvusIndex(self, physical, manifest)

    # -- writing -------------------------------------------------------------------------
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
        """Make the index hold exactly ``chunks`` at ``rows`` with ``vectors``; return the new generation.

        ``incremental``: update the live collection in place (delete rows that are gone,
        upsert new or changed ones); otherwise write a new collection and switch the alias.
        ``writers`` (folder side files such as the FAISS keyword index) do not apply: Milvus
        derives BM25 from the text itself.
        """
        if len(vectors) != len(chunks):
            raise ValueError(f"got {len(vectors)} vectors for {len(chunks)} chunks")
        row_ids = np.asarray(rows, dtype=np.int64)
        name = f"{self.collection}{GEN_INFIX}{time.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"
        live = self.live_collection() if incremental else None
        if live is not None and self.stale_reason() is None:
            write_in_place(self, live, vectors, chunks, row_ids, manifest, show_progress)
            return self.read_manifest(live)["generation"]
        write_full(self, name, vectors, chunks, row_ids, manifest, show_progress)
        return name

    def milvus_index_type(self, n: int) -> str:
        """The Milvus vector index for ``n`` chunks: index.type mapped (auto: FLAT below 50k, else HNSW)."""
        if self.index_type == "auto":
            return "FLAT" if n < FLAT_BELOW else "HNSW"
        return MILVUS_INDEX[self.index_type]

    def finished_manifest(self, manifest: Manifest, physical: str, n: int, generation: str) -> dict[str, Any]:
        """The manifest object stored for ``physical`` once written."""
        built = {"backend": "milvus", "type": self.milvus_index_type(n), "collection": physical}
        return manifest.to_dict() | {
            "index": {**manifest.index_settings, "built": built},
            "format_version": FORMAT_VERSION,
            "chunks": n,
            "generation": generation,
        }

    def write_manifest(self, physical: str, manifest: Mapping[str, Any]) -> None:
        """Replace the stored manifest of ``physical`` (in parts: Milvus caps a VARCHAR at 64 KiB)."""
        c = self.client()
        text = json.dumps(manifest, ensure_ascii=False)
        parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        c.delete(self.meta, filter=f"physical == {json.dumps(physical)} and part >= 0")
        c.insert(
            self.meta,
            [
                {"key": f"{physical}/{i}", "physical": physical, "part": i, "value": p, "v": [0.0, 0.0]}
                for i, p in enumerate(parts)
            ],
        )
        c.upsert(
            self.meta,
            [
                {
                    "key": f"{physical}/generation",
                    "physical": physical,
                    "part": -2,
                    "value": str(manifest.get("generation", "")),
                    "v": [0.0, 0.0],
                }
            ],
        )

    def set_state(self, physical: str, state: str) -> None:
        """Mark ``physical`` clean, or dirty while it is changed in place."""
        self.client().upsert(
            self.meta, [{"key": f"{physical}/state", "physical": physical, "part": -1, "value": state, "v": [0.0, 0.0]}]
        )

    def ensure_meta(self) -> None:
        """Create the manifest collection when missing."""
        pymilvus = pymilvus_module()
        c = self.client()
        if c.has_collection(self.meta):
            self.ensure_loaded(self.meta)
            return
        s = pymilvus.MilvusClient.create_schema(auto_id=False)
        s.add_field("key", pymilvus.DataType.VARCHAR, is_primary=True, max_length=512)
        s.add_field("physical", pymilvus.DataType.VARCHAR, max_length=256)
        s.add_field("part", pymilvus.DataType.INT64)
        s.add_field("value", pymilvus.DataType.VARCHAR, max_length=65535)
        s.add_field("v", pymilvus.DataType.FLOAT_VECTOR, dim=2)  # Milvus requires a vector field
        ip = c.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_collection(self.meta, schema=s, index_params=ip, consistency_level="Strong")
        self._loaded.add(self.meta)

    def create_physical(self, name: str, dim: int, n: int) -> None:
        """Create a chunk collection: metadata, text with a BM25 function, dense and sparse vectors."""
        pymilvus = pymilvus_module()
        dt = pymilvus.DataType
        s = pymilvus.MilvusClient.create_schema(auto_id=False)
        s.add_field("row", dt.INT64, is_primary=True)
        s.add_field("id", dt.VARCHAR, max_length=256)
        s.add_field("doc_id", dt.VARCHAR, max_length=256)
        s.add_field("start", dt.INT64)
        s.add_field("end_", dt.INT64)
        s.add_field("day", dt.VARCHAR, max_length=16)
        s.add_field("text", dt.VARCHAR, max_length=65535)
        s.add_field("indexed", dt.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=ANALYZER)
        s.add_field("meta", dt.VARCHAR, max_length=65535)
        s.add_field("vector", dt.FLOAT_VECTOR, dim=dim)
        s.add_field("sparse", dt.SPARSE_FLOAT_VECTOR)
        s.add_function(
            pymilvus.Function(
                name="bm25",
                function_type=pymilvus.FunctionType.BM25,
                input_field_names=["indexed"],
                output_field_names=["sparse"],
            )
        )
        c = self.client()
        ip = c.prepare_index_params()
        kind = self.milvus_index_type(n)
        params = (
            {"M": 32, "efConstruction": 200}
            if kind == "HNSW"
            else {"nlist": max(1, int(4 * math.sqrt(max(n, 1))))}
            if kind == "IVF_FLAT"
            else {}
        )
        ip.add_index("vector", index_type=kind, metric_type="IP", params=params)
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        ip.add_index("doc_id", index_type="INVERTED")
        c.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
        self._loaded.add(name)

    def physical_collections(self) -> list[str]:
        """Every physical chunk collection of this index (live, previous and leftovers)."""
        return sorted(n for n in self.client().list_collections() if n.startswith(self.collection + GEN_INFIX))

    def drop(self, physical: str) -> None:
        """Drop a physical collection and its manifest."""
        c = self.client()
        c.drop_collection(physical)
        self._loaded.discard(physical)
        if c.has_collection(self.meta):
            c.delete(self.meta, filter=f"physical == {json.dumps(physical)}")
