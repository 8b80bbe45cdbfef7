"""Measure retrieval and answer quality on a QA set: the engine behind ``rag eval``.

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
- ``modes``: how many answers were made in each :attr:`~rag.citations.Answer.mode`
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

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .records import Calibration, Passage
from .store import FORMAT_VERSION
from .qa import (  # re-exported: rag.evaluation is the public home of the QA format
    DEPTH, KS, QAFormatError, QAItem, answer_metrics, contains_answer, is_abstention, load_qa, normalize_answer, page_hit, retrieval_metrics, source_file,
    token_f1,
)

if TYPE_CHECKING:
    from .pipeline import RAG

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


def _cited_correct(passage: Passage, item: QAItem) -> bool:
    gold = {source_file(s) for s in item.sources}
    return source_file(passage.chunk.source) in gold or contains_answer(passage.chunk.text, item.answers)


def evaluate_question(rag: RAG, item: QAItem, *, retrieval_only: bool = False, top_k: int | None = None, max_new_tokens: int | None = None,
                      label: str | None = None) -> QuestionResult:
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
            citations.append({"n": c.n, "source": c.source, "correct": bool(p is not None and item.answerable and _cited_correct(p, item))})
        if item.answerable:
            metrics.update(answer_metrics(answer.text, answer.lead, " ".join(e.text for e in answer.evidence), item.answers, abstained))
    retrieved = [{"n": p.n, "source": p.chunk.source, "score": round(p.score, 4), "relevance": round(p.relevance_or_score, 4)} for p in passages]
    return QuestionResult(item, label or cfg.retriever, retrieved, metrics, abstained, answer_text, citations, float(top_relevance),
                          time.perf_counter() - t0, mode, lead, notes)



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
        result = evaluate_question(rag, item, retrieval_only=retrieval_only, top_k=top_k, max_new_tokens=max_new_tokens, label=label)
        results.append(result)
        if on_result is not None:
            on_result(result)
    summary = summarize(results, retrieval_only=retrieval_only)
    summary["retriever"] = label
    summary["settings"] = rag.config.retrieval.model_dump()
    summary["threshold"] = rag.relevance_threshold()[0]
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return EvalRun(results, summary)


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


def calibrate(rag: RAG, items: Sequence[QAItem], *, rate: float = 0.05, retrievers: Sequence[str] = ("dense", "bm25", "hybrid"),
              progress: bool = False, qa_file: str = "", created_at: str = "") -> Calibration:
    """Per retriever, the "not covered" threshold for ``rag``'s index from ``items`` (``rag calibrate``).

    Each threshold is :func:`choose_threshold` over the questions' best-passage relevance
    (retrieval only; no generation), so it declines at most ``rate`` of the answerable ones.

    Raises:
        ValueError: ``items`` holds no answerable question.
    """
    from .pipeline import RAG as Pipeline

    thresholds: dict[str, float] = {}
    declined: dict[str, int] = {}
    chosen: dict[str, Any] = {}
    for name in retrievers:
        variant = Pipeline(rag.config.model_copy(update={"retrieval": rag.config.retrieval.model_copy(update={"retriever": name})}),
                      embedder=rag.embedder, generator=rag._generator)
        run = evaluate(variant, items, retrieval_only=True, progress=progress, label=name)
        chosen = choose_threshold(run.results, rate)
        if chosen["threshold"] is None:
            raise ValueError(f"cannot calibrate: {chosen['reason']}")
        thresholds[name] = chosen["threshold"]
        declined[name] = chosen["declined_unanswerable"]
    return Calibration(embedder=rag.embedder.name, thresholds=thresholds, rate=rate, questions=chosen["answerable"],
                       unanswerable=chosen["unanswerable"], declined_unanswerable=declined, qa_file=qa_file, created_at=created_at)


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
    cols = [("retriever", "retriever"), ("hit@1", "hit@1"), ("hit@5", "hit@5"), ("hit@10", "hit@10"), ("mrr@10", "MRR@10"),
            ("lead_containment", "lead contains"), ("lead_token_f1", "lead F1"), ("answer_containment", "contains answer"),
            ("token_f1", "token F1"), ("generated_share", "generated share"), ("citation_precision", "citation P"),
            ("abstention_precision", "abstain P"), ("abstention_recall", "abstain R")]
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
        lines += ["", "| retriever | mode | answers | answerable | lead contains | lead F1 | lead misses evidence | contains answer | "
                  "token F1 |", "|---|---|---|---|---|---|---|---|---|"]
        for s in with_modes:
            for mode, m in s["by_mode"].items():
                lines.append(f"| {cell(s.get('retriever'))} | {mode} | {m['questions']} | {m['answerable']} | {cell(m.get('lead_containment'))} | "
                             f"{cell(m.get('lead_token_f1'))} | {cell(m.get('lead_misses_evidence'))} | "
                             f"{cell(m['answer_containment'])} | {cell(m['token_f1'])} |")
    return "\n".join(lines)


def default_eval_index(articles_dir: str | Path, config_key: dict[str, Any]) -> Path:
    """A cache folder for the index of ``articles_dir`` under the system temp folder.

    Keyed by the articles folder and the embedder/chunker settings, so evaluating several
    corpora or configs never overwrites the user's own index (``index.path``).
    """
    import hashlib
    import tempfile

    key = json.dumps({"articles": str(Path(articles_dir).resolve()), **config_key}, sort_keys=True)
    return Path(tempfile.gettempdir()) / "rag-eval" / (Path(articles_dir).resolve().name + "-" + hashlib.sha256(key.encode()).hexdigest()[:10])


def ensure_index(rag: RAG, articles_dir: str | Path, *, rebuild: bool = False, progress: bool = True, log: Callable[[str], None] = print) -> bool:
    """Make sure ``rag``'s index holds ``articles_dir``: reuse it when it was built from that folder
    in the current index format (an older format is brought up to date by a build).

    Returns:
        True when an index was built.

    Raises:
        FileNotFoundError: ``articles_dir`` is missing.
        ValueError: the index folder holds an index of another articles folder (and ``rebuild`` is False).
    """
    articles = Path(articles_dir)
    if not articles.is_dir():
        raise FileNotFoundError(f"articles folder {str(articles)!r} does not exist; pass the folder the QA file's sources are relative to")
    if rag.store.exists() and not rebuild:
        built_from = rag.store.read_manifest().get("articles_dir")
        if built_from and Path(built_from).resolve() != articles.resolve():
            raise ValueError(f"index {str(rag.store.root)!r} was built from {built_from!r}, not {str(articles.resolve())!r}; "
                             "pass another --index, or --rebuild to replace it")
        if rag.store.manifest().format_version == FORMAT_VERSION:
            rag.index()  # fails early with a clear message when it was built with other settings
            return False
        # An index of an older format still loads, but without what the new one adds (pages,
        # headings in the embedded text): measure the current format.
        log(f"Index {rag.store.root} has an older format; updating it ...")
    log(f"Building index {rag.store.root} from {articles} ...")
    summary = rag.build(articles, show_progress=progress)
    log(f"Indexed {summary.articles} articles as {summary.chunks} chunks in {summary.seconds:.1f} s.")
    return True


def missing_sources(items: Sequence[QAItem], articles_dir: str | Path) -> list[str]:
    """Gold sources named in ``items`` that are not files under ``articles_dir`` (likely typos)."""
    root = Path(articles_dir)
    names = sorted({source_file(s) for it in items for s in it.sources})
    return [n for n in names if not (root / n).is_file()]


class QueryCache:
    """Wraps an embedder so questions encoded ahead in one batch are not encoded again.

    Encoding a hundred questions in one batch takes a fraction of the time of a hundred
    single calls on a busy CPU, and the vectors are identical.

    Example:
        >>> cached = QueryCache(rag.embedder); cached.prime([it.question for it in items])
    """

    def __init__(self, embedder: Any) -> None:
        self.inner = embedder
        self.name = embedder.name
        self._cache: dict[str, Any] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def prime(self, texts: Sequence[str], show_progress: bool = False) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for text, vec in zip(todo, self.inner.encode(todo, show_progress=show_progress)):
                self._cache[text] = vec

    def encode(self, texts: Sequence[str], show_progress: bool = False):
        import numpy as np

        if texts and all(t in self._cache for t in texts):
            return np.stack([self._cache[t] for t in texts])
        return self.inner.encode(texts, show_progress=show_progress)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """``"hybrid/bm25_weight=1/dedup=none"`` -> ``("hybrid", {"retrieval.bm25_weight": "1", "retrieval.dedup": "none"})``.

    Raises:
        ValueError: unknown retriever, or a setting that is not ``key=value``.
    """
    from .config import RetrievalConfig
    from .retrieval import RETRIEVERS

    name, *pairs = [part.strip() for part in spec.strip().split("/")]
    if name not in RETRIEVERS:
        raise ValueError(f"unknown retriever {name!r} in --retriever; choose from {sorted(RETRIEVERS)}, optionally with settings like hybrid/bm25_weight=1/dedup=none")
    fields = set(RetrievalConfig.model_fields)
    overrides = {"retrieval.retriever": name}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in fields:
            raise ValueError(f"bad setting {pair!r} in --retriever {spec!r}; write retrieval settings as key=value, keys: {sorted(fields)}")
        overrides[f"retrieval.{key.strip()}"] = None if value.strip() == "null" else value.strip()
    return name, overrides


__all__ = ["DEPTH", "KS", "MODES", "EvalRun", "QAFormatError", "QAItem", "QueryCache", "QuestionResult", "choose_threshold", "contains_answer",
           "default_eval_index", "ensure_index", "evaluate", "evaluate_question", "format_modes", "format_table", "is_abstention", "load_qa",
           "missing_sources", "normalize_answer", "page_hit", "parse_variant", "retrieval_metrics", "source_file", "summarize", "token_f1"]
