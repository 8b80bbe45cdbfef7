"""Measure retrieval and answer quality on a QA set: the engine behind ``rag eval``.

The package: :mod:`.qa` (the QA file format and SQuAD's scorers), :mod:`.run` (a set through
the pipeline), :mod:`.results` (what a run records), :mod:`.summary` (the averages and the
table), :mod:`.calibrate` (``rag calibrate``) and :mod:`.prepare` (the cached eval index, the
gold files, questions encoded ahead, ``--retriever`` variants).

QA sets are JSONL, one object per line (the format of ``../shared/README.md``)::

    {"id": "0", "question": "...", "answers": ["accepted answer", ...],
     "sources": ["file name relative to the articles folder", ...], "answerable": true}

An item may also carry ``"pages": {"report.pdf": [3, 4]}``: for a source that is a PDF, the
1-based pages that hold the answer. Each key must be one of the item's ``sources`` and each
value a non-empty list of page numbers >= 1.

Metrics (see :func:`summarize`):

- ``hit@k``: share of answerable questions with a passage from a gold source among the
  first ``k`` retrieved passages; ``mrr@10``: mean of ``1 / rank`` of the first such passage
  (0 when none in the top 10). A passage's source is its file (``a.jsonl#3`` counts as ``a.jsonl``).
- ``answer_containment``: share of answerable questions whose answer contains an accepted
  answer after SQuAD normalisation (lower case, no punctuation, articles or extra spaces);
  ``token_f1``: SQuAD token F1 against the best accepted answer, averaged. A declined
  answer scores 0 on both.
- ``citation_precision``: over all citations in answers to answerable questions, the share
  whose passage comes from a gold source or contains an accepted answer.
- ``page_hit@5``: over answerable questions with ``pages``, the share with a passage among the
  first 5 from a gold file whose ``chunk.pages`` include a gold page. A question is left out
  (not scored) when its gold file is in the top 5 but none of those passages carries page
  numbers (an index built without them); a gold file missing from the top 5 scores 0. None
  when no question was scored.
- ``modes``: how many answers were made in each :attr:`~rag.answering.citations.Answer.mode`
  (``generated``, ``evidence``, ``declined``), and ``by_mode``: per mode, the questions,
  answerable questions and their ``token_f1`` / ``answer_containment``. None with
  ``retrieval_only``.
- ``abstention_precision`` / ``abstention_recall``: of the declined questions, the share that
  are ``answerable: false``; of the ``answerable: false`` questions, the share declined. With
  ``retrieval_only`` the decision is the relevance threshold alone (no generator).

Example:
    >>> items = load_qa("eval/sample-qa.jsonl")
    >>> run = evaluate(rag, items, retrieval_only=True)
    >>> run.summary["hit@5"], run.summary["mrr@10"]
"""

from __future__ import annotations

from .calibrate import calibrate
from .prepare import QueryCache, default_eval_index, ensure_index, missing_sources, parse_variant
from .qa import (
    DEPTH,
    KS,
    QAFormatError,
    QAItem,
    answer_metrics,
    contains_answer,
    is_abstention,
    load_qa,
    normalize_answer,
    page_hit,
    retrieval_metrics,
    source_file,
    token_f1,
)
from .results import MODES, EvalRun, QuestionResult
from .run import evaluate, evaluate_question
from .summary import choose_threshold, format_modes, format_table, summarize

__all__ = [
    "DEPTH",
    "KS",
    "MODES",
    "EvalRun",
    "QAFormatError",
    "QAItem",
    "QueryCache",
    "QuestionResult",
    "answer_metrics",
    "calibrate",
    "choose_threshold",
    "contains_answer",
    "default_eval_index",
    "ensure_index",
    "evaluate",
    "evaluate_question",
    "format_modes",
    "format_table",
    "is_abstention",
    "load_qa",
    "missing_sources",
    "normalize_answer",
    "page_hit",
    "parse_variant",
    "retrieval_metrics",
    "source_file",
    "summarize",
    "token_f1",
]
