"""Run a QA set through the pipeline: retrieval metrics per question and, unless retrieval only, the answer's."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..records import Passage
from .qa import DEPTH, QAItem, answer_metrics, contains_answer, is_abstention, page_hit, retrieval_metrics, source_file
from .results import EvalRun, QuestionResult
from .summary import summarize

if TYPE_CHECKING:
    from ..pipeline import RAG


def _cited_correct(passage: Passage, item: QAItem) -> bool:
    gold = {source_file(s) for s in item.sources}
    return source_file(passage.chunk.source) in gold or contains_answer(passage.chunk.text, item.answers)


def evaluate_question(
    rag: RAG,
    item: QAItem,
    *,
    retrieval_only: bool = False,
    top_k: int | None = None,
    max_new_tokens: int | None = None,
    label: str | None = None,
) -> QuestionResult:
    """Retrieve (top 10 for the metrics) and, unless ``retrieval_only``, answer one question."""
    t0 = time.perf_counter()
    cfg = rag.config.retrieval
    k = cfg.top_k if top_k is None else top_k
    passages = rag.retrieve(item.question, max(DEPTH, k))
    metrics = retrieval_metrics([p.chunk.source for p in passages], item.sources) if item.answerable else {}
    if item.pages and item.answerable:
        hit = page_hit(passages, item.pages)
        if hit is not None:
            metrics["page_hit@5"] = hit
    # The passages the pipeline would answer from are the first top_k of the same ranking.
    top_relevance = max((p.relevance_or_score for p in passages[:k]), default=0.0)
    threshold, _ = rag.relevance_threshold()
    answer_text: str | None = None
    lead: str | None = None
    notes: tuple[str, ...] = ()
    mode: str | None = None
    citations: list[dict[str, Any]] = []
    if retrieval_only:
        abstained = not passages or top_relevance < threshold
    else:
        answer = rag.ask(item.question, top_k=k, max_new_tokens=max_new_tokens)
        answer_text, lead, notes = answer.text, answer.lead, tuple(answer.notes)
        mode = answer.mode
        abstained = is_abstention(answer.text)
        by_n = {p.n: p for p in answer.passages}
        for c in answer.citations:
            p = by_n.get(c.n)
            citations.append(
                {
                    "n": c.n,
                    "source": c.source,
                    "correct": bool(p is not None and item.answerable and _cited_correct(p, item)),
                }
            )
        if item.answerable:
            metrics.update(
                answer_metrics(
                    answer.text, answer.lead, " ".join(e.text for e in answer.evidence), item.answers, abstained
                )
            )
    retrieved = [
        {"n": p.n, "source": p.chunk.source, "score": round(p.score, 4), "relevance": round(p.relevance_or_score, 4)}
        for p in passages
    ]
    return QuestionResult(
        item,
        label or cfg.retriever,
        retrieved,
        metrics,
        abstained,
        answer_text,
        citations,
        float(top_relevance),
        time.perf_counter() - t0,
        mode,
        lead,
        notes,
    )


def evaluate(
    rag: RAG,
    items: Sequence[QAItem],
    *,
    retrieval_only: bool = False,
    top_k: int | None = None,
    max_new_tokens: int | None = None,
    progress: bool = True,
    on_result: Callable[[QuestionResult], None] | None = None,
    label: str | None = None,
) -> EvalRun:
    """Evaluate ``rag`` (its configured retriever) on ``items``.

    Args:
        rag: a pipeline with a built index.
        items: the questions.
        retrieval_only: skip generation (answer metrics are then None).
        top_k: passages given to the generator (default ``retrieval.top_k``).
        max_new_tokens: answer length limit (default ``generation.max_new_tokens``).
        progress: show a progress bar on stderr.
        on_result: called with each result as soon as it is ready (e.g. to write ``--out``).
        label: name of this variant in results and summary (default: the retriever's name).
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    results = []
    label = label or rag.config.retrieval.retriever
    bar = tqdm(items, desc=f"eval {label}", unit="q", disable=not progress, leave=False)
    for item in bar:
        result = evaluate_question(
            rag, item, retrieval_only=retrieval_only, top_k=top_k, max_new_tokens=max_new_tokens, label=label
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    summary = summarize(results, retrieval_only=retrieval_only)
    summary["retriever"] = label
    summary["settings"] = rag.config.retrieval.model_dump()
    summary["threshold"] = rag.relevance_threshold()[0]
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return EvalRun(results, summary)
