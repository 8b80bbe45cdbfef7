"""The built-in loaders: plain text, Markdown, HTML, JSON, JSON lines and PDF.

Each is one function registered with :func:`rag.documents.base.loader`; adding a file type
is one more such function (see "Adding a file type" in CONTRIBUTING.md).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

from ..records import Document
from .base import (
    LoadResult,
    SkippedFile,
    UnreadableFile,
    decode_bytes,
    loader,
    make_document,
    normalise_text,
)
from .titles import declared_title, first_line_title, pdf_metadata_title

_HEADER_RE = re.compile(r"^\s*(date|published|source|url|title)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_ISO_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def _header_fields(lines: list[str]) -> dict[str, str]:
    """Read ``Date:``/``Source:``/``URL:``/``Title:`` lines from an article's first lines."""
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


@loader(".txt")
def load_text(raw: bytes, source: str) -> list[Document]:
    """A plain-text article: a ``Title:`` line, else the first line when it reads as a title (rag/documents/titles.py),
    else the file name is the title; ``Date:``/``Source:``/``URL:`` lines are read. The text keeps its first line."""
    return [_load_plain(decode_bytes(raw), source, markdown=False)]


@loader(".md", ".markdown")
def load_markdown(raw: bytes, source: str) -> list[Document]:
    """A Markdown article: the first ``#`` heading is the title; ``#`` headings outside code fences are its sections."""
    doc = _load_plain(decode_bytes(raw), source, markdown=True)
    return [replace(doc, headings=markdown_headings(doc.text))]


@loader(".html", ".htm")
def load_html(raw: bytes, source: str) -> list[Document]:
    """An HTML page: its visible text, without scripts, styles, navigation or forms; h1-h3 are its sections."""
    return [_load_html(decode_bytes(raw), source)]


_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def markdown_headings(text: str) -> tuple[tuple[int, int, str], ...]:
    """``(offset, level, text)`` of each ATX heading (``## Section``) of ``text``, skipping fenced code."""
    found: list[tuple[int, int, str]] = []
    at, fenced = 0, False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)):
            found.append((at, len(m.group(1)), m.group(2).strip()))
        at += len(line) + 1
    return tuple(found)


def _locate(text: str, headings: list[tuple[int, str]]) -> tuple[tuple[int, int, str], ...]:
    """Offsets of ``(level, heading)`` in ``text``, searched in order (a heading not found is left out)."""
    found: list[tuple[int, int, str]] = []
    pos = 0
    for level, name in headings:
        at = text.find(name, pos) if name else -1
        if at >= 0:
            found.append((at, level, name))
            pos = at + len(name)
    return tuple(found)


@loader(".json")
def load_json(raw: bytes, source: str) -> list[Document]:
    """A JSON object, or a list of them (one document each, sources ``file.json#i``)."""
    return _load_json(decode_bytes(raw), source)


@loader(".jsonl")
def load_jsonl(raw: bytes, source: str) -> LoadResult:
    """One JSON record per line (sources ``file.jsonl#i``); bad lines are reported, not fatal."""
    return LoadResult(*_load_jsonl(decode_bytes(raw), source))


def _load_plain(text: str, source: str, markdown: bool) -> Document:
    text = normalise_text(text)
    lines = text.split("\n")
    fields = _header_fields(lines)
    title = declared_title(fields.get("title")) or _title_line(lines, markdown)
    return make_document(text, title, source, url=fields.get("url"), date=fields.get("date"))


def _title_line(lines: list[str], markdown: bool) -> str:
    """The title the first content line gives (a ``#`` heading, or a line that reads as a title), else ``""``.

    Header lines (``Date:``), front-matter fences and markup lines before it are passed over.
    """
    for i, line in enumerate(lines[:10]):
        stripped = line.strip()
        if not stripped or _HEADER_RE.match(stripped) or stripped.startswith(("---", "<")):
            continue
        followed = any(rest.strip() for rest in lines[i + 1 :])
        if stripped.startswith("#") and (markdown or stripped.lstrip("#").startswith(" ")):
            heading = stripped.lstrip("#").strip().rstrip("#").strip()
            return declared_title(heading) if markdown else first_line_title(heading, followed)
        return first_line_title(stripped, followed)
    return ""


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
    sections = [(int(el.tag[1]), " ".join(el.text_content().split())) for el in tree.iter("h1", "h2", "h3")]
    date = None
    if meta_date:
        iso = _ISO_DATE_RE.search(meta_date[0])
        date = iso.group(1) if iso else meta_date[0]
    if date is None:
        date = _header_fields(body.split("\n")[:12]).get("date")
    doc = make_document(body, title, source, url=canonical[0] if canonical else None, date=date)
    return replace(doc, headings=_locate(doc.text, sections))


_HTML_DROP = (
    "script",
    "style",
    "nav",
    "noscript",
    "template",
    "iframe",
    "svg",
    "head",
    "header",
    "footer",
    "aside",
    "form",
    "button",
)
_HTML_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "tr",
    "table",
    "blockquote",
    "pre",
    "main",
    "dd",
    "dt",
}


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


# A word hyphenated at a line end ("environ-\nmental"; also a soft hyphen, U+00AD). Each pattern
# starts only where a word starts and never gives letters back (possessive), so a page of one
# endless "word" costs linear time, not quadratic (an upload must not stall a build).
_LETTERS = r"[^\W\d_]"
_LINE_END_HYPHEN = re.compile(rf"(?<!{_LETTERS})({_LETTERS}++)[-\u00ad]\n[ \t]*+([^\W\d_A-Z]++)")
_HYPHENATED_WORD = re.compile(rf"(?<!{_LETTERS}){_LETTERS}++(?:-{_LETTERS}++)+")
_WORD_RUN = re.compile(rf"{_LETTERS}++")


def join_hyphenated(pages: list[str]) -> list[str]:
    """The pages with words a PDF hyphenated at line ends made whole again, for search and quotes.

    The rest of the document decides: the joined form written elsewhere ("environmental") joins;
    the hyphenated form written elsewhere ("well-known"), or two parts that are both words of
    their own elsewhere ("environmental-\nimpact"), keep the hyphen; anything else joins, as a
    fragment ("environ", "infor") is no word.
    """
    rest = [_LINE_END_HYPHEN.sub(" ", page) for page in pages]
    words = {w.lower() for page in rest for w in _WORD_RUN.findall(page)}
    compounds = {w.lower() for page in rest for w in _HYPHENATED_WORD.findall(page)}

    def join(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        whole, compound = f"{head}{tail}".lower(), f"{head}-{tail}".lower()
        keep = whole not in words and (compound in compounds or (head.lower() in words and tail.lower() in words))
        return f"{head}-{tail}" if keep else head + tail

    return [_LINE_END_HYPHEN.sub(join, page) for page in pages]


@loader(".pdf")
def load_pdf(raw: bytes, source: str) -> list[Document]:
    """A PDF's text (``pypdf``), pages joined by blank lines; the document keeps where each page starts."""
    return [_load_pdf(raw, source)]


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
        title = pdf_metadata_title(meta.title if meta and meta.title else "")
    except UnreadableFile:
        raise
    except (PdfReadError, Exception) as exc:  # pypdf raises many types on corrupt files
        raise UnreadableFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    # Each page normalised on its own, so the offsets below are those of the document text.
    texts = [normalise_text(p) for p in join_hyphenated(pages)]
    text = "\n\n".join(t for t in texts if t)
    if not text:
        raise UnreadableFile("PDF has no extractable text (scanned images?)")
    starts: list[int | None] = []
    at = 0
    for t in texts:
        starts.append(at if t else None)
        if t:
            at += len(t) + 2  # the blank line between pages belongs to the page before it
    following = len(text)
    for i in range(len(starts) - 1, -1, -1):  # an empty page starts (and ends) where the next one starts
        if starts[i] is None:
            starts[i] = following
        following = starts[i]
    if not title:
        first, _, rest = text.partition("\n")
        title = first_line_title(first, bool(rest.strip()))
    return make_document(text, title, source, page_starts=tuple(starts))
