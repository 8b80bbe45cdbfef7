"""Benchmark the chat UI as a user meets it: server start-up, time to first token, total answer time.

Starts ``rag serve`` as a subprocess on a free loopback port (over an index of the sample
articles, built first into a temporary folder unless --index is given), then asks a sample
question through the UI's streaming chat endpoint with gradio_client, the same event the
page's Ask button triggers.

    python -m benchmarks.bench_ui                       # 3 start-ups, 1 cold + 5 timed questions
    python -m benchmarks.bench_ui --index index/default --runs 5 --starts 3

Figures:
  start-up        process start -> the page answers HTTP 200 (median of --starts)
  first answer    the first question after start-up (includes loading the models)
  TTFT            question sent -> first answer text in the chat (median of --runs)
  total           question sent -> final, citation-checked answer (median of --runs)
"""

from __future__ import annotations

import argparse
import html
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How much market value did Nvidia lose on 27 January 2025?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(index: str, config: str | None, log_path: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", index, "--port", str(port)]
    if config:
        cmd += ["--config", config]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("RAG_UI_AUTH", None)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
        if time.perf_counter() - t0 > 300:
            proc.kill()
            raise SystemExit(f"server did not start within 300 s; see {log_path}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def content_text(content) -> str:
    """Message content as text (gradio_client gives [{"type": "text", "text": ...}])."""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def ask(client, question: str) -> tuple[float, float, str, int]:
    """(seconds to first answer text, seconds to the final answer, final answer, streamed updates)."""
    t0 = time.perf_counter()
    job = client.submit(question, api_name="/chat")
    first = None
    updates = 0
    for out in job:
        chat = out[0]
        if (
            chat
            and chat[-1]["role"] == "assistant"
            and not chat[-1].get("metadata")
            and "searched for" not in str(chat[-1]["content"])
        ):
            updates += 1
            if first is None and str(chat[-1]["content"]).strip():
                first = time.perf_counter() - t0
    final = content_text(job.outputs()[-1][0][-1]["content"])
    total = time.perf_counter() - t0
    return (first if first is not None else total), total, final, updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="existing index folder (default: build data/articles into a temporary folder)")
    parser.add_argument("--config", help="YAML config (default: configs/default.yaml)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument(
        "--follow-up", default="Why did its shares fall?", help="follow-up asked after the timed runs ('' to skip)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed questions (default 5)")
    parser.add_argument("--starts", type=int, default=3, help="server start-ups to time (default 3)")
    args = parser.parse_args()
    if args.runs < 1 or args.starts < 1:
        parser.error("--runs and --starts must be >= 1")

    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    index = args.index
    if index is None:
        index = str(tmp / "index")
        print(f"building an index of data/articles into {index} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "rag.cli", "build", "data/articles", "--index", index, "--quiet"],
            cwd=ROOT,
            check=True,
        )

    startups = []
    for i in range(args.starts):
        proc, url, seconds = start(index, args.config, tmp / f"server{i}.log")
        startups.append(seconds)
        if i < args.starts - 1:
            stop(proc)
    try:
        client = Client(url, verbose=False)
        cold_first, cold_total, answer, _ = ask(client, args.question)
        print(f"answer: {answer}")
        firsts, totals, updates = [], [], []
        for _ in range(args.runs):
            f, t, _, u = ask(client, args.question)
            firsts.append(f)
            totals.append(t)
            updates.append(u)
        follow: list[float] = []
        shown = ""
        for _ in range(3 if args.follow_up else 0):
            f, t, _, _ = ask(client, args.follow_up)
            follow.append(f)
        if args.follow_up:
            job = client.submit(args.follow_up, api_name="/chat")
            messages = job.result()[0]
            shown = " ".join(
                content_text(m["content"]) for m in messages if "searched for" in content_text(m["content"])
            )
    finally:
        stop(proc)

    ttft, total = statistics.median(firsts), statistics.median(totals)
    print(
        f"question: {args.question!r}  (index {index}; cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f})"
    )
    print(
        f"start-up (process -> HTTP 200): median {statistics.median(startups):.2f} s  of {[round(s, 2) for s in startups]}"
    )
    print(
        f"first question after start-up (loads the models): first token {cold_first:.2f} s, answer {cold_total:.2f} s"
    )
    print(f"time to first token: median {ttft:.2f} s  of {[round(x, 2) for x in firsts]}")
    print(f"total answer time:   median {total:.2f} s  of {[round(x, 2) for x in totals]}")
    print(
        f"first token / total: {ttft / total:.2f}; streamed updates per answer: median {statistics.median(updates):.0f}"
    )
    if follow:
        print(
            f"follow-up {args.follow_up!r} (rewrite first, ui.rewrite from the config): first token median {statistics.median(follow):.2f} s "
            f"of {[round(x, 2) for x in follow]}; shown: {html.unescape(re.sub(r'<[^>]+>', '', shown)).strip()!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
