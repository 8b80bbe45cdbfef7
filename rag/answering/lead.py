"""The lead: one direct sentence that answers, then the articles' own words under it.

Every answer that is not declined starts with a lead and carries the evidence quotes below it
(:func:`compose`), so it never holds less than the evidence:

- a model draft is the lead when it is **faithful** (every sentence supported by the passage
  it cites, its names and numbers there: :func:`rag.answering.verification.check_draft`) and
  **responsive** (:func:`unresponsive` finds nothing: it gives the kind of thing asked for,
  taken from the evidence, and more than the question's own words);
- otherwise the lead is the best answer-bearing evidence sentence (:func:`evidence_lead`),
  with the answer phrase marked (``Answer.lead_span``).

Example:
    >>> unresponsive("GRPO stands for Group Relative Policy Optimization [3].", "what does GRPO stand for", evidence)
    ''
    >>> unresponsive("GRPO is an algorithm [3].", "what does GRPO stand for", evidence)
    'it gives no expansion, and the question asks for one'
"""

from __future__ import annotations

import re

from .asked import answer_phrase, answer_spans, answer_type, asked_kinds, stems
from .evidence import SUPPORT_LABEL, EvidenceSet, compose, key_terms, quotes
from .facts import numbers_in
from ..text import CARDINALS, MARKER


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", MARKER.sub(" ", text).lower()))


def _in_evidence(phrase: str, evidence_text: str) -> bool:
    """Every number of ``phrase`` (digits or words: "8" = "eight") and every other word is in the evidence:
    a reworded "a chip" for "a Hopper-generation chip" passes, "10 parameters" for 671 billion does not."""
    numbers = numbers_in(phrase)
    if not numbers <= numbers_in(evidence_text):
        return False
    number_words = {w for w in _words(phrase) if w in CARDINALS}
    return _words(phrase) - number_words <= _words(evidence_text)


def _mentions(text: str, term: str) -> bool:
    """``term`` (a question's name, lower-cased) is in ``text``, or one of its hyphen parts is ("R1" for "DeepSeek-R1")."""
    return term in text or any(
        len(part) >= 2 and re.search(rf"\b{re.escape(part)}\b", text) for part in term.split("-")[1:]
    )


def _in_evidence_loosely(phrase: str, evidence_text: str) -> bool:
    """A definition in the model's words: its numbers are in the evidence and two thirds of its other words."""
    if not numbers_in(phrase) <= numbers_in(evidence_text):
        return False
    words = stems(phrase)
    return not words or 3 * len(words & stems(evidence_text)) >= 2 * len(words)


_KINDS = {
    "number": "number",
    "date": "date",
    "name": "name",
    "place": "place",
    "expansion": "expansion",
    "definition": "definition",
}


def unresponsive(draft: str, question: str, evidence: EvidenceSet) -> str:
    """Why a faithful draft still does not answer ``question`` ("" when it does).

    - it only repeats the question ("States of matter how many [1].");
    - the question asks for a number, date, name, place or expansion and the draft gives none
      that is not already in the question (for a second thing asked after "and", as in "Who
      founded it and when?": none where the evidence gives one);
    - what it gives is not in the evidence (a year from elsewhere in the passage is no answer
      to what the evidence sentences are about);
    - for other questions (what, why, how), it adds fewer than two words of the evidence to the
      question's, or mentions none of the question's names that the evidence has (asked about
      error "E3", it talks of the warranty; "Liang studied at Zhejiang University" for Liang Wenfeng passes).
    """
    plain = " ".join(MARKER.sub(" ", draft).split())
    new = stems(plain) - stems(question)
    if not new:
        return "it only repeats the question"
    kind = answer_type(question)
    evidence_text = " ".join(e.text for e in evidence.sentences)
    if kind in _KINDS:
        spans = answer_spans(plain, question, kind)
        if not spans:
            return f"it gives no {_KINDS[kind]}, and the question asks for one"
        found = _in_evidence_loosely if kind == "definition" else _in_evidence
        if not any(found(plain[a:b], evidence_text) for a, b in spans):
            return f"its {_KINDS[kind]} ({plain[spans[0][0] : spans[0][1]]}) is not in the evidence"
        # "Who founded DeepSeek and when?": the date too, where the evidence has one
        for also in asked_kinds(question)[1:]:
            if answer_spans(evidence_text, question, also) and not answer_spans(plain, question, also):
                return f"it gives no {_KINDS[also]}, which the question also asks for and the evidence gives"
        return ""
    if len(new & stems(evidence_text)) < 2:
        return "it says too little beyond the question"
    lower = evidence_text.lower()
    named = sorted(k for k in key_terms(question) if k in lower)
    if named and not any(_mentions(plain.lower(), k) for k in named):
        return f"it does not mention {', '.join(named[:4])}, which the question names and the evidence has"
    return ""


def disagrees(draft: str, question: str, evidence: EvidenceSet) -> str:
    """Why a draft's answer is not the best evidence sentence's ("" when it is, or that sentence gives none).

    A 135M model often answers from the second or third evidence line ("Bianca Andreescu won Wimbledon
    in 2019 [2]" beside "Simona Halep ... won the 2019 Wimbledon Championships [1]"): its lead then
    missed the gold answer that the evidence lead held more often (rgb-en-fact, README "Quality"). With
    ``evidence.draft_must_agree`` such a draft does not lead; a bigger model's profile may turn it off.
    """
    kind = answer_type(question)
    if kind not in _KINDS or not evidence.sentences:
        return ""
    best = evidence.sentences[0].text
    if not answer_spans(best, question, kind):
        return ""
    plain = " ".join(MARKER.sub(" ", draft).split())
    if any(_in_evidence(plain[a:b], best) for a, b in answer_spans(plain, question, kind)):
        return ""
    return f"its {_KINDS[kind]} is not the one the best evidence sentence gives"


def lead_span(lead: str, question: str) -> tuple[int, int] | None:
    """Offsets in ``lead`` of the phrase that answers ``question`` (None: the kind is not one a phrase gives)."""
    return answer_phrase(MARKER.sub(lambda m: " " * len(m.group(0)), lead), question)


def evidence_lead(evidence: EvidenceSet) -> str:
    """The lead when no draft is accepted: the best evidence sentence, cited ("" without evidence)."""
    return quotes(evidence.sentences[:1])


__all__ = ["SUPPORT_LABEL", "compose", "disagrees", "evidence_lead", "lead_span", "quotes", "unresponsive"]
