"""Thumbs up or down (and a comment) on answers, appended to ``ui.feedback_path`` (:class:`rag.FeedbackLog`).

Gradio's ``Chatbot.like`` event says which message was rated; the tab's session knows, for
each answer message, the question, the answer, how it was made, its citations and the index
generation (:meth:`ui.chat.ChatUI._answer` records them), and that is what is stored.

Example:
    >>> ratings = Ratings(ui)
    >>> ratings.rate(session, index=3, liked=False)
    'Thanks: thumbs down saved. Add a comment below if you like.'
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from rag import FeedbackLog, feedback_record

from . import render
from .chat import ChatUI

log = logging.getLogger("rag.ui")


class Ratings:
    """Stores the ratings of ``ui``'s answers in ``ui.feedback_path`` (relative: from the folder the server started in)."""

    def __init__(self, ui: ChatUI) -> None:
        self.ui = ui
        path = Path(ui.cfg.feedback_path)
        self.log = FeedbackLog(path if path.is_absolute() else ui.base / path)

    def _save(self, info: dict[str, Any], liked: bool, comment: str = "") -> None:
        self.log.append(
            feedback_record(
                question=info["question"],
                answer=info["answer"],
                liked=liked,
                mode=info.get("mode", ""),
                query=info.get("query", ""),
                citations=info.get("citations", []),
                generation=info.get("generation"),
                comment=comment,
            )
        )

    def rate(self, session: dict | None, index: Any, liked: Any) -> str:
        """Record a rating of chat message ``index``; the note for the page (``session`` remembers it for a comment)."""
        key = str(index[0] if isinstance(index, (list, tuple)) else index)
        info = (session or {}).get("answers", {}).get(key)
        if info is None or liked is None:
            return '<span class="rag-note">Only finished answers can be rated.</span>' if liked is not None else ""
        try:
            self._save(info, bool(liked))
        except OSError as exc:
            log.warning("saving feedback failed: %s", exc)
            return render.error_markdown(
                "The rating could not be saved (the feedback file is not writable); tell whoever runs this server."
            )
        session["rated"] = {"index": key, "liked": bool(liked)}
        return f'<span class="rag-ok">Thanks: thumbs {"up" if liked else "down"} saved. Add a comment below if you like.</span>'

    def like(self, session: dict | None, data: gr.LikeData) -> tuple[str, dict | None]:
        """The ``Chatbot.like`` handler: ``(note, session)``."""
        return self.rate(session, data.index, data.liked), session

    def comment(self, session: dict | None, text: Any) -> tuple[str, str]:  # (note, new textbox value)
        """Attach ``text`` to the latest rating of this tab (stored as a new line that supersedes it)."""
        rated = (session or {}).get("rated")
        text = str(text or "").strip()
        if not rated or not text:
            return '<span class="rag-note">Rate an answer with thumbs up or down first, then comment.</span>', text
        info = session["answers"].get(rated["index"])
        if info is None:
            return '<span class="rag-note">Rate an answer with thumbs up or down first, then comment.</span>', text
        try:
            self._save(info, rated["liked"], text)
        except OSError as exc:
            log.warning("saving feedback failed: %s", exc)
            return render.error_markdown("The comment could not be saved (the feedback file is not writable)."), text
        return '<span class="rag-ok">Comment saved with your rating.</span>', ""
