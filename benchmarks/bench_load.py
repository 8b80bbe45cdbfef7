"""Load test of the chat server: many concurrent API clients against a real ``rag serve``.

Starts ``rag serve`` as a subprocess on a free loopback port over a small real index (five
articles on unrelated topics, the packaged MiniLM embedder) with the packaged SmolLM2 GGUF
through llama.cpp (transformers when llama-cpp-python is missing), short answers. Then
``--clients`` gradio_client threads each ask questions through the ``/ask`` API, one after
another, for ``--seconds``; a question still running at the deadline is waited for, so
every request is accounted for.

Each client asks about a different article first (client i starts at question i) and tags
every question with its own reference, so a mix-up between clients shows: the answer must
echo the exact question asked, and the top retrieved passage must come from that
question's article.

    python -m benchmarks.bench_load                    # the issue's run: 20 clients, 120 s
    python -m benchmarks.bench_load --clients 5 --seconds 20

Prints clients, requests, answered, busy, errors, mix-ups, lost, latency p50/p95/max, the
server's resident memory (VmRSS) after warm-up and after the run, and the growth.
tests/test_ui_load.py runs the same code with a short bound (RAG_LOAD_SECONDS, default 20).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Five short articles on unrelated topics, so each question has one right article.
ARTICLES: dict[str, str] = {
    "r1.md": "# DeepSeek releases the R1 reasoning model\nDate: 2025-01-20\n\n"
    "The Chinese company DeepSeek released DeepSeek-R1 on 20 January 2025 under the MIT licence. "
    "The reasoning model was trained with large-scale reinforcement learning. "
    "DeepSeek is based in Hangzhou and is funded by the hedge fund High-Flyer.\n",
    "markets/nvidia.txt": "Nvidia shares plunge after the DeepSeek launch\nDate: 2025-01-27\n\n"
    "On 27 January 2025 the share price of Nvidia fell about 17 percent, wiping close to 600 billion dollars "
    "from its market value. It was the largest one-day loss in value for any company in US history.\n",
    "bread.md": "# How to bake sourdough bread\n\n"
    "Sourdough bread needs a starter of flour and water that ferments for several days. "
    "Bake the loaf at 230 degrees Celsius for 40 minutes, with steam for the first 15 minutes.\n",
    "etna.md": "# Mount Etna erupts again\nDate: 2025-02-11\n\n"
    "Mount Etna, the volcano on the Italian island of Sicily, erupted on 11 February 2025. "
    "Lava fountains rose 300 metres and the airport of Catania was closed for a day because of volcanic ash.\n",
    "chess.md": "# Gukesh becomes world chess champion\nDate: 2024-12-12\n\n"
    "Gukesh Dommaraju of India won the World Chess Championship in Singapore on 12 December 2024, "
    "beating Ding Liren 7.5 to 6.5. At 18 he is the youngest undisputed world champion in history.\n",
}

# (question, source of the article that answers it)
QUESTIONS: list[tuple[str, str]] = [
    ("When did DeepSeek release the R1 reasoning model, and under which licence?", "r1.md"),
    ("How much did the Nvidia share price fall on 27 January 2025?", "markets/nvidia.txt"),
    ("At what temperature and for how long should sourdough bread be baked?", "bread.md"),
    ("When did Mount Etna in Sicily erupt, and what happened to Catania airport?", "etna.md"),
    ("Who won the World Chess Championship in December 2024, and against whom?", "chess.md"),
]

# Questions already waiting this long (seconds) when the run ends count as lost.
DRAIN_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write_config(
    folder: Path,
    *,
    max_new_tokens: int = 32,
    max_queue: int = 32,
    concurrency: int = 1,
    top_k: int = 3,
    few_shot: bool = True,
    threads: int | None = 1,
) -> Path:
    """A config for the load server: llama.cpp SmolLM2 when available, short answers.

    ``threads`` is llama.cpp's ``n_threads``: 1 answered 2-3x faster than the default on a
    busy 2-core machine (its OpenMP threads spin waiting for each other).
    """
    generation: dict = {
        "backend": "transformers",
        "model": "smollm2",
        "max_new_tokens": max_new_tokens,
        "few_shot": few_shot,
    }
    if importlib.util.find_spec("llama_cpp") is not None:
        generation.update(backend="llama_cpp", n_threads=threads)
    cfg = {
        "generation": generation,
        "retrieval": {"top_k": top_k},
        "ui": {"rewrite": "heuristic", "max_queue": max_queue, "generation_concurrency": concurrency},
    }
    path = folder / "load.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is valid YAML
    return path


def write_articles(folder: Path) -> Path:
    for name, text in ARTICLES.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return folder


class Server:
    """``rag serve`` in a subprocess on a free loopback port; building the index first if missing."""

    def __init__(
        self, config: Path, index: Path, articles: Path, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        cmd = [
            sys.executable,
            "-m",
            "rag.cli",
            "serve",
            "--config",
            str(config),
            "--index",
            str(index),
            "--articles",
            str(articles),
            "--allowed-root",
            str(articles.parent),
            "--port",
            str(self.port),
        ]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        env.pop("RAG_UI_AUTH", None)
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_up(self, timeout: float = 180.0) -> float:
        """Block until the page answers; returns the seconds it took."""
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"rag serve did not start within {timeout:.0f} s:\n{self.log()[-3000:]}")
            time.sleep(0.3)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@dataclass
class LoadResult:
    """What one load run measured."""

    clients: int
    seconds: float
    requests: int = 0
    answered: int = 0
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    mixups: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    # (seconds since start, server RSS in MB) every few seconds, when the server pid is given
    rss: list[tuple[float, float]] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.requests - self.answered - self.busy - len(self.errors)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("latencies", "errors", "mixups", "rss")}
        return {
            **d,
            "errors": len(self.errors),
            "mixups": len(self.mixups),
            "lost": self.lost,
            "p50_s": round(self.percentile(50), 2),
            "p95_s": round(self.percentile(95), 2),
            "max_s": round(max(self.latencies), 2) if self.latencies else None,
            "throughput_per_min": round(60 * self.answered / self.wall_s, 1) if self.wall_s else None,
        }


def check_answer(result: dict, asked: str, source: str) -> str | None:
    """Why ``result`` is not the answer to ``asked`` (about ``source``), or None when it is."""
    if result.get("question") != asked:
        return f"asked {asked!r} but got the answer to {result.get('question')!r}"
    passages = result.get("passages") or []
    if not passages:
        return f"no passages retrieved for {asked!r}"
    if passages[0].get("source") != source:
        return f"top passage for {asked!r} is from {passages[0].get('source')!r}, expected {source!r}"
    sources = {p.get("source") for p in passages}
    stray = [c.get("source") for c in result.get("citations") or [] if c.get("source") not in sources]
    if stray:
        return f"answer to {asked!r} cites {stray} which were not retrieved for it"
    return None


BUSY = "The server is busy"


def run_load(
    url: str,
    clients: int,
    seconds: float,
    questions: list[tuple[str, str]] = QUESTIONS,
    drain_s: float = DRAIN_S,
    pid: int | None = None,
    sample_s: float = 10.0,
) -> LoadResult:
    """``clients`` threads ask ``questions`` through /ask for ``seconds``; every request is accounted for.

    With ``pid``, the server's RSS is sampled every ``sample_s`` seconds into ``result.rss``.
    """
    from gradio_client import Client

    result = LoadResult(clients=clients, seconds=seconds)
    lock = threading.Lock()
    deadline = [0.0]
    t0 = [0.0]

    def go() -> None:  # runs once, when every client is connected, before any asks
        t0[0] = time.monotonic()
        deadline[0] = t0[0] + seconds

    start = threading.Barrier(clients + 1, action=go)

    def client(i: int) -> None:
        try:
            c = Client(url, verbose=False)
        except Exception as exc:  # counted: a client that cannot connect is an error
            with lock:
                result.errors.append(f"client {i} could not connect: {type(exc).__name__}: {exc}")
            start.wait()
            return
        start.wait()
        n = 0
        while time.monotonic() < deadline[0]:
            base, source = questions[(i + n) % len(questions)]
            asked = f"{base} (client {i} request {n})"
            n += 1
            with lock:
                result.requests += 1
            t0 = time.perf_counter()
            try:
                answer = c.predict(asked, api_name="/ask")
            except Exception as exc:
                text = " ".join(str(exc).split())
                with lock:
                    if BUSY in text:
                        result.busy += 1
                    else:
                        result.errors.append(f"client {i}: {type(exc).__name__}: {text[:300]}")
                continue
            took = time.perf_counter() - t0
            why = check_answer(answer, asked, source)
            with lock:
                result.answered += 1
                result.latencies.append(took)
                if why:
                    result.mixups.append(why)

    threads = [threading.Thread(target=client, args=(i,), name=f"load-client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(sample_s):
            try:
                result.rss.append((round(time.monotonic() - t0[0], 1), round(rss_mb(pid), 1)))
            except (OSError, RuntimeError):
                return

    if pid is not None:
        threading.Thread(target=sample, name="load-rss", daemon=True).start()
    for t in threads:
        t.join(max(0.1, deadline[0] + drain_s - time.monotonic()))
    done.set()
    result.wall_s = time.monotonic() - t0[0]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="concurrent API clients (default 20)")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long clients keep asking (default 120)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="answer length in tokens (default 32)")
    parser.add_argument(
        "--max-queue", type=int, default=32, help="ui.max_queue (default 32: no busy replies with 20 clients)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="ui.generation_concurrency (default 1)")
    parser.add_argument(
        "--threads", type=int, default=1, help="llama.cpp n_threads (default 1; 0: llama.cpp's default)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        folder = Path(tmp)
        articles = write_articles(folder / "articles")
        config = write_config(
            folder,
            max_new_tokens=args.max_new_tokens,
            max_queue=args.max_queue,
            concurrency=args.concurrency,
            threads=args.threads or None,
        )
        gen = json.loads(config.read_text())["generation"]
        server = Server(config, folder / "index", articles, folder / "server.log")
        try:
            up = server.wait_up()
            warm = run_load(server.url, 1, 0.1)  # loads the models and answers one question
            if warm.errors or warm.mixups:
                raise SystemExit(f"warm-up failed: {warm.errors or warm.mixups}\n{server.log()[-3000:]}")
            before = server.rss_mb()
            res = run_load(server.url, args.clients, args.seconds, pid=server.proc.pid)
            time.sleep(1.0)
            after = server.rss_mb()
        finally:
            server.stop()
    s = res.summary()
    print(
        f"generator {gen['backend']}:{gen['model']}, max_new_tokens {gen['max_new_tokens']}; "
        f"ui.generation_concurrency {args.concurrency}, ui.max_queue {args.max_queue}"
    )
    print(f"server up in {up:.1f} s; warm-up answer {warm.latencies[0]:.1f} s")
    print(f"clients {s['clients']}, duration {args.seconds:.0f} s (+ drain, wall {s['wall_s']:.0f} s)")
    print(
        f"requests {s['requests']}, answered {s['answered']}, busy {s['busy']}, errors {s['errors']}, mix-ups {s['mixups']}, lost {s['lost']}"
    )
    print(
        f"latency p50 {s['p50_s']:.2f} s, p95 {s['p95_s']:.2f} s, max {s['max_s']} s; throughput {s['throughput_per_min']} answers/min"
    )
    print(f"server RSS {before:.0f} MB after warm-up -> {after:.0f} MB after the run (growth {after - before:+.0f} MB)")
    if res.rss:
        print("server RSS during the run (s: MB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in res.rss))
    for line in (res.errors + res.mixups)[:10]:
        print("  ", line)
    if args.json:
        print(
            json.dumps(
                {
                    **s,
                    "rss_before_mb": round(before),
                    "rss_after_mb": round(after),
                    "max_new_tokens": args.max_new_tokens,
                }
            )
        )
    return 0 if not (res.errors or res.mixups or res.lost) else 1


if __name__ == "__main__":
    sys.exit(main())
