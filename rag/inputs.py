"""Checks of what a user types, made once where it comes in: text fields and the question.

Each raises :class:`~rag.errors.InputError` (a ``ValueError``) whose message names the field,
what is wrong and what to do. Inside, the pipeline trusts what passed.

Example:
    >>> check_question("  Who founded DeepSeek? ", max_chars=2000)
    'Who founded DeepSeek?'
    >>> check_question("   ")
    Traceback (most recent call last):
    rag.errors.InputError: the question is empty; type a question about the articles
"""

from __future__ import annotations

from typing import Any

from .errors import InputError


def check_text(value: Any, name: str, limit: int, setting: str = "") -> str:
    """``value`` stripped, if it is text of at most ``limit`` characters that UTF-8 can encode.

    Raises:
        InputError: not text, too long, or holding a lone surrogate such as ``\\ud800``.
    """
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__}")
    text = value.strip()
    if len(text) > limit:
        raise InputError(
            f"{name} is {len(text)} characters long; the limit is {limit}{f' ({setting})' if setting else ''}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{name} holds an invalid character ({text[exc.start]!r} at position {exc.start}, half of a UTF-16 pair); "
            "remove it and try again"
        ) from None
    return text


def check_question(question: Any, max_chars: int | None = None) -> str:
    """The question stripped, or an :class:`InputError` saying what is wrong with it.

    The one check of a question, wherever it comes in: :class:`~rag.conversation.Conversation`,
    ``RAG.ask`` and the web UI's and API's handlers all call it.

    Args:
        question: what the user asked.
        max_chars: the longest question allowed (``ui.max_question_chars``); None: no limit
            (``RAG.ask`` called from Python).

    Raises:
        InputError: empty or not text, too long, or holding a lone surrogate.
    """
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; type a question about the articles")
    return check_text(
        question, "the question", len(question) if max_chars is None else max_chars, "ui.max_question_chars"
    )
