"""What every loader shares: the records of a load, the loader registry, text decoding.

A loader turns one file's bytes into :class:`Document` records; :func:`loader` registers it
for its suffixes in :data:`LOADERS`, from which the list of readable files and the messages
naming them are derived.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from charset_normalizer import from_bytes

from ..records import Document, SkippedFile
from ..registry import Registry
from .titles import declared_title, readable_name


@dataclass(frozen=True)
class LoadResult:
    """Documents loaded from a folder plus the files skipped with their reasons."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


class UnreadableFile(Exception):
    """A single file could not be turned into text; the message is the reason shown to users."""


# A loader turns a file's bytes into documents; ``source`` is its path relative to the
# articles folder. It raises UnreadableFile with the reason to show, and may return a
# LoadResult to report parts of the file it skipped (bad JSONL lines).
Loader = Callable[[bytes, str], "list[Document] | LoadResult"]
LOADERS: Registry[Loader] = Registry("file type", {})


def loader(*suffixes: str) -> Callable[[Loader], Loader]:
    """Register the decorated function as the loader of files ending in ``suffixes``.

    Example:
        >>> @loader(".csv")
        ... def load_csv(raw: bytes, source: str) -> list[Document]:
        ...     return [make_document(decode_bytes(raw), "", source)]

    Raises:
        ValueError: a suffix without its leading dot.
    """
    for suffix in suffixes:
        if not suffix.startswith(".") or len(suffix) < 2:
            raise ValueError(f"a loader suffix starts with a dot, like '.csv'; got {suffix!r}")

    def register(fn: Loader) -> Loader:
        for suffix in suffixes:
            LOADERS[suffix.lower()] = fn
        return fn

    return register


def supported_types() -> str:
    """The registered suffixes for messages: ``.htm, .html, .json, ... or .txt``."""
    names = sorted(LOADERS)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def content_hash(text: str) -> str:
    """Hash of the text alone (used for change detection and duplicate detection)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def document_id(source: str, chash: str) -> str:
    """The id of the document with content hash ``chash`` at ``source``."""
    return hashlib.sha256(f"{source}\0{chash}".encode()).hexdigest()[:16]


def make_document(
    text: str,
    title: str,
    source: str,
    url: str | None = None,
    date: str | None = None,
    page_starts: tuple[int, ...] = (),
) -> Document:
    """Build a :class:`Document` with a stable id derived from source and content.

    ``title`` is what the document declares (cut to a label, rag/documents/titles.py); when it
    is empty the file name made readable is the title. ``page_starts`` (offsets of each page
    in ``text``) must refer to already normalised text, as :func:`_load_pdf` makes it.
    """
    text = normalise_text(text)
    chash = content_hash(text)
    doc_id = document_id(source, chash)
    title = declared_title(title) or readable_name(source)
    return Document(
        id=doc_id,
        text=text,
        title=title[:300],
        source=source,
        url=url or None,
        date=date or None,
        content_hash=chash,
        page_starts=page_starts,
    )


WHITESPACE_ONLY = "empty file (only whitespace)"


def has_text(text: str) -> bool:
    """Whether ``text`` holds anything visible: not only whitespace, control or format characters (zero-width spaces, BOMs)."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in text)


def decode_bytes(raw: bytes) -> str:
    """Decode bytes as UTF-8, else detect the encoding; raise :class:`UnreadableFile` for binary data."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if _looks_binary(raw):
        raise UnreadableFile("binary file (not text)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # UTF-8 with a few bad bytes (a truncated write, one pasted Latin-1 character): keep the
    # UTF-8 and replace the bad bytes, rather than re-read every character in a legacy code page.
    as_utf8 = raw.decode("utf-8", errors="replace")
    bad = as_utf8.count("\ufffd")
    if 0 < bad <= sum(1 for ch in as_utf8 if ord(ch) > 127) - bad:
        return as_utf8
    results = from_bytes(raw[:200_000])
    best = results.best()
    if best is None or best.encoding is None:
        raise UnreadableFile("binary or undecodable text (no encoding detected)")
    encoding = best.encoding
    # On Western European text charset-normalizer often ranks Baltic or Central European
    # code pages just above cp1252 (è read as č); cp1252 is far more common in articles, so
    # it wins when it decodes the text about as cleanly.
    if "cp1252" in best.could_be_from_charset or any(
        m.encoding == "cp1252" and m.chaos <= best.chaos + 0.05 for m in results
    ):
        encoding = "cp1252"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("latin-1")


def _looks_binary(raw: bytes) -> bool:
    sample = raw[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > 0.05 * len(sample)


# Typographic ligatures (PDFs set "financial" as "\ufb01nancial"): search and quotes need the letters.
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)


def normalise_text(text: str) -> str:
    """Newlines as ``\\n``, NFC, ligatures as letters, no NUL or BOM, no outer whitespace."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).translate(_LIGATURES)
    # Strip characters that break downstream tokenizers but carry no content.
    text = text.replace("\x00", "").replace("\ufeff", "")
    return text.strip()
