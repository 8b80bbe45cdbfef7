"""Load articles from a folder into :class:`Document` records.

Supported: ``.txt``, ``.md``, ``.html``/``.htm`` (visible text only), ``.json``/``.jsonl``
(records with ``title``/``text`` or ``content``/``url``/``date``) and ``.pdf`` (``pypdf``).
A file that cannot be read is skipped and reported with its reason; it never aborts a load.

Example:
    >>> result = load_documents("data/articles")
    >>> result.documents[0].title, [s.reason for s in result.skipped]
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

from .records import Document

DEFAULT_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".pdf")


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not loaded, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    """Documents loaded from a folder plus the files skipped with their reasons."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


class UnreadableFile(Exception):
    """A single file could not be turned into text; the message is the reason shown to users."""


def content_hash(text: str) -> str:
    """Hash of the text alone (used for change detection and duplicate detection)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def document_id(source: str, chash: str) -> str:
    """The id of the document with content hash ``chash`` at ``source``."""
    return hashlib.sha256(f"{source}\0{chash}".encode()).hexdigest()[:16]


def make_document(text: str, title: str, source: str, url: str | None = None, date: str | None = None) -> Document:
    """Build a :class:`Document` with a stable id derived from source and content."""
    text = _normalise_text(text)
    chash = content_hash(text)
    doc_id = document_id(source, chash)
    title = " ".join((title or "").split()) or Path(source.split("#")[0]).stem
    return Document(id=doc_id, text=text, title=title[:300], source=source, url=url or None, date=date or None, content_hash=chash)


def iter_article_files(folder: Path, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS) -> Iterator[tuple[Path, str | None]]:
    """Yield ``(path, problem)`` for candidate files under ``folder``, sorted, without following symlink loops.

    ``problem`` is None for a readable candidate, or the reason it must be skipped.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [folder]
    found: list[tuple[Path, str | None]] = []
    while stack:
        d = stack.pop()
        try:
            st = d.stat()
        except OSError as exc:
            found.append((d, f"cannot open folder: {exc.strerror or exc}"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            found.append((d, "symlink loop: folder already visited"))
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            found.append((d, f"cannot list folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(path)
                    continue
                is_file = entry.is_file(follow_symlinks=True)
            except OSError as exc:
                reason = "symlink loop (the link points back to itself)" if exc.errno == errno.ELOOP else f"cannot stat: {exc.strerror or exc}"
                found.append((path, reason))
                continue
            if not is_file:
                if entry.is_symlink():
                    # A link to a device or pipe (/dev/zero, a FIFO) would read forever: never opened.
                    found.append((path, "broken symlink" if not os.path.exists(path) else "not a regular file (a link to a device, pipe or socket)"))
                continue
            if path.suffix.lower() in extensions:
                found.append((path, None))
    yield from sorted(found, key=lambda item: str(item[0]))


def load_documents(folder: str | Path, max_file_mb: float = 20.0, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
                   show_progress: bool = False) -> LoadResult:
    """Load every supported article under ``folder``.

    Args:
        folder: the articles folder (searched recursively; hidden files are ignored).
        max_file_mb: files larger than this are skipped with a reason, without being read.
        extensions: file suffixes to load.
        show_progress: show a progress bar over the files (on stderr, once loading takes
            more than half a second).

    Returns:
        A :class:`LoadResult`; ``skipped`` names each unreadable file and its reason.

    Raises:
        FileNotFoundError: ``folder`` does not exist or is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"articles folder {str(root)!r} does not exist or is not a folder; pass a folder of .txt/.md/.html/.json/.jsonl/.pdf files")
    from tqdm.auto import tqdm

    docs: list[Document] = []
    skipped: list[SkippedFile] = []
    candidates = list(iter_article_files(root, tuple(e.lower() for e in extensions)))
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


def _load_file_reporting(path: Path, source: str, max_file_mb: float = 20.0) -> tuple[list[Document], list[SkippedFile]]:
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
    if suffix == ".pdf":
        return [_load_pdf(raw, source)], []
    text = decode_bytes(raw)
    partial: list[SkippedFile] = []
    if suffix in (".html", ".htm"):
        docs = [_load_html(text, source)]
    elif suffix == ".json":
        docs = _load_json(text, source)
    elif suffix == ".jsonl":
        docs, partial = _load_jsonl(text, source)
    else:
        docs = [_load_plain(text, source, markdown=suffix in (".md", ".markdown"))]
    if not any(has_text(d.text) for d in docs):
        raise UnreadableFile(WHITESPACE_ONLY if not has_text(text) else "no text found")
    if len(docs) > 1:
        # A record of a JSON list or JSONL file without text is reported, not silently lost.
        partial += [SkippedFile(d.source, "record has no text (only whitespace)") for d in docs if not has_text(d.text)]
        partial.sort(key=lambda s: s.source)
    docs = [d for d in docs if has_text(d.text)]
    return docs, partial


WHITESPACE_ONLY = "empty file (only whitespace)"


def has_text(text: str) -> bool:
    """Whether ``text`` holds anything visible: not only whitespace, control or format characters (zero-width spaces, BOMs)."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in text)


def _too_big(size: int, max_file_mb: float) -> str:
    return (f"file is {size / 2**20:,.1f} MB ({size:,} bytes), over the {max_file_mb:g} MB limit; "
            f"raise loader.max_file_mb to include it")


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
    if "cp1252" in best.could_be_from_charset or any(m.encoding == "cp1252" and m.chaos <= best.chaos + 0.05 for m in results):
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


_HEADER_RE = re.compile(r"^\s*(date|published|source|url)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_ISO_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def _normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    # Strip characters that break downstream tokenizers but carry no content.
    text = text.replace("\x00", "").replace("\ufeff", "")
    return text.strip()


def _header_fields(lines: list[str]) -> dict[str, str]:
    """Read ``Date:``/``Source:``/``URL:`` lines from an article's first lines."""
    fields: dict[str, str] = {}
    for line in lines[:8]:
        m = _HEADER_RE.match(line)
        if m:
            fields.setdefault(m.group(1).lower(), m.group(2))
    if "published" in fields and "date" not in fields:
        fields["date"] = fields["published"]
    if "date" in fields:
        iso = _ISO_DATE_RE.search(fields["date"])
        if iso:
            fields["date"] = iso.group(1)
    return fields


def _load_plain(text: str, source: str, markdown: bool) -> Document:
    text = _normalise_text(text)
    lines = text.split("\n")
    title = ""
    for line in lines[:10]:
        stripped = line.strip()
        if not stripped:
            continue
        if markdown and stripped.startswith("#"):
            title = stripped.lstrip("#").strip()
            break
        if not _HEADER_RE.match(stripped) and not stripped.startswith(("---", "<")):
            title = stripped.lstrip("#").strip()
            break
    fields = _header_fields(lines)
    url = fields.get("url")
    return make_document(text, title[:300], source, url=url, date=fields.get("date"))


def _load_html(text: str, source: str) -> Document:
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableFile(f"malformed HTML: {exc}") from exc
    title = ""
    for xpath in ("//title", "//h1"):
        el = tree.xpath(xpath)
        if el and el[0].text_content().strip():
            title = el[0].text_content().strip()
            break
    meta_date = tree.xpath("//meta[@name='date' or @property='article:published_time' or @name='pubdate']/@content")
    canonical = tree.xpath("//link[@rel='canonical']/@href")
    body = _html_visible_text(tree)
    date = None
    if meta_date:
        iso = _ISO_DATE_RE.search(meta_date[0])
        date = iso.group(1) if iso else meta_date[0]
    if date is None:
        date = _header_fields(body.split("\n")[:12]).get("date")
    return make_document(body, title, source, url=canonical[0] if canonical else None, date=date)


_HTML_DROP = ("script", "style", "nav", "noscript", "template", "iframe", "svg", "head", "header", "footer", "aside", "form", "button")
_HTML_BLOCK = {"p", "div", "section", "article", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr", "table", "blockquote", "pre", "main", "dd", "dt"}


def _html_visible_text(tree) -> str:
    """Visible text of an HTML tree: scripts, styles, navigation and page chrome removed.

    trafilatura was tried first, as STYLE.md suggests: on the sample articles it gave the
    same body text but dropped the visible byline ("Source: … — Date: …"), which users cite
    and ask about, so a plain lxml walk that keeps every visible block is used instead.
    """
    from lxml import etree

    for el in tree.xpath("|".join(f"//{t}" for t in _HTML_DROP)):
        el.drop_tree()
    for el in tree.xpath("//*[@hidden or @aria-hidden='true']"):
        el.drop_tree()
    parts: list[str] = []
    for node in tree.iter():
        if not isinstance(node.tag, str):
            if node.tail:
                parts.append(node.tail)
            continue
        tag = node.tag.lower()
        if tag in _HTML_BLOCK:
            parts.append("\n")
        elif tag in ("td", "th"):
            parts.append(" | ")  # keep table cells apart
        if node.text and not isinstance(node, etree._Comment):
            parts.append(node.text)
        if tag in _HTML_BLOCK:
            parts.append("\n")
        if node.tail and node is not tree:
            parts.append(node.tail)
    text = "".join(parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line:
            out.append(line)
        elif out and out[-1]:
            out.append("")
    return "\n".join(out).strip()


def _record_to_document(rec: object, source: str) -> Document | None:
    if isinstance(rec, str):
        return make_document(rec, "", source)
    if not isinstance(rec, dict):
        return None
    text = rec.get("text") or rec.get("content") or rec.get("body") or ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    title = rec.get("title") or rec.get("headline") or ""
    date = rec.get("date") or rec.get("published") or None
    url = rec.get("url") or rec.get("link") or None
    return make_document(text, str(title), source, url=str(url) if url else None, date=str(date) if date else None)


def _load_json(text: str, source: str) -> list[Document]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    records = data if isinstance(data, list) else [data]
    if len(records) == 1:
        doc = _record_to_document(records[0], source)
        return [doc] if doc else []
    docs = [_record_to_document(r, f"{source}#{i}") for i, r in enumerate(records)]
    return [d for d in docs if d is not None]


def _load_jsonl(text: str, source: str) -> tuple[list[Document], list[SkippedFile]]:
    docs: list[Document] = []
    bad: list[SkippedFile] = []
    for i, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            # A truncated last line or one bad record should not lose the rest of the file;
            # the bad line is reported on its own.
            bad.append(SkippedFile(f"{source}#{i}", f"invalid JSON line {i + 1} at column {exc.colno}: {exc.msg}"))
            continue
        doc = _record_to_document(rec, f"{source}#{i}")
        if doc is not None:
            docs.append(doc)
    if not docs and bad:
        raise UnreadableFile(f"no valid JSON lines ({len(bad)} invalid; first: {bad[0].reason})")
    return docs, bad


def _load_pdf(raw: bytes, source: str) -> Document:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a core dependency
        raise UnreadableFile("pypdf is not installed; pip install pypdf") from exc
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise UnreadableFile("encrypted PDF (needs a password)")
            except UnreadableFile:
                raise
            except Exception as exc:
                raise UnreadableFile(f"encrypted PDF: {exc}") from exc
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
        title = (meta.title if meta and meta.title else "") or ""
    except UnreadableFile:
        raise
    except (PdfReadError, Exception) as exc:  # pypdf raises many types on corrupt files
        raise UnreadableFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnreadableFile("PDF has no extractable text (scanned images?)")
    return make_document(text, title, source)


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
