"""QA sets and answer scoring: the file format behind ``rag eval`` and SQuAD's metrics.

See :mod:`rag.evaluation` for the format and the metrics; this module reads QA files
(:func:`load_qa`) and scores one answer or one ranking (:func:`token_f1`,
:func:`contains_answer`, :func:`retrieval_metrics`, :func:`page_hit`).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RagError
from ..answering.prompting import NOT_FOUND
from ..records import Passage
from ..retrieval import NOT_COVERED
from ..text import MARKER

KS = (1, 5, 10)
DEPTH = 10


class QAFormatError(RagError, ValueError):
    """A QA file line is malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class QAItem:
    """One question of a QA set."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    answerable: bool = True
    pages: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)


def load_qa(path: str | Path) -> list[QAItem]:
    """Read a QA JSONL file.

    Raises:
        FileNotFoundError: no such file.
        QAFormatError: a line is not a JSON object of the documented shape.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"QA file {str(p)!r} not found; pass a JSONL file with one question per line (format: ../shared/README.md)"
        )
    items: list[QAItem] = []
    seen: set[str] = set()
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAFormatError(f"{where} is not valid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise QAFormatError(f"{where} must be a JSON object, got {type(obj).__name__}")
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise QAFormatError(f"{where} needs a non-empty string 'question', got {question!r}")
        answers = obj.get("answers", [])
        sources = obj.get("sources", [])
        for key, value in (("answers", answers), ("sources", sources)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise QAFormatError(f"{where}: '{key}' must be a list of strings, got {value!r}")
        answerable = obj.get("answerable", True)
        if not isinstance(answerable, bool):
            raise QAFormatError(f"{where}: 'answerable' must be true or false, got {answerable!r}")
        pages = _parse_pages(obj.get("pages", {}), sources, where)
        qid = str(obj.get("id", lineno))
        if qid in seen:
            raise QAFormatError(f"{where}: id {qid!r} is used twice; give every question its own id")
        seen.add(qid)
        items.append(QAItem(qid, question.strip(), tuple(answers), tuple(sources), answerable, pages))
    if not items:
        raise QAFormatError(f"QA file {str(p)!r} holds no questions")
    return items


def _parse_pages(value: Any, sources: list[str], where: str) -> dict[str, tuple[int, ...]]:
    """Check the optional ``pages`` field: ``{"file.pdf": [3, 4]}`` with every file among ``sources``.

    Raises:
        QAFormatError: not an object of source file -> non-empty list of page numbers >= 1.
    """
    shape = "an object mapping a source file to a list of 1-based page numbers, e.g. {\"report.pdf\": [3]}"
    if not isinstance(value, dict):
        raise QAFormatError(f"{where}: 'pages' must be {shape}, got {value!r}")
    pages: dict[str, tuple[int, ...]] = {}
    for name, numbers in value.items():
        if name not in sources:
            raise QAFormatError(
                f"{where}: 'pages' names {name!r}, which is not in 'sources' {sources!r}; add it there or fix the name"
            )
        if (
            not isinstance(numbers, list)
            or not numbers
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers)
        ):
            raise QAFormatError(
                f"{where}: 'pages' for {name!r} must be a non-empty list of page numbers >= 1, got {numbers!r}"
            )
        pages[name] = tuple(numbers)
    return pages


# -- answer scoring (SQuAD's official normalisation) --------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014"}


def normalize_answer(text: str) -> str:
    """Lower case, drop citation markers, punctuation and articles, collapse spaces."""
    text = MARKER.sub(" ", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether normalised ``text`` contains a normalised accepted answer (as whole words)."""
    hay = f" {normalize_answer(text)} "
    return any(norm and f" {norm} " in hay for norm in (normalize_answer(a) for a in answers))


def token_f1(text: str, answers: Iterable[str]) -> float:
    """SQuAD token F1 of ``text`` against the best-matching accepted answer (0 with none)."""
    pred = normalize_answer(text).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum((Counter(pred) & Counter(gold)).values())
        if not pred or not gold or common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_metrics(text: str, lead: str, evidence: str, answers: Sequence[str], abstained: bool) -> dict[str, float]:
    """An answerable question's answer metrics (all 0 when declined).

    ``token_f1``/``answer_containment`` read the whole answer; ``lead_token_f1``/``lead_containment``
    its first sentence, what a reader sees first; ``lead_misses_evidence`` is 1 when the lead lacks
    every gold answer while the evidence quoted under it has one (a lead that buried the answer).
    """
    if abstained:
        return dict.fromkeys(
            ("answer_containment", "token_f1", "lead_containment", "lead_token_f1", "lead_misses_evidence"), 0.0
        )
    lead_has = contains_answer(lead, answers)
    return {
        "answer_containment": float(contains_answer(text, answers)),
        "token_f1": token_f1(text, answers),
        "lead_containment": float(lead_has),
        "lead_token_f1": token_f1(lead, answers),
        "lead_misses_evidence": float(not lead_has and contains_answer(evidence, answers)),
    }


def is_abstention(text: str) -> bool:
    """Whether an answer declines: the generator's "could not find" or the "not covered" reply."""
    text = text.strip()
    return text == NOT_FOUND or text.startswith(NOT_COVERED)


def source_file(source: str) -> str:
    """The file part of a passage source (``feed.jsonl#3`` -> ``feed.jsonl``)."""
    return source.split("#", 1)[0]


def page_hit(passages: Sequence[Passage], gold_pages: dict[str, tuple[int, ...]], k: int = 5) -> float | None:
    """Whether a passage among the first ``k`` comes from a gold file and covers a gold page.

    Returns:
        1.0 or 0.0; None when a gold file is among the first ``k`` but none of its passages
        carries page numbers (the index was built without them), so the question can't be scored.
    """
    gold = {source_file(name): set(numbers) for name, numbers in gold_pages.items()}
    from_gold = [p for p in passages[:k] if source_file(p.chunk.source) in gold]
    if from_gold and not any(p.chunk.pages for p in from_gold):
        return None
    return float(any(gold[source_file(p.chunk.source)] & set(p.chunk.pages) for p in from_gold))


def retrieval_metrics(ranked_sources: Sequence[str], gold: Iterable[str], ks: Sequence[int] = KS) -> dict[str, float]:
    """``hit@k`` and ``mrr@10`` for one question from its passages' sources, best first."""
    gold_set = {source_file(g) for g in gold}
    first = next((i + 1 for i, s in enumerate(ranked_sources[:DEPTH]) if source_file(s) in gold_set), None)
    out = {f"hit@{k}": float(first is not None and first <= k) for k in ks}
    out["mrr@10"] = 1.0 / first if first is not None else 0.0
    return out


# -- running -----------------------------------------------------------------------------
