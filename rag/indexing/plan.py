"""What a build has to do: one canonical document per text, and what changed since the last build."""

from __future__ import annotations

import hashlib

from ..records import Document, Manifest
from .summary import Changes


def text_key(text: str) -> bytes:
    """Key of a chunk text: chunks with equal text share one stored vector."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def group_copies(docs: list[Document], indexed: set[str]) -> tuple[list[Document], list[tuple[Document, Document]]]:
    """One canonical document per content hash, sorted by source, and ``(copy, canonical)`` pairs.

    A document already in the index (its source in ``indexed``) stays canonical, so adding
    a copy never moves rows.
    """
    by_hash: dict[str, list[Document]] = {}
    for d in docs:
        by_hash.setdefault(d.content_hash, []).append(d)
    canonical: list[Document] = []
    duplicates: list[tuple[Document, Document]] = []
    for group in by_hash.values():
        group = sorted(group, key=lambda d: (d.source not in indexed, d.source))
        canonical.append(group[0])
        duplicates += [(d, group[0]) for d in group[1:]]
    canonical.sort(key=lambda d: d.source)
    return canonical, duplicates


def diff(canonical: list[Document], duplicates: list[tuple[Document, Document]], old: Manifest | None) -> Changes:
    """What changed against the previous index, over every document of the folder (copies included).

    A document that disappeared under one name and appeared with the same text under
    another counts as renamed, not as removed and added.
    """
    old_all = {e.source: e for e in old.duplicates} if old is not None else {}
    old_all.update({e.source: e for e in old.documents} if old is not None else {})
    new_all: dict[str, Document] = {d.source: d for d in canonical}
    new_all.update({d.source: d for d, _ in duplicates})
    added = sorted(s for s in new_all if s not in old_all)
    removed = sorted(s for s in old_all if s not in new_all)
    updated = sorted(s for s in new_all if s in old_all and not old_all[s].same_as(new_all[s]))
    unchanged = sorted(s for s in new_all if s in old_all and old_all[s].same_as(new_all[s]))
    removed_by_hash: dict[str, list[str]] = {}
    for s in removed:
        removed_by_hash.setdefault(old_all[s].content_hash, []).append(s)
    for names in removed_by_hash.values():
        names.reverse()  # pop() from the end takes them in sorted order without quadratic pop(0)
    renamed: list[tuple[str, str]] = []
    for s in added:
        candidates = removed_by_hash.get(new_all[s].content_hash)
        if candidates:
            renamed.append((candidates.pop(), s))
    if renamed:  # sets: list.remove per rename is quadratic when a whole folder moves
        moved_to, moved_from = {b for _, b in renamed}, {a for a, _ in renamed}
        added = [s for s in added if s not in moved_to]
        removed = [s for s in removed if s not in moved_from]
    return Changes(added, updated, removed, unchanged, renamed)
