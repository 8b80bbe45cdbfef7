"""What an evaluation run records: one :class:`QuestionResult` per question, an :class:`EvalRun` per variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .qa import QAItem

# The values of Answer.mode; an answer in another mode is counted under its own name.
MODES = ("generated", "evidence", "declined")


@dataclass(frozen=True)
class QuestionResult:
    """What happened to one question; :meth:`to_dict` is its line in ``--out``."""

    item: QAItem
    retriever: str
    retrieved: list[dict[str, Any]]
    metrics: dict[str, float]
    abstained: bool
    answer: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    top_relevance: float = 0.0
    seconds: float = 0.0
    mode: str | None = None
    lead: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "retriever": self.retriever,
            "question": self.item.question,
            "answerable": self.item.answerable,
            "gold_sources": list(self.item.sources),
            "gold_answers": list(self.item.answers),
            "retrieved": self.retrieved,
            "top_relevance": round(self.top_relevance, 4),
            "answer": self.answer,
            "lead": self.lead,
            "notes": list(self.notes),
            "citations": self.citations,
            "abstained": self.abstained,
            "mode": self.mode,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class EvalRun:
    """Per-question results and the summary of one retriever over one QA set."""

    results: list[QuestionResult]
    summary: dict[str, Any]
