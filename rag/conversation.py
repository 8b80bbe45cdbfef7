"""A conversation with the articles: history, follow-up rewriting, then the answer.

:class:`Conversation` is what the web UI, ``rag chat`` and Python callers share: it checks a
question, rewrites a follow-up into a standalone query (:mod:`rag.rewriting`), streams the
answer retrieved with that query and records the turn.

Example:
    >>> chat = Conversation(RAG.from_config("configs/default.yaml"))
    >>> chat.ask("What did the DeepSeek-V3 report say training cost?").text
    'The report said $5.6 million [1].'
    >>> chat.ask("and how much did it cost to train?").query
    'How much did DeepSeek-V3 cost to train?'
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .inputs import check_question, check_text  # noqa: F401  (re-exported: the UI and API import them from here)
from .rewriting import (  # noqa: F401  (re-exported: the rewriting lived here first)
    REWRITE_MODES,
    QueryRewriter,
    Rewrite,
    Turn,
    accept_model_rewrite,
    heuristic_rewrite,
    is_follow_up,
    names_in,
    rewrite_messages,
    subject_of,
)

if TYPE_CHECKING:
    from .pipeline import RAG, StreamEvent
    from .records import Answer

log = logging.getLogger(__name__)


# -- the conversation ---------------------------------------------------------------------
# Turns a conversation keeps (and a caller may send as history): only the last two feed the
# rewriter, the rest are context for the reader.
MAX_TURNS = 20
# An answer in a sent history; answers are capped by max_new_tokens (<= 1024 tokens in the UI).
MAX_ANSWER_CHARS = 20_000


def turns_from_history(history: Any, *, max_question_chars: int, max_turns: int = MAX_TURNS) -> list[Turn]:
    """Earlier turns sent by a caller, ``[{"question": ..., "answer": ..., "query": ...}, ...]``, checked.

    Turns without a question are skipped; unknown keys are ignored.

    Raises:
        InputError: not a list, more than ``max_turns`` turns, or a field too long or not text.
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise InputError(
            f'history must be a list of {{"question": ..., "answer": ...}} objects, got {type(history).__name__}'
        )
    if len(history) > max_turns:
        raise InputError(f"history has {len(history)} turns; the limit is {max_turns}: send only the latest ones")
    turns = []
    for i, item in enumerate(history):
        if not isinstance(item, Mapping):
            raise InputError(
                f'history[{i}] must be an object like {{"question": ..., "answer": ...}}, got {type(item).__name__}'
            )
        question = check_text(
            item.get("question") or "", f"history[{i}].question", max_question_chars, "ui.max_question_chars"
        )
        answer = check_text(item.get("answer") or "", f"history[{i}].answer", MAX_ANSWER_CHARS)
        query = check_text(item.get("query") or "", f"history[{i}].query", 2 * max_question_chars)
        if question:
            turns.append(Turn(question, answer, query))
    return turns


class Conversation:
    """Questions and answers in turn: each follow-up is rewritten for retrieval, then answered.

    The model still answers the user's own words; only retrieval uses the standalone query.
    Rewriting follows ``ui.rewrite`` and the question limit ``ui.max_question_chars``, so the
    web UI, ``rag chat`` and Python callers answer a follow-up the same way.

    Args:
        rag: the pipeline to answer with.
        turns: earlier turns, oldest first (e.g. from :func:`turns_from_history`).
        rewriter: the follow-up rewriter (default: ``ui.rewrite`` over ``rag.generator``).
        max_turns: turns kept; older ones are forgotten.

    Example:
        >>> chat = Conversation(rag)
        >>> for event in chat.stream_events("and why did it fall?", top_k=4):
        ...     if event.kind == "rewritten": print("searched for:", event.text)
        ...     elif event.kind == "answer": print(event.text, end="")
    """

    def __init__(
        self, rag: RAG, *, turns: Sequence[Turn] = (), rewriter: QueryRewriter | None = None, max_turns: int = MAX_TURNS
    ) -> None:
        self.rag = rag
        self.max_turns = max_turns
        self.turns: list[Turn] = list(turns)[-max_turns:]
        self.max_question_chars = rag.config.ui.max_question_chars
        self._rewriter = rewriter

    @property
    def rewriter(self) -> QueryRewriter:
        if self._rewriter is None:
            mode = self.rag.config.ui.rewrite
            self._rewriter = QueryRewriter(self.rag.generator if mode == "auto" else None, mode=mode)
        return self._rewriter

    def check(self, question: Any) -> str:
        """The question stripped, if it may be asked (see :func:`check_question`)."""
        return check_question(question, self.max_question_chars)

    def rewrite(self, question: str) -> Rewrite:
        """The standalone query for ``question`` after the turns so far."""
        try:
            return self.rewriter.rewrite(question, self.turns)
        except Exception:  # e.g. the generator cannot be created: the question still gets its answer
            log.exception("rewriting %r failed; retrieving with the question itself", question)
            return Rewrite(question, "unchanged")

    def stream_events(self, question: str, **options: Any) -> Iterator[StreamEvent]:
        """:meth:`RAG.stream_events` for a follow-up, preceded by a ``rewritten`` event when it was rewritten.

        The ``rewritten`` event's ``text`` is the standalone query. The turn is recorded
        when the ``done`` event arrives (a stream closed early records nothing).

        Args:
            question: what the user asked.
            **options: ``top_k``, ``temperature``, ``max_new_tokens``, ``filters``, ``abstention``.

        Raises:
            InputError: the question is empty, too long or not valid text.
        """
        from .pipeline import StreamEvent  # here, so the pipeline may use conversations without an import circle

        q = self.check(question)
        rewrite = self.rewrite(q)
        query = rewrite.query if rewrite.changed else None
        if query:
            yield StreamEvent("rewritten", text=query)
        for event in self.rag.stream_events(q, query=query, **options):
            if event.kind == "done" and event.answer is not None:
                self.turns = [*self.turns, Turn(q, event.answer.text, query or "")][-self.max_turns :]
            yield event

    def ask(self, question: str, **options: Any) -> Answer:
        """Answer ``question`` in this conversation; ``answer.query`` is what was retrieved with."""
        answer = None
        for event in self.stream_events(question, **options):
            if event.kind == "done":
                answer = event.answer
        if answer is None:
            raise RuntimeError("the pipeline ended without an answer")
        return answer

    def clear(self) -> None:
        """Forget the turns: the next question starts a new conversation."""
        self.turns = []
