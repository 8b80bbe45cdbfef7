"""Verify citations: does passage n really support the answer sentence that cites ``[n]``?

Each answer sentence is checked against each passage it cites with two signals that need no
new model:

- **lexical**: the share of the sentence's content words found in the passage
  (:func:`rag.answering.citations.lexical_support`);
- **similarity**: cosine similarity, with the already-loaded embedder, between the sentence
  and the passage, taking the best of the whole passage and each of its sentences (a
  claim usually restates one sentence, which the whole-passage vector dilutes).

The support score is their mean (negative cosines count as 0). A citation is
``supported`` at or above ``supported_threshold``, ``weak`` at or above ``weak_threshold``
and ``unsupported`` below. A name, number or date in the sentence that the passage does not
contain (:func:`rag.answering.facts.missing_facts`) makes the verdict ``unsupported`` whatever the
scores: a wrong name or figure with otherwise matching words is the commonest unfaithful
citation ("DeepMind" for "DeepSeek", "17.7%" for "about 17 percent"), and neither signal
sees it. Neither sees negation either ("rose" for "fell"); that is left to the reader, who
gets the passage next to the claim.

Sentences that state something (three or more content words, or a number) but cite nothing
are ``uncited``. :func:`check_draft` runs every citation step on a model draft and accepts
it only when no factual sentence is ``unsupported`` or ``uncited`` (``strict``: nor ``weak``);
otherwise the pipeline answers with the evidence itself.

Example:
    >>> verifier = CitationVerifier(embedder)
    >>> report = verifier.verify("Nvidia fell 17 percent [1].", passages)
    >>> report.sentences[0].citations[0].status
    'supported'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING


import numpy as np

if TYPE_CHECKING:
    from ..config import CitationsConfig

from .citations import attribute_citations, lexical_support, parse_markers, resolve_citations, strip_invalid_markers
from .facts import missing_facts
from ..records import Citation, CitationCheck, SentenceCheck, Verification
from ..text import MARKER, content_words, drop_repeated_lines, sentence_spans
from ..embedding import Embedder
from .prompting import NOT_FOUND
from ..records import Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def is_factual(sentence: str) -> bool:
    """Whether a sentence states something a passage could support (3+ content words, or a number)."""
    bare = MARKER.sub("", sentence).strip()
    if not bare or bare.endswith("?") or bare.rstrip(".") == NOT_FOUND.rstrip("."):
        return False
    return len(content_words(bare)) >= 3 or bool(_NUMBER.search(bare))


class CitationVerifier:
    """Checks each cited answer sentence against its passages.

    Args:
        embedder: the pipeline's embedder (already loaded for retrieval; nothing new loads).
        supported_threshold: support score at or above which a citation is ``supported``.
        weak_threshold: support score at or above which a citation is ``weak``.

    Example:
        >>> report = CitationVerifier(embedder).verify(answer_text, passages)
        >>> [(s.text, s.status) for s in report.sentences]
    """

    def __init__(self, embedder: Embedder, supported_threshold: float = 0.5, weak_threshold: float = 0.3) -> None:
        if not 0.0 <= weak_threshold <= supported_threshold <= 1.0:
            raise ValueError(
                f"need 0 <= weak_threshold <= supported_threshold <= 1, got {weak_threshold!r} and {supported_threshold!r}"
            )
        self.embedder = embedder
        self.supported_threshold = supported_threshold
        self.weak_threshold = weak_threshold

    def verify(self, text: str, passages: Sequence[Passage], question: str = "") -> Verification:
        """Check every sentence of ``text``; citations of numbers with no passage are ``out_of_range``.

        A sentence whose names or numbers (see :mod:`rag.answering.facts`) are missing from the cited
        passage is ``unsupported`` whatever its scores; names in ``question`` count as present.
        """
        allowed = (question,) if question else ()
        by_n = {p.n: p for p in passages}
        spans = sentence_spans(text)
        sentences = [text[s:e] for s, e in spans]
        cited = [list(dict.fromkeys(parse_markers(s))) for s in sentences]
        needed = sorted({n for ns in cited for n in ns if n in by_n})
        sims = self._similarities(sentences, cited, [by_n[n] for n in needed])
        checks: list[SentenceCheck] = []
        for i, ((start, end), sentence, ns) in enumerate(zip(spans, sentences, cited)):
            results = []
            for n in ns:
                if n not in by_n:
                    results.append(CitationCheck(n=n, lexical=0.0, similarity=0.0, support=0.0, status="out_of_range"))
                    continue
                passage_text = by_n[n].chunk.text
                lexical = lexical_support(sentence, passage_text)
                similarity = sims.get((i, n), 0.0)
                support = (lexical + max(similarity, 0.0)) / 2
                missing = missing_facts(sentence, f"{by_n[n].chunk.title}\n{passage_text}", allowed)
                numbers = tuple(m for m in missing if m[0].isdigit())
                status = (
                    "supported"
                    if support >= self.supported_threshold
                    else "weak"
                    if support >= self.weak_threshold
                    else "unsupported"
                )
                if missing:
                    status = "unsupported"  # a name or number the passage lacks is never supported
                results.append(
                    CitationCheck(
                        n=n,
                        lexical=lexical,
                        similarity=similarity,
                        support=support,
                        status=status,
                        missing_numbers=numbers,
                        missing_names=tuple(m for m in missing if m not in numbers),
                    )
                )
            checks.append(
                SentenceCheck(
                    text=sentence, start=start, end=end, citations=tuple(results), factual=is_factual(sentence)
                )
            )
        return Verification(sentences=checks)

    def _similarities(
        self, sentences: list[str], cited: list[list[int]], passages: list[Passage]
    ) -> dict[tuple[int, int], float]:
        """Cosine of each citing sentence to each passage it cites (best of whole passage and its sentences)."""
        wanted = [i for i, ns in enumerate(cited) if any(n in {p.n for p in passages} for n in ns)]
        if not wanted or not passages:
            return {}
        texts = [MARKER.sub("", sentences[i]).strip() or sentences[i] for i in wanted]
        owners: list[int] = []
        for p in passages:
            parts = [p.chunk.text] + [p.chunk.text[s:e] for s, e in sentence_spans(p.chunk.text)]
            texts.extend(parts)
            owners.extend([p.n] * len(parts))
        vectors = np.asarray(self.embedder.encode(texts), dtype=np.float32)
        answer_vecs, passage_vecs = vectors[: len(wanted)], vectors[len(wanted) :]
        owners_arr = np.asarray(owners)
        scores = answer_vecs @ passage_vecs.T
        out: dict[tuple[int, int], float] = {}
        for row, i in enumerate(wanted):
            for n in cited[i]:
                mask = owners_arr == n
                if mask.any():
                    out[(i, n)] = float(scores[row, mask].max())
        return out


@dataclass(frozen=True)
class CheckedDraft:
    """A model draft after every citation step (see :func:`check_draft`).

    Attributes:
        text: the draft with dead markers removed, repeats dropped and markers placed.
        citations: the passages it cites, each with its verification verdict.
        report: the per-sentence verification (empty when ``mode`` is ``off``).
        added: passage numbers whose markers the checker placed.
        out_of_range: numbers the model cited that match no passage.
        accepted: every factual sentence is supported by the passage it cites.
        reason: why the draft was not accepted ("" when it was).
        found_nothing: the model replied that the evidence does not answer (or nothing at all).
    """

    text: str
    citations: list[Citation]
    report: Verification
    added: set[int]
    out_of_range: list[int]
    accepted: bool
    reason: str = ""
    found_nothing: bool = False


def check_draft(
    draft: str, question: str, passages: Sequence[Passage], embedder: Embedder, config: CitationsConfig
) -> CheckedDraft:
    """Run every citation step on a model draft and decide whether it can be shown.

    The steps: drop markers of passages that do not exist, drop repeated sentences, place
    markers on uncited sentences a passage supports (``config.attribute``), resolve the
    citations, and verify each cited sentence against its passage. The draft is accepted
    when it cites something and no factual sentence is ``unsupported`` or ``uncited`` (in
    ``strict`` mode, nor ``weak``); ``mode: off`` accepts any cited draft unverified.
    """
    valid = {p.n for p in passages}
    out_of_range = list(dict.fromkeys(n for n in parse_markers(draft) if n not in valid))
    text = strip_invalid_markers(drop_repeated_lines(draft).strip(), valid)
    if not text or text.rstrip(".") == NOT_FOUND.rstrip("."):
        return CheckedDraft(
            text, [], Verification(), set(), out_of_range, False, "the model found no answer in the evidence", True
        )
    added: set[int] = set()
    if config.attribute:
        text, added = attribute_citations(text, passages, config.min_support, question)
    citations = resolve_citations(text, passages, added=added)
    if not citations:
        return CheckedDraft(
            text, [], Verification(), added, out_of_range, False, "the draft cites no passage that supports it"
        )
    if config.mode == "off":
        return CheckedDraft(text, citations, Verification(), added, out_of_range, True)
    report = CitationVerifier(embedder, config.supported_threshold, config.weak_threshold).verify(
        text, passages, question
    )
    best = report.by_passage()
    citations = [
        replace(c, similarity=best[c.n].similarity, verified=best[c.n].support, status=best[c.n].status)
        if c.n in best
        else c
        for c in citations
    ]
    bad = {"unsupported", "uncited"} | ({"weak"} if config.mode == "strict" else set())
    flagged = [s for s in report.sentences if s.status in bad]
    if flagged:
        missing = sorted({m for s in flagged for c in s.citations for m in (*c.missing_names, *c.missing_numbers)})
        why = (
            f"names or numbers not in the cited passage: {', '.join(missing)}"
            if missing
            else f"a sentence is {flagged[0].status}"
        )
        return CheckedDraft(text, citations, report, added, out_of_range, False, why)
    if not any(s.status in ("supported", "weak") for s in report.sentences):
        return CheckedDraft(
            text, citations, report, added, out_of_range, False, "no sentence is supported by its passage"
        )
    return CheckedDraft(text, citations, report, added, out_of_range, True)
