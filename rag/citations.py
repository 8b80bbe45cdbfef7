"""Parse ``[n]`` citation markers in an answer and resolve them to passages.

Handles ``[1]``, ``[1, 3]``, ``[1][2]`` and ``[1-3]``; numbers outside the passages are dropped.

Example:
    >>> resolve_citations("R1 came out in January [1][3].", passages)
    [Citation(n=1, ...), Citation(n=3, ...)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .retrieval import Passage

if TYPE_CHECKING:
    from .verification import SentenceCheck

MARKER = re.compile(r"\[(\s*\d+(?:\s*(?:,|;|-|\u2013)\s*\d+)*\s*)\]")


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
class Answer:
    """An answer with its evidence.

    Attributes:
        question: the question as asked.
        text: the answer, without any reasoning.
        citations: each cited passage once, in order of first citation.
        passages: every passage given to the generator, numbered as cited.
        reasoning: the model's ``<think>`` part, if any (never parsed for citations).
        query: the text used for retrieval (differs from ``question`` after rewriting).
        draft: the model's own text when it was replaced because no passage supported it.
        checks: per-sentence verification of the answer (see :mod:`rag.verification`).
        removed: sentences ``citations.mode: strict`` removed as unsupported.
        out_of_range: citation numbers the model wrote that match no passage (removed from ``text``).
        extractive: ``text`` is made of passage sentences, not generated (the generator was unavailable).
        notes: what the pipeline did that a reader should know (budget cut, removals, fallback).
        mode: how the answer was made: ``"generated"``, ``"evidence"`` (passage sentences) or ``"declined"``.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    reasoning: str = ""
    query: str = ""
    draft: str = ""
    checks: list[SentenceCheck] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    out_of_range: list[int] = field(default_factory=list)
    extractive: bool = False
    notes: list[str] = field(default_factory=list)
    mode: str = "generated"

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
            "extractive": self.extractive,
            "notes": list(self.notes),
            "mode": self.mode,
            "citations": [
                {"n": c.n, "title": c.title, "source": c.source, "snippet": c.snippet, "url": c.url, "date": c.date, "support": round(c.support, 3), "added": c.added,
                 "similarity": round(c.similarity, 3), "verified": None if c.verified is None else round(c.verified, 3), "status": c.status}
                for c in self.citations
            ],
            "sentences": [s.to_dict() for s in self.checks],
            "removed": list(self.removed),
            "out_of_range": list(self.out_of_range),
            "passages": [{"n": p.n, "title": p.chunk.title, "source": p.chunk.source, "score": round(p.score, 4), "relevance": round(p.relevance_or_score, 4), "text": p.chunk.text, "date": p.chunk.date, "url": p.chunk.url} for p in self.passages],
        }


def parse_markers(text: str) -> list[int]:
    """Citation numbers in order of appearance (repeats kept, ranges expanded)."""
    numbers: list[int] = []
    for m in MARKER.finditer(text):
        for part in re.split(r"\s*[,;]\s*", m.group(1).strip()):
            bounds = re.split(r"\s*[-\u2013]\s*", part)
            if len(bounds) == 2:
                lo, hi = int(bounds[0]), int(bounds[1])
                if 0 < lo <= hi and hi - lo < 50:
                    numbers.extend(range(lo, hi + 1))
            elif len(bounds) == 1 and part:
                numbers.append(int(part))
            # more than two bounds ("[1-1-7]") is no range: ignored, like a reversed or huge one
    return numbers


def resolve_citations(text: str, passages: Sequence[Passage], snippet_chars: int = 300, added: set[int] | None = None) -> list[Citation]:
    """Map the markers in ``text`` to ``passages``; each passage once, out-of-range numbers dropped.

    Args:
        text: the answer.
        passages: the numbered passages the answer was written from.
        snippet_chars: longest snippet kept per citation.
        added: passage numbers whose markers were placed by :func:`attribute_citations`.
    """
    by_n = {p.n: p for p in passages}
    support: dict[int, float] = {}
    for sentence in _sentences(text):
        for n in parse_markers(sentence):
            if n in by_n:
                support[n] = max(support.get(n, 0.0), lexical_support(sentence, by_n[n].chunk.text))
    seen: set[int] = set()
    out: list[Citation] = []
    for n in parse_markers(text):
        if n in seen or n not in by_n:
            continue
        seen.add(n)
        p = by_n[n]
        c = p.chunk
        snippet = c.text if len(c.text) <= snippet_chars else c.text[:snippet_chars].rsplit(" ", 1)[0] + " …"
        out.append(Citation(n=n, title=c.title, source=c.source, snippet=snippet, score=p.score, chunk_id=c.id, start=c.start, end=c.end,
                            url=c.url, date=c.date, support=support.get(n, 0.0), added=n in (added or set())))
    return out


_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how than then there their they them he she his her we our you your i not no do does did "
    "has have had will would can could should may might about into over after before also such so very more most other some any "
    "each answer question passage passages according".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-cased words and numbers of ``text`` minus stopwords and citation markers."""
    text = MARKER.sub(" ", text.lower())
    return {w for w in _TOKEN.findall(text) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}


def lexical_support(sentence: str, passage_text: str) -> float:
    """Share of the sentence's content words that occur in the passage (0 when it has none)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(passage_text)) / len(words)


def _sentences(text: str) -> list[str]:
    from .chunking import sentence_spans

    return [text[s:e] for s, e in sentence_spans(text)]


def attribute_citations(text: str, passages: Sequence[Passage], min_support: float = 0.5) -> tuple[str, set[int]]:
    """Give each uncited or miscited answer sentence the passage that supports it best.

    Small models often omit markers or cite the wrong number. A sentence keeps its markers
    when a cited passage supports it nearly as well as the best passage (within 0.25 of
    the best ``lexical_support`` and at least ``min_support / 2``); otherwise, when some
    passage supports it with at least ``min_support``, its markers are replaced by that
    passage's number. Unsupported sentences are left as they are.

    Returns:
        The answer text with markers placed, and the numbers of passages whose markers were added.
    """
    from .chunking import sentence_spans

    if not passages:
        return text, set()
    words_by_n = {p.n: content_words(p.chunk.text) for p in passages}
    added: set[int] = set()
    out: list[str] = []
    last = 0
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        words = content_words(sentence)
        out.append(text[last:start])
        last = end
        if not words:
            out.append(sentence)
            continue
        support = {n: len(words & pw) / len(words) for n, pw in words_by_n.items()}
        cited = [n for n in parse_markers(sentence) if n in support]
        best = max(support, key=lambda n: (support[n], -n))
        # Keep the model's markers when a cited passage supports the sentence about as well
        # as the best passage does (a date shared by two articles is no reason to move it).
        if any(support[n] >= max(min_support / 2, support[best] - 0.25) for n in cited):
            out.append(sentence)
            continue
        if support[best] < min_support:
            out.append(sentence)
            continue
        bare = MARKER.sub("", sentence).rstrip()
        bare = re.sub(r"\s+([.,;:!?])", r"\1", bare)
        m = re.search(r"[.!?]+[\"'\u201d)]*$", bare)
        cut = m.start() if m else len(bare)
        out.append(f"{bare[:cut].rstrip()} [{best}]{bare[cut:]}")
        added.add(best)
    out.append(text[last:])
    return "".join(out), added


def strip_invalid_markers(text: str, valid: set[int]) -> str:
    """Remove markers whose numbers are all out of range, so readers never see dead links."""

    def fix(m: re.Match) -> str:
        nums = [n for n in parse_markers(m.group(0)) if n in valid]
        return "[" + ", ".join(str(n) for n in dict.fromkeys(nums)) + "]" if nums else ""

    # Removing a marker can join its neighbours into a new one ("[[0]0]" -> "[0]"): repeat until
    # nothing changes. Each pass that changes anything removes at least one marker, so this ends.
    while True:
        fixed = MARKER.sub(fix, text)
        if fixed == text:
            return fixed
        text = fixed
