"""Measure lexical re-rank features over the hybrid's fused candidates, on every development set.

Usage:
    python -m eval.studies.rerank_study --shared ../shared               # every set, every variant
    python -m eval.studies.rerank_study --sets rgb-en-fact --misses      # also list the baseline's hit@5 misses

Each set's cached eval index is searched once per question (dense and BM25, 50 candidates
each) and fused as the default hybrid does (:func:`rag.retrieval.fusion.convex_score_fusion`, the
configured ``dense_share``); every variant then re-scores those same 50 candidates with a
feature of the question and the chunk text, and MMR (the configured lambda) picks the top 10,
as :class:`rag.retrieval.HybridRetriever` does; ``none`` is the hybrid without match
bonuses, ``numbers=0.3+date=0.2`` the default. Scores follow ``rag eval``: hit@1, hit@5 and
MRR@10 over the source files of the first 10 passages. The reference, ``dense``, is dense as
``--retriever dense`` runs it (cosine, the configured MMR).

Features (each in [0, 1] per candidate): ``numbers`` and ``date`` are
:func:`rag.retrieval.term_match.number_match` and :func:`rag.retrieval.term_match.date_match`; ``phrase`` the
share of the question's adjacent word pairs holding a number found adjacent in the text;
``keys`` the share of the question's names and numbers (:func:`rag.answering.evidence.key_terms`);
``content`` the share of its stemmed content words; ``-idf`` weights terms by their
inverse document frequency among the question's candidates.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from eval.evalsets import DEFAULT_SHARED, eval_sets
from eval.studies.fusion_study import DEPTH, metrics, mmr_rows, print_variant_table
from eval.run_all import config_path, index_key


@dataclass
class Question:
    text: str
    dense: list[tuple[int, float]]
    fused: list[tuple[int, float]]
    gold: list[str]


def collect(eval_set, cfg: str | None, embedder, dense_share: float):
    from rag import RAG, Config
    from rag.evaluation import default_eval_index, load_qa
    from rag.retrieval.fusion import convex_score_fusion

    items = [it for it in load_qa(eval_set.qa_file) if it.answerable]
    index_path = default_eval_index(eval_set.articles_dir(), index_key(Config.load(cfg)))
    index = RAG.from_config(cfg, index=index_path, embedder=embedder).index()
    vectors = embedder.encode([it.question for it in items])
    out = []
    for it, v in zip(items, vectors):
        dense = [(h.row, h.score) for h in index.dense_search(v, DEPTH)]
        sparse = [(h.row, h.score) for h in index.bm25_retrieval(it.question, None, DEPTH)]
        fused = convex_score_fusion(dense, sparse, dense_share)[:DEPTH]
        out.append(Question(it.question, dense, fused, list(it.sources)))
    return out, index


# -- features: question x chunk text -> [0, 1] -------------------------------------------------
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[a-z0-9]+")


def chunk_tokens(text: str, number_words: bool = True) -> set[str]:
    from rag.answering.evidence import stem
    from rag.retrieval.term_match import NUMBER_WORDS

    low = text.lower()
    words = set(_WORD.findall(low))
    extra = {NUMBER_WORDS[w] for w in words if w in NUMBER_WORDS} if number_words else set()
    return words | {stem(w) for w in words} | set(_NUM.findall(low)) | extra


def q_keys(q: str) -> set[str]:
    from rag.answering.evidence import key_terms

    out = set()
    for t in key_terms(q):
        for w in _WORD.findall(t):
            out.add(w)
    from rag.retrieval.term_match import question_numbers

    return out | question_numbers(q)


def q_content(q: str) -> set[str]:
    from rag.answering.evidence import stem
    from rag.text import content_words

    return {stem(w) for w in content_words(q)}


def share(terms: set[str], toks: set[str], weights: dict[str, float] | None = None) -> float:
    if not terms:
        return 0.0
    w = weights or {}
    total = sum(w.get(t, 1.0) for t in terms)
    return sum(w.get(t, 1.0) for t in terms if t in toks) / total if total else 0.0


def pool_idf(terms: set[str], toks_list: list[set[str]]) -> dict[str, float]:
    n = len(toks_list)
    return {t: math.log((n + 1) / (sum(t in s for s in toks_list) + 0.5)) for t in terms}


Feature = Callable[[str, list[set[str]], list[str]], np.ndarray]


def feat_numbers(q: str, toks: list[set[str]], texts: list[str]) -> np.ndarray:
    from rag.retrieval.term_match import number_match

    return np.array(number_match(q, texts))


def share_feature(terms_of: Callable[[str], set[str]], idf: bool) -> Feature:
    """The share of the question's terms (``terms_of``) each candidate holds, plain or idf-weighted."""

    def feature(q: str, toks: list[set[str]], texts: list[str]) -> np.ndarray:
        t = terms_of(q)
        w = pool_idf(t, toks) if idf else None
        return np.array([share(t, s, w) for s in toks])

    return feature


def feat_date(q: str, toks: list[set[str]], texts: list[str]) -> np.ndarray:
    from rag.retrieval.term_match import date_match

    return np.array(date_match(q, texts))


def feat_phrase(q: str, toks: list[set[str]], texts: list[str]) -> np.ndarray:
    """Share of the question's adjacent word pairs holding a number ("Q1 2021", "season 11") found adjacent in the text."""
    words = _WORD.findall(q.lower())
    pairs = [(a, b) for a, b in itertools.pairwise(words) if any(c.isdigit() for c in a + b)]
    if not pairs:
        return np.zeros(len(toks))
    out = []
    for t in texts:
        tw = _WORD.findall(t.lower())
        adj = set(itertools.pairwise(tw))
        out.append(sum(p in adj for p in pairs) / len(pairs))
    return np.array(out)


FEATURES: dict[str, Feature] = {
    "numbers": feat_numbers,
    "date": feat_date,
    "phrase": feat_phrase,
    "keys": share_feature(q_keys, False),
    "keys-idf": share_feature(q_keys, True),
    "content": share_feature(q_content, False),
    "content-idf": share_feature(q_content, True),
}


def run_variant(
    qs: list[Question],
    vectors: Callable[[list[int]], np.ndarray],
    texts: dict[int, str],
    sources: dict[int, str],
    lam: float,
    weights: dict[str, float],
) -> list[tuple[float, float, float]]:
    """Each question's metrics after adding ``sum(w * feature)`` to the fused scores, then MMR."""
    out = []
    for q in qs:
        rows = [r for r, _ in q.fused]
        score = np.array([s for _, s in q.fused])
        if any(weights.values()):
            tx = [texts[r] for r in rows]
            toks = [chunk_tokens(t) for t in tx]
            for name, w in weights.items():
                score = score + w * FEATURES[name](q.text, toks, tx)
        order = np.argsort(-score, kind="stable")
        rows = [rows[i] for i in order]
        out.append(metrics(mmr_rows(rows, score[order], vectors(rows), lam), sources, q.gold))
    return out


def parse_variant(spec: str) -> dict[str, float]:
    """``"numbers=0.3+date=0.2"`` -> ``{"numbers": 0.3, "date": 0.2}`` (``"none"``: no feature)."""
    if spec == "none":
        return {}
    out = {}
    for part in spec.split("+"):
        name, w = part.split("=")
        if name not in FEATURES:
            raise SystemExit(f"unknown feature {name!r}; choose from {sorted(FEATURES)}")
        out[name] = float(w)
    return out


# Every variant README "Quality" reports (winners and losers); --variants replaces the list.
VARIANTS = (
    ["none"]
    + [
        f"{f}={w}"
        for f in ("numbers", "date", "phrase", "keys", "keys-idf", "content", "content-idf")
        for w in (0.1, 0.2, 0.3, 0.5)
    ]
    + [f"numbers=0.3+date={w}" for w in (0.1, 0.2, 0.3)]
    + ["numbers=0.2+date=0.2", "numbers=0.4+date=0.2"]
    + [f"numbers=0.3+phrase={w}" for w in (0.1, 0.2)]
)


def mean(rs):
    return tuple(float(np.mean([r[i] for r in rs])) for i in range(3))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", help="comma-separated sets (default: all)")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--config", metavar="FILE")
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated, each feature=weight joined by + (none: today's hybrid)",
    )
    ap.add_argument("--mmr-lambda", type=float, help="default: the config's retrieval.mmr_lambda")
    ap.add_argument("--misses", action="store_true", help="list the hit@5 misses of the hybrid without bonuses")
    args = ap.parse_args(argv)
    from rag import RAG, Config

    config = Config.load(config_path(args.config))
    lam = config.retrieval.mmr_lambda if args.mmr_lambda is None else args.mmr_lambda
    sets = eval_sets(args.shared)
    chosen = [s for s in (args.sets.split(",") if args.sets else sets) if sets[s].unavailable() is None]
    cfg = config_path(args.config)
    embedder = RAG.from_config(cfg).embedder
    variants = {spec: parse_variant(spec) for spec in args.variants.split(",")}
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name in chosen:
        qs, index = collect(sets[name], cfg, embedder, config.retrieval.dense_share)
        rows = sorted({r for q in qs for r, _ in q.fused} | {r for q in qs for r, _ in q.dense})
        sources = dict(zip(index.chunk_table().rows.tolist(), index.chunk_table().sources))
        texts = {r: c.text for r, c in index.chunks_by_rows(rows).items()}
        res: dict[str, tuple[float, float, float]] = {}
        # The reference: dense as `--retriever dense` runs it (the config's MMR over cosine).
        res["dense"] = mean(
            [
                metrics(
                    mmr_rows(
                        [r for r, _ in q.dense],
                        np.array([c for _, c in q.dense]),
                        index.vectors([r for r, _ in q.dense]),
                        lam,
                    ),
                    sources,
                    q.gold,
                )
                for q in qs
            ]
        )
        for spec, weights in variants.items():
            per_q = run_variant(qs, index.vectors, texts, sources, lam, weights)
            res[spec] = mean(per_q)
            if args.misses and spec == "none":
                for q, m in zip(qs, per_q):
                    if m[1] < 1:
                        print(f"miss: {q.text} | gold {q.gold}", file=sys.stderr)
        results[name] = res
        print(f"{name}: {len(qs)} answerable questions", file=sys.stderr, flush=True)
    print_variant_table(results, chosen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
