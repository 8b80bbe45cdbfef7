"""Soak the chat UI: 20 API clients on /chat for N minutes, and the server's memory over time.

Starts ``rag serve`` (the real command, on a free loopback port, over an index of the sample
articles built into a temporary folder unless --index is given) and runs --clients threads
that each call ``/chat`` through Gradio's queue, as an API caller does, over and over: most
calls open a new session (a stateless caller), every third continues the client's own
session with a follow-up. Every 5 s it reads the resident memory (VmRSS) of the server and,
separately, of its llama.cpp child. Issue 27 measured 1.06 -> 1.53 GB over 2 minutes
before per-session state was capped (``ui.max_sessions``) and glibc's malloc arenas too
(``ui.server.limit_malloc_arenas``; benchmarks/profile_soak.py shows which memory grows).

    python -m benchmarks.bench_soak                          # 10 minutes, capped (the default config)
    python -m benchmarks.bench_soak --minutes 3 --compare    # 3 minutes capped, then 3 minutes with Gradio's 10,000 sessions
    python -m benchmarks.bench_soak --config configs/default.yaml --backend none   # extractive answers: more calls per minute
    python -m benchmarks.bench_soak --minutes 6 --max-sessions 20   # a low cap, reached within minutes with the real model

Figures (per minute, then a summary): calls answered, busy replies, errors, server RSS and
child RSS at the end of each minute; "after warm-up" compares the RSS at the end of the
second minute (the first includes loading the models) with the last one (MB and ratio). The machine's load average is printed at the
start and the end: other work on the machine slows the calls, not the memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How much market value did Nvidia lose on 27 January 2025?",
    "When did DeepSeek release R1, and under which licence?",
    "What did the DeepSeek-V3 technical report say the final training run cost?",
]
FOLLOW_UP = "Why did that happen?"
SAMPLE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 when it is gone)."""
    try:
        m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except OSError:
        return 0.0
    return int(m.group(1)) / 1024 if m else 0.0


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if re.search(rf"^PPid:\s+{pid}$", (proc / "status").read_text(), re.MULTILINE):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def start(index: str, config: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", index, "--port", str(port), "--config", str(config)]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "XDG_STATE_HOME": str(work / "state"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("RAG_UI_AUTH", None)
    log = open(work / f"server-{port}.log", "w")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/config", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start within 300 s; see {log.name}")


class Load:
    """The clients' counters (shared, under a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = self.busy = self.errors = 0
        self.stop = threading.Event()

    def add(self, kind: str) -> None:
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)


def chat(url: str, fn: int, session: str, question: str, chat_so_far: list) -> tuple[str, list]:
    """One /chat call through the queue; ``(kind, chat)`` with kind answered, busy or errors."""
    body = {
        "data": [question, chat_so_far, None, 4, 0.0, 128, False],
        "fn_index": fn,
        "session_hash": session,
        "event_data": None,
        "trigger_id": None,
    }
    r = httpx.post(url + "/gradio_api/queue/join", json=body, timeout=30)
    if r.status_code != 200:
        return "errors", chat_so_far
    with httpx.stream("GET", url + "/gradio_api/queue/data", params={"session_hash": session}, timeout=600) as stream:
        for line in stream.iter_lines():
            msg = json.loads(line[6:]) if line.startswith("data: ") else {}
            if msg.get("msg") == "process_completed":
                if not msg.get("success"):
                    return "errors", chat_so_far
                out = msg["output"]["data"][0]
                return ("busy" if "server is busy" in json.dumps(out[-1:]) else "answered"), out
    return "errors", chat_so_far


def client(url: str, fn: int, number: int, load: Load) -> None:
    own, history, i = f"soak-{number}-{os.getpid()}", [], 0
    while not load.stop.is_set():
        i += 1
        try:
            if i % 3 == 0 and history:  # a follow-up in the client's own session
                kind, history = chat(url, fn, own, FOLLOW_UP, history)
            else:  # a stateless caller: a new session each time
                kind, out = chat(
                    url, fn, f"soak-{number}-{i}-{os.urandom(4).hex()}", QUESTIONS[(number + i) % len(QUESTIONS)], []
                )
                history = out if i % 3 == 2 else history
        except httpx.HTTPError:
            kind = "errors"
        load.add(kind)


def soak(
    index: str, config: Path, work: Path, clients: int, minutes: float, label: str
) -> list[tuple[float, int, int, int, float, float]]:
    proc, url = start(index, config, work)
    rows = []
    try:
        cfg = httpx.get(url + "/config", timeout=10).json()
        fn = next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == "chat")
        load = Load()
        threads = [threading.Thread(target=client, args=(url, fn, n, load), daemon=True) for n in range(clients)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        print(f"\n[{label}] {clients} clients for {minutes:g} min; load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"{'min':>5} {'answered':>9} {'busy':>6} {'errors':>7} {'server MB':>10} {'child MB':>9}", flush=True)
        next_row = 60.0
        while (elapsed := time.monotonic() - t0) < minutes * 60:
            time.sleep(SAMPLE_S)
            if elapsed + SAMPLE_S >= next_row or elapsed + SAMPLE_S >= minutes * 60:
                child = sum(rss_mb(c) for c in children(proc.pid))
                row = (
                    round((elapsed + SAMPLE_S) / 60, 1),
                    load.answered,
                    load.busy,
                    load.errors,
                    rss_mb(proc.pid),
                    child,
                )
                rows.append(row)
                print(f"{row[0]:>5} {row[1]:>9} {row[2]:>6} {row[3]:>7} {row[4]:>10.0f} {row[5]:>9.0f}", flush=True)
                next_row += 60.0
        load.stop.set()
        print(f"[{label}] load average at the end {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def summary(label: str, rows: list) -> None:
    if len(rows) < 2:
        print(f"[{label}] too short for a warm-up comparison (run --minutes 2 or more)")
        return
    first = rows[1] if len(rows) >= 3 else rows[0]  # the first minute includes loading the models
    warm, last = first[4], rows[-1][4]
    answered = rows[-1][1] - first[1]
    print(
        f"[{label}] server RSS after warm-up ({first[0]} min) {warm:.0f} MB -> {last:.0f} MB at {rows[-1][0]} min: {last - warm:+.0f} MB "
        f"(x{last / warm:.3f}) over {answered} more calls answered ({(last - warm) / max(answered, 1) * 1000:.0f} kB per call)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long each soak runs (default 10)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent API clients (default 20)")
    parser.add_argument("--index", help="existing index folder (default: build data/articles into a temporary folder)")
    parser.add_argument(
        "--config", default=str(ROOT / "configs" / "default.yaml"), help="YAML config (default: configs/default.yaml)"
    )
    parser.add_argument("--backend", help="override generation.backend (e.g. none: extractive answers, no model)")
    parser.add_argument("--max-sessions", type=int, help="override ui.max_sessions (default: the config's, 200)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="then soak again with ui.max_sessions 10000 (Gradio's default, as before issue 27)",
    )
    args = parser.parse_args()
    import yaml

    work = Path(tempfile.mkdtemp(prefix="rag-soak-"))
    base = yaml.safe_load(Path(args.config).read_text()) or {}
    if args.backend:
        base.setdefault("generation", {})["backend"] = args.backend
    base.setdefault("ui", {})["max_queue"] = max(args.clients, 32)
    if args.max_sessions:
        base["ui"]["max_sessions"] = args.max_sessions
    index = args.index
    if index is None:
        from rag import RAG, Config

        index = str(work / "index")
        print(f"Building an index of data/articles into {index} ...", flush=True)
        RAG(Config.load(args.config, {"index.path": index})).build(ROOT / "data" / "articles")
    runs = [("capped", dict(base["ui"]))]
    if args.compare:
        runs.append(("uncapped", {**base["ui"], "max_sessions": 10_000}))
    results = []
    for label, ui_cfg in runs:
        config = work / f"{label}.yaml"
        config.write_text(yaml.safe_dump({**base, "ui": ui_cfg}))
        results.append(
            (
                label,
                soak(
                    index,
                    config,
                    work,
                    args.clients,
                    args.minutes,
                    f"{label}, ui.max_sessions {ui_cfg.get('max_sessions', 200)}",
                ),
            )
        )
    print()
    for label, rows in results:
        summary(label, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
