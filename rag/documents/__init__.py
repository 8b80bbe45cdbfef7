"""Load articles from a folder into :class:`Document` records.

Each file type has one loader in :data:`LOADERS`, keyed by suffix and registered with
:func:`loader` (the built-in ones are in :mod:`rag.documents.formats`): ``.txt``, ``.md``,
``.html``/``.htm`` (visible text only), ``.json``/``.jsonl`` (records with ``title``/``text``
or ``content``/``url``/``date``) and ``.pdf`` (``pypdf``, keeping where each page starts).
A file that cannot be read is skipped and reported with its reason; it never aborts a load.
A walk reads only files that resolve, after following links, under the folder being loaded,
and never enters what the tool keeps for itself: a folder holding a :data:`NOT_ARTICLES`
marker (index folders, the server's state folder), a file the marker names (the ratings
file), and the paths a caller excludes (the index being built).

Example:
    >>> result = load_documents("data/articles")
    >>> result.documents[0].title, [s.reason for s in result.skipped]
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ..records import Document
from . import formats  # noqa: F401  (registers the built-in loaders)
from .base import (
    LOADERS,
    WHITESPACE_ONLY,
    Loader,
    LoadResult,
    SkippedFile,
    UnreadableFile,
    content_hash,
    decode_bytes,
    document_id,
    has_text,
    loader,
    make_document,
    supported_types,
)

__all__ = [
    "DEFAULT_EXTENSIONS",
    "LINK_OUTSIDE",
    "LOADERS",
    "WHITESPACE_ONLY",
    "LoadResult",
    "Loader",
    "SkippedFile",
    "UnreadableFile",
    "content_hash",
    "decode_bytes",
    "document_id",
    "has_text",
    "iter_article_files",
    "load_documents",
    "load_file",
    "loader",
    "make_document",
    "mark_not_articles",
    "NOT_ARTICLES",
    "supported_types",
]

# The built-in types; a loader registered later is read too when ``extensions`` is None.
DEFAULT_EXTENSIONS = tuple(LOADERS)


def _inside(path: str, base: str) -> bool:
    """Whether the resolved ``path`` is ``base`` or lies under it (both resolved)."""
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


LINK_OUTSIDE = "link leads outside the articles folder"
# A hidden file in a folder the tool writes for itself: ``*`` (the whole folder) or one file name per line.
NOT_ARTICLES = ".rag-not-articles"


def mark_not_articles(folder: str | Path, name: str = "*") -> None:
    """Record that ``folder`` (or the file ``name`` in it) is the tool's own, so no build reads it as articles.

    The index folder, the server's state folder and the ratings file are marked when they
    are written: a rebuild of a folder above them (``.``) must not index
    ``idx/gen-*/bm25/keyword.json`` or past ratings as articles.
    """
    marker = Path(folder) / NOT_ARTICLES
    try:
        names = set(marker.read_text(encoding="utf-8").split("\n")) if marker.exists() else set()
        if name not in names and "*" not in names:
            tmp = marker.with_name(f"{NOT_ARTICLES}.{os.getpid()}.tmp")
            tmp.write_text("\n".join(sorted(n for n in names | {name} if n)) + "\n", encoding="utf-8")
            os.replace(tmp, marker)
    except OSError:  # a read-only folder: the walk still skips the index by path (IndexBuilder)
        pass


def _not_articles(folder: Path) -> set[str]:
    """The names marked in ``folder``'s :data:`NOT_ARTICLES` (``{"*"}``: all of it)."""
    try:
        return {
            n.strip()
            for n in (folder / NOT_ARTICLES).read_text(encoding="utf-8", errors="replace").splitlines()
            if n.strip()
        }
    except OSError:
        return set()


def iter_article_files(
    folder: Path, extensions: tuple[str, ...] | None = None, exclude: tuple[str | Path, ...] = ()
) -> Iterator[tuple[Path, str | None]]:
    """Yield ``(path, problem)`` for candidate files under ``folder``, sorted, without following symlink loops.

    ``problem`` is None for a readable candidate, or the reason it must be skipped. A link
    (to a file or a folder) that resolves outside ``folder`` is never followed: it is
    reported with :data:`LINK_OUTSIDE`, the same words whether its target exists or not, so
    a walk never tells what lies outside. Folders marked with :data:`NOT_ARTICLES`, the
    files such a marker names, and ``exclude`` (resolved) are passed over in silence.
    """
    extensions = tuple(LOADERS) if extensions is None else extensions
    base = os.path.realpath(folder)
    excluded = {os.path.realpath(p) for p in exclude}
    seen_dirs: set[tuple[int, int]] = set()
    stack = [folder]
    found: list[tuple[Path, str | None]] = []
    while stack:
        d = stack.pop()
        problem = _visit_folder(d, seen_dirs)
        if problem:
            found.append((d, problem))
            continue
        marked = _not_articles(d)
        if "*" in marked or os.path.realpath(d) in excluded:
            continue
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            found.append((d, f"cannot list folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in marked:
                continue
            path = Path(entry.path)
            if excluded and os.path.realpath(path) in excluded:
                continue
            # Folders are entered only through here, so a link is the one way out of ``base``.
            if entry.is_symlink() and not _inside(os.path.realpath(path), base):
                found.append((path, LINK_OUTSIDE))
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(path)
                    continue
                is_file = entry.is_file(follow_symlinks=True)
            except OSError as exc:
                reason = (
                    "symlink loop (the link points back to itself)"
                    if exc.errno == errno.ELOOP
                    else f"cannot stat: {exc.strerror or exc}"
                )
                found.append((path, reason))
                continue
            if not is_file:
                if entry.is_symlink():
                    # A link to a device or pipe (/dev/zero, a FIFO) would read forever: never opened.
                    found.append(
                        (
                            path,
                            "broken symlink"
                            if not os.path.exists(path)
                            else "not a regular file (a link to a device, pipe or socket)",
                        )
                    )
                continue
            if path.suffix.lower() in extensions:
                found.append((path, None))
    yield from sorted(found, key=lambda item: str(item[0]))


def _visit_folder(d: Path, seen_dirs: set[tuple[int, int]]) -> str | None:
    """Why folder ``d`` cannot be walked (unreadable, or already visited through a symlink loop); None to enter it."""
    try:
        st = d.stat()
    except OSError as exc:
        return f"cannot open folder: {exc.strerror or exc}"
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        return "symlink loop: folder already visited"
    seen_dirs.add(key)
    return None


def load_documents(
    folder: str | Path,
    max_file_mb: float = 20.0,
    extensions: tuple[str, ...] | None = None,
    show_progress: bool = False,
    exclude: tuple[str | Path, ...] = (),
) -> LoadResult:
    """Load every supported article under ``folder``.

    Args:
        folder: the articles folder (searched recursively; hidden files are ignored).
        max_file_mb: files larger than this are skipped with a reason, without being read.
        extensions: file suffixes to load (default: every suffix in :data:`LOADERS`).
        show_progress: show a progress bar over the files (on stderr, once loading takes
            more than half a second).
        exclude: files and folders never read (the index being built, when it lies inside ``folder``).

    Returns:
        A :class:`LoadResult`; ``skipped`` names each unreadable file and its reason.

    Raises:
        FileNotFoundError: ``folder`` does not exist or is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"articles folder {str(root)!r} does not exist or is not a folder; pass a folder of {supported_types()} files"
        )
    from tqdm.auto import tqdm

    docs: list[Document] = []
    skipped: list[SkippedFile] = []
    candidates = list(
        iter_article_files(root, None if extensions is None else tuple(e.lower() for e in extensions), exclude)
    )
    for path, problem in tqdm(candidates, desc="Reading articles", unit="file", disable=not show_progress, delay=0.5):
        rel = _relative(path, root)
        if problem:
            skipped.append(SkippedFile(rel, problem))
            continue
        try:
            found, partial = _load_file_reporting(path, rel, max_file_mb=max_file_mb)
            docs.extend(found)
            skipped.extend(partial)
        except UnreadableFile as exc:
            skipped.append(SkippedFile(rel, str(exc)))
        except (OSError, MemoryError, RecursionError, ValueError) as exc:
            skipped.append(SkippedFile(rel, f"{type(exc).__name__}: {exc}"))
    return LoadResult(docs, skipped)


def load_file(path: Path, source: str, max_file_mb: float = 20.0) -> list[Document]:
    """Load one file into zero or more documents (JSONL files hold several).

    Raises:
        UnreadableFile: with the reason the file was skipped.
    """
    return _load_file_reporting(path, source, max_file_mb)[0]


def _load_file_reporting(
    path: Path, source: str, max_file_mb: float = 20.0
) -> tuple[list[Document], list[SkippedFile]]:
    """Like :func:`load_file`, also returning the parts of the file that were skipped (bad JSONL lines)."""
    limit = int(max_file_mb * 1024 * 1024)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableFile(f"cannot stat: {exc.strerror or exc}") from exc
    if size > limit:
        raise UnreadableFile(_too_big(size, max_file_mb))
    try:
        # Sized by the stat (read(n) allocates n bytes up front, so read(limit + 1) would cost
        # 20 MB per tiny file), and never more than limit + 1 bytes when the file has grown since.
        with open(path, "rb") as fh:
            raw = fh.read(size + 1)
            if len(raw) > size:
                raw += fh.read(limit + 1 - len(raw))
    except PermissionError as exc:
        raise UnreadableFile("permission denied") from exc
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > limit:
        raise UnreadableFile(_too_big(max(len(raw), path.stat().st_size), max_file_mb))
    if not raw:
        raise UnreadableFile("empty file")
    if not raw.strip():
        raise UnreadableFile(WHITESPACE_ONLY)
    suffix = path.suffix.lower()
    load = LOADERS.get(suffix)
    if load is None:
        raise UnreadableFile(
            f"unsupported file type {suffix or '(no suffix)'!r}; supported: {supported_types()} "
            f"(register a loader for it: see 'Adding a file type' in CONTRIBUTING.md)"
        )
    loaded = load(raw, source)
    docs, partial = (loaded.documents, list(loaded.skipped)) if isinstance(loaded, LoadResult) else (loaded, [])
    if not any(has_text(d.text) for d in docs):
        raise UnreadableFile("no text found" if _visible(raw) else WHITESPACE_ONLY)
    if len(docs) > 1:
        # A record of a JSON list or JSONL file without text is reported, not silently lost.
        partial += [SkippedFile(d.source, "record has no text (only whitespace)") for d in docs if not has_text(d.text)]
        partial.sort(key=lambda s: s.source)
    docs = [d for d in docs if has_text(d.text)]
    return docs, partial


def _visible(raw: bytes) -> bool:
    """Whether ``raw`` decodes to text with something visible (tells "no text found" from "only whitespace")."""
    try:
        return has_text(decode_bytes(raw))
    except UnreadableFile:
        return True


def _too_big(size: int, max_file_mb: float) -> str:
    return (
        f"file is {size / 2**20:,.1f} MB ({size:,} bytes), over the {max_file_mb:g} MB limit; "
        f"raise loader.max_file_mb to include it"
    )


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as text that can be stored as UTF-8.

    A name that is not valid UTF-8 on disk (e.g. Latin-1 bytes from an old archive) decodes
    with surrogate escapes, which JSON and SQLite refuse; such bytes are shown as ``\\xNN``.
    Percent signs and non-ASCII letters are kept as they are.
    """
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        rel = os.fsencode(rel).decode("utf-8", errors="backslashreplace")
    return rel
