"""Calibrate the answerability score of evidence-first answers (rag/answering/evidence.py).

For every question of the development sets this retrieves with the default retriever,
selects the evidence and records its features (top passage relevance, and the best
sentence's similarity, overlap, key-term and answer-type signals). It then

1. fits the logistic weights of ``rag.answering.evidence.CALIBRATION`` on the sets that have
   unanswerable questions (``--fit``), by plain gradient descent with L2 (numpy only);
2. picks the ``balanced`` threshold of ``evidence.min_answerability`` (the pipeline's one decline
   decision: the relevance threshold only chooses the wording of a decline) as the highest
   threshold that declines at most ``--max-decline`` (5%) of the answerable questions of EVERY
   set, and reports recall and precision of declining on the unanswerable questions there;
3. picks the ``cautious`` threshold (``evidence.abstention: cautious``): the one with the best
   worst-set recall on the unanswerable questions while every set with unanswerable questions
   keeps declining precision >= ``--min-precision`` (0.8); ``--loso`` also reports it leave one
   set out (threshold chosen on the other sets, measured on the one left out).

It prints the weights and the threshold to paste into rag/answering/evidence.py and
configs/default.yaml, and a table per set. Nothing is changed by the script itself.

    python -m eval.calibrate_evidence                 # all sets found
    python -m eval.calibrate_evidence --sets sample,searchbox --fit sample,searchbox
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FEATURES = ("relevance", "coverage", "similarity", "overlap", "keys", "answer_type")


def dev_sets() -> dict[str, tuple[Path, Path]]:
    """name -> (QA file, articles folder to index), for the sets present on this machine (eval/evalsets.py)."""
    from eval import evalsets

    return {
        name: (s.qa_file, s.articles_dir()) for name, s in evalsets.eval_sets(SHARED).items() if s.unavailable() is None
    }


def collect(name: str, qa: Path, articles: Path, config: str | None) -> list[dict]:
    from rag import RAG, Config
    from rag.evaluation import QueryCache, contains_answer, default_eval_index, ensure_index, load_qa, token_f1
    from rag.answering.evidence import evidence_answer

    base = Config.load(config)
    backend = {"embedding_backend": base.embedding.backend} if base.embedding.backend != "torch" else {}
    index = default_eval_index(
        articles, {"embedding": base.embedding.model, "chunking": base.to_dict()["chunking"], **backend}
    )
    rag = RAG.from_config(config, index=str(index))
    ensure_index(rag, articles, progress=True, log=lambda m: print(m, file=sys.stderr))
    items = load_qa(qa)
    cache = QueryCache(rag.embedder)
    cache.prime([it.question for it in items])
    rag.embedder = cache
    ev_cfg = rag.config.evidence
    threshold = rag.config.retrieval.min_relevance_for(embedder=cache.name)
    rows = []
    for it in items:
        passages = rag.retrieve(it.question)
        ev = rag.evidence(it.question, passages)
        text = evidence_answer(ev)
        top = max((p.relevance_or_score for p in passages), default=0.0)
        rows.append(
            {
                "set": name,
                "id": it.id,
                "answerable": it.answerable,
                **{k: ev.features.get(k, 0.0) for k in FEATURES},
                "not_covered": top < threshold,
                "f1": token_f1(text, it.answers) if it.answerable else 0.0,
                "contains": float(contains_answer(text, it.answers)) if it.answerable else 0.0,
                "question": it.question,
                "evidence": [e.text for e in ev.sentences],
                "passages": [p.chunk.text for p in passages[: ev_cfg.max_passages]],
            }
        )
    return rows


def fit(rows: list[dict], l2: float = 0.01, steps: int = 4000, lr: float = 0.5) -> dict[str, float]:
    """Logistic regression of answerable on the features (balanced classes)."""
    x = np.array([[r[k] for k in FEATURES] for r in rows], dtype=np.float64)
    y = np.array([1.0 if r["answerable"] else 0.0 for r in rows])
    w_pos, w_neg = 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9)
    sample_w = np.where(y == 1, w_pos, w_neg)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * sample_w
        w -= lr * (x.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return {"bias": round(float(b), 3), **{k: round(float(v), 3) for k, v in zip(FEATURES, w)}}


def score(row: dict, weights: dict[str, float]) -> float:
    z = weights["bias"] + sum(weights[k] * row[k] for k in FEATURES)
    return 1 / (1 + np.exp(-z))


def choose(rows: list[dict], weights: dict[str, float], max_decline: float) -> float:
    """The highest threshold declining at most ``max_decline`` of each set's answerable questions."""
    best = 0.0
    for t in np.arange(0.0, 1.0, 0.005):
        ok = True
        for name in {r["set"] for r in rows}:
            ans = [r for r in rows if r["set"] == name and r["answerable"]]
            if ans and sum(score(r, weights) < t for r in ans) / len(ans) > max_decline:
                ok = False
        if ok:
            best = float(t)
    return round(best, 3)


def _declines(rows: list[dict], weights: dict[str, float], t: float, name: str) -> tuple[float, float]:
    """(recall, precision) of declining below ``t`` on set ``name``'s unanswerable questions (precision 1 when none declined)."""
    rs = [r for r in rows if r["set"] == name]
    declined = [r for r in rs if score(r, weights) < t]
    hits = sum(not r["answerable"] for r in declined)
    unanswerable = sum(not r["answerable"] for r in rs)
    return hits / max(unanswerable, 1), (hits / len(declined) if declined else 1.0)


def choose_cautious(rows: list[dict], weights: dict[str, float], min_precision: float) -> tuple[float, float]:
    """(threshold, worst-set recall): the lowest threshold with the best worst-set recall on the
    unanswerable questions of the sets that have some, each set keeping precision >= ``min_precision``."""
    sets = sorted({r["set"] for r in rows if not r["answerable"]})
    best_t, best_recall = 0.0, 0.0
    for t in np.arange(0.0, 1.0, 0.0025):
        worst = min(r if p >= min_precision else -1.0 for r, p in (_declines(rows, weights, float(t), s) for s in sets))
        if worst > best_recall + 1e-9:
            best_t, best_recall = float(t), worst
    return round(best_t, 4), best_recall


def report(rows: list[dict], weights: dict[str, float], t: float) -> None:
    print(
        f"\n{'set':<10} {'q':>4} {'ans':>4} {'declined ans':>13} {'unans recall':>13} {'unans prec':>11} {'evidence F1':>12} {'contains':>9}"
    )
    for name in sorted({r["set"] for r in rows}):
        rs = [r for r in rows if r["set"] == name]
        ans = [r for r in rs if r["answerable"]]
        un = [r for r in rs if not r["answerable"]]
        declined = [r for r in rs if score(r, weights) < t]
        d_ans = sum(r["answerable"] for r in declined)
        recall = (len(declined) - d_ans) / len(un) if un else float("nan")
        prec = (len(declined) - d_ans) / len(declined) if declined else float("nan")
        kept = [r for r in ans if score(r, weights) >= t]
        f1 = sum(r["f1"] for r in kept) / len(ans) if ans else 0.0
        cont = sum(r["contains"] for r in kept) / len(ans) if ans else 0.0
        print(
            f"{name:<10} {len(rs):>4} {len(ans):>4} {d_ans:>6} ({d_ans / max(len(ans), 1):.3f}) {recall:>13.3f} {prec:>11.3f} {f1:>12.3f} {cont:>9.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--sets", help="comma-separated subset of: rgb-en-fact, squad, searchbox, sample, pdf (default: all found)"
    )
    parser.add_argument(
        "--fit",
        default="sample,searchbox,pdf",
        help="sets the weights are fitted on (those with unanswerable questions)",
    )
    parser.add_argument(
        "--max-decline", type=float, default=0.05, help="most answerable questions declined per set (default 0.05)"
    )
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument(
        "--min-precision",
        type=float,
        default=0.8,
        help="cautious threshold: least declining precision per set (default 0.8)",
    )
    parser.add_argument("--loso", action="store_true", help="also report the cautious threshold leave one set out")
    parser.add_argument(
        "--current", action="store_true", help="report the shipped weights and threshold instead of fitting"
    )
    parser.add_argument("--dump", help="write the per-question features to this JSONL file")
    parser.add_argument(
        "--features", metavar="FILE", help="read the per-question features from a --dump file instead of retrieving"
    )
    args = parser.parse_args(argv)
    sets = dev_sets()
    if args.sets:
        unknown = set(args.sets.split(",")) - set(sets)
        if unknown:
            parser.error(f"unknown or unavailable set(s) {sorted(unknown)}; available here: {sorted(sets)}")
        sets = {k: v for k, v in sets.items() if k in args.sets.split(",")}
    rows: list[dict] = []
    if args.features:
        rows = [
            json.loads(line) for line in Path(args.features).read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        rows = [r for r in rows if r["set"] in sets]
    for name, (qa, articles) in ({} if args.features else sets).items():
        print(f"== {name}: {qa}", file=sys.stderr)
        rows.extend(collect(name, qa, articles, args.config))
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from rag.config import EvidenceConfig
    from rag.answering.evidence import CALIBRATION

    if args.current:
        weights, t = dict(CALIBRATION), EvidenceConfig().min_answerability_for("all-MiniLM-L6-v2")
        cautious = EvidenceConfig(abstention="cautious").min_answerability_for("all-MiniLM-L6-v2")
        print(
            f"cautious threshold chosen on these questions: {choose_cautious(rows, weights, args.min_precision)[0]} (shipped: {cautious})"
        )
    else:
        fit_rows = [r for r in rows if r["set"] in args.fit.split(",")]
        if not any(not r["answerable"] for r in fit_rows):
            parser.error(f"--fit sets {args.fit!r} have no unanswerable questions here")
        weights = fit(fit_rows)
        t = choose(rows, weights, args.max_decline)
        cautious = choose_cautious(rows, weights, args.min_precision)[0]
    print(f"\nweights: {json.dumps(weights)}\nmin_answerability: balanced {t}, cautious {cautious}")
    print(f"\nbalanced (at most {args.max_decline:.0%} of each set's answerable questions declined), threshold {t}:")
    report(rows, weights, t)
    print(f"\ncautious (best worst-set recall at declining precision >= {args.min_precision}), threshold {cautious}:")
    report(rows, weights, cautious)
    if args.loso:
        print("\ncautious, leave one set out (threshold chosen on the other sets):")
        for name in sorted({r["set"] for r in rows if not r["answerable"]}):
            rest = [r for r in rows if r["set"] != name]
            t_rest = choose_cautious(rest, weights, args.min_precision)[0]
            recall, precision = _declines(rows, weights, t_rest, name)
            print(f"  {name:<10} threshold {t_rest:<7} recall {recall:.3f}  precision {precision:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
