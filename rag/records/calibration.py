"""The record of a "not covered" threshold calibrated for one index (``rag calibrate``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Calibration:
    """Relevance thresholds chosen from a user's own questions, stored with the index.

    Attributes:
        embedder: the embedder the relevances were measured with (a threshold only holds
            for the model whose cosine it is).
        thresholds: retriever name -> the highest relevance that declined at most ``rate``
            of the answerable questions.
        rate: the share of answerable questions a threshold may decline.
        questions: answerable questions measured.
        unanswerable: unanswerable questions measured (for the report).
        declined_unanswerable: retriever -> how many of those the threshold declines.
        qa_file: the question file's name (no folder).
        created_at: UTC time of the calibration (ISO 8601).
    """

    embedder: str
    thresholds: Mapping[str, float]
    rate: float
    questions: int
    unanswerable: int = 0
    declined_unanswerable: Mapping[str, int] = field(default_factory=dict)
    qa_file: str = ""
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "thresholds": dict(self.thresholds), "rate": self.rate, "questions": self.questions,
                "unanswerable": self.unanswerable, "declined_unanswerable": dict(self.declined_unanswerable), "qa_file": self.qa_file,
                "created_at": self.created_at}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """The record from its JSON object.

        Raises:
            ValueError: a key is missing or has the wrong type.
        """
        try:
            thresholds = {str(k): float(v) for k, v in dict(d["thresholds"]).items()}
            return cls(embedder=str(d["embedder"]), thresholds=thresholds, rate=float(d["rate"]), questions=int(d["questions"]),
                       unanswerable=int(d.get("unanswerable", 0)),
                       declined_unanswerable={str(k): int(v) for k, v in dict(d.get("declined_unanswerable") or {}).items()},
                       qa_file=str(d.get("qa_file", "")), created_at=str(d.get("created_at", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"calibration record is incomplete or malformed ({exc!r})") from None
