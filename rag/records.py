"""The records that flow between the pipeline's stages, in one place.

A module that needs :class:`Passage` imports it from here, not from the retriever (which
would bring the store and FAISS with it). All records are frozen dataclasses.

- :class:`Document`: one loaded article (``rag.documents``).
- :class:`Chunk`: a span of a document, embedded and retrieved as a unit (``rag.chunking``).
- :class:`Passage`: a retrieved chunk with its citation number and scores (``rag.retrieval``).
- :class:`Citation`, :class:`CitationCheck`, :class:`SentenceCheck`, :class:`Verification`:
  what an answer cites and how well each cited passage supports it (``rag.citations``).
- :class:`Answer`: the answer with its evidence (``rag.pipeline``).
- :class:`Manifest` (with :class:`ManifestDocument`, :class:`NearDuplicate` and
  :class:`SkippedFile`): what an index generation holds and how it was built (``rag.store``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article.

    Attributes:
        id: stable hash of source and content, so rebuilding gives the same id.
        text: the article's text, as chunk offsets refer to it.
        title: the article's title.
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
        return tuple(i + 1 for i in range(len(self.page_starts)) if bounds[i] < bounds[i + 1] and bounds[i] < end and bounds[i + 1] > start)


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
    def indexed_text(self) -> str:
        """What is embedded and what BM25 indexes: ``"title — heading path"`` on a line, then the text.

        The passage shown and cited stays ``text``, the article's own words.
        """
        return " — ".join(filter(None, (self.title, " > ".join(self.headings)))) + "\n" + self.text


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
    """One article sentence chosen to answer the question (see :mod:`rag.evidence`).

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
        return {"n": self.n, "text": self.text, "start": self.start, "end": self.end, "score": round(self.score, 4),
                "source": self.source, "title": self.title}


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites, listed once however often it is cited."""

    n: int
    title: str
    source: str
    snippet: str
    score: float
    chunk_id: str
    start: int
    end: int
    url: str | None = None
    date: str | None = None
    # Share of the citing sentences' content words found in the passage (0..1).
    support: float = 0.0
    # True when the marker was placed by attribution rather than written by the model.
    added: bool = False
    # Verification (rag.verification): embedding similarity of the citing sentence to the
    # passage, the combined support score (None: not verified), and the verdict:
    # "supported", "weak" or "unsupported" ("" when not verified).
    similarity: float = 0.0
    verified: float | None = None
    status: str = ""


@dataclass(frozen=True)
class CitationCheck:
    """How well passage ``n`` supports one sentence that cites it.

    Attributes:
        n: the cited passage number.
        lexical: share of the sentence's content words found in the passage (0..1).
        similarity: best embedding cosine of the sentence to the passage or one of its sentences.
        support: the combined score, ``(lexical + max(similarity, 0)) / 2``.
        status: ``supported``, ``weak``, ``unsupported`` or ``out_of_range`` (no passage n).
        missing_numbers: numbers in the sentence that the passage does not contain.
        missing_names: names in the sentence that the passage (or the question) does not contain.
    """

    n: int
    lexical: float
    similarity: float
    support: float
    status: str
    missing_numbers: tuple[str, ...] = ()
    missing_names: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"n": self.n, "lexical": round(self.lexical, 3), "similarity": round(self.similarity, 3), "support": round(self.support, 3),
                "status": self.status, "missing_numbers": list(self.missing_numbers), "missing_names": list(self.missing_names)}


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence with the checks of the passages it cites.

    Attributes:
        text: the sentence as it appears in the answer (markers included).
        start, end: its offsets in the answer text.
        citations: one :class:`CitationCheck` per distinct cited number, in order.
        factual: the sentence states something checkable (3+ content words or a number).
    """

    text: str
    start: int
    end: int
    citations: tuple[CitationCheck, ...] = ()
    factual: bool = False

    @property
    def status(self) -> str:
        """``supported``/``weak`` (best cited passage), ``unsupported``, ``uncited`` or ``plain`` (nothing to check)."""
        if self.citations:
            statuses = {c.status for c in self.citations}
            for best in ("supported", "weak"):
                if best in statuses:
                    return best
            return "unsupported"
        return "uncited" if self.factual else "plain"

    @property
    def support(self) -> float:
        """The best support score among the cited passages (0 when none)."""
        return max((c.support for c in self.citations), default=0.0)

    def to_dict(self) -> dict:
        return {"text": self.text, "status": self.status, "support": round(self.support, 3), "factual": self.factual,
                "citations": [c.to_dict() for c in self.citations]}


@dataclass(frozen=True)
class Verification:
    """The checks of a whole answer."""

    sentences: list[SentenceCheck] = field(default_factory=list)

    def by_passage(self) -> dict[int, CitationCheck]:
        """For each cited, existing passage, its best check over the sentences citing it."""
        best: dict[int, CitationCheck] = {}
        for s in self.sentences:
            for c in s.citations:
                if c.status != "out_of_range" and (c.n not in best or c.support > best[c.n].support):
                    best[c.n] = c
        return best

    @property
    def out_of_range(self) -> list[int]:
        """Cited numbers that match no passage, in order of first appearance."""
        return list(dict.fromkeys(c.n for s in self.sentences for c in s.citations if c.status == "out_of_range"))

    @property
    def flagged(self) -> list[SentenceCheck]:
        """Sentences that are unsupported or uncited."""
        return [s for s in self.sentences if s.status in ("unsupported", "uncited")]


@dataclass(frozen=True)
class Answer:
    """An answer with its evidence.

    Attributes:
        question: the question as asked.
        text: the answer, without any reasoning.
        citations: each cited passage once, in order of first citation.
        passages: every passage given to the generator, numbered as cited.
        reasoning: the model's ``<think>`` part, if any (never parsed for citations).
        query: the text used for retrieval (differs from ``question`` after rewriting).
        draft: the model's own text when it was not used (unsupported, miscited or empty): the
            evidence answer replaced it.
        checks: per-sentence verification of the answer (see :mod:`rag.verification`).
        out_of_range: citation numbers the model wrote that match no passage (removed from ``text``).
        extractive: ``text`` is the evidence answer (article sentences), not generated; same as ``mode == "evidence"``.
        notes: what the pipeline did that a reader should know (budget cut, removals, fallback).
        mode: how the answer was made: ``generated`` (the model's text, verified),
            ``evidence`` (the cited article sentences themselves) or ``declined``.
        evidence: the article sentences chosen to answer the question, best first.
        answerability: the calibrated score that the articles answer the question (None: not computed).
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    reasoning: str = ""
    query: str = ""
    draft: str = ""
    checks: list[SentenceCheck] = field(default_factory=list)
    out_of_range: list[int] = field(default_factory=list)
    extractive: bool = False
    notes: list[str] = field(default_factory=list)
    mode: str = "generated"
    evidence: list[Evidence] = field(default_factory=list)
    answerability: float | None = None

    @property
    def unsupported_citations(self) -> list[Citation]:
        """Citations verification found unsupported by their passage."""
        return [c for c in self.citations if c.status == "unsupported"]

    @property
    def weak_citations(self) -> list[Citation]:
        """Citations only weakly supported by their passage (the UI marks them)."""
        return [c for c in self.citations if c.status == "weak"]

    @property
    def uncited_sentences(self) -> list[str]:
        """Answer sentences that state facts but cite nothing."""
        return [s.text for s in self.checks if s.status == "uncited"]

    def to_dict(self) -> dict:
        """The JSON shape printed by ``rag ask --json``."""
        return {
            "question": self.question,
            "answer": self.text,
            "reasoning": self.reasoning,
            "query": self.query or self.question,
            "draft": self.draft,
            "mode": self.mode,
            "answerability": None if self.answerability is None else round(self.answerability, 4),
            "evidence": [e.to_dict() for e in self.evidence],
            "extractive": self.extractive,
            "notes": list(self.notes),
            "citations": [
                {"n": c.n, "title": c.title, "source": c.source, "snippet": c.snippet, "url": c.url, "date": c.date, "support": round(c.support, 3), "added": c.added,
                 "similarity": round(c.similarity, 3), "verified": None if c.verified is None else round(c.verified, 3), "status": c.status}
                for c in self.citations
            ],
            "sentences": [s.to_dict() for s in self.checks],
            "out_of_range": list(self.out_of_range),
            "passages": [{"n": p.n, "title": p.chunk.title, "source": p.chunk.source, "score": round(p.score, 4), "relevance": round(p.relevance_or_score, 4), "text": p.chunk.text, "date": p.chunk.date, "url": p.chunk.url,
                          "start": p.chunk.start, "end": p.chunk.end, "pages": list(p.chunk.pages)} for p in self.passages],
        }


# -- the index manifest ------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedFile:
    """A file (or a record of one) that was not indexed, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class ManifestDocument:
    """One article as an index records it (in ``Manifest.documents``, or ``Manifest.duplicates``
    with ``duplicate_of`` set for an exact copy indexed under another name)."""

    id: str
    source: str
    title: str
    content_hash: str
    chars: int
    date: str | None = None
    url: str | None = None
    chunks: int = 0
    duplicates: tuple[str, ...] = ()
    duplicate_of: str | None = None

    @classmethod
    def of(cls, doc: Document, **extra: Any) -> ManifestDocument:
        """The entry for ``doc`` (``extra``: chunks, duplicates or duplicate_of)."""
        return cls(id=doc.id, source=doc.source, title=doc.title, content_hash=doc.content_hash, chars=len(doc.text), date=doc.date,
                   url=doc.url, **extra)

    def same_as(self, doc: Document) -> bool:
        """Whether ``doc`` is this entry unchanged (same id, name, metadata and text)."""
        return (self.id, self.source, self.title, self.date, self.url, self.content_hash, self.chars) == \
            (doc.id, doc.source, doc.title, doc.date, doc.url, doc.content_hash, len(doc.text))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "source": self.source, "title": self.title, "date": self.date, "url": self.url,
                               "content_hash": self.content_hash, "chars": self.chars}
        if self.duplicate_of is not None:
            return {**out, "duplicate_of": self.duplicate_of}
        return {**out, "chunks": self.chunks, **({"duplicates": list(self.duplicates)} if self.duplicates else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ManifestDocument:
        return cls(id=str(d["id"]), source=str(d["source"]), title=str(d.get("title") or ""), content_hash=str(d.get("content_hash") or ""),
                   chars=int(d.get("chars") or 0), date=d.get("date"), url=d.get("url"), chunks=int(d.get("chunks") or 0),
                   duplicates=tuple(d.get("duplicates") or ()), duplicate_of=d.get("duplicate_of"))


@dataclass(frozen=True)
class NearDuplicate:
    """An article whose text nearly equals an earlier one's (estimated Jaccard ``similarity``)."""

    source: str
    similar_to: str
    similarity: float
    kept: bool


@dataclass(frozen=True)
class Manifest:
    """What an index generation holds and how it was built (``manifest.json``): the embedder
    (never mixed) and its dimension, the chunker settings and ``format_version`` (a change means
    a rebuild), the generation's name and chunk count, the articles (``duplicates``: copies
    indexed once), the ``index.*`` settings (plus ``built``: what was built), the
    near-duplicate policy (``indexing``) and what the last build did (``build``)."""

    embedder: str
    dimension: int
    normalized: bool = True
    chunker: Mapping[str, Any] = field(default_factory=dict)
    format_version: int | None = None
    generation: str = ""
    chunks: int = 0
    built_at: str = ""
    articles_dir: str | None = None
    documents: tuple[ManifestDocument, ...] = ()
    duplicates: tuple[ManifestDocument, ...] = ()
    near_duplicates: tuple[NearDuplicate, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    indexing: Mapping[str, Any] = field(default_factory=dict)
    index: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] = field(default_factory=dict)

    @property
    def index_settings(self) -> dict[str, Any]:
        """The ``index.*`` settings asked for, without what was built."""
        return {k: v for k, v in self.index.items() if k != "built"}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json``."""
        out: dict[str, Any] = {"embedder": {"name": self.embedder, "dimension": self.dimension, "normalized": self.normalized},
                               "chunker": dict(self.chunker), "built_at": self.built_at, "articles_dir": self.articles_dir,
                               "documents": [d.to_dict() for d in self.documents], "duplicates": [d.to_dict() for d in self.duplicates],
                               "near_duplicates": [asdict(n) for n in self.near_duplicates], "skipped": [asdict(s) for s in self.skipped],
                               "indexing": dict(self.indexing), "index": dict(self.index), "build": dict(self.build)}
        if self.format_version is not None:
            out.update(format_version=self.format_version, chunks=self.chunks, generation=self.generation)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Read a ``manifest.json`` object.

        Raises:
            ValueError: a key is missing or has the wrong type (the message names it).
        """
        try:
            emb = d["embedder"]
            return cls(embedder=str(emb["name"]), dimension=int(emb["dimension"]), normalized=bool(emb.get("normalized", True)),
                       chunker=dict(d.get("chunker") or {}), format_version=d.get("format_version"), generation=str(d.get("generation") or ""),
                       chunks=int(d.get("chunks") or 0), built_at=str(d.get("built_at") or ""), articles_dir=d.get("articles_dir"),
                       documents=tuple(ManifestDocument.from_dict(e) for e in d.get("documents") or ()),
                       duplicates=tuple(ManifestDocument.from_dict(e) for e in d.get("duplicates") or ()),
                       near_duplicates=tuple(NearDuplicate(str(n["source"]), str(n["similar_to"]), float(n["similarity"]), bool(n["kept"]))
                                             for n in d.get("near_duplicates") or ()),
                       skipped=tuple(SkippedFile(str(s["source"]), str(s["reason"])) for s in d.get("skipped") or ()),
                       indexing=dict(d.get("indexing") or {}), index=dict(d.get("index") or {}), build=dict(d.get("build") or {}))
        except KeyError as exc:
            raise ValueError(f"manifest has no {exc.args[0]!r}") from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"manifest has a value of the wrong type ({exc})") from None
