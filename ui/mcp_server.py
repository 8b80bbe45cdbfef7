"""``rag mcp``: the articles as MCP tools (the official ``mcp`` SDK), over stdio or streamable HTTP on loopback.

Tools:
    ``search_articles(query, top_k)``: passages with source, title, pages, offsets and relevance.
    ``ask(question)``: the checked answer (:func:`ui.plain.answer_content`), its citations and mode.
    ``list_articles()``: the indexed articles.

A tool that fails returns an MCP tool error (``isError``) with a readable message, never a
traceback; questions wait in the same kind of line as the page's (a full line is an error
saying the server is busy).

Example (an MCP client's configuration):
    {"mcpServers": {"articles": {"command": "rag", "args": ["mcp", "--config", "configs/default.yaml"]}}}
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag import RAG, RagError

from .chat import ChatUI
from .errors import EXPECTED
from .plain import answer_content, citations_json, passage_json

log = logging.getLogger("rag.mcp")

INSTRUCTIONS = (
    "Answers come only from a local collection of indexed articles. Use search_articles to find passages, "
    "ask for a checked, cited answer (cite its sources), list_articles to see what is indexed."
)


def _server_class() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as exc:
        raise ImportError(f"rag mcp needs the MCP SDK ({exc}); install it with: pip install -e '.[mcp]'") from None
    return MCPServer


class ArticleTools:
    """The three tools over a :class:`ui.chat.ChatUI` (its pipeline, line, model loading and messages)."""

    def __init__(self, ui: ChatUI) -> None:
        self.ui = ui

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Any failure as a ToolError with the page's readable message (no traceback, no absolute path)."""
        from mcp.server.mcpserver.exceptions import ToolError

        try:
            yield
        except Exception as exc:
            if not isinstance(exc, (*EXPECTED, RagError)):
                log.exception("MCP %s failed", what)
            raise ToolError(self.ui.explain(exc)) from None

    def search_articles(self, query: str, top_k: int = 5) -> list[dict[str, Any]]:
        """Find the passages of the indexed articles closest to ``query``, best first.

        Args:
            query: what to look for, in words.
            top_k: how many passages (1 to the server's limit, ui.max_top_k).

        Returns:
            Passages: n, title, source (the article's path), pages, start/end character offsets in the
            article, relevance (0-1) and text.
        """
        from rag.conversation import check_question

        with self._errors("search"):
            q = check_question(query, self.ui.cfg.max_question_chars)
            k, _, _ = self.ui.settings(top_k, 0.0, 1)
            self.ui.ensure_loaded()
            return [passage_json(p) for p in self.ui.rag.retrieve(q, k)]

    def ask(self, question: str) -> dict[str, Any]:
        """Answer ``question`` from the indexed articles, checked against them and cited as [n].

        Returns:
            answer (text with [n] markers and a Sources list), mode (generated: the model's words, checked;
            evidence: quoted article sentences; declined: the articles do not answer), citations (n, title,
            source, pages, offsets, snippet, support) and query (what was searched for).
        """
        from rag.conversation import check_question

        ui = self.ui
        with self._errors("ask"):
            q = check_question(question, ui.cfg.max_question_chars)
            gen = ui.rag.config.generation
            n_tokens = min(gen.max_new_tokens, ui.cfg.max_new_tokens_limit)
            k, t, n = ui.settings(ui.rag.config.retrieval.top_k, gen.temperature, n_tokens)
            with ui.queue.join() as place:
                place.wait()
                ui.ensure_loaded()
                answer = ui.conversation([]).ask(q, top_k=k, temperature=t, max_new_tokens=n)
        return {
            "answer": answer_content(answer),
            "mode": answer.mode,
            "citations": citations_json(answer),
            "query": answer.query,
        }

    def list_articles(self) -> list[dict[str, Any]]:
        """The indexed articles: source (path under the articles folder), title, date, url and chunk count."""
        with self._errors("list"):
            documents = self.ui.rag.store.read_manifest().get("documents", [])
        return [{key: d.get(key) for key in ("source", "title", "date", "url", "chunks")} for d in documents]


def build_server(ui: ChatUI) -> Any:
    """An ``MCPServer`` named ``rag-articles`` with the three tools over ``ui``."""
    tools = ArticleTools(ui)
    server = _server_class()("rag-articles", instructions=INSTRUCTIONS)
    for fn in (tools.search_articles, tools.ask, tools.list_articles):
        server.tool(name=fn.__name__)(fn)
    return server


def serve_mcp(
    *,
    config: str | Path | None = None,
    index: str | Path | None = None,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> int:
    """Serve the tools over stdio (default) or streamable HTTP at ``http://host:port/mcp`` (loopback only).

    Returns:
        The exit status: 0 when the client or Ctrl+C ends it, 1 when the port is taken, 2 for bad settings.
    """
    from .api_server import bind, serve_until_stopped
    from .security import LoginThrottle, RequestGuard, allowed_host_names
    from .server import is_loopback

    # stdout is the protocol's wire under stdio: every log line goes to stderr.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if http and not is_loopback(host):
        print(
            f"error: rag mcp --http serves on loopback only (it has no login), got --host {host!r}; use 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    ui = ChatUI(RAG.from_config(config, index=index))
    server = build_server(ui)
    if ui.cfg.warm_up:
        threading.Thread(target=ui.ensure_loaded, name="rag-load-models", daemon=True).start()
    if not http:
        server.run("stdio")
        return 0
    from starlette.middleware import Middleware

    app = server.streamable_http_app(host=host)
    hosts = allowed_host_names(host, ui.cfg.allowed_hosts)
    app.user_middleware.insert(0, Middleware(RequestGuard, hosts=hosts, throttle=LoginThrottle(), port=port))
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port} ({exc}); pick another port with --port", file=sys.stderr)
        return 1
    print(
        f"Serving MCP (streamable HTTP) on http://{host}:{port}/mcp: tools search_articles, ask, list_articles. "
        "Ctrl+C stops it.",
        file=sys.stderr,
        flush=True,
    )
    serve_until_stopped(app, sock)
    return 0
