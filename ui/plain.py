"""An answer as plain text and JSON, for clients that are not the page (the OpenAI-compatible API, MCP).

:func:`answer_content` is the one place that decides what such a client reads as the
answer: change it here and the chat endpoint (streamed and not) and the MCP ``ask`` tool
follow.

Example:
    >>> print(answer_content(answer))
    DeepSeek released R1 on 20 January 2025 [1].

    Sources:
    [1] DeepSeek releases the R1 reasoning model (deepseek-r1-release.md)
"""

from __future__ import annotations

from typing import Any

from rag import Answer, Passage, pages_label

# The line that starts the plain sources list; :func:`strip_sources` cuts a sent-back answer there.
SOURCES_HEADING = "Sources:"


def answer_body(answer: Answer) -> str:
    """The answer as the page shows it, without markup: the lead (a direct first sentence), then the articles'
    quotes with [n] (``Answer.text`` is exactly that)."""
    return answer.text.strip()


def sources_text(answer: Answer) -> str:
    """``[n] Title (source, date, pp. 3-4)`` per cited passage under :data:`SOURCES_HEADING` (``""``: none cited)."""
    lines = []
    for c in answer.citations:
        where = ", ".join(part for part in (c.source, c.date or "", pages_label(c.pages)) if part)
        lines.append(f"[{c.n}] {c.title} ({where})")
    return "\n".join([SOURCES_HEADING, *lines]) if lines else ""


def answer_content(answer: Answer) -> str:
    """What a text-only client shows: :func:`answer_body`, then the plain sources list."""
    sources = sources_text(answer)
    return f"{answer_body(answer)}\n\n{sources}" if sources else answer_body(answer)


def strip_sources(content: str) -> str:
    """An answer a client sent back in its history, without the sources list :func:`answer_content` appended."""
    head, sep, _ = content.rpartition("\n\n" + SOURCES_HEADING + "\n")
    return head if sep else content


def citations_json(answer: Answer) -> list[dict[str, Any]]:
    """The cited passages: n, title, source, pages, start/end offsets in the article, snippet, support, verdict."""
    return [
        {
            "n": c.n,
            "title": c.title,
            "source": c.source,
            "pages": list(c.pages),
            "start": c.start,
            "end": c.end,
            "snippet": c.snippet,
            "support": round(c.support, 3),
            "status": c.status,
            "url": c.url,
            "date": c.date,
        }
        for c in answer.citations
    ]


def passage_json(p: Passage) -> dict[str, Any]:
    """A retrieved passage: its number, article, pages, offsets, relevance (0-1) and text."""
    c = p.chunk
    return {
        "n": p.n,
        "title": c.title,
        "source": c.source,
        "pages": list(c.pages),
        "start": c.start,
        "end": c.end,
        "relevance": round(p.relevance_or_score, 4),
        "date": c.date,
        "url": c.url,
        "text": c.text,
    }
