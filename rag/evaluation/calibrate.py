"""``rag calibrate``: per retriever, the "not covered" threshold of one index from the user's own questions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..records import Calibration
from .qa import QAItem
from .run import evaluate
from .summary import choose_threshold

if TYPE_CHECKING:
    from ..pipeline import RAG


def calibrate(
    rag: RAG,
    items: Sequence[QAItem],
    *,
    rate: float = 0.05,
    retrievers: Sequence[str] = ("dense", "bm25", "hybrid"),
    progress: bool = False,
    qa_file: str = "",
    created_at: str = "",
) -> Calibration:
    """Per retriever, the "not covered" threshold for ``rag``'s index from ``items`` (``rag calibrate``).

    Each threshold is :func:`choose_threshold` over the questions' best-passage relevance
    (retrieval only; no generation), so it declines at most ``rate`` of the answerable ones.

    Raises:
        ValueError: ``items`` holds no answerable question.
    """
    from ..pipeline import RAG as Pipeline

    thresholds: dict[str, float] = {}
    declined: dict[str, int] = {}
    chosen: dict[str, Any] = {}
    for name in retrievers:
        variant = Pipeline(
            rag.config.model_copy(update={"retrieval": rag.config.retrieval.model_copy(update={"retriever": name})}),
            embedder=rag.embedder,
            generator=rag._generator,
        )
        run = evaluate(variant, items, retrieval_only=True, progress=progress, label=name)
        chosen = choose_threshold(run.results, rate)
        if chosen["threshold"] is None:
            raise ValueError(f"cannot calibrate: {chosen['reason']}")
        thresholds[name] = chosen["threshold"]
        declined[name] = chosen["declined_unanswerable"]
    return Calibration(
        embedder=rag.embedder.name,
        thresholds=thresholds,
        rate=rate,
        questions=chosen["answerable"],
        unanswerable=chosen["unanswerable"],
        declined_unanswerable=declined,
        qa_file=qa_file,
        created_at=created_at,
    )
