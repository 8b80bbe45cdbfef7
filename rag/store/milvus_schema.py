"""The Milvus layout shared by the store, its writers and its loaded index: names, sizes, the chunk entity.

Kept apart from :mod:`rag.store.milvus` so that :mod:`.milvus_index` and :mod:`.milvus_write`
read the layout without importing the store that uses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..records import Chunk

META_SUFFIX = "__meta"
GEN_INFIX = "__gen_"
# Rows per insert/upsert call: well under the gRPC message limit with 384-d vectors and text.
BATCH = 500
# VARCHAR limit of Milvus; manifests are stored in parts of this many characters.
PART_CHARS = 60000
# Below this many chunks a FLAT (exact) index, as FAISS's "auto" uses flat below 50k.
FLAT_BELOW = 50_000
MILVUS_INDEX = {"flat": "FLAT", "hnsw": "HNSW", "ivf": "IVF_FLAT"}
# Milvus Lite's analyzer lower-cases and drops English stop words but does not stem.
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]}]}


def pymilvus_module():
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError("index.backend is milvus but pymilvus is not installed: pip install '.[milvus]'") from exc
    return pymilvus


def chunk_record(row: int, c: Chunk, vector: np.ndarray) -> dict[str, Any]:
    """The Milvus entity that stores chunk ``c`` at ``row`` (``day``: its ISO day, for date filters)."""
    day = (c.date or "")[:10]
    meta = {
        "title": c.title,
        "source": c.source,
        "url": c.url,
        "date": c.date,
        "pages": list(c.pages),
        "headings": list(c.headings),
    }
    return {
        "row": int(row),
        "id": c.id,
        "doc_id": c.doc_id,
        "start": int(c.start),
        "end_": int(c.end),
        "text": c.text,
        "indexed": c.indexed_text,
        "day": day if len(day) == 10 else "",
        "meta": json.dumps(meta, ensure_ascii=False),
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
    }


def chunk_from_record(r: Mapping[str, Any]) -> Chunk:
    """The chunk a Milvus entity stores (the inverse of :func:`chunk_record`)."""
    m = json.loads(r["meta"])
    return Chunk(
        id=r["id"],
        doc_id=r["doc_id"],
        title=m["title"],
        source=m["source"],
        text=r["text"],
        start=int(r["start"]),
        end=int(r["end_"]),
        url=m["url"],
        date=m["date"],
        pages=tuple(m["pages"]),
        headings=tuple(m["headings"]),
    )


CHUNK_FIELDS = ["row", "id", "doc_id", "start", "end_", "text", "meta"]
