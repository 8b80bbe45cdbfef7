"""Text helpers shared by several stages: sentence splitting, content words, the marker grammar.

Example:
    >>> sentence_spans("Nvidia fell. Mr. Liang spoke.")
    [(0, 12), (13, 29)]
    >>> sorted(content_words("The share price fell 17 percent [1]."))
    ['17', 'fell', 'percent', 'price', 'share']
"""

from __future__ import annotations

import re

# Citation markers as the parser reads them: [1], [1, 3], [1;2], [1-3], [1–3].
MARKER = re.compile(r"\[(\s*\d+(?:\s*(?:,|;|-|\u2013)\s*\d+)*\s*)\]")

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n\s*\n")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "co", "corp", "vs", "etc", "e.g", "i.e", "u.s", "st", "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` spans of sentences in ``text``, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start()
        # Don't split after common abbreviations ("Mr. Liang", "U.S. rules").
        tail = text[max(start, end - 6):end].split()
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


_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how than then there their they them he she his her we our you your i not no do does did "
    "has have had will would can could should may might about into over after before also such so very more most other some any "
    "each answer question passage passages according".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-cased words and numbers of ``text`` minus stopwords and citation markers."""
    text = MARKER.sub(" ", text.lower())
    return {w for w in _TOKEN.findall(text) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}
