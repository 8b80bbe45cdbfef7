"""Choose the relevance floor: below it a question is declined as "not covered", whatever the word overlap.

Reads the per-question top relevance that ``eval/studies/lead_study.py --relevance FILE`` writes (every
set, answerable or not) and prints, for each candidate floor, the share of each set's answerable
questions it would decline and the share of the off-topic sets' questions it declines. The
floor shipped for an embedder (``rag.config.CALIBRATED_RELEVANCE``) is the highest candidate that
declines at most ``--max-answerable`` of every set's answerable questions.

Usage:
    python -m eval.studies.lead_study --relevance /tmp/rel.jsonl
    python -m eval.studies.floor_study /tmp/rel.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def table(rows: list[dict], floors: list[float], max_answerable: float) -> tuple[str, float | None]:
    """The Markdown table and the chosen floor (None: no candidate keeps every set within ``max_answerable``)."""
    answerable: dict[str, list[float]] = defaultdict(list)
    offtopic: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["answerable"]:
            answerable[r["set"]].append(r["top_relevance"])
        elif r["set"].startswith("offtopic"):
            offtopic[r["set"]].append(r["top_relevance"])
    sets = sorted(answerable)
    head = (
        "| floor | "
        + " | ".join(f"{s} answerable declined" for s in sets)
        + " | "
        + " | ".join(f"{s} declined" for s in sorted(offtopic))
        + " |"
    )
    lines = [head, "|" + "---|" * (1 + len(sets) + len(offtopic))]
    chosen = None
    for f in floors:
        lost = [sum(v < f for v in answerable[s]) / len(answerable[s]) for s in sets]
        caught = [sum(v < f for v in offtopic[s]) / len(offtopic[s]) for s in sorted(offtopic)]
        ok = max(lost) <= max_answerable
        if ok:
            chosen = f
        lines.append(
            f"| {f:.2f}{' (ok)' if ok else ''} | "
            + " | ".join(f"{x:.3f}" for x in lost)
            + " | "
            + " | ".join(f"{x:.3f}" for x in caught)
            + " |"
        )
    return "\n".join(lines), chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("relevance", type=Path, help="the JSONL written by eval/studies/lead_study.py --relevance")
    ap.add_argument(
        "--max-answerable",
        type=float,
        default=0.01,
        help="most answerable questions a floor may decline on any set (default 0.01)",
    )
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.relevance.read_text(encoding="utf-8").splitlines() if line.strip()]
    floors = [round(0.05 * i, 2) for i in range(1, 11)]
    text, chosen = table(rows, floors, args.max_answerable)
    print(text)
    print(f"\nhighest floor declining at most {args.max_answerable:.0%} of every set's answerable questions: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
