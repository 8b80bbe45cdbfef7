"""Records of an answer: Citation, CitationCheck, SentenceCheck, Verification, Answer (see :mod:`rag.records`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .content import Evidence, Passage


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
    # Verification (rag.answering.verification): embedding similarity of the citing sentence to the
    # passage, the combined support score (None: not verified), and the verdict:
    # "supported", "weak" or "unsupported" ("" when not verified).
    similarity: float = 0.0
    verified: float | None = None
    status: str = ""
    # 1-based PDF pages the cited passage spans (empty for other files).
    pages: tuple[int, ...] = ()


def pages_label(pages: tuple[int, ...] | list[int]) -> str:
    """``"p. 3"``, ``"pp. 3-4"`` (a range when consecutive), ``"pp. 2, 5"``; ``""`` without pages."""
    pages = sorted(set(pages))
    if not pages:
        return ""
    if len(pages) == 1:
        return f"p. {pages[0]}"
    if pages == list(range(pages[0], pages[-1] + 1)):
        return f"pp. {pages[0]}\u2013{pages[-1]}"
    return "pp. " + ", ".join(str(p) for p in pages)


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
        return {
            "n": self.n,
            "lexical": round(self.lexical, 3),
            "similarity": round(self.similarity, 3),
            "support": round(self.support, 3),
            "status": self.status,
            "missing_numbers": list(self.missing_numbers),
            "missing_names": list(self.missing_names),
        }


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
        return {
            "text": self.text,
            "status": self.status,
            "support": round(self.support, 3),
            "factual": self.factual,
            "citations": [c.to_dict() for c in self.citations],
        }


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
        checks: per-sentence verification of the answer (see :mod:`rag.answering.verification`).
        out_of_range: citation numbers the model wrote that match no passage (removed from ``text``).
        extractive: ``text`` is the evidence answer (article sentences), not generated; same as ``mode == "evidence"``.
        notes: what the pipeline did that a reader should know (budget cut, removals, fallback).
        mode: how the answer was made: ``generated`` (the model's text, verified),
            ``evidence`` (the cited article sentences themselves) or ``declined``.
        evidence: the article sentences chosen to answer the question, best first.
        answerability: the calibrated score that the articles answer the question (None: not computed).
        lead: the one direct sentence the answer starts with (the checked draft, or the best
            answer-bearing evidence sentence); ``text`` is the lead, then the quotes. "" when declined.
        lead_span: offsets in ``lead`` of the phrase that answers (the number, date, name, place
            or expansion asked for); None when no such phrase was found.
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
    lead: str = ""
    lead_span: tuple[int, int] | None = None

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
            "lead": self.lead,
            "lead_span": list(self.lead_span) if self.lead_span else None,
            "reasoning": self.reasoning,
            "query": self.query or self.question,
            "draft": self.draft,
            "mode": self.mode,
            "answerability": None if self.answerability is None else round(self.answerability, 4),
            "evidence": [e.to_dict() for e in self.evidence],
            "extractive": self.extractive,
            "notes": list(self.notes),
            "citations": [
                {
                    "n": c.n,
                    "title": c.title,
                    "source": c.source,
                    "snippet": c.snippet,
                    "url": c.url,
                    "date": c.date,
                    "support": round(c.support, 3),
                    "added": c.added,
                    "similarity": round(c.similarity, 3),
                    "verified": None if c.verified is None else round(c.verified, 3),
                    "status": c.status,
                    "start": c.start,
                    "end": c.end,
                    "pages": list(c.pages),
                }
                for c in self.citations
            ],
            "sentences": [s.to_dict() for s in self.checks],
            "out_of_range": list(self.out_of_range),
            "passages": [
                {
                    "n": p.n,
                    "title": p.chunk.title,
                    "source": p.chunk.source,
                    "score": round(p.score, 4),
                    "relevance": round(p.relevance_or_score, 4),
                    "text": p.chunk.text,
                    "date": p.chunk.date,
                    "url": p.chunk.url,
                    "start": p.chunk.start,
                    "end": p.chunk.end,
                    "pages": list(p.chunk.pages),
                }
                for p in self.passages
            ],
        }


# -- the index manifest ------------------------------------------------------------------
