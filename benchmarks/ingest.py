"""Ingestion: a full ``RAG.build`` timed stage by stage, against raw ``SentenceTransformer.encode``.

Used by ``benchmarks/run.py`` (section ``ingest``) and runnable alone for one big corpus::

    python -m benchmarks.ingest ../shared/corpora/squad-articles --runs 1 --json out.json

Stages are timed by wrapping the functions the build calls (nothing in ``rag`` changes):
``load`` (reading and decoding files), ``near-duplicates`` (MinHash signatures and LSH),
``chunk``, ``embed`` (the embedder's ``encode``), ``faiss`` (building and tuning the vector
index), ``sqlite`` (chunk records), ``keyword`` (the BM25 index written beside the vectors)
and ``other`` (the rest: manifest, fsync, bookkeeping).

The limit is the embedder's raw ``SentenceTransformer.encode`` on exactly the texts the build
embedded (each chunk's title and headings line, cut to the window, then its text: recorded
from the build's ``encode`` call) with the same batch size; build and raw runs alternate, and
the medians are compared. ``--articles-limit N`` builds the first N files (sorted by name)::

    python -m benchmarks.ingest ../shared/corpora/squad-articles --articles-limit 100 --runs 2
Wall time on a shared machine is noisy, so CPU time (user + system of this process) per
chunk is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

STAGES = ("load", "near-duplicates", "chunk", "embed", "faiss", "sqlite", "keyword", "other")


@contextmanager
def stage_timers(rag: Any, embedded: list[str] | None = None):
    """Wrap the build's stage functions with timers; yields the ``{stage: seconds}`` dict.

    ``embedded``, when given, receives every text the build asks the embedder to encode.
    """
    import rag.indexing.builder as indexing
    import rag.store.faiss as store

    totals: dict[str, float] = defaultdict(float)

    def timed(stage: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[stage] += time.perf_counter() - t0

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    patches = [
        (indexing, "load_documents", "load"),
        (indexing, "minhash_signature", "near-duplicates"),
        (indexing, "find_near_duplicates", "near-duplicates"),
        (store, "build_index", "faiss"),
        (store, "_write_chunks", "sqlite"),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    writers = indexing.BUILD_WRITERS
    try:
        for mod, name, stage in patches:
            setattr(mod, name, timed(stage, getattr(mod, name)))
        indexing.BUILD_WRITERS = tuple(timed("keyword", w) for w in writers)
        rag.chunker.split = timed("chunk", rag.chunker.split)
        encode = rag.embedder.encode

        def recording(texts, *args, **kwargs):
            if embedded is not None:
                embedded.extend(texts)
            return encode(texts, *args, **kwargs)

        rag.embedder.encode = timed("embed", recording)
        yield totals
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
        indexing.BUILD_WRITERS = writers
        for obj, attr in ((rag.chunker, "split"), (rag.embedder, "encode")):
            if attr in vars(obj):
                delattr(obj, attr)


def _cpu() -> float:
    return time.process_time()  # user + system CPU of this process, every thread


def timed_build(rag: Any, folder: Path, embedded: list[str] | None = None) -> dict[str, Any]:
    """One full build with stage times (wall), total wall and CPU seconds; ``embedded`` receives the texts it encoded."""
    with stage_timers(rag, embedded) as totals:
        c0, t0 = _cpu(), time.perf_counter()
        summary = rag.build(folder, full=True)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    stages = {s: round(totals.get(s, 0.0), 3) for s in STAGES if s != "other"}
    stages["other"] = round(max(0.0, wall - sum(stages.values())), 3)
    return {"chunks": summary.chunks, "articles": summary.articles, "wall_s": wall, "cpu_s": cpu, "stages": stages}


def raw_encode(rag: Any, texts: list[str]) -> dict[str, Any]:
    """``SentenceTransformer.encode`` on ``texts`` (the limit the build is measured against)."""
    model = rag.embedder.model
    c0, t0 = _cpu(), time.perf_counter()
    model.encode(
        texts,
        batch_size=rag.config.embedding.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0}


def measure(
    folder: Path, runs: int = 1, log: Callable[[str], None] = print, profile: Path | None = None
) -> dict[str, Any]:
    """Alternate ``runs`` full builds and raw encodes of the same chunks; report medians and ratios.

    Args:
        folder: the articles.
        runs: build/raw pairs (medians over them).
        log: progress lines.
        profile: write a pyinstrument profile of the first build here (text), when installed.
    """
    from rag import RAG, Config

    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(Config.load(None, {"index.path": str(Path(tmp) / "index"), "embedding.backend": "torch"}))
        rag.embedder.warm_up()  # model load is not part of either rate
        rag.embedder.encode(["warm up the kernels"])
        builds, raws = [], []
        texts: list[str] = []
        for i in range(runs):
            profiler = None
            if profile is not None and i == 0:
                try:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.01)
                    profiler.start()
                except ImportError:
                    log("pyinstrument is not installed (pip install 'rag-articles[bench]'); no profile")
            embedded: list[str] = []
            b = timed_build(rag, folder, embedded)
            if profiler is not None:
                profiler.stop()
                profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
            builds.append(b)
            if not texts:
                texts = embedded  # exactly what the build embedded (title and headings line, then the chunk)
            r = raw_encode(rag, texts)
            raws.append(r)
            log(
                f"  ingest run {i + 1}/{runs}: build {b['chunks'] / b['wall_s']:.1f} chunks/s, raw encode {len(texts) / r['wall_s']:.1f} chunks/s"
            )
    n = builds[0]["chunks"]
    build_wall = statistics.median(b["wall_s"] for b in builds)
    raw_wall = statistics.median(r["wall_s"] for r in raws)
    build_cpu = statistics.median(b["cpu_s"] for b in builds)
    raw_cpu = statistics.median(r["cpu_s"] for r in raws)
    stages = {s: round(statistics.median(b["stages"][s] for b in builds), 3) for s in STAGES}
    return {
        "articles_dir": str(folder),
        "articles": builds[0]["articles"],
        "chunks": n,
        "runs": runs,
        "build_s": round(build_wall, 2),
        "raw_encode_s": round(raw_wall, 2),
        "build_chunks_per_s": round(n / build_wall, 2),
        "raw_chunks_per_s": round(len(texts) / raw_wall, 2),
        "ratio_wall": round((n / build_wall) / (len(texts) / raw_wall), 3),
        "ratio_cpu": round((len(texts) / n) * raw_cpu / build_cpu, 3) if build_cpu else None,
        "stages_s": stages,
        "stage_share": {s: round(v / build_wall, 4) for s, v in stages.items()},
        "pairs": [
            {
                "build_s": round(b["wall_s"], 2),
                "raw_s": round(r["wall_s"], 2),
                "build_cpu_s": round(b["cpu_s"], 2),
                "raw_cpu_s": round(r["cpu_s"], 2),
            }
            for b, r in zip(builds, raws)
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("articles", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "squad-articles"))
    ap.add_argument("--runs", type=int, default=1, help="build/raw pairs; medians are reported (default 1)")
    ap.add_argument(
        "--articles-limit", type=int, default=0, help="only the first N article files, sorted by name (0 = all)"
    )
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--profile", type=Path, help="write a pyinstrument profile of the first build here")
    args = ap.parse_args()
    folder = Path(args.articles)
    if not folder.is_dir():
        print(
            f"articles folder {str(folder)!r} not found; pass one (e.g. ../shared/corpora/squad-articles)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.articles_limit:
            subset = Path(tmp) / f"{folder.name}-first-{args.articles_limit}"
            subset.mkdir()
            for path in sorted(p for p in folder.iterdir() if p.is_file())[: args.articles_limit]:
                shutil.copy2(path, subset / path.name)
            folder = subset
        result = measure(folder, args.runs, log=lambda m: print(m, file=sys.stderr, flush=True), profile=args.profile)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
