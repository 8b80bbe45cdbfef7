"""Metadata filters: restrict retrieval to articles by date range and source path.

The store applies them (:meth:`rag.store.LoadedIndex.allowed_rows`), so every retriever
filters the same way.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
from dataclasses import dataclass

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_date(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not _ISO_DATE.match(value):
        raise ValueError(f"{name} must be a date like 2025-01-31, got {value!r}")
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a real calendar date like 2025-01-31, got {value!r}") from None
    return value


@dataclass(frozen=True)
class MetadataFilter:
    """Restrict retrieval to articles by date range and/or source path glob.

    Args:
        since: keep articles dated on or after this ISO date (``2025-01-01``).
        until: keep articles dated on or before this ISO date.
        source: a glob over the article's path relative to the articles folder
            (``news/*.md``; ``*`` also crosses ``/``). Several globs: separate with commas.

    Articles without a date are excluded as soon as ``since`` or ``until`` is set: their
    date is unknown, so they cannot be shown to fall in the range.

    Example:
        >>> MetadataFilter(since="2025-01-01", source="news/*.md").matches("news/a.md", "2025-02-03")
        True
    """

    since: str | None = None
    until: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _check_date(self.since, "since"))
        object.__setattr__(self, "until", _check_date(self.until, "until"))
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until}); swap them")
        if self.source is not None and not str(self.source).strip():
            object.__setattr__(self, "source", None)

    @property
    def active(self) -> bool:
        """Whether the filter restricts anything."""
        return bool(self.since or self.until or self.source)

    def matches(self, source: str, date: str | None) -> bool:
        """Whether an article at ``source`` dated ``date`` passes the filter."""
        if self.source:
            path = source.split("#", 1)[0]
            if not any(
                fnmatch.fnmatchcase(path, g.strip()) or fnmatch.fnmatchcase(source, g.strip())
                for g in self.source.split(",")
                if g.strip()
            ):
                return False
        if self.since or self.until:
            day = (date or "")[:10]
            if not _ISO_DATE.match(day):
                return False
            if self.since and day < self.since:
                return False
            if self.until and day > self.until:
                return False
        return True
