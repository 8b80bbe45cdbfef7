"""Names and numbers: the facts a cited passage must contain for a claim to count as supported.

Word overlap and embedding similarity let "DeepMind" pass for "DeepSeek" and "17.7%" for
"about 17 percent". :func:`missing_facts` lists the names, numbers and dates of a sentence
that its passage does not contain, allowing for formatting ("17%" = "17 percent",
"2,048" = "2048", "two" = "2") and light inflection ("China"/"Chinese", "Edwards"/"Edward").

Example:
    >>> missing_facts("DeepSeek-R1 was made by DeepMind [2].", "DeepSeek released DeepSeek-R1 in January.")
    ('DeepMind',)
    >>> missing_facts("Shares fell 17.7% [1].", "The share price fell about 17 percent.")
    ('17.7',)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..text import CARDINALS, MARKER

_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f][\w'\u2019\-]*")
_NUMBER_WORDS = CARDINALS
# Number words that state a count ("four states"); "one" and "hundred(s)" are mostly idiom ("one of", "hundreds of").
_FACT_NUMBER_WORDS = frozenset(w for w, v in _NUMBER_WORDS.items() if 2 <= v < 100)
# Capitalised words that are not names when they open a sentence or follow a colon.
_COMMON = frozenset(
    "a an the this that these those it its he she they we i you his her their our my your in on at by for with from of to as "
    "and or but if when while after before during since until although because so yes no not there here what who which where "
    "why how according answer some many most all each every both one two three first second third last next also however "
    "today yesterday".split()
)

# Names written differently for the same place: a demonym and its country's short forms.
_ALIASES = {
    "american": ("us", "u.s", "usa", "united states", "america"),
    "america": ("us", "u.s", "usa", "united states", "american"),
    "us": ("american", "united states", "america", "u.s"),
    "usa": ("american", "united states", "america", "u.s"),
    "british": ("uk", "britain", "united kingdom", "england"),
    "uk": ("british", "britain", "united kingdom"),
    "britain": ("uk", "british", "united kingdom"),
    "dutch": ("netherlands", "holland"),
    "french": ("france",),
    "german": ("germany",),
    "swiss": ("switzerland",),
    "greek": ("greece",),
    "spanish": ("spain",),
}


def numbers_in(text: str) -> set[float]:
    """Numeric values written in ``text`` (digits or small number words), markers ignored."""
    text = MARKER.sub(" ", text)
    values = {float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)}
    values |= {float(_NUMBER_WORDS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return values


# A year written in a question ("the 2019 Rugby World Cup"): four digits, not a decade ("1840s"),
# not part of a longer number or a version ("2019.1", "1,000").
_YEAR = re.compile(r"(?<![\w.,\-])(1\d{3}|20\d{2})(?![\w\-]|[.,]\d)")


def unmentioned_years(question: str, texts: Iterable[str]) -> tuple[str, ...]:
    """The years of ``question`` that none of ``texts`` (the retrieved passages) writes.

    A year in a question is part of what it asks ("Who won the 2022 FIFA World Cup final?"):
    passages that never mention it are about something else, however many other words they share.

    Example:
        >>> unmentioned_years("Who won the 2019 Rugby World Cup?", ["Rugby union grew in popularity in 2007."])
        ('2019',)
    """
    years = list(dict.fromkeys(_YEAR.findall(MARKER.sub(" ", question))))
    if not years:
        return ()
    present = set()
    for text in texts:
        present |= numbers_in(text)
    return tuple(y for y in years if float(y) not in present)


def names_in(sentence: str) -> list[str]:
    """Capitalised words that look like names (a sentence's common first word is not one)."""
    text = MARKER.sub(" ", sentence)
    out: list[str] = []
    for m in _WORD.finditer(text):
        word = m.group(0).strip("'\u2019-")
        if not word or not word[0].isupper() or len(word) < 2:
            continue
        if word.lower() in _COMMON or word.lower().rstrip("s") in _NUMBER_WORDS:
            continue
        out.append(word)
    return list(dict.fromkeys(out))


# Endings that turn one form of a name into another: Edward/Edwards, China/Chinese,
# Persia/Persian, America/Americans. "DeepSea" is no form of "DeepSeek" ("a" vs "ek").
_ENDINGS = frozenset(
    {"", "s", "es", "a", "an", "ans", "n", "ns", "ese", "ian", "ians", "ish", "i", "ic", "e", "ed", "ing"}
)


def _prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _word_present(word: str, vocabulary: set[str], haystack: str) -> bool:
    w = word.lower().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", haystack):
        return True
    if any(re.search(rf"(?<!\w){re.escape(a)}(?!\w)", haystack) for a in _ALIASES.get(w, ())):
        return True
    parts = [p for p in re.split(r"[-']", w) if p]
    if len(parts) > 1:
        return all(_word_present(p, vocabulary, haystack) for p in parts if len(p) > 1)
    for v in vocabulary:
        common = _prefix_len(w, v)
        if common >= 4 and w[common:] in _ENDINGS and v[common:] in _ENDINGS:
            return True
    return False


def missing_facts(sentence: str, passage_text: str, allowed: Iterable[str] = ()) -> tuple[str, ...]:
    """Names and numbers of ``sentence`` absent from ``passage_text`` (and from ``allowed`` texts).

    Args:
        sentence: one answer sentence (markers are ignored).
        passage_text: the cited passage (its title may be appended).
        allowed: further texts whose names count as present, such as the question itself.

    Returns:
        The missing names and numbers, in order of appearance (empty: nothing is missing).
    """
    extra = " ".join(allowed)
    haystack = (passage_text + " " + extra).lower().replace("\u2019", "'")
    vocabulary = set(re.findall(r"[a-z\u00e0-\u024f]+", haystack))
    present_numbers = numbers_in(passage_text + " " + extra)
    missing: list[str] = []
    for m in _NUMBER.finditer(MARKER.sub(" ", sentence)):
        value = float(m.group(0).replace(",", ""))
        if value not in present_numbers:
            missing.append(m.group(0))
    for word in re.findall(r"[a-z]+", MARKER.sub(" ", sentence).lower()):
        if word in _FACT_NUMBER_WORDS and float(_NUMBER_WORDS[word]) not in present_numbers:
            missing.append(word)  # "four states": a number written as a word is a number too
    for name in names_in(sentence):
        if not _word_present(name, vocabulary, haystack):
            missing.append(name)
    return tuple(dict.fromkeys(missing))


def dropped_facts(source: str, draft: str, question: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names and numbers of ``source`` the question does not already give, and those of them ``draft`` leaves out.

    Used to check that a model's draft keeps what the evidence sentence it answers from says
    (a 135M model tends to keep the verified half of a fact and drop the rest).

    Returns:
        ``(facts, missing)``: ``facts`` of ``source`` not in ``question``; ``missing``, those not in ``draft``.
    """
    facts = missing_facts(source, "", allowed=[question])
    missing = missing_facts(source, draft, allowed=[question])
    return facts, missing
