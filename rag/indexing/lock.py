"""One build per index at a time: an OS file lock, plus who holds it for the messages."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BuildLockedError

LOCK_FILE = ".build.lock"
OWNER_FILE = ".build.owner"


def read_lock_holder(root: str | Path) -> dict[str, Any] | None:
    """What the running build of ``root`` wrote about itself (pid, host, start time), if anything."""
    try:
        return json.loads((Path(root) / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def build_lock(root: str | Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the one-writer lock of the index at ``root``.

    The lock is an OS file lock (``filelock``), so it is released when its process dies,
    even by SIGKILL. The holder's pid goes into a separate file: the lock file itself is
    opened by every contender, so it cannot carry the holder's details.

    Raises:
        BuildLockedError: another process holds the lock for longer than ``timeout`` seconds.
    """
    from filelock import FileLock, Timeout

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_FILE))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        holder = read_lock_holder(root)
        for _ in range(10):  # the holder writes its details right after taking the lock
            if holder:
                break
            time.sleep(0.1)
            holder = read_lock_holder(root)
        holder = holder or {}
        pid = holder.get("pid")
        who = (
            f"pid {pid}"
            + (f" on {holder['host']}" if holder.get("host") else "")
            + (f", started {holder['started']}" if holder.get("started") else "")
            if pid
            else "pid unknown"
        )
        stop = f"stop it (kill {pid}) and " if pid else ""
        raise BuildLockedError(
            f"another build of index {str(root)!r} is running ({who}); wait for it to finish, or {stop}run the build again "
            f"(raise indexing.lock_timeout to wait automatically)",
            int(pid) if isinstance(pid, int) else None,
        ) from None
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = root / f"{OWNER_FILE}.{os.getpid()}"
        try:
            tmp.write_text(json.dumps(owner), encoding="utf-8")
            os.replace(tmp, root / OWNER_FILE)
        except OSError:
            # The holder's details only make a contender's message nicer; the lock itself holds.
            # On a full disk, leave no half-written file: the build reports the disk when it writes.
            tmp.unlink(missing_ok=True)
        yield
    finally:
        try:
            (root / OWNER_FILE).unlink(missing_ok=True)
        finally:
            lock.release()
