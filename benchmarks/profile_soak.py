"""Where the server's memory goes under /chat load: ``rag serve`` in this process, bench_soak's clients against it.

Runs ``ui.server.serve`` in this process (so it can look inside), loads the models, then runs
--clients of benchmarks/bench_soak.py's ``/chat`` callers for --seconds. Every tenth of the run
it prints the calls answered, Gradio's sessions (``state_holder``), the resident memory (RSS)
and, with --trace, the memory Python's own objects hold (tracemalloc); at the end, what grew per
new session. RSS that rises while Python's objects stay flat is native memory (the C
allocator, the model runtimes), not state the app keeps.

    python benchmarks/profile_soak.py --backend none --trace          # Python objects per session
    python benchmarks/profile_soak.py --backend none                       # RSS with rag serve's 2 malloc arenas
    MALLOC_ARENA_MAX=16 python benchmarks/profile_soak.py --backend none   # glibc's default on 2 cores, as before

An index of data/articles is built into a temporary folder unless --index is given.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_soak  # noqa: E402
import ui.server  # noqa: E402

_seen: dict[str, Any] = {}
_launch = ui.server._launch


def _capture(demo: Any, chat_ui: Any, *args: Any, **kwargs: Any) -> None:
    _seen["demo"], _seen["ui"] = demo, chat_ui
    _launch(demo, chat_ui, *args, **kwargs)


def sample(demo: Any) -> tuple[int, float, float]:
    """``(sessions, RSS MB, Python-traced MB)`` now."""
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else 0.0
    return len(demo.state_holder.session_data), bench_soak.rss_mb(os.getpid()), traced


def drive(url: str, clients: int, seconds: float, trace: bool) -> None:
    """Wait for the server and its models, run the clients, print the samples, then stop the server."""
    try:
        while "demo" not in _seen:
            time.sleep(0.2)
        while True:
            try:
                if httpx.get(url + "/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        _seen["ui"].ensure_loaded()
        demo = _seen["demo"]
        if trace:
            tracemalloc.start(8)
        config = httpx.get(url + "/config", timeout=10).json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "chat")
        load = bench_soak.Load()
        for n in range(clients):
            threading.Thread(target=bench_soak.client, args=(url, fn, n, load), daemon=True).start()
        print(f"{'s':>5} {'answered':>9} {'sessions':>9} {'RSS MB':>7} {'Python MB':>10}", flush=True)
        t0, rows = time.monotonic(), []
        for step in range(1, 11):
            time.sleep(max(0.0, t0 + seconds * step / 10 - time.monotonic()))
            rows.append((load.answered, *sample(demo)))
            answered, sessions, rss, traced = rows[-1]
            print(f"{time.monotonic() - t0:5.0f} {answered:>9} {sessions:>9} {rss:>7.0f} {traced:>10.1f}", flush=True)
        load.stop.set()
        (a0, s0, r0, p0), (a1, s1, r1, p1) = rows[2], rows[-1]  # from the third sample: the first two include warm-up
        new = max(s1 - s0, 1)
        per_session = (p1 - p0) / new * 1024
        python_part = f"; Python objects {p1 - p0:+.1f} MB ({per_session:.0f} kB per new session)" if trace else ""
        print(
            f"after warm-up: {a1 - a0} calls, {s1 - s0} new sessions; RSS {r1 - r0:+.0f} MB "
            f"({(r1 - r0) / new * 1024:.0f} kB per new session){python_part}",
            flush=True,
        )
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the clients run (default 180)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent /chat clients (default 20)")
    parser.add_argument("--index", help="existing index folder (default: build data/articles into a temporary folder)")
    parser.add_argument("--config", default=str(bench_soak.ROOT / "configs" / "default.yaml"), help="YAML config")
    parser.add_argument("--backend", help="override generation.backend (none: extractive answers, fast calls)")
    parser.add_argument("--trace", action="store_true", help="also trace Python's allocations (slower calls)")
    args = parser.parse_args()
    import yaml

    work = Path(tempfile.mkdtemp(prefix="rag-profile-"))
    base = yaml.safe_load(Path(args.config).read_text()) or {}
    if args.backend:
        base.setdefault("generation", {})["backend"] = args.backend
    base.setdefault("ui", {})["max_queue"] = max(args.clients, 32)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(base))
    index = args.index
    if index is None:
        from rag import RAG, Config

        index = str(work / "index")
        RAG(Config.load(str(config), {"index.path": index})).build(bench_soak.ROOT / "data" / "articles")
    os.environ.setdefault("XDG_STATE_HOME", str(work / "state"))
    port = bench_soak.free_port()
    ui.server._launch = _capture
    url = f"http://127.0.0.1:{port}"
    threading.Thread(target=drive, args=(url, args.clients, args.seconds, args.trace), daemon=True).start()
    return ui.server.serve(config=config, index=index, port=port)


if __name__ == "__main__":
    sys.exit(main())
