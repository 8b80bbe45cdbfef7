"""Web security of ``rag serve`` (issue 16), each through a real server subprocess and real HTTP.

The server is tests/ui_launcher.py's ``rag serve`` (the real command line and embedder, a
scripted generator that logs each call as ``generate: ...``), started with no index, so a
request that gets through to /rebuild is visible as an index appearing.

Guards against: DNS rebinding and cross-site requests (forged Host and Origin headers
reaching handlers), history and questions bypassing the length limits, odd input
(surrogates, long and deep paths) answered with exception text, an open upload route,
unlimited password guessing, and absolute paths or whole refused names sent to the page.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, write_articles

NVIDIA_Q = "How much did Nvidia shares fall on 27 January 2025?"
EVIL = {"Host": "evil.example:7861", "Origin": "http://evil.example:7861"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``rag serve`` through tests/ui_launcher.py on a free loopback port."""

    def __init__(self, work: Path, config: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "server.log"
        (work / "config.yaml").write_text(config, encoding="utf-8")
        cmd = [
            sys.executable,
            str(ROOT / "tests" / "ui_launcher.py"),
            "serve",
            "--config",
            str(work / "config.yaml"),
            "--index",
            str(work / "index"),
            "--port",
            str(self.port),
            "--allowed-root",
            str(work / "allowed"),
            *args,
        ]
        # XDG_STATE_HOME: the server's state folder (its Gradio temp folder) inside the test's folder.
        full_env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "GRADIO_TEMP_DIR": str(work / "gradio-tmp"),
            "XDG_STATE_HOME": str(work / "state"),
            "RAG_TEST_HOLD": str(work / "release"),
            **(env or {}),
        }
        full_env.setdefault("RAG_UI_AUTH", "")
        with open(self.log_path, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_up(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while "Serving the chat UI" not in self.log():
            assert self.proc.poll() is None, f"rag serve exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"rag serve did not start:\n{self.log()[-3000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        (self.work / "release").touch()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("ui-security")
    write_articles(work / "allowed" / "articles")
    served = Served(
        work,
        "generation:\n  backend: ui-test\nui:\n  max_queue: 1\n  rewrite: auto\n  allowed_hosts: [rag.test]\n  upload: false\n",
    )
    try:
        served.wait_up()
        yield served
    finally:
        served.stop()


def client(server: Served):
    from gradio_client import Client

    return Client(server.url + "/", verbose=False)


def fn_index(server: Served, api_name: str) -> int:
    config = httpx.get(server.url + "/config", timeout=10).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def call(server: Served, api_name: str, *data: object, session: str | None = None) -> tuple[bool, object]:
    """Call an endpoint through Gradio's queue as the page does, with ASCII JSON (so a lone
    surrogate travels as a ``\\ud800`` escape, as JSON.stringify sends it); returns (success, output).
    ``session``: the session hash (default: a new one for each call)."""
    session = session or os.urandom(6).hex()
    body = {
        "data": list(data),
        "fn_index": fn_index(server, api_name),
        "session_hash": session,
        "event_data": None,
        "trigger_id": None,
    }
    r = httpx.post(
        f"{server.url}/gradio_api/queue/join",
        content=json.dumps(body, ensure_ascii=True),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    with httpx.stream(
        "GET", f"{server.url}/gradio_api/queue/data", params={"session_hash": session}, timeout=60
    ) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[len("data: ") :]) if line.startswith("data: ") else {}
            if message.get("msg") == "process_completed":
                return message["success"], message["output"]
    raise AssertionError(f"no result from /{api_name}")


# -- Host / Origin allow-list ---------------------------------------------------------------------
def test_forged_host_and_origin_get_403(server):
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 must not read the app."""
    r = httpx.get(server.url + "/config", headers=EVIL, timeout=10)
    assert r.status_code == 403 and "evil.example" in r.text
    assert httpx.get(server.url + "/", headers={"Host": "evil.example"}, timeout=10).status_code == 403
    # A cross-site request keeps the right Host but names the other site as its Origin.
    assert httpx.get(server.url + "/config", headers={"Origin": "http://evil.example"}, timeout=10).status_code == 403
    assert httpx.get(server.url + "/config", headers={"Origin": "null"}, timeout=10).status_code == 403
    for host in (
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
        f"[::1]:{server.port}",
        f"rag.test:{server.port}",
    ):
        ok = httpx.get(server.url + "/config", headers={"Host": host, "Origin": f"http://{host}"}, timeout=10)
        assert ok.status_code == 200, (host, ok.text[:200])


def test_forged_queue_join_runs_nothing(server):
    """The rebinding page's POST to /gradio_api/queue/join must not run /rebuild (it did: the index appeared)."""
    body = {
        "data": [str(server.work / "allowed" / "articles")],
        "fn_index": fn_index(server, "rebuild"),
        "session_hash": "evil123",
        "event_data": None,
        "trigger_id": None,
    }
    joined = httpx.post(server.url + "/gradio_api/queue/join", json=body, headers=EVIL, timeout=10)
    assert joined.status_code == 403
    data = httpx.get(
        server.url + "/gradio_api/queue/data", params={"session_hash": "evil123"}, headers=EVIL, timeout=10
    )
    assert data.status_code == 403
    time.sleep(3)  # a rebuild that had been let through would be embedding by now
    assert not (server.work / "index" / "CURRENT").exists(), "a forged request rebuilt the index"
    assert "no index at" in client(server).predict(api_name="/status")


# -- length limits and odd input ------------------------------------------------------------------
def build_index(server: Served) -> None:
    if not (server.work / "index" / "CURRENT").exists():
        message, _ = client(server).predict(str(server.work / "allowed" / "articles"), api_name="/rebuild")
        assert "Indexed 3 articles" in message, message


def test_oversized_history_is_refused_before_the_rewriter(server):
    """A 20,000-character history question was accepted through /ask and fed to the rewriter (23 s)."""
    build_index(server)
    c = client(server)
    calls_before = server.log().count("generate:")
    t0 = time.perf_counter()
    with pytest.raises(
        Exception, match=r"history\[0\]\.question is 20000 characters long; the limit is 2000 \(ui.max_question_chars\)"
    ) as info:
        c.predict(
            "and why did it fall?", api_name="/ask", history=[{"question": "W" * 20_000, "answer": "It fell [1]."}]
        )
    assert "Something went wrong" not in str(info.value)
    with pytest.raises(Exception, match=r"history\[0\]\.answer is 20001 characters long; the limit is 20000"):
        c.predict("and why did it fall?", api_name="/ask", history=[{"question": NVIDIA_Q, "answer": "x" * 20_001}])
    with pytest.raises(Exception, match=r"history has 21 turns; the limit is 20"):
        c.predict("and why did it fall?", api_name="/ask", history=[{"question": NVIDIA_Q, "answer": "It fell."}] * 21)
    with pytest.raises(Exception, match=r"history\[0\] must be an object"):
        c.predict("and why did it fall?", api_name="/ask", history=["not a turn"])
    assert time.perf_counter() - t0 < 10
    assert server.log().count("generate:") == calls_before, "a refused request reached the model"
    answered = c.predict(
        "and why did it fall?", api_name="/ask", history=[{"question": NVIDIA_Q, "answer": "It fell 17 percent [1]."}]
    )
    assert answered["rewritten"] is True and "Nvidia" in answered["query"]


def test_lone_surrogate_is_a_clear_message(server):
    """'\\ud800' in a question came back as a TypeError's text."""
    ok, out = call(
        server, "ask", "Why \ud800 did Nvidia fall?", None, None, None, None, None
    )  # top_k, temperature, max_new_tokens, history, cautious
    assert not ok and "the question holds an invalid character ('\\ud800' at position 4" in out["error"], out
    assert "TypeError" not in str(out) and "Something went wrong" not in str(out)
    ok, out = call(server, "chat", "Why \ud800 did Nvidia fall?", [], None, 3, 0.0, 64, False)
    assert ok and "holds an invalid character" in str(out["data"][0]) and "Something went wrong" not in str(out), out
    ok, out = call(server, "rebuild", "data\ud800")
    assert ok and "the folder holds an invalid character" in str(out["data"][0]), out


@pytest.mark.parametrize(
    "folder, message",
    [
        ("n" * 300, r"cannot be opened \(File name too long\)"),
        ("d/" * 3000, r"the folder is \d+ characters long; the limit is 4096"),
        ("d/" * 1500, r"… \(\d+ characters\) does not exist"),
        ("/proc/1/root/etc", "is outside the allowed folders"),
        ("x" * 100_000, r"the folder is 100\d\d\d characters long; the limit is 4096"),
    ],
)
def test_odd_rebuild_paths_are_messages(server, folder, message):
    """Long, deep and odd paths raised OSError/PermissionError; refused names came back whole (100k characters)."""
    typed = folder if folder.startswith("/") else str(server.work / "allowed" / folder)
    text, _ = client(server).predict(typed, api_name="/rebuild")
    assert re.search(message, text), text[:500]
    for bad in ("OSError", "PermissionError", "Errno", "Something went wrong", "Traceback"):
        assert bad not in text
    assert len(text) < 1000, "a refused folder name must not be echoed back whole"


def test_proc_root_through_a_link_is_a_message(server):
    """A link inside the allowed root to /proc/1/root: refused as leading outside, no exception text."""
    link = server.work / "allowed" / "proc-root"
    if not link.exists():
        link.symlink_to("/proc/1/root", target_is_directory=True)
    text, _ = client(server).predict(str(link / "etc"), api_name="/rebuild")
    assert "cannot be opened (Permission denied)" in text or "leads outside the allowed folders" in text, text
    assert "PermissionError" not in text and "Errno" not in text


def test_queue_full_message_is_the_same_on_ask_and_chat(server):
    """/ask past the line said 'Something went wrong (QueueFull …)' while /chat said the server is busy."""
    build_index(server)
    c = client(server)
    answers_before = server.log().count("generate: answer")
    first = c.submit("HOLD " + NVIDIA_Q, api_name="/ask")
    deadline = time.monotonic() + 60
    while server.log().count("generate: answer") == answers_before:  # the first question is with the model, held
        assert time.monotonic() < deadline, "the first question never reached the model"
        time.sleep(0.1)
    second = c.submit("HOLD " + NVIDIA_Q, api_name="/chat")
    deadline = time.monotonic() + 60
    while not any("Waiting for the model" in str(o) for o in second.outputs()):
        assert time.monotonic() < deadline, "the second question never waited in line"
        time.sleep(0.1)
    busy = "The server is busy: 1 question is waiting (ui.max_queue = 1). Try again in a moment."
    with pytest.raises(
        Exception, match=re.escape(busy)
    ) as info:  # gradio_client's AppError carries the server's message
        c.predict(NVIDIA_Q, api_name="/ask")
    chat, _, _ = c.predict(NVIDIA_Q, api_name="/chat")
    assert (
        str(info.value).strip().endswith(busy)
        and "QueueFull" not in str(info.value)
        and "Something went wrong" not in str(info.value)
    )
    assert busy in str(chat[-1]["content"])
    (server.work / "release").touch()
    assert "17 percent" in first.result(timeout=60)["answer"]
    assert "17 percent" in str(second.result(timeout=60)[0][-1]["content"])


# -- uploads, bodies, paths -------------------------------------------------------------------------
def test_upload_route_is_closed(server):
    """Gradio's upload route stored a 30 MB file although the app had no file input; with
    ui.upload off (or beyond loopback without a login) the route stays closed."""
    marker = b"rag-upload-test-" + os.urandom(8).hex().encode()
    r = httpx.post(server.url + "/gradio_api/upload", files={"files": ("big.txt", marker * 1000)}, timeout=30)
    assert r.status_code in (403, 404), r.text[:200]
    stored = [
        p
        for folder in ("gradio-tmp", "state")
        for p in (server.work / folder).rglob("*")
        if p.is_file() and marker in p.read_bytes()
    ]
    assert stored == []


def test_upload_route_opens_only_with_upload_and_for_one_upload_of_bytes():
    """The guard: closed (404) without uploads; with them, the upload route takes up to its
    own limit while every other route keeps the 4 MB cap."""
    from starlette.datastructures import Headers

    from ui.security import MAX_BODY_BYTES, LoginThrottle, RequestGuard

    def refusal(guard, path, length):
        scope = {"type": "http", "method": "POST", "path": path, "headers": []}
        return guard.refusal(scope, Headers({"host": "127.0.0.1:7860", "content-length": str(length)}))

    hosts = frozenset({"127.0.0.1"})
    closed = RequestGuard(None, hosts=hosts, throttle=LoginThrottle())
    assert refusal(closed, "/gradio_api/upload", 10)[0] == 404
    open_ = RequestGuard(None, hosts=hosts, throttle=LoginThrottle(), upload_bytes=20_000_000)
    assert refusal(open_, "/gradio_api/upload", 19_000_000) is None
    assert refusal(open_, "/gradio_api/upload", 20_000_001) == (
        413,
        "The request body is 20000001 bytes; the limit is 20000000.",
    )
    assert refusal(open_, "/gradio_api/queue/join", MAX_BODY_BYTES + 1)[0] == 413


def test_oversized_body_is_refused_before_it_is_read(server):
    r = httpx.post(
        server.url + "/gradio_api/queue/join",
        content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and "the limit is 4194304" in r.text


def test_page_messages_show_no_absolute_paths(server):
    c = client(server)
    refused, status = c.predict("/etc", api_name="/rebuild")
    assert "outside the allowed folders (…/allowed)" in refused, refused
    assert str(server.work) not in refused and str(server.work) not in status
    assert "<td>…/index</td>" in status or "…/index" in status


# -- logins ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("ui-auth")
    (work / "allowed").mkdir()
    logins = work / "logins.txt"
    logins.write_text("# who may log in\nalice:s3cret\n", encoding="utf-8")
    logins.chmod(0o600)
    served = Served(work, "generation:\n  backend: ui-test\n", "--auth-file", str(logins))
    try:
        served.wait_up()
        yield served
    finally:
        served.stop()


def login(server: Served, password: str) -> httpx.Response:
    return httpx.post(server.url + "/login", data={"username": "alice", "password": password}, timeout=10)


def test_auth_file_is_required_and_failed_logins_are_throttled(auth_server):
    """Unlimited password guessing: after 5 failures within a minute, 429 even for the right password."""
    assert httpx.get(auth_server.url + "/config", timeout=10).status_code in (401, 403)
    assert login(auth_server, "s3cret").status_code == 200
    codes = [login(auth_server, f"guess{i}").status_code for i in range(5)]
    assert codes == [400] * 5
    locked = login(auth_server, "s3cret")
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert "5 failed attempts from 127.0.0.1" in auth_server.log()


def test_auth_on_the_command_line_is_warned_against():
    from rag.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()
    assert "--auth-file" in text and "process list" in text and "RAG_UI_AUTH" in text


def test_throttle_forgets_after_the_lockout():
    from ui.security import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=30, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("a")
    now[0] = 61.0  # the first two fall out of the window
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 30 and throttle.retry_after("b") == 0
    now[0] = 91.5
    assert throttle.retry_after("a") == 0


def test_host_names_are_parsed_like_the_header():
    from ui.security import allowed_host_names, host_name

    assert host_name("[::1]:7860") == "::1" and host_name("LocalHost.:80") == "localhost" and host_name("::1") == "::1"
    hosts = allowed_host_names("127.0.0.1", ["rag.lan"])
    assert {"127.0.0.1", "localhost", "::1", "rag.lan"} <= hosts and "evil.example" not in hosts
    assert "192.168.1.9" in allowed_host_names("192.168.1.9", [])
