"""``rag eval``: retrieval and answer quality of the pipeline on a QA file (thin over :mod:`rag.evaluation`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

EVAL_DESCRIPTION = """\
Run every question of QA.jsonl through retrieval (and, unless --retrieval-only, the whole
pipeline) and report: hit@1/5/10 and MRR@10 over source files, answer containment and
token F1, citation precision, and abstention precision/recall on answerable:false questions.

QA.jsonl holds one object per line:
  {"id": "0", "question": "...", "answers": ["accepted answer"],
   "sources": ["file relative to --articles"], "answerable": true}

The index of --articles is built on first use (cached; see --index) and reused after.
Examples:
  rag eval eval/sample-qa.jsonl --articles data/articles --retrieval-only
  rag eval QA.jsonl --articles DIR --retriever dense,bm25,hybrid --out results.jsonl
"""


def cmd_eval(args: argparse.Namespace, _config_path: Callable[[str | None], str | None]) -> int:
    from rag import RAG, Config
    from rag.evaluation import (
        QueryCache,
        choose_threshold,
        default_eval_index,
        ensure_index,
        evaluate,
        load_qa,
        missing_sources,
        parse_variant,
    )
    from rag.retrieval import RETRIEVERS

    items = load_qa(args.qa_file)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        items = items[: args.limit]
    base = Config.load(_config_path(args.config))
    names = [n.strip() for n in (args.retriever or base.retrieval.retriever).split(",") if n.strip()]
    if not names:
        raise ValueError(
            f"--retriever {args.retriever!r} names no retriever; choose from {sorted(RETRIEVERS)} (comma-separate several)"
        )
    variants = {spec: parse_variant(spec) for spec in names}
    # The embedding backend is part of the key (vectors of two backends differ); torch keeps the old key.
    backend = {"embedding_backend": base.embedding.backend} if base.embedding.backend != "torch" else {}
    index = args.index or str(
        default_eval_index(
            args.articles, {"embedding": base.embedding.model, "chunking": base.to_dict()["chunking"], **backend}
        )
    )
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    first = RAG.from_config(_config_path(args.config), index=index)
    ensure_index(first, args.articles, rebuild=args.rebuild, progress=not args.quiet, log=log)
    missing = missing_sources(items, args.articles)
    if missing:
        print(
            f"warning: {len(missing)} gold source(s) are not files under {args.articles}: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else ""),
            file=sys.stderr,
        )
    embedder = QueryCache(first.embedder)
    if any(name != "bm25" for name, _ in variants.values()):
        embedder.prime([it.question for it in items])
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    summaries = []
    try:
        for spec, (_, overrides) in variants.items():
            # One embedder and generator for all variants: models load once.
            rag = RAG.from_config(
                _config_path(args.config),
                index=index,
                overrides=overrides,
                embedder=embedder,
                generator=first._generator if args.retrieval_only else first.generator,
            )
            write = (lambda r: out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")) if out else None
            run = evaluate(
                rag,
                items,
                retrieval_only=args.retrieval_only,
                top_k=args.top_k,
                max_new_tokens=args.max_new_tokens,
                progress=not args.quiet,
                on_result=write,
                label=spec,
            )
            summary = dict(run.summary)
            summary["qa_file"] = str(args.qa_file)
            if args.calibrate is not None:
                summary["calibration"] = choose_threshold(run.results, args.calibrate)
            summaries.append(summary)
            log(f"{spec}: done in {summary['seconds']:.1f} s")
    finally:
        if out:
            out.close()
    if args.out:
        Path(args.out + ".summary.json").write_text(
            json.dumps(summaries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
        return 0
    _print_eval(args, items, summaries)
    return 0


def _print_eval(args: argparse.Namespace, items: list, summaries: list[dict]) -> None:
    from rag.evaluation import format_table

    mode = "retrieval only; abstention = relevance threshold" if args.retrieval_only else "full pipeline"
    print(f"{args.qa_file}: {len(items)} questions ({summaries[0]['answerable']} answerable), {mode}\n")
    print(format_table(summaries))
    for s in summaries:
        if s.get("calibration"):
            c = s["calibration"]
            print(
                f"\n{s['retriever']}: suggested min_relevance_{s['settings']['retriever']}: {c['threshold']} "
                f"(declines {c['declined_answerable']}/{c['answerable']} answerable, {c['declined_unanswerable']}/{c['unanswerable']} unanswerable)"
            )
    if args.out:
        print(f"\nPer-question results: {args.out}; summaries: {args.out}.summary.json")


def add_eval_parser(
    sub: argparse._SubParsersAction, config_path: Callable[[str | None], str | None], default_config: str
) -> None:
    """Register ``rag eval`` on the ``rag`` parser."""
    from rag.retrieval import RETRIEVERS  # allowed names come from the registry, never a second list here

    p = sub.add_parser(
        "eval",
        help="measure retrieval and answer quality on a QA file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=EVAL_DESCRIPTION,
    )
    p.add_argument("qa_file", metavar="QA.jsonl", help="questions, one JSON object per line")
    p.add_argument(
        "--articles", required=True, metavar="DIR", help="the articles folder the QA sources are relative to"
    )
    p.add_argument(
        "--config", metavar="FILE", help=f"YAML config (default: {default_config} when present, else built-in defaults)"
    )
    p.add_argument(
        "--index",
        metavar="DIR",
        help="index of DIR to use or build (default: a cache folder under the temp folder, never index.path)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the index even if one exists")
    p.add_argument(
        "--retriever",
        metavar="NAMES",
        help=f"{', '.join(RETRIEVERS)}, or several comma-separated to compare; a name may carry retrieval "
        "settings: dense/dedup=none, hybrid/bm25_weight=1/rrf_k=30 (default: retrieval.retriever)",
    )
    p.add_argument(
        "--retrieval-only",
        action="store_true",
        help="skip generation: retrieval metrics and threshold abstention in seconds",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write one JSON line per question (and per retriever) here, and the summaries to FILE.summary.json",
    )
    p.add_argument("--top-k", type=int, metavar="N", help="passages given to the generator (default: retrieval.top_k)")
    p.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="answer length limit (default: generation.max_new_tokens)"
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument(
        "--calibrate",
        type=float,
        metavar="RATE",
        help="also suggest a relevance threshold per retriever that declines at most RATE (e.g. 0.05) of the answerable questions",
    )
    p.add_argument("--json", action="store_true", help="print the summaries as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=lambda args: cmd_eval(args, config_path))
