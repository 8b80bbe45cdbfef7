"""``rag chat``: questions one per line, follow-ups rewritten as in the web UI (a :class:`Conversation`).

Example:
    $ printf 'How much did Nvidia shares fall on 27 January 2025?\\nand why did it fall?\\n' | rag chat --json
    {"question": "How much did Nvidia ...", "answer": "... [1].", ..., "rewritten": false}
    {"question": "and why did it fall?", "query": "Why did Nvidia fall?", ..., "rewritten": true}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from ..conversation import Conversation
from ..errors import RagError

DESCRIPTION = """\
Ask questions one per line (typed, or piped in); each answer cites its passages as [n]. A
follow-up ("and why did it fall?") is rewritten into a standalone question for retrieval,
shown as "searched for: ...", the same way the web UI does (ui.rewrite in the config). A
line /clear starts a new conversation; /quit or end of input stops.
"""


def add_chat_parser(
    sub: argparse._SubParsersAction,
    common: Callable[[argparse.ArgumentParser], None],
    config_path: Callable[[str | None], str | None],
) -> None:
    """Register ``rag chat`` on the ``rag`` parser (``common`` adds --config and --index)."""
    p = sub.add_parser(
        "chat",
        help="a conversation: questions one per line, follow-ups rewritten as in the web UI",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .common import add_abstention_option

    common(p)
    p.add_argument("--top-k", type=int, metavar="N", help="passages to retrieve (default: retrieval.top_k)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="answer length limit in tokens (default: generation.max_new_tokens)",
    )
    p.add_argument(
        "--json", action="store_true", help='print one JSON object per answer (as rag ask --json, plus "rewritten")'
    )
    add_abstention_option(p)
    p.set_defaults(func=lambda args: cmd_chat(args, config_path(args.config)))


def cmd_chat(args: argparse.Namespace, config: str | None, stdin: TextIO | None = None) -> int:
    """Answer each line of ``stdin`` in one conversation; bad questions are reported and skipped."""
    from ..pipeline import RAG

    stdin = stdin or sys.stdin
    overrides = {"evidence.abstention": args.abstention} if args.abstention else None
    conversation = Conversation(RAG.from_config(config, index=args.index, overrides=overrides))
    options = {"top_k": args.top_k, "max_new_tokens": args.max_new_tokens}
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = stdin.readline()
        if not line or line.strip() == "/quit":
            return 0
        if line.strip() == "/clear":
            conversation.clear()
            continue
        if not line.strip():
            continue
        try:
            _answer(conversation, line, options, as_json=args.json)
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)


def _answer(conversation: Conversation, question: str, options: dict, *, as_json: bool) -> None:
    answer, query = None, None
    for event in conversation.stream_events(question, **options):
        if event.kind == "rewritten":
            query = event.text
            if not as_json:
                print(f"(searched for: {query})", flush=True)
        elif event.kind == "done":
            answer = event.answer
    if answer is None:
        raise RuntimeError("the pipeline ended without an answer")
    if as_json:
        print(json.dumps({**answer.to_dict(), "rewritten": query is not None}, ensure_ascii=False), flush=True)
        return
    print(answer.text)  # the checked answer, once (lead, then the articles' quotes)
    cited = {c.n for c in answer.citations}
    for p in answer.passages:
        if p.n in cited:
            print(f"  [{p.n}] {p.chunk.title} ({p.chunk.source})")
    print(flush=True)
