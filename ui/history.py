"""Past chats kept in the browser (``gr.BrowserState``, the browser's localStorage), never on the server.

Each saved chat is ``{"id", "title", "chat", "session"}``: the chat messages as shown, and
the tab's session made JSON (turns as ``{"question", "answer", "query"}``, the Sources
panel sections, the answers that can be rated). Gradio encrypts the stored value with a
key of this server process, so a page cannot forge a saved chat; after a server restart
the old value cannot be read and the list starts empty.

Example:
    >>> saved, chat_id = save_chat([], None, chat, session)
    >>> chat, session, chat_id = open_chat(saved, chat_id, max_question_chars=2000)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from rag import RagError, Turn
from rag.conversation import turns_from_history

from .chat import new_session

# Chats kept; the oldest drop off (localStorage holds a few MB per site).
MAX_SAVED_CHATS = 20
TITLE_CHARS = 60


def session_to_json(session: dict[str, Any]) -> dict[str, Any]:
    """``session`` with its turns as plain objects (storable as JSON)."""
    turns = [{"question": t.question, "answer": t.answer, "query": t.query} for t in session.get("turns", [])]
    return {**session, "turns": turns, "sections": [list(s) for s in session.get("sections", [])]}


def session_from_json(data: Any, *, max_question_chars: int) -> dict[str, Any]:
    """A session from :func:`session_to_json`'s output (a fresh one when it does not read)."""
    if not isinstance(data, dict):
        return new_session()
    try:
        turns: list[Turn] = turns_from_history(data.get("turns") or [], max_question_chars=max_question_chars)
    except RagError:
        turns = []
    sections = [
        (str(s[0]), str(s[1])) for s in data.get("sections") or [] if isinstance(s, (list, tuple)) and len(s) == 2
    ]
    answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
    count = data.get("count") if isinstance(data.get("count"), int) else len(sections)
    return {"turns": turns, "sections": sections, "count": count, "answers": answers}


def title_of(chat: Sequence[dict[str, Any]]) -> str:
    """The first question of ``chat``, cut to :data:`TITLE_CHARS` (the escaped Markdown unescaped)."""
    for m in chat:
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content") or ""
            if isinstance(content, list):  # Gradio 6 sends messages back as [{"type": "text", "text": ...}, ...]
                content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            text = (
                str(content).replace("\\", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
            )
            return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
    return "(empty chat)"


def _valid(saved: Any) -> list[dict[str, Any]]:
    return [c for c in saved if isinstance(c, dict) and isinstance(c.get("id"), str)] if isinstance(saved, list) else []


def save_chat(
    saved: Any, chat_id: str | None, chat: Any, session: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], str | None]:
    """``saved`` with this chat stored first (replacing its earlier copy); the chat's id.

    An empty chat is not saved.
    """
    saved = _valid(saved)
    if not isinstance(chat, list) or not chat or not session:
        return saved, chat_id
    chat_id = chat_id or secrets.token_hex(8)
    entry = {"id": chat_id, "title": title_of(chat), "chat": chat, "session": session_to_json(session)}
    rest = [c for c in saved if c["id"] != chat_id]
    return [entry, *rest][:MAX_SAVED_CHATS], chat_id


def choices(saved: Any) -> list[tuple[str, str]]:
    """``(title, id)`` of each saved chat, newest first (for the list of past chats)."""
    return [(str(c.get("title") or "(untitled)"), c["id"]) for c in _valid(saved)]


def open_chat(
    saved: Any, chat_id: Any, *, max_question_chars: int
) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """The chat messages, session and id of saved chat ``chat_id`` (an empty chat when not found)."""
    for c in _valid(saved):
        if c["id"] == chat_id:
            chat = [m for m in c.get("chat") or [] if isinstance(m, dict)]
            return chat, session_from_json(c.get("session"), max_question_chars=max_question_chars), chat_id
    return [], new_session(), None


def delete_chat(saved: Any, chat_id: Any) -> list[dict[str, Any]]:
    """``saved`` without chat ``chat_id``."""
    return [c for c in _valid(saved) if c["id"] != chat_id]
