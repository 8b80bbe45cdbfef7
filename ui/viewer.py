"""The source viewer: a cited passage shown inside its whole article, highlighted.

The page asks for an article by the id its source item carries (``data-doc``) plus the
passage's offsets and its evidence sentences; the text comes from the index only
(:meth:`rag.RAG.article`, reassembled from the article's chunks), never from a path, and
every character of it is HTML-escaped here. Offsets sent by the page only choose what is
highlighted, and are clipped to the text.

Example:
    >>> request = parse_request('{"doc": "ab12", "n": 1, "start": 120, "end": 480, "ev": [[130, 190]]}')
    >>> text, chunks = rag.article(request.doc)
    >>> html = article_html(request, text, chunks)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag import Chunk, InputError, pages_label

from .render import esc, highlighted_text

VIEWER_PLACEHOLDER = (
    '<div class="rag-viewer-empty">Click <b>Read in article</b> on a source, or a marker such as [1] in an answer, '
    "to read the passage in its article.</div>"
)
_DOC_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_REQUEST_CHARS = 4000
MAX_SPANS = 50


@dataclass(frozen=True)
class ViewRequest:
    """What the page asks to see: article ``doc``, passage ``n`` at ``[start, end)``, evidence ``spans``."""

    doc: str
    n: int
    start: int
    end: int
    spans: tuple[tuple[int, int], ...] = ()


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**9:
        raise InputError(f"source request: {name} must be a whole number from 0, got {str(value)[:30]!r}")
    return value


def parse_request(raw: Any) -> ViewRequest:
    """The page's request (a JSON object as text), checked.

    Raises:
        InputError: not JSON, too long, or a field of the wrong kind.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_REQUEST_CHARS:
        raise InputError("choose a source to read (the request was empty or too long)")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        raise InputError("the source request is not valid; click the source again") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("doc"), str) or not _DOC_ID.fullmatch(obj["doc"]):
        raise InputError("the source request names no article; click the source again")
    spans = obj.get("ev") or []
    if not isinstance(spans, list) or len(spans) > MAX_SPANS:
        raise InputError(f"the source request has more than {MAX_SPANS} evidence spans")
    pairs = []
    for s in spans:
        if not isinstance(s, list) or len(s) != 2:
            raise InputError("the source request's evidence spans must be [start, end] pairs")
        pairs.append((_int(s[0], "evidence start"), _int(s[1], "evidence end")))
    start, end = _int(obj.get("start", 0), "start"), _int(obj.get("end", 0), "end")
    return ViewRequest(obj["doc"], _int(obj.get("n", 0), "n"), start, max(start, end), tuple(pairs))


def passage_pages(chunks: Sequence[Chunk], start: int, end: int) -> tuple[int, ...]:
    """Pages of the chunks that overlap ``[start, end)``."""
    return tuple(sorted({p for c in chunks if c.start < end and c.end > start for p in c.pages}))


def article_html(request: ViewRequest, text: str, chunks: Sequence[Chunk]) -> str:
    """The article with the passage wrapped in ``span.rag-passage`` and the evidence in ``mark.rag-evidence``.

    An article the index no longer holds gets a message instead.
    """
    if not chunks:
        return (
            '<div class="rag-viewer-missing">This article is no longer in the index (it was removed, or the index was rebuilt '
            "without it); ask again to get current sources.</div>"
        )
    first = chunks[0]
    start, end = min(request.start, len(text)), min(request.end, len(text))
    pages = pages_label(passage_pages(chunks, start, end))
    meta = (
        [esc(first.source)]
        + ([esc(first.date)] if first.date else [])
        + ([f'<span class="rag-pages">{esc(pages)}</span>'] if pages else [])
    )
    spans = [(max(s, start) - start, min(e, end) - start) for s, e in request.spans if s < end and e > start]
    body = (
        esc(text[:start])
        + f'<span class="rag-passage" id="viewer-passage">{highlighted_text(text[start:end], spans)}</span>'
        + esc(text[end:])
    )
    n = f'<span class="rag-n">[{request.n}]</span> ' if request.n else ""
    return (
        f'<div class="rag-viewer" data-doc="{esc(request.doc)}"><div class="rag-viewer-title">{n}{esc(first.title)}</div>'
        f'<div class="rag-viewer-meta">{" · ".join(meta)}</div><div class="rag-article">{body}</div></div>'
    )


CSS = """
.rag-viewer-title { font-weight: 600; }
.rag-viewer-meta { font-size: 0.85em; opacity: 0.8; margin-bottom: 4px; }
.rag-article { white-space: pre-wrap; font-size: 0.9em; line-height: 1.45; max-height: 440px; overflow-y: auto; padding: 4px 8px;
               border-left: 2px solid var(--border-color-primary); }
.rag-passage { background: var(--color-accent-soft); border-radius: 2px; }
.rag-passage mark.rag-evidence { background: #facc15; color: #111; }
.rag-view { font-size: 0.8em; margin-left: 6px; cursor: pointer; text-decoration: underline; background: none; border: none; color: var(--color-accent); }
.rag-viewer-empty, .rag-viewer-missing { opacity: 0.75; font-size: 0.95em; padding: 8px; }
"""

# Run after the viewer updates: the article box scrolls to the passage, the page only as far as needed to show the viewer.
SCROLL_JS = """
() => {
  const p = document.getElementById('viewer-passage');
  if (!p) return;
  const box = p.closest('.rag-article');
  if (box) box.scrollTop = Math.max(0, p.offsetTop - box.offsetTop - 60);
  const viewer = document.getElementById('source-viewer');
  if (viewer) viewer.scrollIntoView({block: 'nearest'});
}
"""
