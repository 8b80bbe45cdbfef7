"""Scale-out figures: build time local vs ``--ray``, and query latency FAISS vs Milvus Lite.

Usage:
    python -m benchmarks.bench_scale [--articles DIR] [--articles-limit N] [--sizes 10000,100000] [--queries 200] [--skip-build]

1. Build: a fresh FAISS index of the articles (default: the sample articles, or the first N
   files of DIR) embedded locally, then the same with ``embedding.engine: ray`` (a local Ray
   cluster of 2 CPUs, 2 actors). Model loading is outside the local timing; for Ray the cluster
   start and the actors' model loading are inside it (they are what Ray costs a build), and are
   also shown on their own.
2. Query p50/p95 of a dense top-10 search through the store API (``dense_search``) on
   synthetic, unit-normalised, clustered 384-d vectors (``benchmarks/run.py:synthetic_vectors``;
   not real embeddings: they are fine for latency, not for quality), one query at a time,
   after warm-up: FAISS (``index.type: auto``: flat below 50k, IVF from there) against embedded
   Milvus Lite (``auto``: FLAT below 50k, HNSW from there) written through the Milvus store
   (so each row also carries text, metadata and a BM25 sparse vector) and then opened afresh,
   as a reader would, and the build (write) time of each. The figures are from a 2-core
   machine shared with other jobs: compare them within one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from rag import RAG, Config  # noqa: E402
from rag.records import Chunk, Manifest  # noqa: E402
from benchmarks.bench_build import _slice  # noqa: E402


_articles = _slice  # the first N article files, copied (the same slice bench_build.py measures)


def bench_build(folder: Path, tmp: Path) -> dict:
    """Local and Ray build of ``folder`` into fresh FAISS indexes."""
    local = RAG(Config.load(None, {"index.path": str(tmp / "local")}))
    local.embedder.warm_up()
    t0 = time.perf_counter()
    s = local.build(folder)
    local_s = time.perf_counter() - t0
    import ray

    from rag.embedding import make_embedder
    from rag.embedding.ray_engine import RayEmbedder

    cfg = Config.load(None, {"index.path": str(tmp / "ray"), "embedding.engine": "ray"})
    probe = RayEmbedder(cfg.embedding, local.embedder.name, make_embedder)
    t0 = time.perf_counter()
    probe.warm_up()
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    probe.encode(["warm-up text"])  # actors start and load the model
    first_s = time.perf_counter() - t0
    probe.close()
    remote = RAG(cfg, embedder=local.embedder)
    t0 = time.perf_counter()
    r = remote.build(folder)
    ray_s = time.perf_counter() - t0
    assert not ray.is_initialized()
    return {
        "articles": s.articles,
        "chunks": s.chunks,
        "local_s": round(local_s, 1),
        "local_embed_s": round(s.embed_seconds, 1),
        "ray_s": round(ray_s, 1),
        "ray_embed_s": round(r.embed_seconds, 1),
        "ray_overhead_s": round(ray_s - local_s, 1),
        "ray_cluster_start_s": round(start_s, 1),
        "ray_first_batch_s": round(first_s, 1),
        "local_chunks_per_s": round(s.chunks / s.embed_seconds, 1),
        "ray_chunks_per_s": round(r.chunks / r.embed_seconds, 1),
    }


def _chunks(n: int) -> list[Chunk]:
    return [
        Chunk(
            id=f"c{i}",
            doc_id=f"d{i // 20}",
            title=f"Article {i // 20}",
            source=f"a/{i // 20}.md",
            text=f"chunk {i} about topic {i % 997}",
            start=(i % 20) * 100,
            end=(i % 20) * 100 + 90,
            date="2025-01-01",
        )
        for i in range(n)
    ]


def _latency(search, queries: np.ndarray) -> dict:
    for q in queries[:20]:
        search(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def bench_query(n: int, queries: int, tmp: Path) -> list[dict]:
    from benchmarks.run import synthetic_vectors

    from rag.store import IndexStore
    from rag.store.milvus import MilvusStore

    x = synthetic_vectors(n + queries, seed=7)
    vectors, qs = x[:n], x[n:]
    chunks = _chunks(n)
    manifest = Manifest(embedder="synthetic", dimension=384, documents=())
    rows = np.arange(n, dtype=np.int64)
    out = []
    cfg = Config.load(None, {"index.path": str(tmp / f"faiss-{n}")}).index
    t0 = time.perf_counter()
    IndexStore(cfg.path).write(vectors, chunks, manifest, rows, incremental=False)
    write_s = time.perf_counter() - t0
    index = IndexStore(cfg.path).load()
    out.append(
        {
            "n": n,
            "backend": "faiss",
            "type": index.manifest.index["built"]["type"],
            "write_s": round(write_s, 1),
            **_latency(lambda q: index.dense_search(q, 10), qs),
        }
    )
    index.close()
    cfg = Config.load(
        None,
        {
            "index.path": str(tmp / f"lock-{n}"),
            "index.backend": "milvus",
            "index.milvus.uri": str(tmp / f"milvus-{n}.db"),
        },
    ).index
    store = MilvusStore(cfg)
    t0 = time.perf_counter()
    store.write(vectors, chunks, manifest, rows, incremental=False)
    write_s = time.perf_counter() - t0
    # Queried as a reader (the UI, rag ask) sees it: opened afresh. In the writing process the
    # last writes are still in Lite's memtable and searched by brute force (measured: 230 ms p50 at 100k).
    store.close()
    store = MilvusStore(cfg)
    index = store.load()
    out.append(
        {
            "n": n,
            "backend": "milvus-lite (embedded .db)",
            "type": index.manifest.index["built"]["type"],
            "write_s": round(write_s, 1),
            **_latency(lambda q: index.dense_search(q, 10), qs),
        }
    )
    store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=Path, default=ROOT / "data" / "articles")
    ap.add_argument("--articles-limit", type=int, default=0)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    res: dict = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs (shared)",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
        tmp = Path(d)
        if not args.skip_build:
            res["build"] = {
                "articles_dir": str(args.articles),
                "articles_limit": args.articles_limit,
                **bench_build(_articles(args.articles, args.articles_limit, tmp), tmp),
            }
            print(json.dumps(res["build"]), flush=True)
        res["query"] = []
        for n in (int(s) for s in args.sizes.split(",")):
            for row in bench_query(n, args.queries, tmp):
                print(json.dumps(row), flush=True)
                res["query"].append(row)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
