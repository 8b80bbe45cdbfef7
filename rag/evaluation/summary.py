"""Sum up a run: the metrics of :mod:`rag.evaluation` averaged, answers by mode, a threshold, the table ``rag eval`` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .qa import KS
from .results import MODES, QuestionResult


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(results: Sequence[QuestionResult], retrieval_only: bool = False) -> dict[str, Any]:
    """Aggregate metrics; a metric with nothing to average over is None."""
    answerable = [r for r in results if r.item.answerable]
    scored = [r for r in answerable if r.item.sources]
    unanswerable = [r for r in results if not r.item.answerable]
    abstained = [r for r in results if r.abstained]
    out: dict[str, Any] = {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "retrieval_only": retrieval_only,
    }
    for key in [f"hit@{k}" for k in KS] + ["mrr@10"]:
        out[key] = _mean([r.metrics[key] for r in scored])
    answer_keys = ("answer_containment", "token_f1", "lead_containment", "lead_token_f1")
    if retrieval_only:
        out.update(dict.fromkeys((*answer_keys, "citation_precision", "generated_share"), None))
    else:
        for key in answer_keys:
            out[key] = _mean([r.metrics[key] for r in answerable])
        answered = [r for r in results if not r.abstained]
        out["generated_share"] = _mean([float(r.mode == "generated") for r in answered])
        cites = [c["correct"] for r in answerable for c in r.citations]
        out["citation_precision"] = _mean([float(c) for c in cites])
    paged = [r.metrics["page_hit@5"] for r in answerable if "page_hit@5" in r.metrics]
    out["page_hit@5"] = _mean(paged)
    out["modes"], out["by_mode"] = (None, None) if retrieval_only else _mode_breakdown(results)
    declined_unanswerable = sum(1 for r in abstained if not r.item.answerable)
    out["abstention_precision"] = declined_unanswerable / len(abstained) if abstained else None
    out["abstention_recall"] = declined_unanswerable / len(unanswerable) if unanswerable else None
    out["declined_answerable"] = sum(1 for r in answerable if r.abstained)
    return out


def _mode_breakdown(results: Sequence[QuestionResult]) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Answers per mode, and per mode the answer metrics over its answerable questions."""
    names = list(MODES) + sorted({r.mode for r in results if r.mode and r.mode not in MODES})
    counts = {m: sum(1 for r in results if r.mode == m) for m in names}
    by_mode: dict[str, dict[str, Any]] = {}
    for m in names:
        scored = [r for r in results if r.mode == m and r.item.answerable]
        by_mode[m] = {
            "questions": counts[m],
            "answerable": len(scored),
            "token_f1": _mean([r.metrics["token_f1"] for r in scored]),
            "answer_containment": _mean([r.metrics["answer_containment"] for r in scored]),
            "lead_token_f1": _mean([r.metrics["lead_token_f1"] for r in scored]),
            "lead_containment": _mean([r.metrics["lead_containment"] for r in scored]),
            # Of this mode's answered answerable questions: the lead lacks the gold answer the evidence has.
            "lead_misses_evidence": _mean([r.metrics["lead_misses_evidence"] for r in scored if not r.abstained]),
        }
    return counts, by_mode


def choose_threshold(results: Sequence[QuestionResult], max_false_decline: float = 0.05) -> dict[str, Any]:
    """Pick a "not covered" threshold from answerable questions' best relevance.

    The threshold is the highest value that declines at most ``max_false_decline`` of the
    answerable questions (their ``top_relevance`` quantile), so it is set without looking at
    the unanswerable questions; how many of those it would decline is reported beside it.
    """
    answerable = sorted(r.top_relevance for r in results if r.item.answerable)
    unanswerable = [r.top_relevance for r in results if not r.item.answerable]
    if not answerable:
        return {"threshold": None, "reason": "no answerable questions"}
    allowed = math.floor(max_false_decline * len(answerable))
    # Declining exactly `allowed` questions: just above the allowed-th lowest value.
    threshold = answerable[allowed] if allowed < len(answerable) else answerable[-1]
    threshold = math.floor(threshold * 1000) / 1000
    return {
        "threshold": threshold,
        "answerable": len(answerable),
        "declined_answerable": sum(1 for v in answerable if v < threshold),
        "unanswerable": len(unanswerable),
        "declined_unanswerable": sum(1 for v in unanswerable if v < threshold),
    }


def format_modes(modes: dict[str, int] | None) -> str:
    """``{"generated": 3, "evidence": 1, "declined": 0}`` -> ``"generated 3, evidence 1"`` ("-" for None)."""
    if modes is None:
        return "-"
    return ", ".join(f"{m} {n}" for m, n in modes.items() if n) or "none"


def format_table(summaries: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of summaries, one row per retriever.

    A ``page hit@5`` column is added when a summary has that metric, and a ``modes`` column
    plus a second table of answer metrics per mode (answers, answerable, contains answer,
    token F1) when a summary has ``modes`` (runs with generation).
    """
    cols = [
        ("retriever", "retriever"),
        ("hit@1", "hit@1"),
        ("hit@5", "hit@5"),
        ("hit@10", "hit@10"),
        ("mrr@10", "MRR@10"),
        ("lead_containment", "lead contains"),
        ("lead_token_f1", "lead F1"),
        ("answer_containment", "contains answer"),
        ("token_f1", "token F1"),
        ("generated_share", "generated share"),
        ("citation_precision", "citation P"),
        ("abstention_precision", "abstain P"),
        ("abstention_recall", "abstain R"),
    ]
    if any(s.get("page_hit@5") is not None for s in summaries):
        cols.append(("page_hit@5", "page hit@5"))
    with_modes = [s for s in summaries if s.get("modes")]
    if with_modes:
        cols.append(("modes", "modes"))

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, dict):
            return format_modes(v)
        return str(v)

    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for s in summaries:
        lines.append("| " + " | ".join(cell(s.get(k)) for k, _ in cols) + " |")
    if with_modes:
        lines += [
            "",
            "| retriever | mode | answers | answerable | lead contains | lead F1 | lead misses evidence | contains answer | "
            "token F1 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in with_modes:
            for mode, m in s["by_mode"].items():
                lines.append(
                    f"| {cell(s.get('retriever'))} | {mode} | {m['questions']} | {m['answerable']} | {cell(m.get('lead_containment'))} | "
                    f"{cell(m.get('lead_token_f1'))} | {cell(m.get('lead_misses_evidence'))} | "
                    f"{cell(m['answer_containment'])} | {cell(m['token_f1'])} |"
                )
    return "\n".join(lines)
