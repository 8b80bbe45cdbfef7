"""Full build throughput against the embedder's raw encode rate, measured in one run.

Usage:
    python benchmarks/bench_build.py [ARTICLES_DIR] [--limit N]

Prints the full `RAG.build` time and chunks/s, then `SentenceTransformer.encode` on exactly
the same chunk texts with the same batch size, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import RAG, Config, load_documents  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("articles", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "squad-articles"))
    ap.add_argument("--limit", type=int, default=0, help="encode only the first N chunks in the raw measurement (0 = all)")
    args = ap.parse_args()
    folder = Path(args.articles)
    if not folder.is_dir():
        print(f"articles folder {folder} not found; pass one (e.g. ../shared/corpora/squad-articles)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(Config.load(None, {"index.path": str(Path(tmp) / "index")}))
        rag.embedder.warm_up()  # model load is not part of either rate
        t0 = time.perf_counter()
        summary = rag.build(folder, show_progress=True)
        build_s = time.perf_counter() - t0

        docs = load_documents(folder).documents
        texts = [c.text for c in rag.chunker.split_all(docs)]
        if args.limit:
            texts = texts[: args.limit]
        t0 = time.perf_counter()
        rag.embedder.model.encode(texts, batch_size=rag.config.embedding.batch_size, normalize_embeddings=True, show_progress_bar=True)
        raw_s = time.perf_counter() - t0
    build_rate = summary.chunks / build_s
    raw_rate = len(texts) / raw_s
    result = {
        "articles": summary.articles,
        "chunks": summary.chunks,
        "skipped": len(summary.skipped),
        "build_seconds": round(build_s, 1),
        "build_embed_seconds": round(summary.embed_seconds, 1),
        "build_chunks_per_s": round(build_rate, 1),
        "raw_encode_chunks": len(texts),
        "raw_encode_seconds": round(raw_s, 1),
        "raw_encode_chunks_per_s": round(raw_rate, 1),
        "build_over_raw": round(build_rate / raw_rate, 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
