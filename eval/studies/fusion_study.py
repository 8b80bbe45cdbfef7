"""Measure fusion variants of dense + BM25 retrieval on every development set, side by side.

Usage:
    python -m eval.studies.fusion_study                    # every set, the table of every variant
    python -m eval.studies.fusion_study --sets rgb-en-fact,squad --json

Each set's cached eval index (built by ``eval/run_all.py`` or ``rag eval``) is searched once
per question, dense and BM25, 50 candidates each; every variant then re-ranks those same
candidates, so the variants differ only in how they fuse. Scores follow ``rag eval``: hit@1,
hit@5 and MRR@10 over the source files of the first 10 passages (after MMR de-duplication
with the configured lambda where a variant says ``+mmr``). This is how the default fusion
(``retrieval.fusion``) was chosen; README "Quality" lists every variant, losers included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from eval.evalsets import DEFAULT_SHARED, eval_sets
from rag.retrieval.fusion import convex_score_fusion, mmr_order, reciprocal_rank_fusion, rescaled
from eval.run_all import config_path, index_key

DEPTH = 50


@dataclass
class Candidates:
    """One question's dense and BM25 candidates (rows with scores) and what the metrics need."""

    dense: list[tuple[int, float]]
    bm25: list[tuple[int, float, float]]  # row, raw BM25, relevance (BM25 / max attainable)
    gold: list[str]


def collect(name: str, eval_set, cfg: str | None, embedder) -> tuple[list[Candidates], object]:
    from rag import RAG, Config
    from rag.evaluation import default_eval_index, load_qa

    items = [it for it in load_qa(eval_set.qa_file) if it.answerable]
    articles = eval_set.articles_dir()
    index_path = default_eval_index(articles, index_key(Config.load(cfg)))
    rag = RAG.from_config(cfg, index=index_path, embedder=embedder)
    index = rag.index()
    vectors = embedder.encode([it.question for it in items])
    out = []
    for it, v in zip(items, vectors):
        dense = [(h.row, h.score) for h in index.dense_search(v, DEPTH)]
        bm25 = [(h.row, h.score, h.relevance) for h in index.bm25_retrieval(it.question, None, DEPTH)]
        out.append(Candidates(dense, bm25, list(it.sources)))
    return out, index


def minmax(scores: dict[int, float]) -> dict[int, float]:
    """``scores`` min-max normalised by row, as the library normalises them (:func:`rag.retrieval.fusion.rescaled`)."""
    return dict(zip(scores, rescaled(list(scores.values())).tolist()))


def zscore(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    v = np.array(list(scores.values()))
    mu, sd = float(v.mean()), float(v.std()) or 1.0
    lo, hi = mu - 3 * sd, mu + 3 * sd
    return {r: (s - lo) / (hi - lo) for r, s in scores.items()}


def rrf(c: Candidates, w_bm25: float, k: int = 60) -> dict[int, float]:
    """The library's weighted RRF (:func:`rag.retrieval.fusion.reciprocal_rank_fusion`), by row in first-appearance order."""
    return dict(reciprocal_rank_fusion([[r for r, _ in c.dense], [x[0] for x in c.bm25]], [1.0, w_bm25], k))


def convex(
    c: Candidates, alpha: float, norm: Callable[[dict[int, float]], dict[int, float]], bm25_key: int = 1
) -> dict[int, float]:
    """Convex fusion with another normalisation than the library's min-max (``zscore``)."""
    d = norm(dict(c.dense))
    b = norm({x[0]: x[bm25_key] for x in c.bm25})
    return {r: alpha * d.get(r, 0.0) + (1 - alpha) * b.get(r, 0.0) for r in set(d) | set(b)}


def library_convex(c: Candidates, alpha: float) -> dict[int, float]:
    """The library's convex fusion (:func:`rag.retrieval.fusion.convex_score_fusion`, min-max), by row.

    Rows are listed in the order the study always used (a set of the dense and BM25 rows), so
    exact ties rank as before.
    """
    fused = dict(convex_score_fusion(c.dense, [(x[0], x[1]) for x in c.bm25], alpha))
    return {r: fused[r] for r in set(dict(c.dense)) | {x[0] for x in c.bm25}}


def raw_convex(c: Candidates, alpha: float) -> dict[int, float]:
    """Cosine and BM25 relevance are both question-independent scales: mix them directly."""
    d = dict(c.dense)
    b = {x[0]: x[2] for x in c.bm25}
    return {r: alpha * d.get(r, 0.0) + (1 - alpha) * b.get(r, 0.0) for r in set(d) | set(b)}


def article_boost(scores: dict[int, float], doc_of: Sequence[str], beta: float) -> dict[int, float]:
    """Each chunk's score plus ``beta`` times the mean of its article's other top-3 chunk scores."""
    by_doc: dict[str, list[float]] = {}
    for r, s in scores.items():
        by_doc.setdefault(doc_of[r], []).append(s)
    for v in by_doc.values():
        v.sort(reverse=True)
    out = {}
    for r, s in scores.items():
        others = list(by_doc[doc_of[r]])
        others.remove(s)
        out[r] = s + beta * (sum(others[:3]) / 3.0)
    return out


def metrics(
    ranked_rows: Sequence[int], sources: Sequence[str] | Mapping[int, str], gold: Sequence[str]
) -> tuple[float, float, float]:
    from rag.evaluation.qa import retrieval_metrics

    m = retrieval_metrics([sources[r] for r in ranked_rows[:10]], gold)
    return m["hit@1"], m["hit@5"], m["mrr@10"]


def mmr(
    rows: list[int], rel: dict[int, float], vectors: Callable[[list[int]], np.ndarray], lam: float, k: int = 10
) -> list[int]:
    """:func:`mmr_rows` with relevance by row and the vectors read only when there is a choice."""
    if len(rows) <= 1:
        return rows
    return mmr_rows(rows, np.array([rel[x] for x in rows]), vectors(rows), lam, k)


def mmr_rows(rows: list[int], rel: np.ndarray, vecs: np.ndarray, lam: float, k: int = 10) -> list[int]:
    """Maximal marginal relevance over ``rows`` (relevance ``rel`` and vectors ``vecs`` in their order): the retrievers' own
    :func:`rag.retrieval.fusion.mmr_order`."""
    if len(rows) <= 1:
        return rows
    return [rows[i] for i in mmr_order(rel, vecs, lam, k)]


def variants() -> dict[str, Callable[[Candidates], dict[int, float]]]:
    v: dict[str, Callable[[Candidates], dict[int, float]]] = {
        "dense": lambda c: dict(c.dense),
        "bm25": lambda c: {x[0]: x[1] for x in c.bm25},
    }
    for w in (0.3, 0.5, 0.7, 1.0):
        v[f"rrf w={w}"] = lambda c, w=w: rrf(c, w)
    for a in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        v[f"minmax a={a}"] = lambda c, a=a: library_convex(c, a)
        v[f"zscore a={a}"] = lambda c, a=a: convex(c, a, zscore)
        v[f"cos+rel a={a}"] = lambda c, a=a: raw_convex(c, a)
    return v


def study(cands: list[Candidates], index, lam: float, betas: Sequence[float]) -> dict[str, tuple[float, float, float]]:
    table = index.chunk_table()
    doc_of = dict(zip(table.rows.tolist(), table.doc_ids))
    sources = dict(zip(table.rows.tolist(), table.sources))
    results: dict[str, list[tuple[float, float, float]]] = {}
    for name, fuse in variants().items():
        for beta in betas:
            for use_mmr in (False, True):
                label = name + (f" +article b={beta}" if beta else "") + (" +mmr" if use_mmr else "")
                rows_out = []
                for c in cands:
                    s = fuse(c)
                    if beta:
                        s = article_boost(s, doc_of, beta)
                    ranked = sorted(s, key=lambda r: -s[r])[:DEPTH]
                    if use_mmr:
                        # MMR's relevance: the fused score rescaled to [0, 1] within the question.
                        rel = minmax({r: s[r] for r in ranked})
                        ranked = mmr(ranked, rel, index.vectors, lam)
                    rows_out.append(metrics(ranked, sources, c.gold))
                results[label] = rows_out
    return {k: tuple(float(np.mean([r[i] for r in v])) for i in range(3)) for k, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", help="comma-separated sets (default: all)")
    ap.add_argument("--config", metavar="FILE")
    ap.add_argument("--mmr-lambda", type=float, default=0.9)
    ap.add_argument("--betas", default="0,0.05,0.1,0.2,0.3", help="article-aggregation weights to try (0: none)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from rag import RAG

    sets = eval_sets(DEFAULT_SHARED)
    chosen = [s for s in (args.sets.split(",") if args.sets else sets) if sets[s].unavailable() is None]
    cfg = config_path(args.config)
    embedder = RAG.from_config(cfg).embedder
    betas = [float(b) for b in args.betas.split(",")]
    all_results = {}
    for name in chosen:
        cands, index = collect(name, sets[name], cfg, embedder)
        all_results[name] = study(cands, index, args.mmr_lambda, betas)
        print(f"{name}: {len(cands)} answerable questions", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(all_results, indent=1))
        return 0
    print_variant_table(all_results, chosen)
    return 0


def print_variant_table(results: dict[str, dict[str, tuple[float, float, float]]], chosen: list[str]) -> None:
    """One Markdown row per variant: (hit@1, hit@5, MRR@10) per set, and the worst gaps to the ``dense`` variant."""
    labels = list(next(iter(results.values())))
    print(
        "| variant | "
        + " | ".join(f"{s} h@1 / h@5 / MRR" for s in chosen)
        + " | min Δh@1 vs dense | min ΔMRR vs dense | sets +0.02 h@1 |"
    )
    print("|---|" + "---|" * (len(chosen) + 3))
    for label in labels:
        cells = [results[s][label] for s in chosen]
        dh = [results[s][label][0] - results[s]["dense"][0] for s in chosen]
        dm = [results[s][label][2] - results[s]["dense"][2] for s in chosen]
        print(
            f"| {label} | "
            + " | ".join(f"{a:.3f} / {b:.3f} / {c:.3f}" for a, b, c in cells)
            + f" | {min(dh):+.3f} | {min(dm):+.3f} | {sum(d >= 0.02 - 1e-9 for d in dh)} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
