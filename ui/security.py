"""What the web server refuses before any Gradio handler runs.

:class:`RequestGuard` is an ASGI middleware on the Gradio app (``rag serve`` installs it):

- a ``Host`` header, or an ``Origin`` header when one is sent, naming a host that is not
  allowed gets 403. A page on another site can make a browser send requests to
  ``127.0.0.1`` (cross-site requests, and DNS rebinding, where ``evil.example`` comes to
  resolve to 127.0.0.1); without this check such a page could run the chat and rebuild
  endpoints and read the answers.
- Gradio's file upload routes get 404 unless the upload panel is on (``ui.upload``, loopback or a
  login); then their bodies may hold one upload (``ui.upload_max_total_mb``) and no more.
- request bodies over :data:`MAX_BODY_BYTES` get 413 before they are read whole.
- after :attr:`LoginThrottle.max_failures` failed logins from one client address within
  ``window_s`` seconds, ``POST /login`` gets 429 for ``lockout_s`` seconds.

Example:
    >>> guard = Middleware(RequestGuard, hosts=allowed_host_names("127.0.0.1", ()), throttle=LoginThrottle())
    >>> demo.launch(app_kwargs={"middleware": [guard]})
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

log = logging.getLogger("rag.ui")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# The largest legitimate body is an /ask call with a full history (20 turns of at most 26,000
# characters, JSON-escaped) or a /chat call carrying the page's chat: well under 4 MB.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Gradio's upload routes; this app has no file input, so they stay closed.
UPLOAD_PATHS = ("/gradio_api/upload", "/upload", "/gradio_api/upload_progress", "/upload_progress")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def host_name(value: str) -> str:
    """A configured host name as the allow-list keeps it (``[::1]:7860`` -> ``::1``), lower case, no trailing dot.

    Lenient, for names from the config and the command line; headers go through :func:`parse_host`.
    """
    value = value.strip().lower()
    if value.startswith("["):
        name = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    else:
        name = value  # a bare IPv6 address, or no port
    return name.rstrip(".")


# name[:digits]: a DNS name or IPv4 address (letters, digits, '-', '_', '.'), or [IPv6]; nothing else.
_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_](?:[a-z0-9_.-]{0,252})))(?::(?P<port>[0-9]{1,5}))?")
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>[^/?#@\s]+)")
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` header accepted only as ``name[:digits]`` (None for anything else).

    ``127.0.0.1:7893@evil.example``, ``[::1]evil.example``, ``localhost:evil.example`` and a
    port over 65535 are None: browsers never send them, and a lenient parser would read a
    name the allow-list never saw.

    Example:
        >>> parse_host("LocalHost.:7860"), parse_host("[::1]"), parse_host("localhost:evil.example")
        (('localhost', 7860), ('::1', None), None)
    """
    m = _HOST.fullmatch(value.strip().lower())
    if m is None:
        return None
    if m["ip6"] is not None:
        try:
            ipaddress.IPv6Address(m["ip6"])
        except ValueError:
            return None
    port = int(m["port"]) if m["port"] is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    return (m["ip6"] or m["name"].rstrip(".")), port


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` header, the port filled in from the scheme; None unless ``http(s)://name[:digits]``."""
    m = _ORIGIN.fullmatch(value.strip().lower())
    host = parse_host(m["host"]) if m else None
    if m is None or host is None:
        return None
    return m["scheme"], host[0], host[1] if host[1] is not None else DEFAULT_PORTS[m["scheme"]]


def host_allowed(header: str, hosts: frozenset[str]) -> bool:
    """Whether a ``Host`` header is ``name[:digits]`` with a name in ``hosts`` (``"*"`` in ``hosts`` allows any well-formed one)."""
    parsed = parse_host(header)
    return parsed is not None and ("*" in hosts or parsed[0] in hosts)


def origin_allowed(origin: str, *, scheme: str, host: str, hosts: frozenset[str], port: int | None = None) -> bool:
    """Whether a request's ``Origin`` is this app itself: same scheme, an allowed host, and its port.

    Args:
        origin: the ``Origin`` header.
        scheme: the request's own scheme (``http``/``https``; ``ws``/``wss`` count as those).
        host: the request's ``Host`` header: its port (or the scheme's default) is one the app is reached on.
        hosts: allowed host names (see :func:`allowed_host_names`).
        port: the port the server listens on, also accepted (a page opened on ``localhost:PORT``
            calling ``127.0.0.1:PORT``); None: only the Host header's.

    A page served by another local program (``http://localhost:8000``) differs in port and
    is refused, although its host is allowed.
    """
    parsed = parse_origin(origin)
    own = parse_host(host)
    if parsed is None or own is None:
        return False
    o_scheme, o_host, o_port = parsed
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    ports = {own[1] if own[1] is not None else DEFAULT_PORTS.get(scheme), port}
    return o_scheme == scheme and ("*" in hosts or o_host in hosts) and o_port in ports


def allowed_host_names(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    """Loopback names, the address the server binds to and ``ui.allowed_hosts``.

    Bound to every address (``0.0.0.0``), the machine's own host names and addresses are
    allowed too, so other machines can reach it by them (a login is required there anyway).
    """
    names = {*LOOPBACK_NAMES, *extra}
    if bind_host in WILDCARD_HOSTS:
        names |= _own_names()
    else:
        names.add(bind_host)
    return frozenset(host_name(n) for n in names if n.strip())


def _own_names() -> set[str]:
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:  # no resolvable host name: the names above still count
        pass
    return names


class LoginThrottle:
    """Counts failed logins per client address and locks out a client that fails too often.

    Args:
        max_failures: failures within ``window_s`` seconds that lock the client out.
        window_s: how long a failure counts.
        lockout_s: how long a locked-out client gets 429.
        clock: seconds, monotonic (tests pass a fake).
    """

    # Clients remembered at most, so a flood of addresses cannot grow memory without bound.
    MAX_CLIENTS = 10_000

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it may now)."""
        left = self._locked_until.get(client, 0.0) - self.clock()
        if left <= 0:
            self._locked_until.pop(client, None)
            return 0.0
        return left

    def failed(self, client: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.MAX_CLIENTS and client not in self._failures:
            self._failures = {c: t for c, t in self._failures.items() if t and t[-1] > now - self.window_s}
        recent = [t for t in self._failures.get(client, []) if t > now - self.window_s] + [now]
        self._failures[client] = recent
        if len(recent) >= self.max_failures:
            self._locked_until[client] = now + self.lockout_s
            self._failures.pop(client, None)
            log.warning(
                "login: %d failed attempts from %s within %.0f s; refusing its logins for %.0f s",
                len(recent),
                client,
                self.window_s,
                self.lockout_s,
            )

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class RequestGuard:
    """ASGI middleware: host allow-list, closed upload routes, body size cap, login throttling.

    Args:
        app: the ASGI app it guards.
        hosts: allowed host names (see :func:`allowed_host_names`); ``"*"`` allows any.
        throttle: failed-login bookkeeping.
        max_body_bytes: larger request bodies get 413.
    """

    def __init__(
        self,
        app: Any,
        *,
        hosts: frozenset[str],
        throttle: LoginThrottle,
        max_body_bytes: int = MAX_BODY_BYTES,
        upload_bytes: int = 0,
        port: int | None = None,
        upload_space: Callable[[int], str | None] | None = None,
    ) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.hosts = hosts
        self.throttle = throttle
        self.max_body_bytes = max_body_bytes
        self.port = port
        self.upload_space = upload_space

    def allowed(self, name: str) -> bool:
        """Whether a ``Host`` header is well formed and names an allowed host."""
        return host_allowed(name, self.hosts)

    def refusal(self, scope: dict, headers: Headers) -> tuple[int, str] | None:
        """``(status, message)`` when the request must not reach the app."""
        host = headers.get("host", "")
        if not host or not self.allowed(host):
            return 403, (
                f"Host {host[:100]!r} is not allowed: open the app as http://127.0.0.1:PORT, "
                "or add the name to ui.allowed_hosts in the config."
            )
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(
            origin, scheme=scope.get("scheme", "http"), host=host, hosts=self.hosts, port=self.port
        ):
            return 403, (
                f"Requests from pages on {origin[:100]!r} are not allowed (only pages served by this app, "
                "same scheme, host and port, may call it)."
            )
        path = scope.get("path", "").rstrip("/") or "/"
        if path in UPLOAD_PATHS and not self.upload_bytes:
            return 404, "File uploads are off: this app has no file input."
        limit = self.body_limit(scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return 413, f"The request body is {length[:20]} bytes; the limit is {limit}."
        if path in UPLOAD_PATHS and self.upload_space is not None and scope.get("method") == "POST":
            full = self.upload_space(int(length) if length else limit)
            if full:
                return 507, full
        if path == "/login" and scope.get("method") == "POST":
            wait = self.throttle.retry_after(client_of(scope))
            if wait:
                return 429, f"Too many failed logins from this address; try again in {wait:.0f} s."
        return None

    def body_limit(self, scope: dict) -> int:
        """Bytes a request body may have: an upload's on the upload route when uploads are on."""
        path = scope.get("path", "").rstrip("/") or "/"
        return self.upload_bytes if self.upload_bytes and path in UPLOAD_PATHS else self.max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refused = self.refusal(scope, headers)
        if refused is not None:
            status, message = refused
            if status == 403:
                log.warning("refused %s %s: %s", scope.get("method", "WS"), scope.get("path"), message)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            headers_out = {"Retry-After": str(int(self.throttle.lockout_s))} if status == 429 else None
            await PlainTextResponse(message, status_code=status, headers=headers_out)(scope, receive, send)
            return
        if (
            scope["type"] == "http"
            and "content-length" not in headers
            and scope.get("method") in ("POST", "PUT", "PATCH")
        ):
            receive = _capped(receive, self.body_limit(scope))
        if scope.get("method") == "POST" and (scope.get("path", "").rstrip("/") == "/login"):
            send = self._watch_login(client_of(scope), send)
        await self.app(scope, receive, send)

    def _watch_login(self, client: str, send: Callable) -> Callable:
        async def watching(message: dict) -> None:
            if message["type"] == "http.response.start":
                if 200 <= message["status"] < 300:
                    self.throttle.succeeded(client)
                elif message["status"] in (400, 401, 403):
                    self.throttle.failed(client)
            await send(message)

        return watching


class BodyTooLarge(Exception):
    """A streamed (chunked) request body passed the size cap."""


def _capped(receive: Callable, limit: int) -> Callable:
    """``receive`` that fails once more than ``limit`` body bytes arrived (bodies without Content-Length)."""
    seen = 0

    async def capped() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"request body over {limit} bytes")
        return message

    return capped


def client_of(scope: dict) -> str:
    """The client's address: the connection's own, or the one a proxy in ``ui.trusted_proxies`` forwarded.

    ``rag serve`` sets uvicorn's ``FORWARDED_ALLOW_IPS`` to ``ui.trusted_proxies`` (empty by
    default), so ``X-Forwarded-For`` rewrites ``scope["client"]`` only for connections from those.
    """
    client = scope.get("client")
    return client[0] if client else "unknown"
