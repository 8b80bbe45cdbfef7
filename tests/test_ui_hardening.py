"""Hardening of ``rag serve`` (issue 27), each through a real server process and real HTTP on 127.0.0.1.

Guards against: the llama.cpp child answering anyone (no key, any Host, CORS echoing any
origin, its model path in /v1/models); the login lockout bypassed with a forged
X-Forwarded-For; Gradio's upload route filling a shared, world-readable temp folder; per-session
state growing without bound under API load; loose Host and Origin parsing; a rebuild of a
folder above the index reading the index (and ratings, and received files) as articles; an
upload during a rebuild waiting and then running; malformed /chat inputs answered with
``{"error": null}`` and a traceback.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import platform
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, write_articles
from test_ui_security import NVIDIA_Q, Served, call, client

from ui.server import MALLOC_ARENAS

UI_TEST = "generation:\n  backend: ui-test\n"


def start(tmp_path_factory, name: str, config: str, *args: str, env: dict[str, str] | None = None) -> Served:
    work = tmp_path_factory.mktemp(name)
    write_articles(work / "allowed" / "articles")
    served = Served(work, config, *args, env={"XDG_STATE_HOME": str(work / "state"), **(env or {})})
    served.wait_up()
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Served]:
    served = start(tmp_path_factory, "harden", UI_TEST + "ui:\n  upload: false\n")
    try:
        yield served
    finally:
        served.stop()


# -- 1. the llama.cpp child -------------------------------------------------------------------
def child_of(pid: int) -> tuple[int, int]:
    """``(pid, port)`` of the llama.cpp server started by process ``pid``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{pid}$", status, re.MULTILINE) and b"--port" in args:
            return int(proc.name), int(args[args.index(b"--port") + 1])
    raise AssertionError(f"no llama.cpp child of {pid}")


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed: pip install '.[llamacpp]'"
)
def test_llama_child_needs_its_key_sends_no_cors_and_hides_the_model_path(tmp_path_factory):
    """The child answered anyone: no key, any Host, CORS echoing any origin with credentials, the GGUF's path in /v1/models."""
    served = start(tmp_path_factory, "llama-child", "ui:\n  upload: false\n  max_new_tokens_limit: 32\n")
    try:
        c = client(served)
        c.predict(str(served.work / "allowed" / "articles"), api_name="/rebuild")
        answer = c.predict(NVIDIA_Q, api_name="/ask", max_new_tokens=24)  # the app's own client sends the key
        assert answer["mode"] in ("generated", "evidence", "declined") and "local model process" not in json.dumps(
            answer
        ), answer
        assert "401" not in served.log() and "Invalid API key" not in served.log()
        child, port = child_of(served.proc.pid)
        url = f"http://127.0.0.1:{port}"
        body = {"prompt": "The capital of France is", "max_tokens": 4}
        evil = {"Host": "evil.example", "Origin": "http://evil.example"}
        assert (
            httpx.post(url + "/v1/completions", json=body, headers=evil, timeout=60).status_code == 400
        )  # Host refused first
        no_key = httpx.post(url + "/v1/completions", json=body, headers={"Origin": "http://evil.example"}, timeout=60)
        assert no_key.status_code == 401, no_key.text[:200]
        assert "access-control-allow-origin" not in no_key.headers
        wrong = httpx.post(url + "/v1/completions", json=body, headers={"Authorization": "Bearer guess"}, timeout=60)
        assert wrong.status_code == 401
        preflight = httpx.options(
            url + "/v1/completions",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert not any(h.startswith("access-control-") for h in preflight.headers), dict(preflight.headers)
        assert httpx.get(url + "/v1/models", timeout=10).status_code == 401
        # The key is not on the command line (every local user can read that), only in the child's environment.
        key = next(
            v for v in (Path("/proc") / str(child) / "environ").read_bytes().split(b"\0") if v.startswith(b"API_KEY=")
        )[8:].decode()
        assert key.encode() not in (Path("/proc") / str(child) / "cmdline").read_bytes() and len(key) >= 32
        models = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["smollm2"]
        assert "/" not in models.text and ".gguf" not in models.text
    finally:
        served.stop()


# -- 2. logins behind a header -----------------------------------------------------------------
LOGINS = "alice:s3cret\n"


def auth_args(work: Path) -> tuple[str, str]:
    logins = work / "logins.txt"
    logins.write_text(LOGINS, encoding="utf-8")
    logins.chmod(0o600)
    return "--auth-file", str(logins)


def start_auth(tmp_path_factory, name: str, config: str) -> Served:
    work = tmp_path_factory.mktemp(name)
    (work / "allowed").mkdir()
    served = Served(work, config, *auth_args(work), env={"XDG_STATE_HOME": str(work / "state")})
    served.wait_up()
    return served


def login(url: str, password: str, forwarded: str | None = None, source: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(transport=transport, timeout=10) as http:
        return http.post(url + "/login", data={"username": "alice", "password": password}, headers=headers).status_code


def test_forged_forwarded_for_does_not_reset_the_login_lockout(tmp_path_factory):
    """While locked out (429), wrong passwords with a rotating X-Forwarded-For got 400, and the right one got in."""
    served = start_auth(tmp_path_factory, "xff-direct", UI_TEST)
    try:
        codes = [login(served.url, f"guess{i}", forwarded=f"10.0.0.{i}") for i in range(5)]
        assert codes == [400] * 5
        assert [login(served.url, "guess", forwarded=f"10.0.1.{i}") for i in range(3)] == [429] * 3
        assert login(served.url, "s3cret", forwarded="10.9.9.9") == 429
        assert "5 failed attempts from 127.0.0.1" in served.log()
    finally:
        served.stop()


class Proxy:
    """A tiny reverse proxy on 127.0.0.1 that connects to the app from 127.0.0.2 and appends the client's address to X-Forwarded-For, as nginx's ``$proxy_add_x_forwarded_for`` does."""

    def __init__(self, upstream: str) -> None:
        http = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.forward()

            def do_GET(self) -> None:  # noqa: N802
                self.forward()

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("x-forwarded-for", "content-length", "connection")
                }
                previous = self.headers.get("X-Forwarded-For")
                headers["X-Forwarded-For"] = (
                    f"{previous}, {self.client_address[0]}" if previous else self.client_address[0]
                )
                r = http.request(self.command, upstream + self.path, headers=headers, content=body)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def test_lockout_behind_a_trusted_proxy_counts_each_client_and_ignores_forged_headers(tmp_path_factory):
    """Behind a proxy in ui.trusted_proxies the lockout is per real client (the proxy's own entry), whatever the client forges;
    connections straight to the app are keyed on their own address even from the proxy's network."""
    served = start_auth(tmp_path_factory, "xff-proxy", UI_TEST + "ui:\n  trusted_proxies: [127.0.0.2]\n")
    proxy = Proxy(served.url)
    try:
        # Clients reach the proxy from 127.0.0.1 and from 127.0.0.3; the proxy reaches the app from 127.0.0.2.
        assert [login(proxy.url, f"guess{i}", forwarded=f"10.0.0.{i}", source="127.0.0.1") for i in range(5)] == [
            400
        ] * 5
        assert login(proxy.url, "s3cret", forwarded="10.9.9.9", source="127.0.0.1") == 429
        assert "5 failed attempts from 127.0.0.1" in served.log(), served.log()[-2000:]
        assert (
            login(proxy.url, "s3cret", source="127.0.0.3") == 200
        )  # another client behind the proxy is not locked out
        # Straight to the app from an address that is not a trusted proxy: the header is ignored.
        assert [login(served.url, f"guess{i}", forwarded="127.0.0.9", source="127.0.0.4") for i in range(5)] == [
            400
        ] * 5
        assert login(served.url, "s3cret", forwarded="127.0.0.5", source="127.0.0.4") == 429
        assert "from 127.0.0.4" in served.log() and "from 127.0.0.9" not in served.log()
    finally:
        proxy.close()
        served.stop()


def test_trusted_proxies_must_be_addresses():
    from rag.config import Config

    with pytest.raises(ValueError, match=r"ui.trusted_proxies: 'proxy.lan' is not an IP address or network"):
        Config.load(None, overrides={"ui.trusted_proxies": ["proxy.lan"]})
    assert Config.load(None, overrides={"ui.trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}).ui.trusted_proxies == (
        "127.0.0.1",
        "10.0.0.0/8",
    )


# -- 3. Gradio's temp folder -------------------------------------------------------------------
def test_received_files_past_the_cap_are_refused(tmp_path_factory):
    """4 x 40 MB posts to Gradio's upload route all stayed in its temp folder, without limit; the folder outlived the server."""
    work = tmp_path_factory.mktemp("temp-space")
    write_articles(work / "allowed" / "articles")
    state = work / "state" / "rag"
    served = Served(
        work, UI_TEST + "ui:\n  temp_max_mb: 3\n  upload_max_total_mb: 1\n", env={"XDG_STATE_HOME": str(work / "state")}
    )
    served.wait_up()
    try:
        own = state / f"gradio-{served.proc.pid}"
        codes = []
        for i in range(5):
            r = httpx.post(
                served.url + "/gradio_api/upload", files={"files": (f"part{i}.md", os.urandom(900_000))}, timeout=30
            )
            codes.append(r.status_code)
            if r.status_code == 200:
                assert Path(r.json()[0]).is_relative_to(own), r.json()
        assert codes[:3] == [200, 200, 200] and codes[3:] == [507, 507], codes
        assert "ui.temp_max_mb" in r.text
        held = sum(p.stat().st_size for p in own.rglob("*") if p.is_file())
        assert 2_700_000 <= held <= 3_000_000
        assert not (work / "gradio-tmp").exists(), "files went to the GRADIO_TEMP_DIR of the environment"
    finally:
        served.stop()
    assert not own.exists(), "the temp folder outlived the server"


def test_received_files_go_to_the_servers_own_private_folder(tmp_path_factory):
    """Gradio's received files went to a temp folder shared by every Gradio app (world-readable), and nothing cleaned it at start."""
    work = tmp_path_factory.mktemp("temp-private")
    write_articles(work / "allowed" / "articles")
    state = work / "state" / "rag"
    stale = state / "gradio-999999999"  # left by a server that no longer runs
    stale.mkdir(parents=True)
    (stale / "old.txt").write_text("left over")
    served = Served(
        work, UI_TEST, env={"XDG_STATE_HOME": str(work / "state"), "GRADIO_TEMP_DIR": str(work / "shared-gradio")}
    )
    served.wait_up()
    try:
        own = state / f"gradio-{served.proc.pid}"
        assert not stale.exists(), "a stale temp folder was not cleaned at start"
        r = httpx.post(served.url + "/gradio_api/upload", files={"files": ("note.md", b"# Note")}, timeout=30)
        assert r.status_code == 200 and Path(r.json()[0]).is_relative_to(own), r.text[:300]
        assert stat.S_IMODE(state.stat().st_mode) == 0o700 and stat.S_IMODE(own.stat().st_mode) == 0o700
        assert not [p for p in (work / "shared-gradio").rglob("*") if p.is_file()], (
            "a received file went to the shared folder"
        )
    finally:
        served.stop()


def test_gradio_deletes_received_files_on_a_schedule():
    from rag import RAG
    from ui.app import DELETE_CACHE, build_app
    from ui.chat import ChatUI

    demo = build_app(ChatUI(RAG.from_config(None)))
    assert demo.delete_cache == DELETE_CACHE and 0 < DELETE_CACHE[0] <= DELETE_CACHE[1] <= 3600


# -- 4. bounded per-client state --------------------------------------------------------------------
def test_api_sessions_beyond_the_cap_are_forgotten(tmp_path_factory):
    """Every API call with a new session hash kept its session's state (Gradio's default: 10,000 sessions)."""
    served = start(tmp_path_factory, "sessions", UI_TEST + "ui:\n  max_sessions: 3\n  upload: false\n")
    try:
        client(served).predict(str(served.work / "allowed" / "articles"), api_name="/rebuild")

        def sources(session: str) -> str:
            ok, out = call(served, "chat", NVIDIA_Q, [], None, 3, 0.0, 64, False, session=session)
            assert ok, out
            return str(out["data"][2])

        assert "Earlier: " not in sources("keep-me")
        assert (
            sources("keep-me").count("Earlier: ") == 1
        )  # the same session: the panel keeps the first answer's sources below
        for i in range(4):
            sources(f"other-{i}")
        assert "Earlier: " not in sources("keep-me")  # evicted by four newer sessions: it starts afresh
    finally:
        served.stop()


ARENAS = """
import ctypes, ctypes.util, os, sys, threading
sys.path.insert(0, os.getcwd())
from ui.server import limit_malloc_arenas
capped = sys.argv[1] == "capped" and limit_malloc_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
held, ready = [], threading.Barrier(9)
def work():
    held.append(bytearray(100_000))  # below the mmap threshold: from the thread's arena
    ready.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
ready.wait()
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
libc.open_memstream.restype = ctypes.c_void_p
fp = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(fp)); libc.fclose(ctypes.c_void_p(fp))
print(capped, ctypes.string_at(buf, size.value).decode().count("<heap nr="))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas and mallopt are glibc's")
@pytest.mark.parametrize("mode", ["capped", "free"])
def test_worker_threads_share_at_most_two_malloc_arenas(mode):
    """Each Gradio worker thread got its own glibc arena (up to 8 per core) that kept freed pages: the soak's memory crept up
    while Python's objects stayed flat. ``limit_malloc_arenas`` caps them at 2; without it, 8 threads take more."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT, check=True
    ).stdout.split()
    capped, heaps = out[0] == "True", int(out[1])
    if mode == "capped":
        assert capped and heaps <= MALLOC_ARENAS, out
    else:
        assert not capped and heaps > MALLOC_ARENAS, out  # the workload above would show a cap that does nothing


# -- 5. Host and Origin parsing --------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}@evil.example",
        "[::1]evil.example",
        "localhost:evil.example",
        "127.0.0.1:99999",
        "127.0.0.1:+{port}",
        "localhost:{port}/x",
        "127.0.0.1:{port}:80",
    ],
)
def test_malformed_host_headers_get_403(server, host):
    r = httpx.get(server.url + "/config", headers={"Host": host.format(port=server.port)}, timeout=10)
    assert r.status_code == 403, (host, r.status_code)


def test_origin_must_match_scheme_host_and_port(server):
    """A page from another local server on localhost (another port) was accepted."""
    own = f"127.0.0.1:{server.port}"
    for origin in (
        f"http://localhost:{server.port + 1}",
        "http://localhost",
        f"https://127.0.0.1:{server.port}",
        f"http://127.0.0.1:{server.port}@evil.example",
        f"http://127.0.0.1:{server.port}/path",
        f"ftp://127.0.0.1:{server.port}",
    ):
        r = httpx.get(server.url + "/config", headers={"Host": own, "Origin": origin}, timeout=10)
        assert r.status_code == 403, (origin, r.status_code)
    for origin in (f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}", f"http://[::1]:{server.port}"):
        r = httpx.get(server.url + "/config", headers={"Host": own, "Origin": origin}, timeout=10)
        assert r.status_code == 200, (origin, r.text[:200])


def test_host_and_origin_checks_are_reusable_functions():
    from ui.security import host_allowed, origin_allowed, parse_host, parse_origin

    hosts = frozenset({"127.0.0.1", "localhost", "::1"})
    assert parse_host("[::1]:7860") == ("::1", 7860) and parse_host("LocalHost.") == ("localhost", None)
    assert (
        parse_host("[::1]evil.example") is None
        and parse_host("127.0.0.1:7893@evil.example") is None
        and parse_host("[zz::1]") is None
    )
    assert host_allowed("localhost:7860", hosts) and not host_allowed("localhost:evil.example", hosts)
    assert parse_origin("https://Example.org") == ("https", "example.org", 443) and parse_origin("null") is None
    assert origin_allowed("http://localhost:7860", scheme="http", host="127.0.0.1:7860", hosts=hosts, port=7860)
    assert not origin_allowed("http://localhost:8000", scheme="http", host="127.0.0.1:7860", hosts=hosts, port=7860)
    assert origin_allowed(
        "https://rag.lan", scheme="https", host="rag.lan", hosts=hosts | {"rag.lan"}, port=7860
    )  # behind TLS, port 443


# -- 6. the tool's own files are not articles ----------------------------------------------------------
def test_rebuild_of_a_folder_holding_the_index_reads_only_articles(tmp_path_factory):
    """A rebuild of '.' indexed idx/gen-*/bm25/keyword.json (and ratings) as articles."""
    from rag import FeedbackLog

    work = tmp_path_factory.mktemp("walk")
    root = work / "allowed"
    write_articles(root / "articles")
    config = UI_TEST + f"ui:\n  feedback_path: {root / 'feedback' / 'feedback.jsonl'}\n"
    # The server's state folder (its received files) inside the rebuilt folder, under a name that is not hidden.
    served = Served(work, config, "--index", str(root / "idx"), env={"XDG_STATE_HOME": str(root / "state")})
    served.wait_up()
    try:
        c = client(served)
        message, _ = c.predict(str(root / "articles"), api_name="/rebuild")
        assert "Indexed 3 articles" in message, message
        assert list((root / "idx").glob("gen-*/bm25/*.json")), (
            "the keyword index this test relies on is not a .json file any more"
        )
        FeedbackLog(root / "feedback" / "feedback.jsonl").append(
            {"question": "Nvidia?", "answer": "It fell [1].", "rating": 1}
        )
        received = httpx.post(
            served.url + "/gradio_api/upload",
            files={"files": ("received.md", b"# Received\n\nA file the page sent.")},
            timeout=30,
        )
        message, _ = c.predict(str(root), api_name="/rebuild")
        current = (root / "idx" / "CURRENT").read_text().strip()
        manifest = json.loads((root / "idx" / current / "manifest.json").read_text())
        sources = sorted(d["source"] for d in manifest["documents"])
        assert all(s.startswith("articles/") for s in sources), sources
        assert "Indexed 3 articles" in message, message
        assert received.status_code == 200 and Path(received.json()[0]).is_relative_to(root / "state"), received.text[
            :300
        ]
    finally:
        served.stop()


def test_walk_skips_marked_folders_files_and_excluded_paths(tmp_path):
    from rag.documents import iter_article_files, mark_not_articles

    write_articles(tmp_path / "articles")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "a.md").write_text("tool's own")
    (tmp_path / "ratings.jsonl").write_text('{"text": "a rating"}\n')
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "k.json").write_text('{"text": "index"}')
    mark_not_articles(tmp_path / "own")
    mark_not_articles(tmp_path, "ratings.jsonl")
    found = [p.relative_to(tmp_path).as_posix() for p, _ in iter_article_files(tmp_path, exclude=(tmp_path / "idx",))]
    assert found and all(f.startswith("articles/") for f in found), found


# -- 8. uploads during a rebuild, malformed API input ----------------------------------------------------
def test_upload_during_a_rebuild_is_refused_at_once(tmp_path_factory):
    """An upload sent while a rebuild ran waited for it and then ran, while README and SECURITY.md said it is refused."""
    from gradio_client import handle_file

    work = tmp_path_factory.mktemp("upload-during-rebuild")
    write_articles(work / "allowed" / "articles")
    config = UI_TEST + f"ui:\n  upload_dir: {work / 'allowed' / 'articles' / 'uploads'}\n"
    served = Served(work, config, env={"XDG_STATE_HOME": str(work / "state"), "RAG_TEST_PAUSE_AT": "switch"})
    served.wait_up()
    try:
        c = client(served)
        rebuild = c.submit(str(work / "allowed" / "articles"), api_name="/rebuild")
        deadline = time.monotonic() + 120
        while "paused at switch" not in served.log():  # the rebuild holds the build slot from here on
            assert time.monotonic() < deadline and not rebuild.done(), served.log()[-2000:]
            time.sleep(0.2)
        note = work / "note.md"
        note.write_text("# Note\n\nSteel cables hold the bridge.", encoding="utf-8")
        t0 = time.monotonic()
        upload = c.submit([handle_file(str(note))], api_name="/upload")
        message = upload.result(timeout=60)[0]  # waiting in line behind the held rebuild would time out here
        assert "A rebuild is already running" in message and time.monotonic() - t0 < 60, message
        assert not (work / "allowed" / "articles" / "uploads" / "note.md").exists()
        assert not rebuild.done()
    finally:
        served.stop()


@pytest.mark.parametrize(
    "args, expected",
    [
        (("abc", 0.0, 64), "top-k must be a whole number from 1 to 20, got 'abc'"),
        ((True, 0.0, 64), "top-k must be a whole number from 1 to 20, got 'True'"),
        ((3, "warm", 64), "temperature must be a number from 0 to 2.0, got 'warm'"),
        ((3, 0.0, False), "max new tokens must be a whole number from 1 to 1024, got 'False'"),
    ],
)
def test_malformed_chat_settings_are_messages(server, args, expected):
    """top_k "abc" came back as {"error": null} (a TypeError in Gradio's slider), and top_k=true was taken as 1."""
    ok, out = call(server, "chat", NVIDIA_Q, [], None, *args, False)
    assert ok, out
    assert expected in html.unescape(str(out["data"][0][-1]["content"])), out["data"][0][-1]


def test_chat_given_as_text_is_a_message(server):
    ok, out = call(server, "chat", NVIDIA_Q, "What did we say?", None, 3, 0.0, 64, False)
    assert (
        not ok and out["error"] and "the chat must be a list of messages" in out["error"] and "got text" in out["error"]
    ), out
    ok, out = call(server, "chat", NVIDIA_Q, [{"role": "user"}], None, 3, 0.0, 64, False)
    assert not ok and "chat[0].content" in str(out["error"]), out
    assert "Traceback" not in server.log()[-5000:]
