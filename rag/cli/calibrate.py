"""``rag calibrate``: set the "not covered" threshold of one index from a handful of its own questions.

The threshold shipped for MiniLM was chosen on the development sets; a folder of other
articles (notes, manuals, another language) may need its own. Given a QA file of questions
about the indexed articles (answerable ones with their gold source, and ideally a few the
articles do not answer), this measures the best passage's relevance for each, picks per
retriever the highest threshold that declines at most ``--rate`` of the answerable ones
(:func:`rag.evaluation.choose_threshold`), and stores the result with the index
(``calibration.json`` in the index folder): it travels with the folder, survives rebuilds,
and applies while the index's embedder model is the one it was measured with. A threshold
set in the config (``retrieval.min_relevance_*``) still wins.

Example:
    $ rag calibrate my-questions.jsonl --index index/notes
    hybrid: min relevance 0.412 (declines 1/24 answerable, 5/8 unanswerable)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

DESCRIPTION = """\
Set the "not covered" threshold of this index from questions about its own articles.

The threshold shipped for MiniLM was chosen on the development sets; a folder of other
articles may need its own. Give a QA file (the format of rag eval: answerable questions with
their gold source, and ideally some the articles do not answer, with an empty answers list).
For each retriever this measures the best passage's relevance per question and picks the
highest threshold that declines at most --rate of the answerable ones. The result is stored
as calibration.json in the index folder: it travels with the folder, survives rebuilds, and
applies while the embedder model is the one it was measured with. A threshold set in the
config (retrieval.min_relevance_*) still wins. rag index info and the web UI's status show
which threshold is in force.
"""

# Fewer answerable questions than this make the rate meaningless (one question is > 10%).
MIN_ANSWERABLE = 10


def add_calibrate_parser(
    sub: argparse._SubParsersAction,
    common: Callable[[argparse.ArgumentParser], None],
    config_path: Callable[[str | None], str | None],
) -> None:
    """Register ``rag calibrate`` on the ``rag`` parser (``common`` adds --config and --index)."""
    p = sub.add_parser(
        "calibrate",
        help="set the index's \"not covered\" threshold from your own questions",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "qa_file",
        metavar="QA.jsonl",
        nargs="?",
        help="questions about the indexed articles, in the QA format of rag eval "
        f"(at least {MIN_ANSWERABLE} answerable; unanswerable ones, with an empty answers list, are reported)",
    )
    common(p)
    p.add_argument(
        "--rate",
        type=float,
        default=0.05,
        metavar="R",
        help="the share of answerable questions a threshold may decline (default 0.05)",
    )
    p.add_argument(
        "--retrievers",
        default="dense,bm25,hybrid",
        metavar="NAMES",
        help="retrievers to calibrate, comma-separated (default: all three)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the thresholds without storing them")
    p.add_argument(
        "--remove", action="store_true", help="delete the index's calibration (back to the shipped thresholds)"
    )
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    p.set_defaults(func=lambda args: cmd_calibrate(args, config_path))


def cmd_calibrate(args: argparse.Namespace, config_path: Callable[[str | None], str | None]) -> int:
    from .. import RAG
    from ..evaluation import calibrate, load_qa
    from ..retrieval import RETRIEVERS
    from ..store.calibration import save_calibration

    rag = RAG.from_config(config_path(args.config), index=args.index)
    if args.remove:
        path = save_calibration(rag.store, None)
        print(f"removed {path}; the index uses the shipped thresholds again")
        return 0
    if not args.qa_file:
        raise ValueError("give a QA file of questions about the indexed articles (or --remove)")
    if not 0 <= args.rate < 1:
        raise ValueError(f"--rate must be in [0, 1), got {args.rate}")
    names = [n.strip() for n in args.retrievers.split(",") if n.strip()]
    unknown = [n for n in names if n not in RETRIEVERS]
    if unknown or not names:
        raise ValueError(f"--retrievers {args.retrievers!r}: choose from {', '.join(RETRIEVERS)}")
    items = load_qa(args.qa_file)
    answerable = sum(it.answerable for it in items)
    if answerable < MIN_ANSWERABLE:
        raise ValueError(
            f"{args.qa_file} has {answerable} answerable question(s); calibrating needs at least {MIN_ANSWERABLE} "
            f"(with fewer, one question is more than the {args.rate:.0%} a threshold may decline)"
        )
    cal = calibrate(
        rag,
        items,
        rate=args.rate,
        retrievers=names,
        progress=not args.json,
        qa_file=Path(args.qa_file).name,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    if not args.dry_run:
        save_calibration(rag.store, cal)
    if args.json:
        print(json.dumps(cal.to_dict(), indent=1))
        return 0
    for name, value in cal.thresholds.items():
        declined = cal.declined_unanswerable.get(name, 0)
        print(
            f"{name}: min relevance {value:.3f} (declines at most {args.rate:.0%} of {cal.questions} answerable, "
            f"{declined}/{cal.unanswerable} unanswerable)"
        )
    print(
        "not stored (--dry-run)" if args.dry_run else f"stored with the index: {rag.store.root / 'calibration.json'}",
        file=sys.stderr,
    )
    return 0
