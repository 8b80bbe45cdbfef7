"""Build and update an index from a folder of articles that keeps changing.

A build compares the folder with the current generation's manifest, which records every
document's content hash:

* unchanged documents keep their chunk rows and vectors as they are;
* new and changed documents are chunked, and only chunks whose text is not already in the
  index are embedded (a renamed file, or a copy promoted when its original is deleted,
  costs no embedding at all);
* chunks of changed and deleted documents are dropped.

The result is written as a new generation and switched in atomically
(:func:`rag.store.write_generation`), under a lock that lets one build run per index.
Exact duplicates (same text under several names) are indexed once, with every name
recorded; near-duplicates are found with MinHash over word 3-shingles and reported, and
either kept or dropped (``indexing.near_duplicates``).

The package: :mod:`.plan` (what changed), :mod:`.dedup` (near-duplicates),
:mod:`.lock` (one build at a time), :mod:`.remove` (``rag index remove``), :mod:`.summary`
and :mod:`.errors`; :mod:`.builder` holds :class:`IndexBuilder`, which runs the steps.

Example:
    >>> builder = IndexBuilder("index/default", embedder, chunker)
    >>> summary = builder.build("data/articles")
    >>> summary.added, summary.updated, summary.removed, summary.unchanged
    (1, 1, 0, 23)
"""

from __future__ import annotations

from ..records import NearDuplicate
from .builder import BUILD_WRITERS, IndexBuilder
from .dedup import NUM_PERM, SIGNATURES, find_near_duplicates, minhash_signature
from .errors import BuildError, BuildLockedError, DiskFullError, disk_full_error
from .lock import LOCK_FILE, OWNER_FILE, build_lock, read_lock_holder
from .remove import remove_article
from .summary import BuildSummary, Changes, Plan, RemoveSummary

__all__ = [
    "BUILD_WRITERS",
    "LOCK_FILE",
    "NUM_PERM",
    "OWNER_FILE",
    "SIGNATURES",
    "BuildError",
    "BuildLockedError",
    "BuildSummary",
    "Changes",
    "DiskFullError",
    "IndexBuilder",
    "NearDuplicate",
    "Plan",
    "RemoveSummary",
    "build_lock",
    "disk_full_error",
    "find_near_duplicates",
    "minhash_signature",
    "read_lock_holder",
    "remove_article",
]
