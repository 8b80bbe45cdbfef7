"""What an article is called: a short label, never a paragraph.

A title is shown in the Sources panel and in citations, and is embedded and BM25-indexed in
front of every chunk of its article (``Chunk.indexed_text``), so a long one costs every chunk
window space and repeats one paragraph in every vector. In order of preference:

1. the document's own title: HTML ``<title>``, a Markdown ``#`` line, a ``Title:`` header
   line, a JSON ``title``, the PDF's metadata title;
2. else the first line of a plain-text (or PDF) article when it reads as a title
   (:func:`first_line_title`);
3. else the file name made readable (:func:`readable_name`).

The rule for the first line was measured on every corpus here: the sample articles' first
lines (15 plain-text and Markdown files) have 6-14 words and none ends in a full stop; every
squad article (490) starts with a paragraph of 28-358 words ending in ``.``, ``"``, ``]`` or
``)``; every rgb-en-fact snippet (969) is one line, the whole text. The body always keeps its
first line, whether it became the title or not.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote

# A first line of more words is a paragraph, not a title.
MAX_TITLE_WORDS = 15
# A declared title (HTML, JSON, PDF metadata) is cut to this many words: still never a paragraph.
MAX_DECLARED_WORDS = 24
# How a sentence (not a title) ends: a full stop, comma, colon or semicolon, an ellipsis,
# or one of them inside closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.,;:\u2026][\"'\u201d\u2019)\]]*$")
# A list item or a table row is not a title.
_NOT_A_TITLE_START = re.compile(r"^([-*+\u2022|>]|\d+[.)]\s)")
_LETTER = re.compile(r"[^\W\d_]")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# PDF producers fill the title field with these when the author set none.
_PLACEHOLDER = re.compile(
    r"^(untitled|microsoft (word|powerpoint) - .*|.*\.(docx?|pdf|tex|dvi|odt|rtf))$", re.IGNORECASE
)


def first_line_title(line: str, followed: bool) -> str:
    """``line`` when it reads as a title, else ``""``; ``followed``: more text follows it.

    A title line is at most :data:`MAX_TITLE_WORDS` words, holds a letter, does not end like a
    sentence (``.``, ``,``, ``:``, ``;``, an ellipsis), is not a list item, and is not the
    whole text (more text follows it).

    Example:
        >>> first_line_title("The Battle of a Hundred Models", True)
        'The Battle of a Hundred Models'
        >>> first_line_title("The 1973 oil crisis began in October 1973.", True)
        ''
    """
    line = " ".join(line.split())
    if not line or not followed or len(line.split()) > MAX_TITLE_WORDS:
        return ""
    if _SENTENCE_END.search(line) or _NOT_A_TITLE_START.match(line) or not _LETTER.search(line):
        return ""
    return line


def readable_name(source: str) -> str:
    """The file name of ``source`` as a title: ``Age_of_Enlightenment.txt`` -> ``Age of Enlightenment``.

    URL escapes are decoded (``Bill_%26_Melinda_Gates_Foundation`` -> ``Bill & Melinda Gates
    Foundation``); underscores become spaces, and so do hyphens in a name without underscores
    or spaces (``deepseek-r1-release`` -> ``deepseek r1 release``; ``Sino-Tibetan_languages``
    keeps its hyphen). A record of a JSON file is named after the file.
    """
    stem = PurePosixPath(source.split("#")[0].replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem.strip(".") else stem
    if _PERCENT_ESCAPE.search(stem):
        stem = unquote(stem)
    if "_" in stem or " " in stem:
        stem = stem.replace("_", " ")
    else:
        stem = stem.replace("-", " ")
    return " ".join(stem.split()) or source


def declared_title(title: str | None) -> str:
    """A title the document declares, whitespace collapsed, cut to :data:`MAX_DECLARED_WORDS` words."""
    words = (title or "").split()
    if len(words) > MAX_DECLARED_WORDS:
        return " ".join(words[:MAX_DECLARED_WORDS]) + " \u2026"
    return " ".join(words)


def pdf_metadata_title(title: str | None) -> str:
    """The PDF's metadata title, or ``""`` for a placeholder a producer wrote (``Untitled``, ``report.docx``)."""
    title = " ".join((title or "").split())
    return "" if _PLACEHOLDER.match(title) else title
