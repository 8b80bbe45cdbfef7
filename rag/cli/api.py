"""``rag api`` and ``rag mcp``: the articles for other clients (an OpenAI-compatible endpoint, MCP tools).

Both live in ``ui/`` (they are servers, like ``rag serve``); this module only registers the commands,
which reach them through :data:`rag.cli.common.UI_COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .common import ui_command

API_DESCRIPTION = """\
Serve POST /v1/chat/completions and GET /v1/models (OpenAI's chat API) without the page, for
clients such as Open WebUI, the openai package or the llm CLI ('rag serve' serves them too, on
the page's port). The messages are one conversation: earlier turns drive follow-up rewriting,
system messages are ignored for retrieval. The content is the checked answer with [n] markers
and a Sources list; the response (and a stream's last chunk) also carries "citations" and "mode".
It binds to 127.0.0.1 by default. Any other address needs a key: set RAG_API_KEY in the
environment (never on the command line) and clients send Authorization: Bearer <key>; when
RAG_API_KEY is set, loopback clients need it too. Only loopback names, --host and
ui.allowed_hosts are answered; answers wait in one line (ui.generation_concurrency,
ui.max_queue) and a full line is 429 with Retry-After.
"""

MCP_DESCRIPTION = """\
Serve the articles as MCP tools (Model Context Protocol) for agents and IDE assistants:
search_articles(query, top_k), ask(question) and list_articles(). Over stdio by default (the
client starts 'rag mcp' itself); --http serves streamable HTTP at http://127.0.0.1:PORT/mcp,
on loopback only. Needs the MCP SDK: pip install -e '.[mcp]'.
"""


def add_api_parsers(
    sub: argparse._SubParsersAction,
    common: Callable[[argparse.ArgumentParser], None],
    config_path: Callable[[str | None], str | None],
) -> None:
    """Register ``rag api`` and ``rag mcp`` (``common`` adds --config and --index)."""
    p = sub.add_parser(
        "api",
        help="serve an OpenAI-compatible chat API over the articles (no page)",
        description=API_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; others need RAG_API_KEY)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--articles", metavar="DIR", help="build the index from DIR first when none exists")
    p.set_defaults(func=lambda args: _api(args, config_path(args.config)))
    m = sub.add_parser(
        "mcp",
        help="serve the articles as MCP tools (stdio, or streamable HTTP on loopback)",
        description=MCP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(m)
    m.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    m.add_argument("--host", default="127.0.0.1", help="with --http: a loopback address to bind (default: 127.0.0.1)")
    m.add_argument("--port", type=int, default=8765, help="with --http: port (default: 8765)")
    m.set_defaults(func=lambda args: _mcp(args, config_path(args.config)))


def _api(args: argparse.Namespace, config: str | None) -> int:
    try:
        serve_api = ui_command("api")
    except ImportError as exc:
        print(
            f"error: the API server is not available ({exc}); install the project with: pip install -e .",
            file=sys.stderr,
        )
        return 2
    return serve_api(config=config, index=args.index, host=args.host, port=args.port, articles=args.articles)


def _mcp(args: argparse.Namespace, config: str | None) -> int:
    return ui_command("mcp")(config=config, index=args.index, http=args.http, host=args.host, port=args.port)
