"""A local stand-in for the Hugging Face hub: one file served on 127.0.0.1 with the headers the hub sends.

``HEAD``/``GET /{repo}/resolve/{revision}/{filename}`` answers as the hub does for an LFS file:
``302`` to a CDN address (``/cdn/<sha256>/<filename>``) with
``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``ETag``. The CDN
(a second server on another port: another origin, as the real CDN is) serves the bytes with
``Accept-Ranges: bytes`` and answers ``Range`` requests with ``206``. Misbehaviours for the tests:

- ``drop_after``: the first full GET sends that many bytes and closes the connection (the
  client must resume with a Range request);
- ``wrong_sha256``: ``X-Linked-Etag`` names another sha256 than the bytes have.

Example:
    >>> with HubStandIn({("owner/repo", "file.gguf"): path}) as hub:
    ...     os.environ["HF_ENDPOINT"] = hub.url
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})/(?P<file>.+)$")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class HubStandIn:
    """Serves ``files`` (``{(repo, filename): path}``) like the hub; a context manager."""

    def __init__(
        self, files: dict[tuple[str, str], Path], *, drop_after: int | None = None, wrong_sha256: bool = False
    ) -> None:
        self.files = {key: (Path(p), sha256_of(Path(p))) for key, p in files.items()}
        self.drop_after = drop_after
        self.wrong_sha256 = wrong_sha256
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._dropped = False
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), self._handler()) for _ in range(2)]  # the hub, its CDN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def __enter__(self) -> HubStandIn:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path, self.headers.get("Range")))
                m = _RESOLVE.match(self.path)
                if m:
                    return self._resolve(m)
                m = _CDN.match(self.path)
                if m:
                    return self._cdn(m, body)
                self._error(404, "EntryNotFound")

            def _error(self, status: int, code: str) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _resolve(self, m) -> None:
                entry = hub.files.get((m["repo"], m["file"]))
                if entry is None:
                    return self._error(404, "EntryNotFound")
                path, sha = entry
                linked = "f" * 64 if hub.wrong_sha256 else sha
                self.send_response(302)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{linked}"')
                self.send_header("X-Linked-Size", str(path.stat().st_size))
                self.send_header(
                    "ETag", '"' + hashlib.sha1(sha.encode()).hexdigest() + '"'
                )  # the LFS pointer's git hash
                self.send_header("Location", f"{hub.cdn_url}/cdn/{sha}/{m['file']}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _cdn(self, m, body: bool) -> None:
                entry = next(((p, s) for (_, f), (p, s) in hub.files.items() if s == m["sha"] and f == m["file"]), None)
                if entry is None:
                    return self._error(404, "EntryNotFound")
                path, sha = entry
                size = path.stat().st_size
                start, status = 0, 200
                rng = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if rng:
                    start, status = int(rng.group(1)), 206
                self.send_response(status)
                self.send_header("Content-Length", str(size - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{sha}"')
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                if not body:
                    return
                drop = hub.drop_after if (hub.drop_after is not None and not hub._dropped and start == 0) else None
                with path.open("rb") as f:
                    f.seek(start)
                    sent = 0
                    for block in iter(lambda: f.read(1 << 16), b""):
                        if drop is not None and sent + len(block) > drop:
                            self.wfile.write(block[: drop - sent])
                            self.wfile.flush()
                            hub._dropped = True
                            self.close_connection = True
                            self.connection.shutdown(2)  # the connection drops mid-file
                            return
                        self.wfile.write(block)
                        sent += len(block)

        return Handler
