"""A stricter ``evidence.draft_must_agree``, replayed on saved runs (no model is called).

The shipped rule lets a draft lead when its answer (number, date, name, place, expansion) is any
answer the best evidence sentence gives. The stricter variant asks for the best sentence's marked
answer phrase (:func:`rag.answering.asked.answer_phrase`). Each generated lead of a default run is
checked again; a refused one is replaced by the evidence lead of the same question from an
evidence-only run (same retrieval, same evidence). Prints, per set, lead contains and the
generated share before and after, and how many refused drafts held the gold answer.

Usage:
    python -m eval.run_all --out results/default
    python -m eval.run_all --config configs/evidence-only.yaml --out results/evidence
    python -m eval.studies.agree_study results/default results/evidence
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.answering.asked import answer_phrase, answer_spans, answer_type
from rag.answering.lead import _KINDS, _in_evidence
from rag.evaluation.qa import contains_answer
from rag.text import MARKER


def _plain(text: str) -> str:
    return " ".join(MARKER.sub(" ", text).split())


def strictly_disagrees(draft: str, question: str, best: str) -> bool:
    """Whether no answer of ``draft`` is (or holds) the marked answer phrase of ``best``."""
    kind = answer_type(question)
    if kind not in _KINDS:
        return False
    phrase = answer_phrase(best, question, kind)
    if not phrase:
        return False
    wanted = best[phrase[0] : phrase[1]]
    plain = _plain(draft)
    given = [plain[a:b] for a, b in answer_spans(plain, question, kind)]
    return not any(_in_evidence(g, wanted) or _in_evidence(wanted, g) for g in given)


def replay(default_rows: list[dict], evidence_rows: dict[str, dict]) -> dict[str, float]:
    answered = [r for r in default_rows if r["mode"] != "declined"]
    answerable = [r for r in default_rows if r["answerable"]]
    out = {
        "lead_before": 0.0,
        "lead_after": 0.0,
        "gen_before": 0,
        "gen_after": 0,
        "refused_right": 0,
        "refused_wrong": 0,
    }
    for r in default_rows:
        lead = r["lead"]
        if r["mode"] == "generated":
            out["gen_before"] += 1
            ev = evidence_rows[r["id"]]
            if ev["mode"] != "declined" and strictly_disagrees(lead, r["question"], _plain(ev["lead"])):
                if r["answerable"]:
                    out["refused_right" if contains_answer(lead, r["gold_answers"]) else "refused_wrong"] += 1
                lead = ev["lead"]
            else:
                out["gen_after"] += 1
        if r["answerable"]:
            out["lead_before"] += r["metrics"].get("lead_containment") or 0
            out["lead_after"] += contains_answer(lead, r["gold_answers"]) if r["mode"] != "declined" else 0
    for k in ("lead_before", "lead_after"):
        out[k] /= max(1, len(answerable))
    for k in ("gen_before", "gen_after"):
        out[k] /= max(1, len(answered))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("default", type=Path, help="a default run's --out folder (<set>.jsonl)")
    ap.add_argument("evidence", type=Path, help="an evidence-only run's --out folder, the same sets")
    args = ap.parse_args(argv)
    print("| set | lead contains | generated share | refused drafts holding / missing the answer |")
    print("|---|---|---|---|")
    for path in sorted(args.default.glob("*.jsonl")):
        other = args.evidence / path.name
        if not other.exists():
            print(f"skipping {path.stem}: not in {args.evidence}", file=sys.stderr)
            continue
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        if not any(r["answerable"] for r in rows):
            continue
        ev = {r["id"]: r for r in (json.loads(line) for line in other.open(encoding="utf-8"))}
        o = replay(rows, ev)
        print(
            f"| {path.stem} | {o['lead_before']:.3f} → {o['lead_after']:.3f} | {o['gen_before']:.0%} → {o['gen_after']:.0%} "
            f"| {o['refused_right']} / {o['refused_wrong']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
