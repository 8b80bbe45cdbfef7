"""Choose the term-coverage decline: loosely related passages that lack the question's rare words.

For every question of every set, retrieve as the pipeline does and record the top passage's
relevance and :func:`rag.answering.terms.term_coverage` (the share of the question's idf the top
passages hold). Then, for each candidate rule "decline when coverage < C and top relevance < R",
print the share of each set's answerable questions it declines and the share of each set's
unanswerable ones, on top of what the relevance floor and the answerability score decline
already. The rule shipped for an embedder (``rag.config.CALIBRATED_TERM_COVERAGE``) is the one
that declines most of the worst off-topic set while declining at most ``--max-answerable`` of
every set's answerable questions (2.5%: half the 5% budget, leaving room for sets not measured here).

Usage:
    python -m eval.studies.coverage_study --features /tmp/coverage.jsonl            # measure every set, then choose
    python -m eval.studies.coverage_study --features /tmp/coverage.jsonl --reuse    # choose again from the file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from eval.evalsets import DEFAULT_SHARED, eval_sets  # noqa: E402
from eval.run_all import config_path, index_key  # noqa: E402

COVERAGES = (0.2, 0.3, 0.4, 0.5, 0.6)
RELEVANCES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def measure_set(eval_set, cfg: str | None) -> list[dict]:
    """One row per question: set, answerable, top relevance, term coverage, and whether today's rules decline it."""
    from rag import RAG, Config
    from rag.evaluation import default_eval_index, ensure_index, load_qa
    from rag.answering.terms import term_coverage

    items = load_qa(eval_set.qa_file)
    articles = eval_set.articles_dir()
    rag = RAG.from_config(cfg, index=default_eval_index(articles, index_key(Config.load(cfg))))
    ensure_index(rag, articles, progress=False, log=lambda m: print(m, file=sys.stderr))
    ev_cfg, floor = rag.config.evidence, rag.relevance_threshold()[0]
    min_answerability = ev_cfg.min_answerability_for(rag.embedder.name)
    rows = []
    for item in items:
        passages = rag.retrieve(item.question)
        top = max((p.relevance_or_score for p in passages), default=0.0)
        term_weights = rag.term_weights(item.question)
        ev = rag.evidence(item.question, passages, term_weights=term_weights)
        coverage = term_coverage(term_weights, passages[: ev_cfg.max_passages])
        declined = not passages or not ev.sentences or ev.answerability < min_answerability or top < floor
        rows.append(
            {
                "set": eval_set.name,
                "id": item.id,
                "answerable": item.answerable,
                "top_relevance": round(top, 4),
                "term_coverage": round(coverage, 4),
                "declined_before": declined,
            }
        )
    return rows


def table(rows: list[dict], max_answerable: float) -> tuple[str, tuple[float, float] | None]:
    """The Markdown table of every candidate rule and the chosen one (None: none keeps every set within ``max_answerable``)."""
    by_set: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_set[r["set"]].append(r)
    answerable = sorted(s for s, rs in by_set.items() if any(r["answerable"] for r in rs))
    unanswerable = sorted(s for s, rs in by_set.items() if any(not r["answerable"] for r in rs))

    def shares(cov: float, rel: float) -> tuple[list[float], list[float]]:
        def declined(r: dict) -> bool:
            return r["declined_before"] or (r["term_coverage"] < cov and r["top_relevance"] < rel)

        lost = [
            sum(declined(r) for r in by_set[s] if r["answerable"]) / sum(r["answerable"] for r in by_set[s])
            for s in answerable
        ]
        caught = [
            sum(declined(r) for r in by_set[s] if not r["answerable"]) / sum(not r["answerable"] for r in by_set[s])
            for s in unanswerable
        ]
        return lost, caught

    head = (
        "| rule | "
        + " | ".join(f"{s} answerable declined" for s in answerable)
        + " | "
        + " | ".join(f"{s} unanswerable declined" for s in unanswerable)
        + " |"
    )
    lines = [head, "|" + "---|" * (1 + len(answerable) + len(unanswerable))]
    lost, caught = shares(0.0, 0.0)
    lines.append("| none (floor and answerability only) | " + " | ".join(f"{x:.3f}" for x in lost + caught) + " |")
    best, best_key = None, None
    offtopic = [i for i, s in enumerate(unanswerable) if s.startswith("offtopic")] or list(range(len(unanswerable)))
    for cov in COVERAGES:
        for rel in RELEVANCES:
            lost, caught = shares(cov, rel)
            ok = max(lost, default=0.0) <= max_answerable
            key = (min(caught[i] for i in offtopic), sum(caught), -sum(lost)) if caught else (0.0, 0.0, -sum(lost))
            if ok and (best_key is None or key > best_key):
                best, best_key = (cov, rel), key
            lines.append(
                f"| coverage < {cov:.2f} and relevance < {rel:.2f}{' (ok)' if ok else ''} | "
                + " | ".join(f"{x:.3f}" for x in lost + caught)
                + " |"
            )
    return "\n".join(lines), best


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--features", type=Path, required=True, help="JSONL of per-question figures (written, or read with --reuse)"
    )
    ap.add_argument("--reuse", action="store_true", help="read --features instead of measuring")
    ap.add_argument("--sets", help="comma-separated sets (default: all)")
    ap.add_argument("--config", help="YAML config (default: configs/default.yaml)")
    ap.add_argument(
        "--max-answerable",
        type=float,
        default=0.025,
        help="most answerable questions the rules may decline on any set (default 0.025: half the 5%% budget, "
        "a margin for question sets not measured here)",
    )
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    args = ap.parse_args(argv)
    if args.reuse:
        rows = [json.loads(line) for line in args.features.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        sets = eval_sets(args.shared)
        rows = []
        for name in [s for s in (args.sets or ",".join(sets)).split(",") if s]:
            if sets[name].unavailable():
                print(f"skipping {name}: {sets[name].unavailable()}", file=sys.stderr)
                continue
            rows += measure_set(sets[name], config_path(args.config))
            print(f"{name}: measured", file=sys.stderr)
        args.features.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    text, best = table(rows, args.max_answerable)
    print(text)
    print(
        f"\nrule declining most of the worst off-topic set with at most {args.max_answerable:.1%} of every set's answerable "
        f"questions declined: {'none' if best is None else f'coverage < {best[0]} and relevance < {best[1]}'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
