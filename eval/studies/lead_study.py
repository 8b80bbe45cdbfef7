"""The evidence lead without a generator: which sentence leads, and does it hold the answer?

For every set, retrieve as the pipeline does and choose the evidence as it does (:meth:`rag.RAG.evidence`) with
each variant of the sentence weights; print, over the answerable questions, how often the
first evidence sentence (the lead when no draft is accepted) contains a gold answer, its token
F1, the F1 of the marked answer phrase, and how often the whole evidence does. Also prints the
top passage relevance of every question (``--relevance FILE`` writes them), which the relevance
floor is calibrated on.

Usage:
    python -m eval.studies.lead_study                       # every set, the default weights and the variants below
    python -m eval.studies.lead_study --sets sample,pdf --variants default,no-gives
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from eval.evalsets import DEFAULT_SHARED, eval_sets  # noqa: E402
from eval.run_all import config_path, index_key  # noqa: E402

# Changes to SENTENCE_WEIGHTS. Before 2026-12-07 (afternoon) the default was overlap 0.5, keys 0.3 and no
# idf_overlap: "overlap-0.5-keys-0.3" below; the idf variants were measured against it.
VARIANTS = {
    "default": {},
    "overlap-0.5-keys-0.3": {"overlap": 0.5, "idf_overlap": 0.0, "keys": 0.3},
    "no-gives-no-fragment": {"gives": 0.0, "fragment": 0.0},
    "no-fragment": {"fragment": 0.0},
    "no-gives": {"gives": 0.0},
    "gives-0.6": {"gives": 0.6},
    "fragment-0.6": {"fragment": -0.6},
    "gives-0.6-fragment-0.6": {"gives": 0.6, "fragment": -0.6},
    # the share of the question's idf (the index's BM25 statistics) the sentence holds
    "idf-0.3": {"idf_overlap": 0.3, "overlap": 0.5, "keys": 0.3},
    "idf-0.5": {"idf_overlap": 0.5, "overlap": 0.5, "keys": 0.3},
    "idf-0.5-no-overlap": {"idf_overlap": 0.5, "overlap": 0.0, "keys": 0.3},
    "idf-1.0-no-overlap": {"idf_overlap": 1.0, "overlap": 0.0, "keys": 0.3},
    "idf-1.0": {"idf_overlap": 1.0, "overlap": 0.5, "keys": 0.3},
    "idf-0.75-no-overlap": {"idf_overlap": 0.75, "overlap": 0.0, "keys": 0.3},
    "idf-1.5-no-overlap": {"idf_overlap": 1.5, "overlap": 0.0, "keys": 0.3},
    "idf-1.0-overlap-0.25": {"idf_overlap": 1.0, "overlap": 0.25, "keys": 0.3},
    "idf-1.0-no-overlap-no-keys": {"idf_overlap": 1.0, "overlap": 0.0, "keys": 0.0},
    "idf-1.0-no-overlap-keys-0.15": {"idf_overlap": 1.0, "overlap": 0.0, "keys": 0.15},
    "idf-0.75-no-overlap-keys-0.15": {"idf_overlap": 0.75, "overlap": 0.0, "keys": 0.15},
    "idf-1.0-no-overlap-rank-0.2": {"idf_overlap": 1.0, "overlap": 0.0, "rank": 0.2, "keys": 0.3},
    "idf-1.0-no-overlap-gives-0.45": {"idf_overlap": 1.0, "overlap": 0.0, "gives": 0.45, "keys": 0.3},
    "idf-1.25-no-overlap-no-keys": {"idf_overlap": 1.25, "overlap": 0.0, "keys": 0.0},
    # sentences from more of the retrieved passages (evidence.max_passages; the default is 3 of top_k 4)
    "passages-2": {"max_passages": 2},
    "passages-4": {"max_passages": 4},
}


class _LastCall:
    """The embedder, remembering its last call: every variant encodes the same question and sentences."""

    def __init__(self, embedder) -> None:
        self.inner, self.name = embedder, embedder.name
        self._key, self._vectors = None, None

    def encode(self, texts, show_progress: bool = False):
        key = tuple(texts)
        if key != self._key:
            self._key, self._vectors = key, self.inner.encode(texts, show_progress=show_progress)
        return self._vectors

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def study_set(eval_set, variants: dict[str, dict[str, float]], cfg: str | None, embedder, limit: int | None):
    from rag import RAG, Config
    from rag.answering.asked import answer_phrase
    from rag.evaluation import QueryCache, default_eval_index, ensure_index, load_qa
    from rag.answering.evidence import SENTENCE_WEIGHTS
    from rag.evaluation.qa import contains_answer, token_f1

    items = load_qa(eval_set.qa_file)[:limit]
    articles = eval_set.articles_dir()
    rag = RAG.from_config(cfg, index=default_eval_index(articles, index_key(Config.load(cfg))), embedder=embedder)
    ensure_index(rag, articles, progress=False, log=lambda m: print(m, file=sys.stderr))
    cached = QueryCache(embedder)
    cached.prime([it.question for it in items])
    rag = RAG.from_config(cfg, index=rag.store.root, embedder=_LastCall(cached))
    rows = {
        name: {"lead_contains": 0.0, "lead_f1": 0.0, "phrase_f1": 0.0, "phrase_contains": 0.0, "whole_contains": 0.0}
        for name in variants
    }
    relevance = []
    answerable = 0
    for item in items:
        passages = rag.retrieve(item.question)
        top = max((p.relevance_or_score for p in passages), default=0.0)
        relevance.append(
            {"set": eval_set.name, "id": item.id, "answerable": item.answerable, "top_relevance": round(top, 4)}
        )
        if not item.answerable:
            continue
        answerable += 1
        term_weights = rag.term_weights(item.question)
        for name, change in variants.items():
            weights = {k: v for k, v in change.items() if k != "max_passages"}
            ev = rag.evidence(
                item.question,
                passages,
                weights={**SENTENCE_WEIGHTS, **weights},
                term_weights=term_weights,
                max_passages=change.get("max_passages"),
            )
            if not ev.sentences:
                continue
            lead = ev.sentences[0].text
            span = answer_phrase(lead, item.question)
            phrase = lead[span[0] : span[1]] if span else lead
            r = rows[name]
            r["lead_contains"] += contains_answer(lead, item.answers)
            r["lead_f1"] += token_f1(lead, item.answers)
            r["phrase_f1"] += token_f1(phrase, item.answers)
            r["phrase_contains"] += contains_answer(phrase, item.answers)
            r["whole_contains"] += contains_answer(" ".join(e.text for e in ev.sentences), item.answers)
    for r in rows.values():
        for k in r:
            r[k] = r[k] / answerable if answerable else 0.0
    return rows, relevance


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", help="comma-separated sets (default: all)")
    ap.add_argument("--variants", help=f"comma-separated variants (default: all): {', '.join(VARIANTS)}")
    ap.add_argument("--config", help="YAML config (default: configs/default.yaml)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--relevance", type=Path, help="write every question's top relevance here (JSONL)")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    args = ap.parse_args(argv)
    from rag import RAG

    sets = eval_sets(args.shared)
    chosen = [s for s in (args.sets or ",".join(sets)).split(",") if s]
    names = [v for v in (args.variants or ",".join(VARIANTS)).split(",") if v]
    variants = {n: VARIANTS[n] for n in names}
    cfg = config_path(args.config)
    embedder = RAG.from_config(cfg).embedder
    print("| set | variant | lead contains | lead F1 | phrase contains | phrase F1 | whole evidence contains |")
    print("|---|---|---|---|---|---|---|")
    all_relevance = []
    for name in chosen:
        if sets[name].unavailable():
            print(f"skipping {name}: {sets[name].unavailable()}", file=sys.stderr)
            continue
        rows, relevance = study_set(sets[name], variants, cfg, embedder, args.limit)
        all_relevance += relevance
        for variant, r in rows.items():
            print(
                f"| {name} | {variant} | {r['lead_contains']:.3f} | {r['lead_f1']:.3f} | {r['phrase_contains']:.3f} | "
                f"{r['phrase_f1']:.3f} | {r['whole_contains']:.3f} |",
                flush=True,
            )
    if args.relevance:
        args.relevance.write_text("".join(json.dumps(r) + "\n" for r in all_relevance), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
