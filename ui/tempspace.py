"""The server's own folder for the files Gradio receives: private, cleaned, and capped in size.

Gradio keeps every file posted to its upload route in ``GRADIO_TEMP_DIR`` (by default
``gradio/`` under the system temp folder: shared by every Gradio app on the machine,
world-readable, never cleaned). ``rag serve`` gives itself a folder of its own instead:
``<state folder>/gradio-<pid>``, mode 0700 inside a 0700 state folder, emptied at start
(with the folders of servers that are no longer running), cleaned by Gradio's
``delete_cache`` while it runs, removed at exit, and refused new files (507) once it holds
``ui.temp_max_mb``.

Example:
    >>> space = TempSpace(state_folder(""), max_bytes=500_000_000)
    >>> space.prepare()            # sets GRADIO_TEMP_DIR; call before building the Blocks
    >>> space.refusal(40_000_000)  # None while 40 MB more fit
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rag.documents import mark_not_articles

MB = 1_000_000
PREFIX = "gradio-"


def state_folder(configured: str) -> Path:
    """``ui.state_dir`` (relative: from the current folder), else ``$XDG_STATE_HOME/rag``, else ``~/.local/state/rag``."""
    if configured:
        return Path(configured).expanduser().absolute()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rag"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def disk_usage(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (allocated blocks, so a thousand tiny files count)."""
    total = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    st = entry.stat(follow_symlinks=False)
                    total += max(st.st_size, getattr(st, "st_blocks", 0) * 512)
            except OSError:
                continue
    return total


class TempSpace:
    """This server's Gradio temp folder.

    Args:
        state: the server's state folder (see :func:`state_folder`).
        max_bytes: what the folder may hold; uploads past it are refused.
    """

    def __init__(self, state: Path, max_bytes: int) -> None:
        self.state = state
        self.max_bytes = max_bytes
        self.root = state / f"{PREFIX}{os.getpid()}"

    def prepare(self) -> Path:
        """Create the folder (0700), clear it and stale ones, and point ``GRADIO_TEMP_DIR`` at it.

        Raises:
            OSError: the state folder cannot be created (the message names it).
        """
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        mark_not_articles(self.state)  # in case ui.state_dir lies inside an articles folder
        for old in self.state.glob(f"{PREFIX}*"):
            pid = old.name[len(PREFIX) :]
            if old != self.root and (not pid.isdigit() or not _running(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(mode=0o700)
        os.chmod(self.root, 0o700)
        os.environ["GRADIO_TEMP_DIR"] = str(self.root)
        return self.root

    def refusal(self, incoming: int) -> str | None:
        """Why ``incoming`` more bytes may not be stored now (None: they fit)."""
        used = disk_usage(self.root)
        if used + incoming <= self.max_bytes:
            return None
        return (
            f"The server's space for received files is full ({used / MB:.0f} MB held, {incoming / MB:.1f} MB more sent; "
            f"the limit is {self.max_bytes / MB:g} MB, ui.temp_max_mb). Files are cleaned up after a while; try again later."
        )

    def remove(self) -> None:
        """Delete the folder (at exit)."""
        shutil.rmtree(self.root, ignore_errors=True)
