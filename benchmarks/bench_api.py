"""Benchmark the OpenAI-compatible endpoint under concurrent streaming clients.

Starts ``rag api`` as a subprocess on a free loopback port (over an index of the sample
articles, built first into a temporary folder unless --index is given; the shipped config,
so the packaged SmolLM2 answers), asks each client's question once to record its reference
answer, then runs --clients threads for --seconds, each streaming its own question
(``stream: true``) again and again with raw HTTP.

    python -m benchmarks.bench_api                          # 10 clients for 60 s
    python -m benchmarks.bench_api --clients 4 --seconds 20 --index index/default

Figures:
  requests        streamed answers completed, and per client
  errors          non-200 answers, error events in a stream, streams without [DONE]
  busy            429 answers (the line was full; counted apart from errors)
  mixed           answers equal to another client's reference answer, or citing only sources
                  of another client's reference (must be 0)
  changed         answers that differ from the client's own reference (greedy decoding: expect 0)
  first chunk     request sent -> first SSE data chunk (the role; after waiting in line and retrieval), p50/p95
  first content   request sent -> first content piece (the checked answer), p50/p95
  total           request sent -> [DONE], p50/p95
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = (
    "How much market value did Nvidia lose on 27 January 2025?",
    "When did DeepSeek release R1, and under which licence?",
    "Who founded DeepSeek?",
    "What did Italy's data protection authority do about DeepSeek?",
    "What is GRPO?",
    "What is knowledge distillation?",
    "What did the DeepSeek-V3 technical report say the final training run cost?",
    "What is FP8 mixed precision training?",
    "What was the price war among Chinese AI companies in May 2024?",
    "Which countries restricted the use of DeepSeek?",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(index: str, config: str | None, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "api", "--index", index, "--port", str(port)]
    cmd += ["--config", config] if config else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("RAG_API_KEY", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    while "Serving the OpenAI-compatible API" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None:
            raise SystemExit(f"rag api exited with {proc.returncode}; see {log_path}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def stream_once(url: str, question: str) -> dict:
    """One streamed answer: its content, cited sources, status and timings (seconds from sending)."""
    body = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": question}]}
    out: dict = {
        "status": 0,
        "content": "",
        "sources": [],
        "error": None,
        "first_chunk": None,
        "first_content": None,
        "done": False,
    }
    t0 = time.perf_counter()
    with httpx.stream("POST", url, json=body, timeout=600) as r:
        out["status"] = r.status_code
        if r.status_code != 200:
            r.read()
            out["error"] = r.text[:200]
            return out
        parts = []
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                out["done"] = True
                break
            data = json.loads(line[6:])
            out["first_chunk"] = out["first_chunk"] or time.perf_counter() - t0
            if "error" in data:
                out["error"] = data["error"]["message"]
                continue
            piece = data["choices"][0]["delta"].get("content") if data["choices"] else None
            if piece:
                out["first_content"] = out["first_content"] or time.perf_counter() - t0
                parts.append(piece)
            if "citations" in data:
                out["sources"] = sorted({c["source"] for c in data["citations"]})
        out["content"] = "".join(parts)
    out["total"] = time.perf_counter() - t0
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def run_clients(url: str, questions: list[str], seconds: float) -> list[tuple[int, dict]]:
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        while time.monotonic() < stop_at:
            try:
                r = stream_once(url, questions[i])
            except httpx.HTTPError as exc:
                r = {"status": -1, "error": str(exc), "content": "", "sources": [], "done": False}
            with lock:
                results.append((i, r))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def report(results: list[tuple[int, dict]], refs: list[dict], questions: list[str], seconds: float) -> None:
    clients = len(questions)
    ok = [(i, r) for i, r in results if r["status"] == 200 and r["done"] and not r["error"]]
    busy = sum(r["status"] == 429 for _, r in results)
    errors = len(results) - len(ok) - busy
    mixed = changed = 0
    for i, r in ok:
        if r["content"] != refs[i]["content"]:
            changed += 1
            others = [j for j in range(len(refs)) if questions[j] != questions[i]]
            if any(r["content"] == refs[j]["content"] for j in others) or (
                r["sources"]
                and not set(r["sources"]) & set(refs[i]["sources"])
                and any(set(r["sources"]) <= set(refs[j]["sources"]) for j in others)
            ):
                mixed += 1
    per_client = [sum(1 for i, _ in ok if i == c) for c in range(clients)]
    print(
        f"\n{clients} streaming clients for {seconds:.0f} s: {len(ok)} answers (requests started in the window), "
        f"per client {per_client}"
    )
    print(f"errors {errors}   busy (429) {busy}   mixed between clients {mixed}   changed from own reference {changed}")
    for name in ("first_chunk", "first_content", "total"):
        values = [r[name] for _, r in ok if r.get(name) is not None]
        print(
            f"{name.replace('_', ' '):14} p50 {pct(values, 0.5):6.2f} s   p95 {pct(values, 0.95):6.2f} s   "
            f"(n={len(values)})"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="index folder (default: build data/articles into a temporary folder)")
    p.add_argument(
        "--config", default=str(ROOT / "configs" / "default.yaml"), help="config (default: configs/default.yaml)"
    )
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    index = args.index
    if index is None:
        index = str(work / "index")
        build = [sys.executable, "-m", "rag.cli", "build", str(ROOT / "data" / "articles"), "--index", index, "--quiet"]
        subprocess.run(build, cwd=ROOT, check=True)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.clients)]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} before the server starts")
    proc, url = start(index, args.config, work / "server.log")
    try:
        t0 = time.perf_counter()
        refs = [stream_once(url, q) for q in questions]  # the first includes loading the models
        bad = [q for q, r in zip(questions, refs) if r["status"] != 200 or r["error"] or not r["done"]]
        if bad:
            raise SystemExit(f"reference answers failed for {bad}; see {work / 'server.log'}")
        source_sets = len({tuple(r["sources"]) for r in refs})
        print(
            f"reference answers: {len(refs)} in {time.perf_counter() - t0:.1f} s "
            f"(serial, the first loads the models); {source_sets} distinct sets of cited sources"
        )
        results = run_clients(url, questions, args.seconds)
        report(results, refs, questions, args.seconds)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
