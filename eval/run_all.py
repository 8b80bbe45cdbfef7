"""Run every development set through ``rag eval``'s code and print one summary table.

Usage:
    python -m eval.run_all --retrieval-only                  # retrieval metrics of every set, minutes
    python -m eval.run_all --sets sample,pdf --limit 3       # quick full-pipeline smoke run
    python -m eval.run_all --retriever dense/dedup=none,hybrid --out results/

Sets (eval/evalsets.py): rgb-en-fact (from ../shared; skipped with the reason when it is
absent), squad and searchbox (subsets of ../shared/corpora/squad-articles, indexed through a
folder of copies), sample (data/articles) and pdf (eval/pdfs/articles). Each set's index is
built on first use and cached under the temp folder, keyed like ``rag eval``'s, and the
models load once for all sets.

The table has one row per set and retriever variant: hit@1, hit@5, MRR@10 (over source
files), token F1 and answer containment (with generation), abstention precision and recall
(with ``--retrieval-only``, of the relevance threshold alone), page hit@5 (sets with gold
pages) and the number of answers per mode (generated, evidence, declined). See
rag/evaluation/ for the definitions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from eval.evalsets import DEFAULT_SHARED, EvalSet, eval_sets

COLUMNS = [
    ("set", "set"),
    ("variant", "variant"),
    ("questions", "q"),
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("mrr@10", "MRR@10"),
    ("lead_token_f1", "lead F1"),
    ("lead_containment", "lead contains"),
    ("answer_containment", "contains answer"),
    ("token_f1", "token F1"),
    ("generated_share", "generated share"),
    ("declined_answerable", "answerable declined"),
    ("abstention_precision", "abstain P"),
    ("abstention_recall", "abstain R"),
    ("page_hit@5", "page hit@5"),
    ("modes", "modes"),
]


@dataclass
class SetRun:
    """The outcome of one set: a summary per variant, or the reason it was skipped."""

    name: str
    summaries: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None


def config_path(arg: str | None) -> str | None:
    """``--config``, else configs/default.yaml when present, else None (built-in defaults), as ``rag eval`` does."""
    if arg:
        return arg
    default = ROOT / "configs" / "default.yaml"
    return str(default) if default.is_file() else None


def index_key(config: Any) -> dict[str, Any]:
    """The settings an eval index is cached under; the same key as ``rag eval`` uses, so their caches are shared."""
    backend = {"embedding_backend": config.embedding.backend} if config.embedding.backend != "torch" else {}
    return {"embedding": config.embedding.model, "chunking": config.to_dict()["chunking"], **backend}


def run_set(
    eval_set: EvalSet,
    variants: dict[str, dict[str, str]],
    *,
    config: str | None,
    retrieval_only: bool,
    limit: int | None,
    embedder: Any,
    generator: Any,
    out_dir: Path | None,
    progress: bool,
    log: Callable[[str], None],
    overrides: dict[str, Any] | None = None,
) -> SetRun:
    """Evaluate every variant on one set, as ``rag eval`` would (same index cache, same functions).

    Args:
        eval_set: the set.
        variants: ``--retriever`` specs mapped to their config overrides (:func:`rag.evaluation.parse_variant`).
        config: the YAML config (None: built-in defaults).
        retrieval_only: skip generation.
        limit: only the first ``limit`` questions.
        embedder: the embedder shared by all sets (loads once).
        generator: the generator shared by all sets (None with ``retrieval_only``).
        out_dir: write ``<set>.jsonl`` here (one line per question and variant), when given.
        progress: show progress bars.
        log: receives progress messages.
        overrides: dotted config overrides (``--set``), applied under each variant's.
    """
    from rag import RAG, Config
    from rag.evaluation import (
        QueryCache,
        default_eval_index,
        ensure_index,
        evaluate,
        load_qa,
        missing_sources,
    )

    reason = eval_set.unavailable()
    if reason:
        return SetRun(eval_set.name, skipped=reason)
    items = load_qa(eval_set.qa_file)[:limit]
    articles = eval_set.articles_dir()
    overrides = dict(overrides or {})
    index = default_eval_index(articles, index_key(Config.load(config, overrides)))
    first = RAG.from_config(config, index=index, overrides=overrides, embedder=embedder, generator=generator)
    ensure_index(first, articles, progress=progress, log=log)
    missing = missing_sources(items, articles)
    if missing:
        log(
            f"warning: {eval_set.name}: {len(missing)} gold source(s) are not files under {articles}: {', '.join(missing[:5])}"
        )
    cached = QueryCache(embedder)
    if any(o["retrieval.retriever"] != "bm25" for o in variants.values()):
        cached.prime([it.question for it in items])
    run = SetRun(eval_set.name)
    with (
        open(out_dir / f"{eval_set.name}.jsonl", "w", encoding="utf-8") if out_dir else contextlib.nullcontext() as out
    ):
        for spec, variant in variants.items():
            rag = RAG.from_config(
                config, index=index, overrides={**overrides, **variant}, embedder=cached, generator=generator
            )
            write = (lambda r: out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")) if out else None
            result = evaluate(rag, items, retrieval_only=retrieval_only, progress=progress, on_result=write, label=spec)
            run.summaries.append(
                {**result.summary, "set": eval_set.name, "variant": spec, "qa_file": str(eval_set.qa_file)}
            )
            log(f"{eval_set.name} / {spec}: {len(items)} questions in {result.summary['seconds']:.1f} s")
    return run


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["generation.model=/m.gguf", "retrieval.top_k=3"]`` -> dotted overrides, values read as YAML.

    Raises:
        ValueError: an item without ``=``.
    """
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"--set takes KEY=VALUE, got {pair!r}; e.g. --set generation.llama_server.gguf_type=packaged"
            )
        out[key.strip()] = yaml.safe_load(value) if value.strip() else value
    return out


def format_summary_table(runs: list[SetRun]) -> str:
    """One Markdown table, a row per set and variant; skipped sets listed below it with the reason."""
    from rag.evaluation import format_modes

    def cell(key: str, value: Any) -> str:
        if key == "modes":
            return format_modes(value)
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for run in runs:
        for s in run.summaries:
            lines.append("| " + " | ".join(cell(k, s.get(k)) for k, _ in COLUMNS) + " |")
    skipped = [r for r in runs if r.skipped]
    if skipped:
        lines.append("")
        lines += [f"skipped {r.name}: {r.skipped}" for r in skipped]
    return "\n".join(lines)


def build_parser(sets: dict[str, EvalSet]) -> argparse.ArgumentParser:
    """The command line, listing ``sets`` in ``--sets``' help."""
    names = "; ".join(f"{name}: {s.description}" for name, s in sets.items())
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    ap.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config (default: configs/default.yaml when present, else built-in defaults)",
    )
    ap.add_argument(
        "--retrieval-only", action="store_true", help="skip generation: retrieval metrics and threshold abstention only"
    )
    ap.add_argument(
        "--retriever",
        metavar="NAMES",
        help="retriever variants, comma-separated, as for rag eval: dense, bm25, hybrid, "
        "optionally with settings (dense/dedup=none, hybrid/bm25_weight=1) (default: retrieval.retriever)",
    )
    ap.add_argument("--sets", metavar="NAMES", help=f"comma-separated subset of the sets (default: all): {names}")
    ap.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write <set>.jsonl per set (one line per question and variant), summary.json and table.md here",
    )
    ap.add_argument("--limit", type=int, metavar="N", help="only the first N questions of each set (a quick run)")
    ap.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        metavar="DIR",
        help=f"the shared data folder (rgb-en-fact, squad articles) (default: {DEFAULT_SHARED})",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="override one config field for every set, e.g. --set generation.model=/models/m.gguf "
        "--set generation.llama_server.gguf_type=packaged (repeatable; values are read as YAML)",
    )
    ap.add_argument("--json", action="store_true", help="print the summaries as JSON instead of the table")
    ap.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sets and print the table (or JSON); returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    sets = eval_sets(probe.parse_known_args(argv)[0].shared)
    ap = build_parser(sets)
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be >= 1, got {args.limit}")
    chosen = [n.strip() for n in (args.sets or ",".join(sets)).split(",") if n.strip()]
    unknown = [n for n in chosen if n not in sets]
    if unknown or not chosen:
        ap.error(f"unknown set(s) {unknown} in --sets; choose from {sorted(sets)}")

    from rag import RAG, Config
    from rag.evaluation import parse_variant

    cfg = config_path(args.config)
    try:
        settings = parse_settings(args.settings)
        base = Config.load(cfg, settings)
    except ValueError as exc:
        ap.error(str(exc))
    specs = [n.strip() for n in (args.retriever or base.retrieval.retriever).split(",") if n.strip()]
    try:
        variants = {spec: parse_variant(spec)[1] for spec in specs}
    except ValueError as exc:
        ap.error(str(exc))
    if not variants:
        ap.error(f"--retriever {args.retriever!r} names no retriever")
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    # One embedder and one generator for every set and variant: the models load once.
    proto = RAG.from_config(cfg, overrides=settings)
    generator = None if args.retrieval_only else proto.generator
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs = []
    for name in chosen:
        run = run_set(
            sets[name],
            variants,
            config=cfg,
            retrieval_only=args.retrieval_only,
            limit=args.limit,
            embedder=proto.embedder,
            generator=generator,
            out_dir=args.out,
            progress=not args.quiet,
            log=log,
            overrides=settings,
        )
        if run.skipped:
            log(f"skipping {name}: {run.skipped}")
        runs.append(run)
    summaries = [s for r in runs for s in r.summaries]
    table = format_summary_table(runs)
    if args.out:
        (args.out / "summary.json").write_text(
            json.dumps(summaries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (args.out / "table.md").write_text(table + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
        return 0
    mode = "retrieval only; abstention = relevance threshold" if args.retrieval_only else "full pipeline"
    limit = f", first {args.limit} questions per set" if args.limit else ""
    print(
        f"{len(summaries)} runs over {sum(1 for r in runs if not r.skipped)} sets ({mode}{limit}) in {time.perf_counter() - t0:.0f} s\n"
    )
    print(table)
    if args.out:
        print(f"\nPer-question results: {args.out}/<set>.jsonl; summaries: {args.out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
