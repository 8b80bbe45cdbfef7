"""Folders the page may name: the rebuild folder check, and paths shown without the machine's layout.

Paths typed into "Rebuild index from folder" are untrusted: they are checked against the
allowed roots after ``..`` and symbolic links are resolved, and every way a path can fail
(too long, too deep, unreadable, not valid text) is a message rather than an exception.
Messages sent to the page show paths relative to the folder ``rag serve`` started in (or as
``…/name`` outside it); the server log keeps the absolute ones.

Example:
    >>> resolve_rebuild_folder("data/articles", [Path.cwd()])
    PosixPath('/home/me/rag/data/articles')
    >>> PathDisplay(Path.cwd(), [Path("/srv/index")]).redact("no index at '/srv/index/current'")
    "no index at '…/index/current'"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rag import InputError
from rag.conversation import check_text

# Characters of a refused folder name echoed back to the page.
ECHO_CHARS = 200
# Longer typed paths are refused before the file system sees them (Linux's PATH_MAX is 4096).
MAX_FOLDER_CHARS = 4096


def shown(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` quoted, cut to ``limit`` characters with its full length said."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


class PathDisplay:
    """Rewrites absolute paths in messages for the page.

    Args:
        base: the folder ``rag serve`` started in; paths inside it are shown relative to it.
        others: further known folders (index, allowed roots) shown as ``…/<name>``.
    """

    def __init__(self, base: Path, others: Sequence[Path] = ()) -> None:
        self.base = base
        self.others = [p for p in others if p != base]

    def show(self, path: Path) -> str:
        """``path`` as the page may see it."""
        if path == self.base or path.is_relative_to(self.base):
            return str(path.relative_to(self.base)) if path != self.base else "."
        for root in sorted(self.others, key=lambda p: len(str(p)), reverse=True):
            if path == root or path.is_relative_to(root):
                return str(Path("…", root.name, path.relative_to(root)))
        return f"…/{path.name}"

    def redact(self, message: str) -> str:
        """``message`` with every known absolute folder replaced as :meth:`show` does."""
        for root in sorted([*self.others, self.base], key=lambda p: len(str(p)), reverse=True):
            if str(root) == "/":
                continue
            replacement = "." if root == self.base else f"…/{root.name}"
            message = message.replace(str(root) + os.sep, ("" if root == self.base else replacement + os.sep))
            message = message.replace(str(root), replacement)
        return message


def resolve_rebuild_folder(
    folder: object, allowed_roots: Sequence[Path], base: Path | None = None, display: PathDisplay | None = None
) -> Path:
    """The real folder to rebuild from, if it exists and lies inside an allowed root.

    ``..`` parts and symbolic links are resolved before the check, so neither can lead
    outside. Paths outside the roots are refused before their existence is looked up.

    Args:
        folder: what the user typed (relative paths are taken from ``base``).
        allowed_roots: resolved folders the UI may read from.
        base: folder relative paths start from (default: the current folder).
        display: how the roots are named in messages (default: absolute).

    Raises:
        InputError: empty, too long, not valid text, outside the allowed roots, missing,
            unreadable, or not a folder.
    """
    base = base or Path.cwd()
    roots_text = ", ".join(display.show(r) if display else str(r) for r in allowed_roots) or "(none)"
    text = check_text(folder if folder is not None else "", "the folder", MAX_FOLDER_CHARS)
    if not text:
        raise InputError(f"enter the folder of articles to rebuild from, inside one of: {roots_text}")
    if "\x00" in text:
        raise InputError(f"folder {shown(text)} is not a valid path")
    path = Path(text).expanduser() if text.startswith("~") else Path(text)
    path = path if path.is_absolute() else base / path

    def inside(p: Path) -> bool:
        return any(p == r or p.is_relative_to(r) for r in allowed_roots)

    fix = "choose a folder inside one of them, or restart with: rag serve --allowed-root DIR"
    if not inside(Path(os.path.normpath(path))):
        raise InputError(f"folder {shown(text)} is outside the allowed folders ({roots_text}); {fix}")
    try:
        real = Path(os.path.realpath(path))  # non-strict, but a link it may not read still raises
        if not inside(real):
            raise InputError(
                f"folder {shown(text)} leads outside the allowed folders ({roots_text}) through a symbolic link; {fix}"
            )
        is_dir, exists = real.is_dir(), real.exists()
    except OSError as exc:  # too long a name, too deep, no permission
        raise InputError(
            f"folder {shown(text)} cannot be opened ({exc.strerror or type(exc).__name__}); "
            f"enter an existing folder of articles inside: {roots_text}"
        ) from None
    if not exists:
        raise InputError(
            f"folder {shown(text)} does not exist; enter an existing folder of articles inside: {roots_text}"
        )
    if not is_dir:
        raise InputError(f"{shown(text)} is a file, not a folder; enter the folder that holds the articles")
    return real
