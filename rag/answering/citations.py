"""Parse ``[n]`` citation markers in an answer and resolve them to passages.

Handles ``[1]``, ``[1, 3]``, ``[1][2]`` and ``[1-3]``; numbers outside the passages are dropped.

Example:
    >>> resolve_citations("R1 came out in January [1][3].", passages)
    [Citation(n=1, ...), Citation(n=3, ...)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .facts import missing_facts
from ..records import Citation, Passage
from ..text import LIST_SEPARATORS, MARKER, RANGE_DASHES, content_words, sentence_spans


def parse_markers(text: str) -> list[int]:
    """Citation numbers in order of appearance (repeats kept, ranges expanded)."""
    numbers: list[int] = []
    for m in MARKER.finditer(text):
        for part in re.split(rf"\s*[{LIST_SEPARATORS}]\s*", m.group(1).strip()):
            bounds = re.split(rf"\s*[{RANGE_DASHES}]\s*", part)
            if len(bounds) == 2:
                lo, hi = int(bounds[0]), int(bounds[1])
                if 0 < lo <= hi and hi - lo < 50:
                    numbers.extend(range(lo, hi + 1))
            elif len(bounds) == 1 and part:
                numbers.append(int(part))
            # more than two bounds ("[1-1-7]") is no range: ignored, like a reversed or huge one
    return numbers


def resolve_citations(
    text: str, passages: Sequence[Passage], snippet_chars: int = 300, added: set[int] | None = None
) -> list[Citation]:
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
        out.append(
            Citation(
                n=n,
                title=c.title,
                source=c.source,
                snippet=snippet,
                score=p.score,
                chunk_id=c.id,
                start=c.start,
                end=c.end,
                url=c.url,
                date=c.date,
                support=support.get(n, 0.0),
                added=n in (added or set()),
                pages=c.pages,
            )
        )
    return out


def lexical_support(sentence: str, passage_text: str) -> float:
    """Share of the sentence's content words that occur in the passage (0 when it has none)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(passage_text)) / len(words)


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def attribute_citations(
    text: str, passages: Sequence[Passage], min_support: float = 0.5, question: str = ""
) -> tuple[str, set[int]]:
    """Give each uncited or miscited answer sentence the passage that supports it best.

    Small models often omit markers or cite the wrong number. A sentence keeps its markers
    when a cited passage supports it nearly as well as the best passage (within 0.25 of
    the best ``lexical_support`` and at least ``min_support / 2``); otherwise, when some
    passage supports it with at least ``min_support``, its markers are replaced by that
    passage's number. Unsupported sentences, and sentences with a name or number the best
    passage lacks (:func:`rag.answering.facts.missing_facts`; names in ``question`` count as present),
    are left as they are.

    Returns:
        The answer text with markers placed, and the numbers of passages whose markers were added.
    """

    if not passages:
        return text, set()
    words_by_n = {p.n: content_words(p.chunk.text) for p in passages}
    by_n = {p.n: p for p in passages}
    allowed = (question,) if question else ()
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
        if support[best] < min_support or missing_facts(
            sentence, f"{by_n[best].chunk.title}\n{by_n[best].chunk.text}", allowed
        ):
            # The checker never lends a citation to a sentence whose names or numbers the
            # passage lacks: that would dress an invention as a cited fact.
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
