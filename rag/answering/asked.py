"""What a question asks for, and where a sentence gives it.

:func:`answer_type` names the kind of thing a question wants (a number for "how many", a
date for "when", a name for "who", a place for "where", an expansion for "what does X stand
for"); :func:`has_type` says whether a sentence holds that kind; :func:`answer_phrase`
finds it in the sentence, so the reader's eye lands on it (the lead's ``lead_span``) and a
model's draft can be checked for it (:mod:`rag.answering.lead`).

Example:
    >>> answer_type("How many parameters does DeepSeek-V3 have?")
    'number'
    >>> s = "DeepSeek-V3 has 671 billion parameters in total."
    >>> a, b = answer_phrase(s, "How many parameters does DeepSeek-V3 have?"); s[a:b]
    '671 billion parameters'
    >>> s = "GRPO (Group Relative Policy Optimization) removes the critic."
    >>> a, b = answer_phrase(s, "what does GRPO stand for"); s[a:b]
    'Group Relative Policy Optimization'
"""

from __future__ import annotations

import re

from ..text import CARDINALS, MONTH, content_words

_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-3][0-9])\b")  # 2048 is a count (H800 GPUs), not a year
_MONTH = re.compile(rf"\b{MONTH}\b", re.I)
_CAPITALISED = re.compile(r"\b[A-Z][\w\-]*")
_QUESTION_WORDS = {
    "who",
    "whom",
    "whose",
    "what",
    "when",
    "where",
    "which",
    "why",
    "how",
    "did",
    "does",
    "do",
    "is",
    "are",
    "was",
    "were",
    "can",
    "could",
    "the",
    "a",
    "an",
    "in",
    "of",
    "i",
}

_EXPANSION_Q = re.compile(
    r"\bstands? for\b|\bshort for\b|\babbreviat|\bacronym\b|\bfull (name|form)\b|\bexpansion\b", re.I
)
_NUMBER_Q = re.compile(
    r"\bhow (many|much|long|old|far|big|large|tall|high|fast|heavy)\b"
    r"|\bwhat (?:[\w@.\-]+\s+){0,2}?(percentage|percent|fraction|proportion|number|amount|share|score|price|size|rate|valuation|fine)\b"
    r"|\bwhat (?:is|was|were|are)\b.{0,40}\b(revenue|price|cost|population|budget|salary|net worth|market value|capacity)\b",
    re.I,
)
# Search-box queries ("beidou satellite weight kg", "goodison park capacity"): no question word, no
# question mark, and a word that names a measured quantity.
_NUMBER_KEYWORDS = re.compile(
    r"^(?!.*\b(?:who|whom|whose|what|when|where|which|why|how|location|located|named?|year|date)\b)(?!.*\?)"
    r".*\b(weight|mass|area|capacity|population|height|length|depth|elevation|altitude|price|cost|funding|budget|"
    r"revenue|income|salary|speed|temperature|distance|diameter|size|market share|percentage|kg|km|metres|meters|"
    r"miles|tons|tonnes)\b",
    re.I,
)
_DATE_Q = re.compile(
    r"\bwhen\b|\bwhat (year|date|day|month|decade|century)\b|\bwhich year\b|\b(year|date)\W*$"
    r"|\b(release|premiere|launch|opening|air|publication|founding) date\b|\bdate of\b",
    re.I,
)
_WHO_Q = re.compile(r"\s*(?:and\s+|so\s+)?(?:who|whom|whose)\b", re.IGNORECASE)
_PLACE_Q = re.compile(
    r"\bwhere\b|\bwhich (country|city|town|province|state|region|continent)\b|\b(based|headquartered|located)\b", re.I
)
_NAME_Q = re.compile(
    r"\bwho(m|se)?\b|\bwhat (nick)?name\b"
    r"|\bwhich (?:[A-Z][\w\-]*\s+)*(company|person|team|firm|organi[sz]ation|lab|group|model|agency|app|university|"
    r"newspaper|chip|party|body|regulator|authority|ministry|department|bank|fund|technique|method|algorithm|product)\b",
    re.I,
)
_FOCUS = re.compile(r"\bhow (?:many|much)\s+(?:of\s+)?(?:the\s+)?([a-z][a-z\-]+)", re.I)


def stem(word: str) -> str:
    """A light English stem: enough to match "founded"/"founder", "rivals"/"rival"."""
    for suffix in ("ations", "ation", "ings", "ing", "ers", "er", "ies", "ied", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    """The light stems of ``text``'s content words."""
    return {stem(w) for w in content_words(text)}


def key_terms(question: str) -> set[str]:
    """The question's names and numbers, lower-cased (what must not be blurred)."""
    out = {m.group(0).lower() for m in re.finditer(r"(?<!\w)\d+(?:[.,]\d+)*", question)}
    for i, m in enumerate(_CAPITALISED.finditer(question)):
        word = m.group(0).lower()
        if (i == 0 and m.start() == 0 and word in _QUESTION_WORDS) or word in _QUESTION_WORDS:
            continue
        out.add(word)
    return out


# "What is the H20?", "what is AIME": a definition of a short term.
_DEFINITION_Q = re.compile(
    r"^\s*what(?:'s| is| are| was| were)\s+(?:an?\s+|the\s+)?([\w][\w\-.' ]{0,40}?)\s*\??\s*$", re.I
)


def answer_type(question: str) -> str:
    """``expansion``, ``number``, ``date``, ``place``, ``name``, ``definition`` or ``other``: what kind
    of thing the question asks for (search-box style too: "union of utrecht year" asks for a date)."""
    if _EXPANSION_Q.search(question):
        return "expansion"
    if _NUMBER_Q.search(question) or _NUMBER_KEYWORDS.search(question):
        return "number"
    if _WHO_Q.match(question):
        return "name"  # "Who was named the 2021 National Teacher of the Year?" asks for a person, not a year
    if _DATE_Q.search(question):
        return "date"
    if _NAME_Q.search(question):
        return "name"
    if _PLACE_Q.search(question):
        return "place"
    m = _DEFINITION_Q.match(question)
    # "What is the context window of DeepSeek-V3?" asks for an attribute of something, not what a term is.
    if m and len(m.group(1).split()) <= 4 and not re.search(r"\b(of|in|for|on)\b", m.group(1), re.I):
        return "definition"
    return "other"


# A second thing asked after "and": "Who founded DeepSeek and when?", "When was it released and where?"
_SECOND_ASK = re.compile(r"\band\s+(when|where|who|how (?:many|much)|which year|what year)\b", re.IGNORECASE)


def asked_kinds(question: str) -> tuple[str, ...]:
    """The kinds of thing ``question`` asks for: :func:`answer_type`, then a second one asked after "and"
    ("Who founded DeepSeek and when?" -> ``("name", "date")``)."""
    first = answer_type(question)
    m = _SECOND_ASK.search(question)
    if not m:
        return (first,)
    second = answer_type(f"{m.group(1)}?")
    return (first,) if second in (first, "other") else (first, second)


def _definition_spans(sentence: str, question: str) -> list[tuple[int, int]]:
    """What a sentence says the asked term is: "the H20, a Hopper-generation chip with ..." -> "a Hopper-generation chip"."""
    m = _DEFINITION_Q.match(question)
    if not m:
        return []
    term = re.escape(m.group(1).strip())
    pattern = re.compile(
        rf"\b{term}\b(?:\s*\([^)]*\))?(?:,\s*|\s+(?:is|was|are|were|stands for|means)\s+)((?:an?|the)\s+[^,;.()]{{3,80}})",
        re.I,
    )
    return [(d.start(1), _word_end(sentence, d.end(1))) for d in pattern.finditer(sentence)]


def _word_end(sentence: str, end: int) -> int:
    """``end`` moved back to the end of a whole word when a length limit cut one ("... human stock p" -> "... human stock")."""
    if end < len(sentence) and sentence[end].isalnum() and sentence[end - 1].isalnum():
        cut = sentence.rfind(" ", 0, end)
        return cut if cut > 0 else end
    return end


def acronyms(question: str) -> list[str]:
    """Words of the question written in capitals (``GRPO``, ``MoE``), the things an expansion is asked of."""
    return [
        w
        for w in re.findall(r"\b[A-Za-z][A-Za-z0-9\-]*\b", question)
        if sum(c.isupper() for c in w) >= 2 and len(w) <= 10
    ]


def _expansion_spans(sentence: str, question: str) -> list[tuple[int, int]]:
    """Runs of words in ``sentence`` whose initials spell an acronym of ``question`` ("Group Relative Policy Optimization")."""
    out: list[tuple[int, int]] = []
    # "mixture-of-experts" is three words for MoE; "multi-head latent attention" is three for MLA.
    for pattern in (r"[A-Za-z][\w']*", r"[A-Za-z][\w'\-]*"):
        for span in _initials_spans(list(re.finditer(pattern, sentence)), question):
            if span not in out:
                out.append(span)
    return out


def _initials_spans(words: list[re.Match[str]], question: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for acro in acronyms(question):
        letters = [c.lower() for c in acro if c.isalpha() and c.isupper()] or [c.lower() for c in acro if c.isalpha()]
        for i in range(len(words)):
            j, k = i, 0
            while j < len(words) and k < len(letters):
                w = words[j].group(0)
                if w[0].lower() == letters[k]:
                    k += 1
                elif w.lower() not in ("of", "and", "for", "the", "in", "on", "to") or j == i:
                    break
                j += 1
            if (
                k == len(letters)
                and words[j - 1].group(0).lower() not in ("of", "and", "for", "the")
                and words[i].group(0) != acro
            ):
                out.append((words[i].start(), words[j - 1].end()))
    return out


_NUMBER = re.compile(
    r"(?<![\w.$\u20ac\u00a3\u00a5])(?:US\$|[$\u20ac\u00a3\u00a5])?(?:\d[\d,.]*\d|\d)(?:\s?%)?"
)  # "$589 billion" keeps its sign
_SCALE = re.compile(r"\s+(?:thousand|million|billion|trillion|percent|per cent|hundred)\b", re.I)
_NUMBER_WORD = re.compile(r"\b(" + "|".join(w for w, v in CARDINALS.items() if 2 <= v) + r")\b", re.I)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+{MONTH}\.?,?\s+\d{{4}}|{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|{MONTH}\.?\s+\d{{4}}"
    rf"|{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\d{{1,2}}\s+{MONTH}\b|(?:1[0-9]{{3}}|20[0-3][0-9])s?)\b",
    re.I,
)
# When something recurs or happens within a day ("on the second Tuesday of each month at 6:30 pm",
# "every spring", "at weekends"): an answer to "when" as much as a date is.
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_RECURRING = re.compile(
    rf"\b(?:(?:(?:first|second|third|fourth|last)\s+)?{_WEEKDAY}s?(?:\s+of\s+(?:each|every|the)\s+month)?"
    r"|(?:the\s+)?(?:last\s+|first\s+)?weekends?(?:\s+(?:of|in)\s+[A-Z]\w+)?"
    r"|(?:each|every)\s+(?:day|week|month|year|morning|evening|night|spring|summer|autumn|fall|winter)"
    r"|daily|weekly|fortnightly|monthly|quarterly|annually|yearly"
    r"|\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)(?!\w)|noon|midnight)",
    re.IGNORECASE,
)
_CONNECTOR_WORDS = ("of", "de", "da", "von", "van", "the", "and", "al", "bin")  # lower-case words inside a name
_CONNECTORS = frozenset(_CONNECTOR_WORDS)
_NAME_RUN = re.compile(rf"\b[A-Z][\w\-'\u2019.]*(?:\s+(?:{'|'.join(_CONNECTOR_WORDS)})?\s*[A-Z][\w\-'\u2019.]*)*")
_PLACE_CUE = re.compile(r"\b(?:in|at|based in|headquartered in|located in|from|near|to)\s+(?:the\s+)?$", re.I)
_COMMON_OPENERS = {
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "he",
    "she",
    "they",
    "but",
    "and",
    "as",
    "after",
    "before",
    "when",
    "while",
    "since",
    "by",
    "for",
    "with",
    "from",
    "of",
    "to",
    "however",
    "also",
    "both",
    "according",
    "on",
    "last",
    "this",
    "during",
    "one",
    "two",
    "three",
    "there",
    "what",
    "who",
}


def _not_in_question(span: str, question: str) -> bool:
    q = question.lower()
    words = [w for w in re.findall(r"\w+", span.lower()) if w not in _QUESTION_WORDS]
    return bool(words) and not all(w in q for w in words)


def _numbers(sentence: str, question: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    dates = [(m.start(), m.end()) for m in _DATE.finditer(sentence)]
    for m in list(_NUMBER.finditer(sentence)) + list(_NUMBER_WORD.finditer(sentence)):
        token = m.group(0).rstrip(".,")
        if _YEAR.fullmatch(token) or not _not_in_question(token, question) or any(a <= m.start() < b for a, b in dates):
            continue  # a year, or the day of a date, is no count
        end = m.start() + len(token)
        scale = _SCALE.match(sentence, end)
        if scale:
            end = scale.end()
        focus = _FOCUS.search(question)
        counted = False
        if focus and re.search(
            r"\bhow many\b", question, re.I
        ):  # the counted thing within three words: "2,048 Nvidia H800 GPUs"
            for word in list(re.finditer(r"[\w\-]+", sentence[end : end + 48]))[:3]:
                if stem(word.group(0).lower()) == stem(focus.group(1).lower()):
                    counted, end = True, end + word.end()
                    break
        out.append((not counted, m.start(), end))
    # The number of the counted thing first ("2,048 Nvidia H800 GPUs" for "how many GPUs"), then in text order.
    return [(a, b) for _, a, b in sorted(out)]


def _new_name(run: str, question: str) -> bool:
    """Whether a run of capitalised words names something the question does not: two or more of its words
    are new, or at least half. "The 2014 FIFA World Cup has come to an end." names the question's
    World Cup, not who won it; "Abigail Johnson Named CEO of Fidelity Investments" names Abigail Johnson."""
    q = question.lower()
    words = [w for w in re.findall(r"\w+", run.lower()) if w not in _QUESTION_WORDS and w not in _CONNECTORS]
    new = [w for w in words if w not in q]
    return len(new) >= 2 or (bool(new) and 2 * len(new) >= len(words))


def _names(sentence: str, question: str, place: bool) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in _NAME_RUN.finditer(sentence):
        start, end = m.start(), m.end()
        text = m.group(0).rstrip(".")
        first = text.split()[0].lower().strip("'\u2019")
        if start == 0 or sentence[:start].rstrip().endswith((".", ":")):
            if first in _COMMON_OPENERS:  # "The" / "In" opening the sentence is no name; the rest may be one
                rest = text.split(None, 1)
                if len(rest) < 2:
                    continue
                start += len(text) - len(rest[1])
                text = rest[1]
        end = start + len(text)
        if not _new_name(text, question) or _MONTH.fullmatch(text) or text.lower() in _COMMON_OPENERS:
            continue
        if place and not _PLACE_CUE.search(sentence[max(0, start - 24) : start]):
            continue
        out.append((start, end))
    return out


def answer_spans(sentence: str, question: str, kind: str | None = None) -> list[tuple[int, int]]:
    """Every span of ``sentence`` holding the kind of thing ``question`` asks for, not taken from the question."""
    kind = kind or answer_type(question)
    if kind == "expansion":
        return _expansion_spans(sentence, question)
    if kind == "definition":
        return _definition_spans(sentence, question)
    if kind == "number":
        return _numbers(sentence, question)
    if kind == "date":
        found = list(_DATE.finditer(sentence)) or list(_RECURRING.finditer(sentence))
        return [(m.start(), m.end()) for m in found if _not_in_question(m.group(0), question)]
    if kind == "place":
        return _names(sentence, question, place=True) or _names(sentence, question, place=False)
    if kind == "name":
        return _names(sentence, question, place=False)
    return []


def answer_phrase(sentence: str, question: str, kind: str | None = None) -> tuple[int, int] | None:
    """The span of ``sentence`` that gives what ``question`` asks for (None: none, or the kind is ``other``).

    Of several, the one with most of the question's words close by: asked how much market value
    Nvidia lost, "... fell about 17%, wiping roughly $589 billion off the chipmaker's market value"
    marks "$589 billion", not "17%"; ties go to the first.
    """
    spans = answer_spans(sentence, question, kind)
    if len(spans) < 2:
        return spans[0] if spans else None
    wanted = stems(question)

    def near(span: tuple[int, int]) -> int:
        before = sentence[: span[0]].split()[-6:]
        after = sentence[span[1] :].split()[:6]
        return len(stems(" ".join(before + after)) & wanted)

    # A span that names the counted thing itself ("2,048 Nvidia H800 GPUs" for "how many GPUs") comes first.
    return max(spans, key=lambda sp: (bool(stems(sentence[sp[0] : sp[1]]) & wanted), near(sp), -spans.index(sp)))


def has_type(sentence: str, kind: str, question: str) -> float:
    """1 when the sentence holds the kind of answer asked for (and, for "how many X", mentions X);
    0.5 for the kind without X; 0 otherwise (``other``: always 1, nothing to check)."""
    if kind == "number":
        # A year is no answer to "how many": count only other numbers.
        numbers = [m for m in re.finditer(r"\d[\d,.]*", sentence) if not _YEAR.fullmatch(m.group(0).rstrip(".,"))]
        if not numbers:
            return 0.0
        focus = _FOCUS.search(question)
        if focus and focus.group(1).lower() not in ("money", "time", "more", "less"):
            return 1.0 if stem(focus.group(1).lower()) in stems(sentence) else 0.5
        return 1.0
    if kind == "date":
        return float(bool(_YEAR.search(sentence) or _MONTH.search(sentence) or _RECURRING.search(sentence)))
    if kind in ("name", "place"):
        asked = {w.lower() for w in _CAPITALISED.findall(question)}
        return float(any(w.lower() not in asked for w in _CAPITALISED.findall(sentence[1:])))
    if kind == "expansion":
        return float(bool(_expansion_spans(sentence, question)))
    return 1.0  # definition and other: the calibrated answerability features treat them alike
