"""Ratings of answers (thumbs up or down, an optional comment) kept as JSON lines, and their export.

The chat page appends one line per rating to ``ui.feedback_path``; nothing else is stored.
``rag feedback export`` turns the disliked answers into a QA JSONL skeleton (the format of
``rag eval``, see :mod:`rag.evaluation.qa`), so a user's complaints become their regression set once
the accepted answers are filled in.

Example:
    >>> log = FeedbackLog("feedback/feedback.jsonl")
    >>> log.append(feedback_record(answer, liked=False, comment="wrong date", generation="gen-2025..."))
    >>> export_disliked(log.read(), "regressions.jsonl")
    1
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from .documents import mark_not_articles

# A comment longer than this is cut (it is a note for a person, not a document).
MAX_COMMENT_CHARS = 2000


def feedback_record(
    *,
    question: str,
    answer: str,
    liked: bool,
    mode: str = "",
    query: str = "",
    citations: Sequence[Mapping[str, Any]] = (),
    generation: str | None = None,
    comment: str = "",
) -> dict[str, Any]:
    """One rating as stored: when, liked or not, the comment, and what was rated.

    Args:
        question, answer: what was asked and the answer shown (citation markers included).
        liked: thumbs up (True) or down (False).
        mode: how the answer was made (``Answer.mode``).
        query: the standalone query retrieved with, when the question was a follow-up.
        citations: ``{"n", "title", "source", "pages"}`` of each cited passage.
        generation: the index generation the answer came from.
        comment: the user's note, cut to :data:`MAX_COMMENT_CHARS`.
    """
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rating": "up" if liked else "down",
        "comment": (comment or "").strip()[:MAX_COMMENT_CHARS],
        "question": question,
        "query": query or question,
        "answer": answer,
        "mode": mode,
        "citations": [{k: c.get(k) for k in ("n", "title", "source", "pages")} for c in citations],
        "index_generation": generation,
    }


class FeedbackLog:
    """An append-only JSON lines file of ratings, safe for several writers.

    Each record is one whole line written with a single ``write`` under a file lock
    (``<path>.lock``), so concurrent raters never interleave and a reader never sees half
    a record.

    Args:
        path: the JSONL file (its folder is created on the first rating).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: Mapping[str, Any]) -> None:
        """Add ``record`` as one line."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mark_not_articles(
            self.path.parent, self.path.name
        )  # a build of a folder above it must not read ratings as articles
        with FileLock(str(self.path) + ".lock", timeout=10):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first (lines that are not JSON objects are skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out


def latest_ratings(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The last rating of each (question, answer): a thumbs down changed to up no longer counts."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in records:
        key = (str(r.get("question", "")), str(r.get("answer", "")))
        latest.pop(key, None)  # keep first-rated order of the last ratings
        latest[key] = r
    return list(latest.values())


def qa_skeleton(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The disliked answers as QA items: the question, no accepted answers yet, and what was wrong.

    ``answers`` and ``sources`` are left for a person to fill in (the cited sources of a
    wrong answer are no evidence of the right ones); ``feedback`` keeps the rejected answer,
    its citations and the comment.
    """
    items = []
    for r in latest_ratings(records):
        if r.get("rating") != "down" or not str(r.get("question", "")).strip():
            continue
        digest = hashlib.sha256(f"{r.get('question')}\n{r.get('answer')}".encode()).hexdigest()[:10]
        items.append(
            {
                "id": f"feedback-{digest}",
                "question": str(r["question"]).strip(),
                "answers": [],
                "sources": [],
                "answerable": True,
                "feedback": {
                    k: r.get(k) for k in ("comment", "answer", "mode", "citations", "index_generation", "time")
                },
            }
        )
    return items


def export_disliked(records: Iterable[Mapping[str, Any]], out: str | Path | None = None) -> int:
    """Write the QA skeleton of the disliked answers to ``out`` (None: stdout); the number written."""
    items = qa_skeleton(records)
    text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
    return len(items)


def cmd_feedback_export(args: argparse.Namespace, config_path: Callable[[str | None], str | None]) -> int:
    from .config import Config

    path = Path(args.feedback or Config.load(config_path(args.config)).ui.feedback_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no feedback file at {str(path)!r}: rate answers in the chat UI first (thumbs up or down), "
            "or pass the file with --feedback FILE"
        )
    n = export_disliked(FeedbackLog(path).read(), args.out)
    where = args.out or "stdout"
    print(
        f"Wrote {n} disliked answer{'s' * (n != 1)} to {where} as QA JSONL; fill in 'answers' (and 'sources'), "
        f"then run: rag eval {args.out or 'FILE'} --articles DIR",
        file=sys.stderr,
    )
    return 0


def add_feedback_parser(sub: Any, config_path: Callable[[str | None], str | None]) -> None:
    """``rag feedback export``: the CLI side of this module."""
    p = sub.add_parser(
        "feedback",
        help="export the answers rated in the chat UI",
        description="Work with the ratings saved by the chat UI (ui.feedback_path).",
    )
    fsub = p.add_subparsers(dest="feedback_command", metavar="SUBCOMMAND")
    pe = fsub.add_parser(
        "export",
        help="write the disliked answers as a QA JSONL skeleton for rag eval",
        description="Write every answer whose latest rating is thumbs down as one QA JSONL line "
        "(id, question, empty answers and sources to fill in, answerable: true, and a 'feedback' "
        "object with the rejected answer, its citations and the comment). Fill in the accepted "
        "answers and run it with rag eval: the complaints become a regression set.",
    )
    pe.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config whose ui.feedback_path is read (default: configs/default.yaml when present)",
    )
    pe.add_argument("--feedback", metavar="FILE", help="the feedback file (default: ui.feedback_path from the config)")
    pe.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    pe.set_defaults(func=lambda args: cmd_feedback_export(args, config_path))
