"""Verify citations: does passage n really support the answer sentence that cites ``[n]``?

Each answer sentence is checked against each passage it cites with two signals that need no
new model:

- **lexical**: the share of the sentence's content words found in the passage
  (:func:`rag.citations.lexical_support`);
- **similarity**: cosine similarity, with the already-loaded embedder, between the sentence
  and the passage, taking the best of the whole passage and each of its sentences (a
  claim usually restates one sentence, which the whole-passage vector dilutes).

The support score is their mean (negative cosines count as 0). A citation is
``supported`` at or above ``supported_threshold``, ``weak`` at or above ``weak_threshold``
and ``unsupported`` below. A number in the sentence that the passage does not contain caps
the verdict at ``weak``: a wrong figure with otherwise matching words is the commonest
unfaithful citation, and neither signal sees it. Neither signal sees negation either
("rose" for "fell"); that is left to the reader, who gets the passage next to the claim.

Sentences that state something (three or more content words, or a number) but cite nothing
are ``uncited``. In ``strict`` mode, :func:`remove_unsupported` drops the ``unsupported`` and
``uncited`` sentences and says so.

Example:
    >>> verifier = CitationVerifier(embedder)
    >>> report = verifier.verify("Nvidia fell 17 percent [1].", passages)
    >>> report.sentences[0].citations[0].status
    'supported'
"""

from __future__ import annotations

import re
from collections.abc import Sequence


import numpy as np

from .citations import lexical_support, parse_markers
from .records import CitationCheck, SentenceCheck, Verification
from .text import MARKER, content_words, sentence_spans
from .embedding import Embedder
from .prompting import NOT_FOUND
from .records import Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def is_factual(sentence: str) -> bool:
    """Whether a sentence states something a passage could support (3+ content words, or a number)."""
    bare = MARKER.sub("", sentence).strip()
    if not bare or bare.endswith("?") or bare.rstrip(".") == NOT_FOUND.rstrip("."):
        return False
    return len(content_words(bare)) >= 3 or bool(_NUMBER.search(bare))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(MARKER.sub(" ", text))}


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
            raise ValueError(f"need 0 <= weak_threshold <= supported_threshold <= 1, got {weak_threshold!r} and {supported_threshold!r}")
        self.embedder = embedder
        self.supported_threshold = supported_threshold
        self.weak_threshold = weak_threshold

    def verify(self, text: str, passages: Sequence[Passage]) -> Verification:
        """Check every sentence of ``text``; citations of numbers with no passage are ``out_of_range``."""
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
                missing = tuple(sorted(_numbers(sentence) - _numbers(passage_text)))
                status = "supported" if support >= self.supported_threshold else "weak" if support >= self.weak_threshold else "unsupported"
                if missing and status == "supported":
                    status = "weak"
                results.append(CitationCheck(n=n, lexical=lexical, similarity=similarity, support=support, status=status, missing_numbers=missing))
            checks.append(SentenceCheck(text=sentence, start=start, end=end, citations=tuple(results), factual=is_factual(sentence)))
        return Verification(sentences=checks)

    def _similarities(self, sentences: list[str], cited: list[list[int]], passages: list[Passage]) -> dict[tuple[int, int], float]:
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


def remove_unsupported(text: str, verification: Verification) -> tuple[str, list[str]]:
    """Drop ``unsupported`` and ``uncited`` sentences from ``text`` (strict mode).

    Returns:
        The remaining text (empty when nothing is left) and the removed sentences.
    """
    removed: list[str] = []
    out: list[str] = []
    last = 0
    for s in verification.sentences:
        if s.status in ("unsupported", "uncited"):
            out.append(text[last : s.start])
            removed.append(s.text)
            last = s.end
    out.append(text[last:])
    kept = "".join(out)
    kept = re.sub(r"[ \t]{2,}", " ", kept)
    kept = re.sub(r"\n{3,}", "\n\n", kept).strip()
    return kept, removed


def removal_note(removed: Sequence[str]) -> str:
    """The sentence telling the reader that strict mode removed something."""
    n = len(removed)
    return f"({n} sentence{'s' * (n != 1)} removed: the cited passages do not support {'them' if n != 1 else 'it'}.)"
