"""``rag api``: the OpenAI-compatible endpoint (:mod:`ui.openai_api`) without the page.

The same guards as ``rag serve``: the request guard (Host and Origin allow-list, body cap),
loopback by default, a bearer key (``RAG_API_KEY``) required beyond it, and the line in front
of the generator.

Example:
    >>> serve_api(config="configs/default.yaml", port=8000)   # blocks until Ctrl+C; returns the exit status
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware


from .chat import ChatUI
from .openai_api import API_KEY_ENV, ChatAPI, api_key_from_env
from .security import LoginThrottle, RequestGuard, allowed_host_names
from .server import is_loopback, open_rag

log = logging.getLogger("rag.api")


def api_refusal(host: str, port: int, key: str | None) -> str | None:
    """Why ``rag api`` must not start with these settings, or None."""
    if not is_loopback(host) and key is None:
        return (
            f"refusing to serve the API on {host!r} without a key: anyone who can reach this machine could use it. "
            f"Set {API_KEY_ENV} in the environment (clients then send Authorization: Bearer <key>), "
            "or use --host 127.0.0.1."
        )
    if not 0 < port < 65536:
        return f"--port must be between 1 and 65535, got {port}"
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (so the server can say it is up only once it is).

    Raises:
        OSError: the address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run_uvicorn(app: object, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl+C or SIGTERM."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


def serve_until_stopped(app: object, sock: socket.socket) -> None:
    """:func:`run_uvicorn` until Ctrl+C; the socket is closed either way."""
    try:
        run_uvicorn(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def serve_api(
    *,
    config: str | Path | None = None,
    index: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    articles: str | Path | None = None,
) -> int:
    """Serve ``/v1/chat/completions`` and ``/v1/models`` until Ctrl+C (see ``rag api --help``).

    Returns:
        The exit status: 0 after Ctrl+C, 1 when the port is taken, 2 for bad settings.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    key = api_key_from_env()
    refusal = api_refusal(host, port, key)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    ui = ChatUI(open_rag(config, index, articles))
    api = ChatAPI(ui, loopback=is_loopback(host), key=key)
    hosts = allowed_host_names(host, ui.cfg.allowed_hosts)
    app = Starlette(
        routes=api.routes(), middleware=[Middleware(RequestGuard, hosts=hosts, throttle=LoginThrottle(), port=port)]
    )
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port} ({exc}); pick another port with --port", file=sys.stderr)
        return 1
    shown_host = f"[{host}]" if ":" in host else host
    print(
        f"Serving the OpenAI-compatible API on http://{shown_host}:{port}/v1 (model {', '.join(api.models)}; "
        f"started in {time.perf_counter() - t0:.1f} s; index {index or ui.rag.config.index.path}; "
        f"{'a bearer key is required' if api.key_required else 'no key required on loopback'}; "
        f"host names answered: {', '.join(sorted(hosts))}). Ctrl+C stops it.",
        flush=True,
    )
    if ui.cfg.warm_up:
        threading.Thread(target=ui.ensure_loaded, name="rag-load-models", daemon=True).start()
    serve_until_stopped(app, sock)
    return 0
