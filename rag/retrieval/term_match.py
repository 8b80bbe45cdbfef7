"""Lexical match bonuses for fused candidates: what the embedder blurs, checked in the text.

A sentence embedding barely tells "Tesla's revenue in Q1 2021" from "Q1 2023", or "the 2018
Nobel Prize" from "the 2019 Nobel Prize", so near-identical snippets about another year,
quarter or season crowd the top of a dense (and hybrid) ranking. Two bonuses, each in [0, 1]
and weighted by the config, are added to a candidate's fused score before de-duplication:

- :func:`number_match`: the share of the question's numbers (years, "Q1", "season 11",
  "93rd") that the candidate's text holds; "fourth" counts as 4 and "93rd" as 93.
  A question without numbers gets no bonus, and a number every candidate holds shifts all
  scores alike, so only numbers that tell candidates apart change the order.
- :func:`date_match`: for a question asking when (:func:`rag.answering.asked.answer_type` is
  ``date``, or it says "date"), 1 for a candidate holding a full date (day, month, year)
  past its first character: an opening date is a dateline, not an answer.

``eval/studies/rerank_study.py`` measured these and the variants that lost (README "Quality").

Example:
    >>> number_match("Tesla's revenue in Q1 2021?", ["Q1 2021 revenue was $10.4 billion", "Q1 2023 revenue"])
    [1.0, 0.5]
    >>> date_match("When was Valhalla released?", ["Nov 21, 2022 ... coming soon", "It was released on November 10, 2020."])
    [0.0, 1.0]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..answering.asked import answer_type, key_terms
from ..text import CARDINALS, MONTH, ORDINALS

__all__ = [
    "asks_date",
    "bonus_applies",
    "date_match",
    "match_bonus",
    "number_match",
    "question_numbers",
    "text_numbers",
]

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Codes joining a letter and digits ("Q1", "PS5", "H800") are numbers the question may hinge on.
_CODE = re.compile(r"\b[A-Za-z]\d+\b")
# "fourth" and "four" count as 4 (one to twenty: the numbers a question's words name).
NUMBER_WORDS = {w: str(v) for w, v in (CARDINALS | ORDINALS).items() if 1 <= v <= 20}
_MONTH = rf"{MONTH}\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
# "November 10, 2020", "Nov. 10 2020", "10 November 2020", "21 of November, 1998".
_FULL_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+{_DAY},?\s+(?:of\s+)?\d{{4}}|{_DAY}\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})\b", re.IGNORECASE
)
_SAYS_DATE = re.compile(r"\bdates?\b", re.IGNORECASE)


def question_numbers(question: str) -> set[str]:
    """The question's numbers and letter-digit codes, lower-cased: ``{"q1", "2021"}``."""
    return {t for t in key_terms(question) if t[0].isdigit()} | {m.lower() for m in _CODE.findall(question)}


def text_numbers(text: str) -> set[str]:
    """Every token of ``text`` a question number can match: words and codes, numbers, number words as digits."""
    low = text.lower()
    words = set(_WORD.findall(low))
    return words | set(_NUMBER.findall(low)) | {NUMBER_WORDS[w] for w in words if w in NUMBER_WORDS}


def number_match(question: str, texts: Sequence[str]) -> list[float]:
    """For each text, the share of the question's numbers it holds (all 0 when the question has none)."""
    wanted = question_numbers(question)
    if not wanted:
        return [0.0] * len(texts)
    return [len(wanted & text_numbers(t)) / len(wanted) for t in texts]


def asks_date(question: str) -> bool:
    """True for a question asking when (:func:`rag.answering.asked.answer_type` ``date``) or saying "date"."""
    return answer_type(question) == "date" or bool(_SAYS_DATE.search(question))


def date_match(question: str, texts: Sequence[str]) -> list[float]:
    """For a question asking when: 1 for each text holding a full date past its start, else 0 (all 0 otherwise)."""
    if not asks_date(question):
        return [0.0] * len(texts)
    return [float(any(m.start() > 0 for m in _FULL_DATE.finditer(t))) for t in texts]


def bonus_applies(question: str, number_weight: float, date_weight: float) -> bool:
    """False when every candidate's bonus is 0 for ``question``, so their texts need not be read."""
    return bool((number_weight and question_numbers(question)) or (date_weight and asks_date(question)))


def match_bonus(question: str, texts: Sequence[str], number_weight: float, date_weight: float) -> list[float]:
    """``number_weight * number_match + date_weight * date_match`` for each text (texts read only for a non-zero weight)."""
    bonus = [0.0] * len(texts)
    for weight, feature in ((number_weight, number_match), (date_weight, date_match)):
        if weight:
            bonus = [b + weight * f for b, f in zip(bonus, feature(question, texts))]
    return bonus
