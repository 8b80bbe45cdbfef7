"""Records of article content: Document, Chunk, Passage, Evidence (see :mod:`rag.records`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """One article.

    Attributes:
        id: stable hash of source and content, so rebuilding gives the same id.
        text: the article's text, as chunk offsets refer to it.
        title: the article's title: a short label, never a paragraph (its own, a title line, or
            the file name made readable; rag/documents/titles.py).
        source: path relative to the articles folder (``file.jsonl#3`` for a JSONL record).
        url: where the article came from, when known.
        date: publication date as written in the article (ISO ``YYYY-MM-DD`` when parseable).
        content_hash: hash of ``text`` alone (same text under two names gives the same hash).
        page_starts: for a PDF, the offset in ``text`` where each page starts (page 1 first;
            an empty page starts where the next one does); empty for other files.
        headings: ``(offset, level, text)`` of each section heading in ``text`` (Markdown
            ``#`` headings, HTML h1-h3), in text order.
    """

    id: str
    text: str
    title: str
    source: str
    url: str | None = None
    date: str | None = None
    content_hash: str = ""
    page_starts: tuple[int, ...] = ()
    headings: tuple[tuple[int, int, str], ...] = ()

    def pages_of(self, start: int, end: int) -> tuple[int, ...]:
        """The 1-based pages that ``text[start:end]`` overlaps (``()`` for a document without pages)."""
        bounds = (*self.page_starts, len(self.text))
        return tuple(
            i + 1
            for i in range(len(self.page_starts))
            if bounds[i] < bounds[i + 1] and bounds[i] < end and bounds[i + 1] > start
        )


@dataclass(frozen=True)
class Chunk:
    """A span of a document that is embedded and retrieved as a unit.

    Attributes:
        id: stable hash of the document id and the offsets.
        doc_id: the :class:`Document` id.
        title: the document's title.
        source: the document's source path.
        text: ``document.text[start:end]``.
        start: character offset of the chunk in the document text.
        end: character offset one past the chunk's end.
        url: the document's url, when known.
        date: the document's date, when known.
        pages: 1-based page numbers the chunk spans (PDFs; empty for other files).
        headings: the heading path the chunk starts under (outermost first; the article's
            title not repeated).
    """

    id: str
    doc_id: str
    title: str
    source: str
    text: str
    start: int
    end: int
    url: str | None = None
    date: str | None = None
    pages: tuple[int, ...] = ()
    headings: tuple[str, ...] = ()

    @property
    def indexed_prefix(self) -> str:
        """``"title — heading path"``: the line put in front of the text for search."""
        return " — ".join(filter(None, (self.title, " > ".join(self.headings))))

    @property
    def indexed_text(self) -> str:
        """What BM25 indexes and (cut to the embedder's window, rag/embedding/window.py) what is
        embedded: :attr:`indexed_prefix` on a line, then the text.

        The passage shown and cited stays ``text``, the article's own words.
        """
        return self.indexed_prefix + "\n" + self.text


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its rank number ``n`` (1-based, as cited) and score.

    Attributes:
        n: rank, as cited in answers ([1], [2], ...).
        chunk: the chunk (widened with its neighbours when that is switched on).
        score: the retriever's ranking score (cosine, BM25 or RRF).
        relevance: a question-independent relevance in about [0, 1] used by the
            "not covered" threshold; None means use ``score``.
    """

    n: int
    chunk: Chunk
    score: float
    relevance: float | None = None

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def relevance_or_score(self) -> float:
        """``relevance`` when the retriever set it, else ``score``."""
        return self.score if self.relevance is None else self.relevance


@dataclass(frozen=True)
class Evidence:
    """One article sentence chosen to answer the question (see :mod:`rag.answering.evidence`).

    Attributes:
        n: the passage it comes from, as cited.
        text: the sentence (whitespace collapsed); may include the sentence before it when
            it only makes sense with it.
        start, end: its exact character offsets in the article's text.
        score: the selection score (higher is better).
        chunk_id, source, title: where it comes from.
    """

    n: int
    text: str
    start: int
    end: int
    score: float
    chunk_id: str
    source: str
    title: str

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "source": self.source,
            "title": self.title,
        }
