"""The errors a build or a removal raises, with messages that say what to do."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..errors import RagError
from ..store import IndexStore


class BuildError(RagError, RuntimeError):
    """A build could not produce an index (e.g. no readable articles)."""


class _VectorsUnavailable(Exception):
    """The previous generation's vectors cannot be reconstructed, so nothing can be reused."""


class DiskFullError(BuildError):
    """The disk (or quota) holding the index filled up while a build wrote it.

    The unfinished generation is removed and the previous one stays current; the message
    names the index folder, the free space and the command to run again.
    """


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.0f} KB"


def disk_full_error(root: Path, exc: BaseException, rerun: str) -> DiskFullError:
    """A :class:`DiskFullError` for ``exc`` raised while writing the index at ``root``."""
    where = getattr(exc, "filename", None)
    m = re.search(r"write error in (\S+?):", str(exc))
    where = where or (m.group(1) if m else None)
    store = IndexStore(root)
    try:
        current = store.current_name_or_none()
        held = store.size_on_disk()["current_bytes"] if current else 0
        free = shutil.disk_usage(root).free
    except OSError:
        current, held, free = None, 0, None
    kept = (
        f"The previous index ({current}) is unchanged and still answers questions"
        if current
        else "No index was there before, so there is still none"
    )
    space = (
        f" (the current index takes {_mb(held)}; {_mb(free)} free now)"
        if current and free is not None
        else f" ({_mb(free)} free now)"
        if free is not None
        else ""
    )
    return DiskFullError(
        f"no space left on the disk holding index {str(root)!r}"
        + (f" while writing {where}" if where else "")
        + f": the build was abandoned and its unfinished files removed. {kept}. "
        f"Free some disk space{space}, or point --index at another disk, and run the build again: {rerun}"
    )


class BuildLockedError(BuildError):
    """Another build of the same index is running.

    Attributes:
        holder_pid: the process id of the running build, when known.
    """

    def __init__(self, message: str, holder_pid: int | None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid
