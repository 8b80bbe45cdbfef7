"""Signals and fits tried for the answerability score, losers included (README "Quality", Abstention).

Usage:
    python -m eval.calibrate_evidence --current --dump /tmp/feats.jsonl   # the features, once (~2 min)
    python -m eval.studies.answerability_study /tmp/feats.jsonl                   # this study
    python -m eval.studies.answerability_study /tmp/feats.jsonl --no-llm          # without the SmolLM2 judge (~2 min less)

It reads the per-question features that ``eval/calibrate_evidence.py --dump`` writes (the
default retriever's passages and the selected evidence of every development set) and reports,
for the sets with unanswerable questions (sample, searchbox, pdf):

1. the ROC AUC of each shipped feature (``rag.answering.evidence.CALIBRATION``) and of two new signals:
   - ``soft_sentence`` / ``soft_passages``: MiniLM word-to-word soft coverage, the mean over the
     question's content words of their best cosine to a word of the best evidence sentence (of
     the top passages), so "grown-ups" can match "adults";
   - ``llm_judge``: SmolLM2-135M (the packaged GGUF, llama.cpp) asked whether the evidence
     answers the question, as the log-odds of "Yes" against "No" for its first token;
2. the shipped score and logistic refits (pooled or balanced per set, with L2 0 to 0.01, with
   and without the soft signals) at two operating points: ``balanced`` (the highest threshold
   declining at most 5% of every set's answerable questions) and ``cautious`` (the best
   worst-set recall at declining precision >= 0.8), in-sample and leave one set out.

Every figure is tuned on these sets: there is no held-out set here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from rag.answering.evidence import CALIBRATION, stem
from rag.answering.terms import GENERIC_WORDS
from rag.text import content_words

UNANSWERABLE_SETS = ("sample", "searchbox", "pdf")


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a positive scores above a negative), ties half."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def add_soft_coverage(rows: list[dict]) -> None:
    from rag import Config
    from rag.embedding import make_embedder

    embedder = make_embedder(Config.load(None).embedding)
    vocab: set[str] = set()
    for r in rows:
        vocab |= content_words(r["question"]) | {w for p in r["passages"] for w in content_words(p)}
    words = sorted(vocab)
    vectors = np.asarray(embedder.encode(words), dtype=np.float32)
    index = {w: i for i, w in enumerate(words)}
    for r in rows:
        asked = [w for w in content_words(r["question"]) if stem(w) not in GENERIC_WORDS] or sorted(
            content_words(r["question"])
        )
        q = vectors[[index[w] for w in asked]] if asked else None
        r["soft_sentence"] = _soft(q, r["evidence"][0], vectors, index) if r["evidence"] else 0.0
        r["soft_passages"] = _soft(q, " ".join(r["passages"]), vectors, index)


def _soft(q: np.ndarray | None, text: str, vectors: np.ndarray, index: dict[str, int]) -> float:
    """Mean over the question's word vectors ``q`` of their best cosine to a word of ``text``."""
    ws = [index[w] for w in content_words(text)]
    return float((q @ vectors[ws].T).max(axis=1).mean()) if q is not None and ws else 0.0


def add_llm_judge(rows: list[dict]) -> None:
    from llama_cpp import Llama

    from rag.generation.gguf import prepared_gguf

    llm = Llama(model_path=str(prepared_gguf("smollm2")), n_ctx=1024, logits_all=True, verbose=False, n_threads=2)

    def first(text: str) -> int:
        return llm.tokenize(text.encode(), add_bos=False, special=True)[0]

    yes, no = [first(w) for w in ("Yes", " Yes", "yes")], [first(w) for w in ("No", " No", "no")]
    for r in rows:
        prompt = (
            "<|im_start|>system\nYou check whether a text answers a question. Reply Yes or No.<|im_end|>\n"
            f"<|im_start|>user\nText: {' '.join(r['evidence'][:2])}\n\nQuestion: {r['question']}\n\n"
            "Does the text contain the answer to the question?<|im_end|>\n<|im_start|>assistant\n"
        )
        llm.reset()
        llm.eval(llm.tokenize(prompt.encode(), add_bos=False, special=True)[-900:])
        logits = np.asarray(llm.scores[llm.n_tokens - 1])
        r["llm_judge"] = float(np.logaddexp.reduce(logits[yes]) - np.logaddexp.reduce(logits[no]))


def fit(rows: list[dict], features: tuple[str, ...], l2: float, per_set: bool) -> dict[str, float]:
    """Logistic regression of answerable; classes balanced over all rows, or within each set."""
    x = np.array([[r[k] for k in features] for r in rows])
    y = np.array([1.0 if r["answerable"] else 0.0 for r in rows])
    if per_set:
        names = sorted({r["set"] for r in rows})
        w_row = np.ones(len(rows))
        for name in names:
            in_set = np.array([r["set"] == name for r in rows])
            for label in (0.0, 1.0):
                mask = in_set & (y == label)
                w_row[mask] = len(rows) / (2 * len(names) * max(mask.sum(), 1))
    else:
        w_row = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(8000):
        g = (1 / (1 + np.exp(-(x @ w + b))) - y) * w_row
        w -= 0.5 * (x.T @ g / len(y) + l2 * w)
        b -= 0.5 * g.mean()
    return {"bias": float(b), **{k: float(v) for k, v in zip(features, w)}}


class Points:
    """Scores of every question under one set of weights, with the two operating points (vectorised)."""

    def __init__(self, rows: list[dict], weights: dict[str, float]) -> None:
        names = [k for k in weights if k != "bias"]
        z = weights["bias"] + np.array([[r[k] for k in names] for r in rows]) @ np.array([weights[k] for k in names])
        self.score = 1 / (1 + np.exp(-z))
        self.sets = np.array([r["set"] for r in rows])
        self.unanswerable = np.array([not r["answerable"] for r in rows])

    def declines(self, t: float, name: str) -> tuple[float, float, float]:
        """(recall, precision, share of answerable declined) on set ``name`` below threshold ``t``."""
        in_set = self.sets == name
        declined = in_set & (self.score < t)
        hits = (declined & self.unanswerable).sum()
        answerable = (in_set & ~self.unanswerable).sum()
        return (
            hits / max((in_set & self.unanswerable).sum(), 1),
            hits / declined.sum() if declined.sum() else 1.0,
            (declined & ~self.unanswerable).sum() / max(answerable, 1),
        )

    def balanced(self, max_decline: float = 0.05) -> float:
        ok = [
            t for t in np.arange(0.0, 1.0, 0.0025) if all(self.declines(t, s)[2] <= max_decline for s in set(self.sets))
        ]
        return float(max(ok)) if ok else 0.0

    def cautious(self, sets: tuple[str, ...], min_precision: float = 0.8) -> tuple[float, float]:
        best = (0.0, 0.0)
        for t in np.arange(0.0, 1.0, 0.0025):
            worst = min(r if p >= min_precision else -1.0 for r, p, _ in (self.declines(t, s) for s in sets))
            if worst > best[1] + 1e-9:
                best = (float(t), worst)
        return best


def operating_points(
    rows: list[dict], weights: dict[str, float], refit: Callable[[list[dict]], dict[str, float]] | None
) -> str:
    """balanced and cautious thresholds in-sample, and cautious leave one set out."""
    pts = Points(rows, weights)
    t_bal = pts.balanced()
    t_cau, worst = pts.cautious(UNANSWERABLE_SETS)
    bal = " ".join(f"{s[:6]} {pts.declines(t_bal, s)[0]:.2f}" for s in UNANSWERABLE_SETS)
    cau = " ".join("{} {:.2f}/{:.2f}".format(s[:6], *pts.declines(t_cau, s)[:2]) for s in UNANSWERABLE_SETS)
    loso = []
    for held in UNANSWERABLE_SETS:
        w = refit([r for r in rows if r["set"] in UNANSWERABLE_SETS and r["set"] != held]) if refit else weights
        held_pts = Points(rows, w)
        t = held_pts.cautious(tuple(s for s in UNANSWERABLE_SETS if s != held))[0]
        loso.append("{} {:.2f}/{:.2f}".format(held[:6], *held_pts.declines(t, held)[:2]))
    return (
        f"balanced t={t_bal:.3f} recall {bal} | cautious t={t_cau:.3f} worst {worst:.2f}, recall/precision {cau}, "
        f"squad declined {pts.declines(t_cau, 'squad')[2]:.0%} | cautious LOSO {' '.join(loso)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("features", help="a JSONL file written by eval/calibrate_evidence.py --dump")
    parser.add_argument("--no-llm", action="store_true", help="skip the SmolLM2 judge")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.features).read_text(encoding="utf-8").splitlines() if line.strip()]
    add_soft_coverage(rows)
    signals = [k for k in CALIBRATION if k != "bias"] + ["soft_sentence", "soft_passages"]
    if not args.no_llm:
        add_llm_judge(rows)
        signals.append("llm_judge")
    print("ROC AUC, answerable above unanswerable (0.5 = no signal):")
    for name in UNANSWERABLE_SETS:
        rs = [r for r in rows if r["set"] == name]
        print(
            f"  {name:<10} "
            + "  ".join(
                f"{k} {auc([r[k] for r in rs if r['answerable']], [r[k] for r in rs if not r['answerable']]):.2f}"
                for k in signals
            )
        )
    shipped = tuple(k for k in CALIBRATION if k != "bias")
    print("\nOperating points (recall on unanswerable questions; cautious: recall/precision):")
    print(f"  shipped weights: {operating_points(rows, dict(CALIBRATION), None)}")
    fit_rows = [r for r in rows if r["set"] in UNANSWERABLE_SETS]
    for features in (shipped, (*shipped, "soft_sentence", "soft_passages")):
        for per_set in (False, True):
            for l2 in (0.0, 0.001, 0.01):

                def refit(rs: list[dict], f=features, p=per_set, l=l2) -> dict[str, float]:
                    return fit(rs, f, l, p)

                label = (
                    f"{'per-set' if per_set else 'pooled'} L2 {l2}{' +soft' if len(features) > len(shipped) else ''}"
                )
                print(f"  {label:<22} {operating_points(rows, refit(fit_rows), refit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
