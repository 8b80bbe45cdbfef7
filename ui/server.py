"""``rag serve``: start the chat UI with safe defaults (see SECURITY.md).

Example:
    >>> serve(config="configs/default.yaml", port=7860)   # blocks until Ctrl+C; returns the exit status
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from rag import RAG, IndexNotFoundError

from . import render, viewer
from .security import MAX_BODY_BYTES, LoginThrottle, RequestGuard, allowed_host_names
from .tempspace import MB, TempSpace, state_folder
from .upload import UploadLimits, upload_allowed

if TYPE_CHECKING:
    from .chat import ChatUI

log = logging.getLogger("rag.ui")

AUTH_ENV = "RAG_UI_AUTH"
# glibc gives each thread that meets contention its own malloc arena (up to 8 per core) and
# rarely hands their freed pages back; Gradio runs every answer in a worker thread, so the
# embedder's and the answer's buffers spread over ever more arenas and the server's memory
# crept up under load although Python's own objects did not grow (benchmarks/README.md).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, unless ``MALLOC_ARENA_MAX`` already says how many.

    Returns:
        True when the cap was set (False: another C library, or the environment chose).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return bool(mallopt and mallopt(_M_ARENA_MAX, arenas) == 1)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` as a tuple (None when unset).

    Raises:
        ValueError: the value is not ``user:password`` with both parts non-empty.
    """
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError(
            f"authentication must look like USER:PASSWORD (both non-empty), e.g. {AUTH_ENV}=alice:s3cret "
            "or a file holding alice:s3cret given to --auth-file"
        )
    return user, password


def read_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """The logins in ``path``: one ``user:password`` per line (blank lines and ``#`` comments skipped).

    Raises:
        ValueError: the file cannot be read, holds no login, or a line is not ``user:password``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"cannot read the --auth-file {str(path)!r} ({exc}); create it with one USER:PASSWORD line"
        ) from None
    logins = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            logins.append(parse_auth(line))
        except ValueError:
            raise ValueError(
                f"line {number} of the --auth-file {str(path)!r} is not USER:PASSWORD (both non-empty)"
            ) from None
    if not logins:
        raise ValueError(f"the --auth-file {str(path)!r} holds no login; write one USER:PASSWORD line")
    if os.name == "posix" and Path(path).stat().st_mode & 0o077:
        print(f"warning: {path} can be read by other users; restrict it with: chmod 600 {path}", file=sys.stderr)
    return [login for login in logins if login is not None]


def logins(auth: str | None, auth_file: str | Path | None) -> list[tuple[str, str]] | None:
    """The logins to require: ``--auth-file``, else ``--auth``, else ``RAG_UI_AUTH``; None for none."""
    if auth_file:
        return read_auth_file(auth_file)
    if auth:
        print(
            f"warning: --auth puts the password in the process list, where every local user can read it (ps); "
            f"use {AUTH_ENV}=user:password or --auth-file FILE instead",
            file=sys.stderr,
        )
    login = parse_auth(auth or os.environ.get(AUTH_ENV))
    return [login] if login else None


def launch_threads(cfg: Any) -> int:
    """Gradio worker threads: each running or waiting question holds one, plus room for the rest."""
    return max(40, cfg.generation_concurrency + cfg.max_queue + 8)


def serve(
    *,
    config: str | Path | None = None,
    index: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    auth_file: str | Path | None = None,
    articles: str | Path | None = None,
    allowed_roots: Sequence[str | Path] | None = None,
) -> int:
    """Start the chat UI and serve until Ctrl+C (see ``rag serve --help``).

    Args:
        config: YAML config (None: built-in defaults).
        index: index folder (default: ``index.path``).
        host, port: where to listen; any host but loopback requires a login.
        auth: ``user:password`` (visible in the process list: prefer ``auth_file`` or ``RAG_UI_AUTH``).
        auth_file: file of ``user:password`` lines.
        articles: build the index from this folder first when there is none.
        allowed_roots: folders the page may rebuild from (default: ``ui.allowed_roots``, else the current folder).

    Returns:
        The exit status: 0 after Ctrl+C, 1 when the port is taken, 2 for bad settings.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    limit_malloc_arenas()  # before the model and worker threads allocate
    t0 = time.perf_counter()
    required, refusal = _start_refusal(host, port, auth, auth_file)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    rag = open_rag(config, index, articles)
    # Upload only where the page is private to this machine or behind a login (SECURITY.md).
    uploads = upload_allowed(rag.config.ui.upload, host, required is not None, is_loopback)
    space = TempSpace(state_folder(rag.config.ui.state_dir), int(rag.config.ui.temp_max_mb * MB))
    try:
        space.prepare()  # sets GRADIO_TEMP_DIR, which Gradio reads when imported and when the Blocks are made
    except OSError as exc:
        print(
            f"error: cannot create the server's state folder {space.state} ({exc}); set ui.state_dir to a folder you can write",
            file=sys.stderr,
        )
        return 2
    from .app import build_app
    from .chat import ChatUI
    from .openai_api import ChatAPI, api_key_from_env

    ui = ChatUI(
        rag, allowed_roots=allowed_roots, default_folder=str(articles) if articles else None, upload_enabled=uploads
    )
    # uvicorn believes X-Forwarded-For/-Proto only from these (its default trusts 127.0.0.1, so any local
    # program or a forged header on a proxied request could pick the client address the login lockout counts).
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(ui.cfg.trusted_proxies)
    demo = build_app(ui)
    demo.queue(default_concurrency_limit=1)
    hosts = allowed_host_names(host, ui.cfg.allowed_hosts)
    # The OpenAI-compatible endpoint (ui.openai_api) on the same port, behind the same guard, sharing the page's line.
    api = ChatAPI(ui, loopback=is_loopback(host), key=api_key_from_env())
    try:
        _launch(demo, ui, host, port, required, hosts, space, api.routes())
    except OSError as exc:
        space.remove()
        print(f"error: cannot listen on {host}:{port} ({exc}); pick another port with --port", file=sys.stderr)
        return 1
    _announce(
        ui,
        host,
        port,
        f"started in {time.perf_counter() - t0:.1f} s; index {index or rag.config.index.path}",
        hosts,
        f"OpenAI-compatible API at /v1{', bearer key required' if api.key_required else ''}",
    )
    _run_until_stopped(demo, ui, space)
    return 0


def _run_until_stopped(demo: Any, ui: ChatUI, space: TempSpace) -> None:
    """Warm the models up in the background and serve until Ctrl+C or SIGTERM; then close and remove the temp folder."""
    if ui.cfg.warm_up:
        threading.Thread(target=ui.ensure_loaded, name="rag-load-models", daemon=True).start()
    # SIGTERM (kill, systemd, a supervisor) stops it like Ctrl+C, so the temp folder and the model process go too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        space.remove()


def _start_refusal(
    host: str, port: int, auth: str | None, auth_file: str | Path | None
) -> tuple[list[tuple[str, str]] | None, str | None]:
    """``(logins required, why rag serve must not start)``."""
    try:
        required = logins(auth, auth_file)
        return required, _refusal(host, port, required)
    except ValueError as exc:
        return None, str(exc)


def _announce(ui: ChatUI, host: str, port: int, started: str, hosts: frozenset[str], api: str = "") -> None:
    shown_host = f"[{host}]" if ":" in host else host
    n = ui.cfg.generation_concurrency
    print(
        f"Serving the chat UI on http://{shown_host}:{port} ({started}; "
        f"answering {n} question{'s' * (n != 1)} at a time, up to {ui.cfg.max_queue} waiting; host names answered: {', '.join(sorted(hosts))}"
        f"{'; ' + api if api else ''}). Ctrl+C stops it.",
        flush=True,
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _refusal(host: str, port: int, required: list[tuple[str, str]] | None) -> str | None:
    """Why ``rag serve`` must not start with these settings, or None."""
    if not is_loopback(host) and required is None:
        return (
            f"refusing to serve on {host!r} without authentication: anyone who can reach this machine could use it. "
            f"Set {AUTH_ENV}=user:password or pass --auth-file FILE, or use --host 127.0.0.1."
        )
    if not 0 < port < 65536:
        return f"--port must be between 1 and 65535, got {port}"
    return None


def _missing_index(rag: RAG) -> bool:
    try:
        rag.info()
    except IndexNotFoundError:
        return True
    return False


def open_rag(config: str | Path | None, index: str | Path | None, articles: str | Path | None) -> RAG:
    """The pipeline a server answers with; its index is built from ``articles`` first when there is none yet."""
    rag = RAG.from_config(config, index=index)
    if articles and _missing_index(rag):
        print(f"No index yet; building it from {articles} ...", file=sys.stderr)
        summary = rag.build(articles, show_progress=True)
        print(f"Indexed {summary.articles} articles as {summary.chunks} chunks.", file=sys.stderr)
    return rag


def _launch(
    demo: Any,
    ui: ChatUI,
    host: str,
    port: int,
    required: list[tuple[str, str]] | None,
    hosts: frozenset[str],
    space: TempSpace,
    routes: Sequence[Any] = (),
) -> None:
    # FastAPI's own middleware list: the guard is in place before the server takes a request.
    # Gradio's upload route opens only with the upload panel, for one upload's bytes (plus multipart overhead).
    upload_bytes = UploadLimits.from_config(ui.rag.config).max_total_bytes if ui.upload_enabled else 0
    guard = Middleware(
        RequestGuard,
        hosts=hosts,
        throttle=LoginThrottle(),
        upload_bytes=upload_bytes + MAX_BODY_BYTES if upload_bytes else 0,
        port=port,
        upload_space=space.refusal,
    )
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=required,
        show_error=False,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=True,
        css=render.CSS + viewer.CSS,
        js=render.JS,
        footer_links=["api"],
        enable_monitoring=False,
        mcp_server=False,
        max_threads=launch_threads(ui.cfg),
        # Each session (a tab, or an API caller's session hash) holds a copy of the page's component
        # config plus its chat and sources panel (~120 KB of Python objects per session under /chat
        # load, tracemalloc); Gradio's default keeps 10,000 of them.
        state_session_capacity=ui.cfg.max_sessions,
        # Without the upload panel the guard closes the upload routes, and files are tiny if they ever reach Gradio.
        max_file_size=upload_bytes or "1kb",
        # FastAPI(routes=...) puts the API's routes ahead of Gradio's own.
        app_kwargs={"middleware": [guard], "routes": list(routes)},
    )
