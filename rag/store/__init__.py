"""Where the index is kept: a FAISS folder (:mod:`.faiss`, the default) or Milvus (:mod:`.milvus`).

The package: :mod:`.base` (the :class:`SearchableIndex` and :class:`IndexBackend` protocols,
:class:`Hit`, file names, format versions, errors, the settings check), :mod:`.faiss`
(:class:`IndexStore`: generation folders behind ``CURRENT``), :mod:`.loaded`
(:class:`LoadedIndex`, what retrievers ask of a generation), :mod:`.ann` (the FAISS index
types), :mod:`.milvus` with :mod:`.milvus_schema`, :mod:`.milvus_index` and :mod:`.milvus_write`,
and :mod:`.calibration` (a calibrated threshold stored with the index). :func:`make_store`
picks a backend by name from :data:`BACKENDS`.

Example:
    >>> store = make_store(config.index)   # IndexStore("index/default") with index.backend: faiss
    >>> index = store.load(expect_embedder="all-MiniLM-L6-v2", expect_chunker=chunker.settings)
    >>> hits = index.dense_search(query_vector, top_k=4)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import (
    CHUNKS,
    CURRENT,
    EXACT_VECTORS,
    FORMAT_VERSION,
    GENERATION_NAME,
    MANIFEST,
    READABLE_FORMATS,
    VECTORS,
    GenerationWriter,
    Hit,
    IndexBackend,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    SearchableIndex,
    check_compatible,
    is_disk_full,
    settings_difference,
)
from .faiss import IndexStore, write_generation
from .loaded import ChunkTable, LoadedIndex
from pydantic import BaseModel

from ..registry import Registry
from .milvus_options import MilvusOptions

if TYPE_CHECKING:
    from ..config import IndexConfig

__all__ = [
    "BACKENDS",
    "CHUNKS",
    "CURRENT",
    "EXACT_VECTORS",
    "FORMAT_VERSION",
    "GENERATION_NAME",
    "MANIFEST",
    "READABLE_FORMATS",
    "VECTORS",
    "ChunkTable",
    "GenerationWriter",
    "Hit",
    "IndexBackend",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStore",
    "LoadedIndex",
    "SearchableIndex",
    "check_compatible",
    "is_disk_full",
    "make_store",
    "settings_difference",
    "write_generation",
]


class _LazyBackend:
    """A registry entry that imports its store class when a store is first made (pymilvus stays unimported
    until then) and declares the backend's own settings (``Options``: the ``index.<name>`` section)."""

    def __init__(self, module: str, name: str, options: type[BaseModel]) -> None:
        self.module, self.name, self.Options = module, name, options

    def __call__(self, config: IndexConfig) -> IndexBackend:
        return getattr(importlib.import_module(self.module, __package__), self.name)(config)


# index.backend -> the store; one line adds a backend. pymilvus is imported only when used.
BACKENDS: Registry[Callable[[IndexConfig], IndexBackend]] = Registry(
    "index backend",
    {
        "faiss": lambda config: IndexStore(config.path),
        "milvus": _LazyBackend(".milvus", "MilvusStore", MilvusOptions),
    },
)


def make_store(config: IndexConfig) -> IndexBackend:
    """The store ``config.backend`` names (:data:`BACKENDS`), for ``config``.

    Raises:
        ConfigError: unknown backend (a ValueError; the message lists the names).
    """
    return BACKENDS[config.backend](config)
