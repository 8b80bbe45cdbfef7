"""Evidence first: pick the article sentences that answer the question, and say whether they do.

After retrieval, :func:`select_evidence` ranks the sentences of the top passages and keeps a
few, each with its passage number and its exact character offsets in the article. Its score
mixes signals that need no new model (weights in :data:`SENTENCE_WEIGHTS`):

- ``similarity``: cosine of the sentence and the question (the retrieval embedder, already loaded);
- ``idf_overlap``: the share of the question's idf (the index's BM25 statistics,
  :mod:`rag.answering.terms`) the sentence holds, so its rarest words count most; ``overlap``,
  the share of its content words (lightly stemmed), where the index keeps no term statistics;
- ``keys``: the share of the question's names and numbers the sentence has (what the
  embedder blurs: "DeepSeek" vs "DeepMind", "2023" vs "2024");
- ``answer_type``: the sentence holds the kind of thing the question asks for (a number that
  is not a year for "how many", and the counted thing itself; a year or date for "when"; a
  name for "who"/"where").

Answerability also uses the top passage's relevance and ``coverage``: the share of the
question's content words found anywhere in the top passages.

A sentence that leans on the one before it ("It was founded in 2023.") brings that one along;
near-duplicate sentences are dropped.

:func:`answerability` turns the best evidence into one score in [0, 1] for "the articles
answer this". The pipeline declines below ``evidence.min_answerability`` without calling the
generator. The weights and the threshold were calibrated on the development sets (see
``CALIBRATION`` below and README "Quality").

Example:
    >>> ev = select_evidence("When was DeepSeek founded?", passages, embedder)
    >>> ev.sentences[0].n, ev.sentences[0].text
    (2, 'Liang set up DeepSeek in July 2023.')
    >>> round(ev.answerability, 2)
    0.81
    >>> evidence_answer(ev)
    'Liang set up DeepSeek in July 2023 [2].'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..embedding import Embedder
from .facts import dropped_facts
from ..records import Evidence, Passage
from .terms import GENERIC_WORDS, idf_share, rare_weights
from .asked import answer_spans, answer_type, asked_kinds, has_type, key_terms, stem, stems
from ..text import MARKER, content_words, neutralise_markers, sentence_spans

__all__ = [
    "SUPPORT_LABEL",
    "compose",
    "quotes",
    "EvidenceSet",
    "answer_type",
    "answerability_score",
    "cite",
    "draft_shortfall",
    "evidence_answer",
    "extractive_answer",
    "key_terms",
    "select_evidence",
    "sentence_units",
    "stem",
    "stems",
    "unit_text",
]

# Said before the quotes under an answer's lead: they are the articles' own words.
SUPPORT_LABEL = "From the articles:"

_HEADER_LINE = re.compile(r"^(#|(date|source|author|url|title|by)\s*:)", re.IGNORECASE)
_ENDS_SENTENCE = re.compile(r"[.!?][\"'\u201d)]*$")
# A sentence that asks: an article's own question answers nothing.
_ASKS = re.compile(r"\?[\"'\u201d)]*$")
# A PDF's running head or foot ("Water Quality Report 2023 - page 4", "Page 3 of 12"): no sentence.
_RUNNING_HEAD = re.compile(r"(\bpage|\bp\.)\s*\d+(\s*(of|/)\s*\d+)?$|^\d+$", re.IGNORECASE)
# Chat-template tokens and role tags ("<|im_start|>", "</passage>", "[INST]", "<s>", "<<SYS>>"):
# article text that carries them is an injection attempt or debris, never an answer. A line
# holding one is no part of any sentence (it would otherwise merge with the next real one).
TEMPLATE_TOKEN = re.compile(
    r"<\|[^|>]{1,40}\|>|</?\s*(?:passage|passages|context|system|user|assistant|instructions?|s)\s*>|"
    r"\[/?INST\]|<</?SYS>>",
    re.IGNORECASE,
)
# A sentence opening with one of these usually needs the sentence before it.
_ANAPHORA = re.compile(
    r"^(it|its|he|his|she|her|they|their|them|this|these|that|those|such|the (company|firm|group|model|city|country|team|party))\b",
    re.I,
)
# A sentence that announces what the next one says: it ends with a colon, or counts things
# it does not name ("Two dark clouds hang over Chinese AI.", "There are three reasons.").
_ANNOUNCES = re.compile(
    r":[\"'\u201d)]*$|^(?:there (?:are|were) )?(?:two|three|four|five|several|a few|a couple of)\s+(?:[\w\-]+\s+){0,2}"
    r"[\w\-]+s\b[^,;]{0,60}[.!]$",
    re.I,
)


@dataclass(frozen=True)
class EvidenceSet:
    """The chosen evidence sentences, best first, and the question's answerability score."""

    sentences: tuple[Evidence, ...]
    answerability: float
    features: dict[str, float]

    @property
    def cited(self) -> set[int]:
        return {e.n for e in self.sentences}


def sentence_units(p: Passage) -> list[tuple[int, int]]:
    """Offsets (in the chunk text) of the passage's sentences, without headings, byline lines and page heads.

    A sentence hard-wrapped over several lines (PDF text) is one unit: lines after the first
    body line continue it; a heading or metadata line only counts as one before that.
    """
    text = p.chunk.text
    out: list[tuple[int, int]] = []

    def flush(unit: tuple[int, int] | None) -> None:
        if unit is None:
            return
        sentence = text[unit[0] : unit[1]]
        if len(content_words(sentence)) >= 2 and not _ASKS.search(sentence):
            out.append(
                unit
            )  # an article's own question ("What is the date for the Super Bowl in 2022?") answers nothing

    for s, e in sentence_spans(text):
        pos = s
        unit: tuple[int, int] | None = None
        for line in text[s:e].split("\n"):
            ls, le = pos, pos + len(line)
            pos = le + 1
            stripped = line.strip()
            if TEMPLATE_TOKEN.search(stripped):
                flush(unit)  # an injected line: dropped, and it ends the sentence before it
                unit = None
                continue
            if not _ENDS_SENTENCE.search(stripped) and _RUNNING_HEAD.search(stripped):
                continue  # a page's running head, even inside a sentence wrapped over a page break
            if not stripped or _HEADER_LINE.match(stripped) or stripped == p.chunk.title:
                flush(unit)
                unit = None
                continue
            ls += len(line) - len(line.lstrip())
            le -= len(line) - len(line.rstrip())
            if unit is not None:
                unit = (unit[0], le)  # the wrapped rest of the sentence
            elif _ENDS_SENTENCE.search(stripped) or len(stripped.split()) >= 8 or not _starts_line(text, ls):
                unit = (ls, le)  # a sentence that begins after another on the same line is no heading
            # else: a heading or caption, not a sentence
        flush(unit)
    return out


def unit_text(raw: str) -> str:
    """A sentence unit's text on one line, without the page heads a page break put inside it."""
    lines = raw.split("\n")
    kept = (
        [ln for ln in lines if _ENDS_SENTENCE.search(ln.strip()) or not _RUNNING_HEAD.search(ln.strip())]
        if len(lines) > 1
        else lines
    )
    return " ".join(" ".join(kept).split())


def _starts_line(text: str, pos: int) -> bool:
    """True when only spaces stand between ``pos`` and the start of its line."""
    line_start = text.rfind("\n", 0, pos) + 1
    return not text[line_start:pos].strip()


@dataclass(frozen=True)
class _Candidate:
    n: int
    passage: Passage
    start: int  # in chunk text
    end: int
    prev: tuple[int, int] | None
    next: tuple[int, int] | None = None

    @property
    def text(self) -> str:
        return unit_text(self.passage.chunk.text[self.start : self.end])

    @property
    def shown_start(self) -> int:
        """Where the quote of this sentence starts: at the sentence before it when it opens with "it",
        "they", "the company"... ("It was founded in 2023." needs the sentence naming "it")."""
        return self.prev[0] if self.prev is not None and _ANAPHORA.match(self.text) else self.start

    @property
    def shown_text(self) -> str:
        """The text quoted for this sentence (from :attr:`shown_start`); scored as shown, so "It is based in
        Hangzhou." counts as the sentence naming DeepSeek before it."""
        start = self.shown_start
        return self.text if start == self.start else unit_text(self.passage.chunk.text[start : self.end])


def _candidates(passages: Sequence[Passage], max_passages: int) -> list[_Candidate]:
    out: list[_Candidate] = []
    for p in list(passages)[:max_passages]:
        units = sentence_units(p)
        for i, (s, e) in enumerate(units):
            out.append(
                _Candidate(p.n, p, s, e, units[i - 1] if i else None, units[i + 1] if i + 1 < len(units) else None)
            )
    return out


# Weights of the sentence score and of the answerability logit, and the decline threshold.
# Fitted with `python -m eval.calibrate_evidence` on the sets with unanswerable questions
# (sample, searchbox, pdf); the threshold (rag.config.CALIBRATED_ANSWERABILITY) declines at
# most 5% of the answerable questions of every set, rgb-en-fact and squad included. README "Quality".
# ``gives``: the sentence holds the asked-for thing itself (a number, date, name, place or
# expansion the question does not already give), so the sentence that answers leads.
# ``fragment``: fewer than six words ("2021 Wimbledon Championships."): a heading or caption
# that echoes the question without answering it.
# ``idf_overlap``: the share of the question's idf (the index's BM25 statistics) the sentence
# holds, in place of the plain word ``overlap`` (kept for answerability): the sentence naming
# the question's rarest words leads. Chosen with ``python -m eval.studies.lead_study``: of the
# variants tried, the one whose evidence lead holds the answer at least as often as before on
# all seven answerable sets (README "Quality").
SENTENCE_WEIGHTS = {
    "similarity": 1.0,
    "overlap": 0.0,
    "idf_overlap": 0.75,
    "keys": 0.15,
    "answer_type": 0.15,
    "rank": 0.1,
    "gives": 0.3,
    "fragment": -0.3,
}
CALIBRATION = {
    "bias": -4.943,
    "relevance": 0.732,
    "coverage": 2.218,
    "similarity": 1.179,
    "overlap": 1.629,
    "keys": 0.369,
    "answer_type": 1.15,
}


def select_evidence(
    question: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    max_sentences: int = 3,
    max_passages: int = 3,
    relative: float = 0.75,
    duplicate_overlap: float = 0.7,
    weights: dict[str, float] | None = None,
    term_weights: Mapping[str, float] | None = None,
) -> EvidenceSet:
    """Choose the sentences that answer ``question`` from the top passages.

    Args:
        question: the question (or its rewritten search text).
        passages: retrieved passages, best first, numbered as cited.
        embedder: the retrieval embedder (already loaded).
        max_sentences: most sentences kept.
        max_passages: sentences are taken from this many top passages.
        relative: other sentences must score at least this share of the best one.
        duplicate_overlap: a sentence sharing this share of content words with a kept one is dropped.
        weights: the sentence score's weights (default :data:`SENTENCE_WEIGHTS`; eval studies vary them).
        term_weights: the question's idf in the index (:meth:`rag.store.SearchableIndex.term_weights`), for
            the ``idf_overlap`` feature; without them (an index with no term statistics) it is ``overlap``.

    Returns:
        The evidence, best first (empty when the passages have no sentences), and its answerability.
    """
    cands = _candidates(passages, max_passages)
    if not cands:
        return EvidenceSet((), 0.0, {})
    texts = [c.shown_text for c in cands]
    vectors = np.asarray(embedder.encode([question, *texts]), dtype=np.float32)
    sims = vectors[1:] @ vectors[0]
    q_stems, q_keys, kinds = stems(question), key_terms(question), asked_kinds(question)
    weights = SENTENCE_WEIGHTS if weights is None else weights
    rare = rare_weights(term_weights or {})
    scored: list[tuple[float, dict[str, float], _Candidate]] = []
    for cand, text, sim in zip(cands, texts, sims):
        feats = _features(cand.text, text, float(sim), q_stems, q_keys, kinds, question, cand.n)
        feats["idf_overlap"] = idf_share(rare, text) if rare else feats["overlap"]
        score = sum(w * feats[k] for k, w in weights.items())
        scored.append((score, feats, cand))
    scored.sort(key=lambda t: (-t[0], t[2].n, t[2].start))
    best_feats = scored[0][1]
    chosen = _distinct(scored, max_sentences, relative, duplicate_overlap)
    relevance = max((p.relevance_or_score for p in passages), default=0.0)
    feats = {
        "relevance": relevance,
        "coverage": _coverage(q_stems, passages[:max_passages]),
        **{k: best_feats[k] for k in ("similarity", "overlap", "keys", "answer_type")},
    }
    return EvidenceSet(tuple(chosen), answerability_score(feats), feats)


def _distinct(
    scored: list[tuple[float, dict[str, float], _Candidate]],
    max_sentences: int,
    relative: float,
    duplicate_overlap: float,
) -> list[Evidence]:
    """The best-scored sentences (``scored`` is sorted best first), at most ``max_sentences``, none scoring
    below ``relative`` of the best, none repeating article text or most of a kept sentence's words."""
    best_score = scored[0][0]
    chosen: list[Evidence] = []
    kept_words: list[set[str]] = []
    for score, _feats, cand in scored:
        if chosen and score < relative * best_score:
            break
        ev = _evidence(cand, score)
        # A sentence that brings its predecessor along may overlap one already kept: join the two
        # (same chunk) or skip it (another chunk over the same article text), never repeat text.
        overlapping = next(
            (i for i, e in enumerate(chosen) if e.source == ev.source and e.start < ev.end and ev.start < e.end), None
        )
        if overlapping is not None:
            kept = chosen[overlapping]
            if kept.chunk_id == ev.chunk_id:
                chosen[overlapping] = _joined(kept, ev, cand.passage)
                kept_words[overlapping] = content_words(chosen[overlapping].text)
            continue
        words = content_words(ev.text)
        if any(len(words & w) >= duplicate_overlap * max(1, min(len(words), len(w))) for w in kept_words):
            continue
        kept_words.append(words)
        chosen.append(ev)
        if len(chosen) == max_sentences:
            break
    return chosen


def _coverage(q_stems: set[str], passages: Sequence[Passage]) -> float:
    """Share of the question's content words found anywhere in the top passages.

    An on-topic question the articles cannot answer usually asks about something they never
    mention ("How many employees..."): its focus word is missing from every passage.
    """
    wanted = q_stems - GENERIC_WORDS
    if not wanted:
        return 1.0
    seen: set[str] = set()
    for p in passages:
        seen |= stems(p.chunk.text)
    return len(wanted & seen) / len(wanted)


def _features(
    text: str,
    shown: str,
    sim: float,
    q_stems: set[str],
    q_keys: set[str],
    kinds: tuple[str, ...],
    question: str,
    n: int,
) -> dict[str, float]:
    """The sentence's score features. What it is about (words, names: ``shown``, with the sentence an "it"
    refers to) and what it gives (the asked-for kinds of thing, :func:`asked_kinds`: ``text``, the sentence
    itself; for "Who founded DeepSeek and when?" a name and a date count half each)."""
    s_stems = stems(shown)
    lower = shown.lower()
    return {
        "similarity": max(sim, 0.0),
        "overlap": len(q_stems & s_stems) / len(q_stems) if q_stems else 0.0,
        "keys": sum(1 for k in q_keys if k in lower) / len(q_keys) if q_keys else 1.0,
        "answer_type": sum(has_type(text, kind, question) for kind in kinds) / len(kinds),
        "rank": 1.0 / n,
        "gives": sum(bool(answer_spans(text, question, kind)) for kind in kinds) / len(kinds),
        "fragment": float(len(text.split()) < 6),
    }


def _evidence(cand: _Candidate, score: float) -> Evidence:
    start, end = cand.shown_start, cand.end
    if cand.next is not None and _ANNOUNCES.search(cand.text):
        end = cand.next[1]  # "Two dark clouds hang over Chinese AI." is only answered by what follows
    chunk = cand.passage.chunk
    text = unit_text(chunk.text[start:end])
    return Evidence(
        n=cand.n,
        text=text,
        start=chunk.start + start,
        end=chunk.start + end,
        score=score,
        chunk_id=chunk.id,
        source=chunk.source,
        title=chunk.title,
    )


def _joined(kept: Evidence, other: Evidence, passage: Passage) -> Evidence:
    """``kept`` widened to cover ``other`` too (both spans of ``passage``'s chunk), keeping its place and score."""
    chunk = passage.chunk
    start, end = min(kept.start, other.start), max(kept.end, other.end)
    text = unit_text(chunk.text[start - chunk.start : end - chunk.start])
    return replace(kept, text=text, start=start, end=end)


def answerability_score(features: dict[str, float]) -> float:
    """The calibrated probability-like score that the evidence answers the question."""
    z = CALIBRATION["bias"] + sum(CALIBRATION[k] * features.get(k, 0.0) for k in CALIBRATION if k != "bias")
    return 1.0 / (1.0 + math.exp(-z))


def quotes(sentences: Sequence[Evidence]) -> str:
    """Evidence sentences as quoted support, each with its ``[n]``."""
    return " ".join(cite(neutralise_markers(e.text), e.n) for e in sentences)


def compose(lead: str, support: Sequence[Evidence]) -> str:
    """An answer's text: the lead, then the supporting quotes under ``SUPPORT_LABEL`` (none: the lead alone)."""
    return f"{lead}\n\n{SUPPORT_LABEL} {quotes(support)}" if support else lead


def evidence_answer(evidence: EvidenceSet) -> str:
    """The evidence answer: the best sentence leads, the other chosen sentences are quoted under it, each with its ``[n]``."""
    if not evidence.sentences:
        return ""
    return compose(quotes(evidence.sentences[:1]), evidence.sentences[1:])


def draft_shortfall(
    draft: str, evidence: EvidenceSet, question: str, *, keep: str = "all", sentences: int = 2, words: float = 0.0
) -> str:
    """Why a draft whose every sentence is supported still says less than its evidence ("" if it does not).

    A small model's checked draft loses what the evidence answer gives in five ways, each
    seen on the development sets (README "Quality"):

    - it only repeats the question ("States of matter how many [1].");
    - it leaves out a name or number of the question that the evidence has (asked about
      error "E3", it talks of the warranty);
    - the question asks for a number or a date, the evidence gives one, the draft none;
    - it drops names and numbers of the best ``sentences`` evidence sentences that the
      question does not give; ``keep`` says how many must stay: ``all``, ``half`` or ``any``
      (``none`` turns these checks off);
    - it keeps less than ``words`` of the best evidence sentence's own words (those the
      question does not give): a 135M model's trimmed or reworded copy of the sentence loses
      the detail a reader wanted ("2 of the 1,460 samples" for "2 of the 1,460 routine samples").
    """
    if not evidence.sentences or (keep == "none" and not words):
        return ""
    plain = MARKER.sub(" ", draft)
    draft_stems, question_stems = stems(plain), stems(question)
    if keep != "none":
        why = _keeps_too_little(plain, draft_stems, question_stems, evidence, question, keep, sentences)
        if why:
            return why
    own = stems(evidence.sentences[0].text) - question_stems
    kept_words = len(own & draft_stems)
    if own and kept_words < words * len(own):
        return f"it keeps {kept_words} of the {len(own)} words of the best evidence sentence (fewer than {words:.0%})"
    return ""


def _keeps_too_little(
    plain: str,
    draft_stems: set[str],
    question_stems: set[str],
    evidence: EvidenceSet,
    question: str,
    keep: str,
    sentences: int,
) -> str:
    """The ``draft_must_keep`` rules of :func:`draft_shortfall` ("" when the draft passes them)."""
    if not draft_stems - question_stems:
        return "it only repeats the question"
    evidence_text = " ".join(e.text for e in evidence.sentences).lower()
    absent = sorted(k for k in key_terms(question) if k in evidence_text and k not in plain.lower())
    if absent:
        return f"it does not mention {', '.join(absent[:4])}, which the question names and the evidence has"
    kind = answer_type(question)
    if (
        kind in ("number", "date")
        and not has_type(plain, kind, question)
        and any(has_type(e.text, kind, question) for e in evidence.sentences)
    ):
        return f"it gives no {kind}, and the evidence does"
    facts: list[str] = []
    missing: list[str] = []
    for e in evidence.sentences[:sentences]:
        f, m = dropped_facts(e.text, plain, question)
        facts += [x for x in f if x not in facts]
        missing += [x for x in m if x not in missing]
    kept = len(facts) - len(missing)
    enough = {"all": not missing, "half": 2 * kept >= len(facts), "any": not facts or kept > 0}[keep]
    return "" if enough else f"it left out what the evidence says: {', '.join(missing[:4])}"


def cite(sentence: str, n: int) -> str:
    """Put ``[n]`` before the sentence's final punctuation."""
    m = re.search(r"[.!?]+[\"'\u201d)]*$", sentence)
    if m:
        return f"{sentence[: m.start()].rstrip()} [{n}]{sentence[m.start() :]}"
    return f"{sentence} [{n}]."


def extractive_answer(
    question: str, passages: Sequence[Passage], embedder: Embedder, max_sentences: int = 3, max_passages: int = 3
) -> str:
    """The evidence sentences for ``question``, each ending with its ``[n]`` (no lead); ``""`` if none."""
    ev = select_evidence(question, passages, embedder, max_sentences=max_sentences, max_passages=max_passages)
    return " ".join(cite(neutralise_markers(e.text), e.n) for e in ev.sentences)
