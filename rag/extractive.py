"""Extractive answers: the most relevant sentences of the top passages, with citations.

Used when the generator is unavailable (the server is down, no model is configured): the
question still gets an answer made only of article sentences, each cited ``[n]``, marked
as extractive. Sentences are ranked by the embedding similarity to the question (the
retrieval embedder, already loaded) plus word overlap with it, so nothing new is loaded.

Example:
    >>> text = extractive_answer("How much did Nvidia fall?", passages, embedder)
    >>> text
    'On 27 January 2025 the share price of Nvidia fell about 17 percent [1].'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .text import content_words, sentence_spans
from .embedding import Embedder
from .records import Passage

# Said in front of an extractive answer, so no reader takes it for a generated one.
EXTRACTIVE_HEADER = "Extractive answer (no model output): the most relevant sentences from the articles."


_HEADER_LINE = re.compile(r"^(#|(date|source|author|url|title|by)\s*:)", re.IGNORECASE)


def passage_sentences(p: Passage) -> list[str]:
    """The passage's sentences, without title, heading and ``Date:``/``Source:`` lines."""
    out: list[str] = []
    for s, e in sentence_spans(p.chunk.text):
        for line in p.chunk.text[s:e].split("\n"):
            line = " ".join(line.split())
            if not line or _HEADER_LINE.match(line) or line == p.chunk.title or len(content_words(line)) < 2:
                continue
            if not re.search(r"[.!?][\"'\u201d)]*$", line) and len(line.split()) < 8:
                continue  # a heading or caption, not a sentence
            out.append(line)
    return out


def rank_sentences(question: str, passages: Sequence[Passage], embedder: Embedder, max_passages: int = 3) -> list[tuple[float, int, str]]:
    """``(score, passage number, sentence)`` for sentences of the first ``max_passages`` passages, best first.

    The score is the cosine similarity to the question plus half the share of the
    question's content words the sentence contains (names and numbers the embedder blurs).
    """
    candidates: list[tuple[int, str]] = []
    for p in list(passages)[:max_passages]:
        for sentence in passage_sentences(p):
            candidates.append((p.n, sentence))
    if not candidates:
        return []
    vectors = np.asarray(embedder.encode([question] + [s for _, s in candidates]), dtype=np.float32)
    sims = vectors[1:] @ vectors[0]
    q_words = content_words(question)
    ranked = []
    for (n, sentence), sim in zip(candidates, sims):
        overlap = len(q_words & content_words(sentence)) / len(q_words) if q_words else 0.0
        ranked.append((float(sim) + 0.5 * overlap, n, sentence))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return ranked


def extractive_answer(question: str, passages: Sequence[Passage], embedder: Embedder, max_sentences: int = 3, max_passages: int = 3,
                      min_score: float = 0.2, relative: float = 0.6) -> str:
    """An answer made of the best-matching passage sentences, each ending with its ``[n]``.

    Args:
        question: the question.
        passages: retrieved passages, best first, numbered as cited.
        embedder: the retrieval embedder.
        max_sentences: most sentences returned.
        max_passages: only sentences from this many top passages are considered.
        min_score: sentences scoring below this, or below ``relative`` times the best score,
            are left out (the best one is always kept).
        relative: share of the best sentence's score the others must reach.

    Returns:
        The sentences in order of relevance, or ``""`` when the passages have none.
    """
    ranked = rank_sentences(question, passages, embedder, max_passages)
    floor = max(min_score, relative * ranked[0][0]) if ranked else min_score
    chosen: list[tuple[int, str]] = []
    seen: set[str] = set()
    for score, n, sentence in ranked:
        key = sentence.lower()
        if key in seen or (chosen and score < floor):
            continue
        seen.add(key)
        chosen.append((n, sentence))
        if len(chosen) == max_sentences:
            break
    return " ".join(_cite(sentence, n) for n, sentence in chosen)


def _cite(sentence: str, n: int) -> str:
    """Put ``[n]`` before the sentence's final punctuation."""
    m = re.search(r"[.!?]+[\"'\u201d)]*$", sentence)
    if m:
        return f"{sentence[: m.start()].rstrip()} [{n}]{sentence[m.start():]}"
    return f"{sentence} [{n}]."
