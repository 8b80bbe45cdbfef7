"""Time retrieval of two configurations side by side on a development set's questions.

Usage:
    python -m eval.retrieval_latency --shared ../shared --sets rgb-en-fact,squad
    python -m eval.retrieval_latency --a retrieval.number_match_weight=0,retrieval.date_match_weight=0 --b ""

Each set's cached eval index (built by ``eval/run_all.py``) is opened once per variant; every
question is retrieved with variant A then B (alternating, so drift hits both alike), each
through the public ``RAG.retrieve`` with the real embedder, ``--repeats`` times. Prints the
median and 95th percentile per variant and the ratio B / A. The default A is the hybrid
without match bonuses, B the configured default.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from eval.evalsets import DEFAULT_SHARED, eval_sets
from eval.run_all import config_path, index_key


def parse_overrides(spec: str) -> dict[str, str]:
    """``"a.b=1,c.d=x"`` -> ``{"a.b": "1", "c.d": "x"}`` (empty: no overrides)."""
    return dict(part.split("=", 1) for part in spec.split(",") if part)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="rgb-en-fact")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--config", metavar="FILE")
    ap.add_argument(
        "--a",
        default="retrieval.number_match_weight=0,retrieval.date_match_weight=0",
        help="variant A's config overrides",
    )
    ap.add_argument("--b", default="", help="variant B's config overrides")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from rag import RAG, Config
    from rag.evaluation import default_eval_index, load_qa

    cfg = config_path(args.config)
    embedder = RAG.from_config(cfg).embedder
    sets = eval_sets(args.shared)
    print("| set | questions | A median ms | A p95 ms | B median ms | B p95 ms | B / A (median) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        questions = [it.question for it in load_qa(sets[name].qa_file)]
        index = default_eval_index(sets[name].articles_dir(), index_key(Config.load(cfg)))
        rags = [
            RAG.from_config(cfg, index=index, overrides=parse_overrides(spec), embedder=embedder)
            for spec in (args.a, args.b)
        ]
        for rag in rags:
            rag.retrieve(questions[0])  # load the index, BM25 and the SQLite connection before timing
        times: list[list[float]] = [[], []]
        for _ in range(args.repeats):
            for q in questions:
                for i, rag in enumerate(rags):
                    t0 = time.perf_counter()
                    rag.retrieve(q)
                    times[i].append(time.perf_counter() - t0)
        a, b = (np.array(t) * 1000 for t in times)
        print(
            f"| {name} | {len(questions)} | {np.median(a):.1f} | {np.percentile(a, 95):.1f} | {np.median(b):.1f} | {np.percentile(b, 95):.1f} "
            f"| {np.median(b) / np.median(a):.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
