"""Wire the stages into :class:`RAG`: build an index from articles, answer with citations.

Example:
    >>> rag = RAG.from_config("configs/default.yaml")   # cheap: models load on first use
    >>> summary = rag.build("data/articles")
    >>> answer = rag.ask("Who released DeepSeek-R1?")
    >>> answer.text, [c.title for c in answer.citations]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .answering.citations import resolve_citations
from .answering.draft import draft_rejection, without_cut_sentence
from .answering.evidence import EvidenceSet, select_evidence
from .answering.declining import DeclineRule, decline_text
from .answering.lead import compose, evidence_lead, lead_span
from .answering.prompting import NOT_FOUND, build_evidence_prompt
from .answering.verification import check_draft
from .chunking import Chunker
from .config import Config, EvidenceConfig
from .embedding import ENGINES, Embedder, make_embedder, model_of
from .generation import AnswerStream, Generator, GeneratorError, make_generator
from .indexing import BuildSummary, IndexBuilder
from .inputs import check_question
from .records import Answer, Chunk, Passage
from .retrieval import MetadataFilter, make_retriever
from .store import IndexBackend, SearchableIndex, make_store
from .store.calibration import read_calibration
from .store.loaded import assemble_text
from .text import repeats_a_line


@dataclass(frozen=True)
class StreamEvent:
    """One event of :meth:`RAG.stream_events`.

    ``kind`` is ``"retrieved"`` (``passages`` set); ``"reasoning"`` (a piece of a reasoning model's
    ``<think>`` part); ``"draft"`` (a piece of the model's unchecked draft, for progress and
    diagnostics: never show it as the answer); ``"answer"`` (the checked answer's whole text, once);
    or ``"done"`` (``answer`` is the final :class:`Answer`).
    """

    kind: str
    text: str = ""
    passages: list[Passage] = field(default_factory=list)
    answer: Answer | None = None


def _index_type(settings: Mapping[str, Any]) -> str | None:
    """The FAISS index type a manifest's ``index`` settings record, e.g. ``flat (auto)`` or ``hnsw``."""
    built = settings.get("built") or {}
    if not built.get("type"):
        return settings.get("type")
    requested = built.get("requested") or settings.get("type")
    where = "milvus " if built.get("backend") == "milvus" else ""
    return where + built["type"] + (f" ({requested})" if requested and requested != built["type"] else "")


class RAG:
    """Grounded question answering over a folder of articles.

    Args:
        config: the full configuration.
        embedder: override the configured embedder (tests pass fakes).
        generator: override the configured generator.
    """

    def __init__(
        self, config: Config | None = None, *, embedder: Embedder | None = None, generator: Generator | None = None
    ) -> None:
        self.config = config or Config()
        emb = self.config.embedding
        self.embedder: Embedder = embedder or make_embedder(emb)
        self._generator = generator
        ch = self.config.chunking
        self.chunker = Chunker(ch.chunk_tokens, ch.overlap_tokens, ch.encoding)
        self.store: IndexBackend = make_store(self.config.index)
        self._loaded: SearchableIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        index: str | None = None,
        overrides: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> RAG:
        """Create from a YAML config (None: built-in defaults). Cheap: nothing is loaded.

        Args:
            path: YAML config file.
            index: index folder, overriding ``index.path``.
            overrides: dotted overrides such as ``{"retrieval.top_k": 3}``.
            **kwargs: passed to :class:`RAG` (``embedder=``, ``generator=``).
        """
        all_overrides = dict(overrides or {})
        if index is not None:
            all_overrides["index.path"] = str(index)
        return cls(Config.load(path, all_overrides), **kwargs)

    @property
    def generator(self) -> Generator:
        """The generator (created on first use; the model loads on first generation)."""
        if self._generator is None:
            self._generator = make_generator(self.config.generation)
        return self._generator

    # -- building --------------------------------------------------------------------
    def build(
        self,
        articles_dir: str | Path,
        show_progress: bool = False,
        *,
        full: bool = False,
        on_message: Callable[[str], None] | None = None,
    ) -> BuildSummary:
        """Bring the index up to date with ``articles_dir`` (see :mod:`rag.indexing`).

        Only new and changed articles are embedded; chunks of changed and deleted ones are
        dropped; the rest is kept as it is. Readers keep answering from the previous index
        until the new one is switched in.

        Args:
            articles_dir: the folder of articles (never modified).
            show_progress: show a progress bar while embedding.
            full: rebuild from scratch, re-embedding everything.
            on_message: receives notes such as why a full rebuild is needed.

        Returns:
            A :class:`BuildSummary` with added/updated/removed/unchanged/skipped counts;
            unreadable files are listed in ``skipped`` with their reasons.

        Raises:
            FileNotFoundError: the folder does not exist.
            BuildError: no readable articles were found (the index is left as it was).
            BuildLockedError: another build of this index is running (names its pid).
            IndexMismatchError: settings changed and ``indexing.on_settings_change`` is ``refuse``.
        """
        cfg = self.config
        # embedding.engine: ray embeds the chunks on a Ray cluster (started and stopped here when no address is set).
        with ENGINES[cfg.embedding.engine](self.embedder, cfg.embedding) as embedder:
            builder = IndexBuilder(
                self.store.root,
                embedder,
                self.chunker,
                cfg.loader,
                cfg.indexing,
                on_message,
                cfg.index,
                store=self.store,
            )
            summary = builder.build(articles_dir, full=full, show_progress=show_progress)
        with self._lock:
            self._loaded = None  # next question picks up the new generation
        return summary

    # -- reading ---------------------------------------------------------------------
    def index(self) -> SearchableIndex:
        """The current index, reloaded when a build has switched generations since."""
        with self._lock:
            current = self.store.current_name()
            if self._loaded is None or self._loaded.manifest.generation != current:
                self._loaded = self.store.load(expect_embedder=self.embedder.name, expect_chunker=self.chunker.settings)
            return self._loaded

    def term_weights(self, query: str) -> dict[str, float]:
        """The idf of each word of ``query`` in the current index; ``{}`` where the backend keeps no term statistics."""
        return self.index().term_weights(query) if self.store.keeps_term_statistics else {}

    def evidence(
        self,
        query: str,
        passages: Sequence[Passage],
        *,
        weights: dict[str, float] | None = None,
        term_weights: Mapping[str, float] | None = None,
        max_passages: int | None = None,
    ) -> EvidenceSet:
        """The evidence sentences for ``query`` as :meth:`ask` chooses them: :func:`select_evidence` with this
        config's ``evidence`` settings and this index's idf (``term_weights``, when already at hand). Eval
        studies pass other sentence ``weights`` and ``max_passages``."""
        ev_cfg = self.config.evidence
        return select_evidence(
            query,
            passages,
            self.embedder,
            max_sentences=ev_cfg.max_sentences,
            max_passages=ev_cfg.max_passages if max_passages is None else max_passages,
            relative=ev_cfg.relative,
            weights=weights,
            term_weights=self.term_weights(query) if term_weights is None else term_weights,
        )

    def info(self) -> dict[str, Any]:
        """Index status: articles, chunks, embedder, chunker, build time, generator, and the "not covered"
        threshold with its source (``configured``, ``calibrated`` or ``uncalibrated``: never declines)."""
        m = self.store.manifest()
        # "uncalibrated": no "not covered" threshold is known for this embedder's model, so no question is ever declined.
        threshold, source = self.relevance_threshold()
        return {
            "index_path": self.store.label,
            "articles": len(m.documents),
            "chunks": m.chunks,
            "embedder": m.embedder,
            "dimension": m.dimension,
            "chunker": dict(m.chunker),
            "index_type": _index_type(m.index),
            "built_at": m.built_at,
            "articles_dir": m.articles_dir,
            "generator": f"{self.config.generation.backend}:{self.config.generation.model}",
            "min_relevance": threshold,
            "min_relevance_source": source,
            "term_coverage_rule": self.term_coverage_rule(),
        }

    def term_coverage_rule(self) -> tuple[float, float] | None:
        """``(min_term_coverage, below_relevance)`` when that decline is in force for this index and embedder, else None."""
        min_cov, below = self.config.evidence.term_coverage_rule_for(self.embedder.name)
        return (min_cov, below) if min_cov > 0 and below > 0 and self.store.keeps_term_statistics else None

    def relevance_threshold(self, retriever: str | None = None) -> tuple[float, str]:
        """The "not covered" threshold of ``retriever`` (default: the configured one) and its source.

        In order: ``configured`` (``retrieval.min_relevance_*`` in the config), ``index`` (set
        for this index by ``rag calibrate`` with the same embedder model), ``calibrated``
        (shipped for the embedder's model) or ``uncalibrated`` (0: relevance never declines).
        """
        name = retriever or self.config.retrieval.retriever
        value, source = self.config.retrieval.threshold_source(name, embedder=self.embedder.name)
        if source == "configured":
            return value, source
        cal = read_calibration(self.store.root)
        if cal is not None and name in cal.thresholds and model_of(cal.embedder) == model_of(self.embedder.name):
            return cal.thresholds[name], "index"
        return value, source

    def article(self, doc_id: str) -> tuple[str, list[Chunk]]:
        """An indexed article's text, reassembled from its chunks by offset, and the chunks.

        Only the index is read (never the articles folder), so a caller may pass an id it
        was sent. ``("", [])`` for an id the current index does not hold.
        """
        index = self.index()
        chunks = index.chunks_of(doc_id)
        return assemble_text(chunks), chunks

    def retrieve(
        self,
        query: str,
        top_k: int | None = None,
        *,
        filters: MetadataFilter | None = None,
        retriever: str | None = None,
    ) -> list[Passage]:
        """Top-k passages for ``query`` from the current index.

        Args:
            query: the search text.
            top_k: passages wanted (default ``retrieval.top_k``).
            filters: restrict to articles by date range / source glob.
            retriever: ``dense``, ``bm25`` or ``hybrid`` (default ``retrieval.retriever``).
        """
        k = self.config.retrieval.top_k if top_k is None else top_k
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {k!r}")
        return make_retriever(self.config.retrieval, self.index(), self.embedder, retriever).retrieve(
            query, k, filters=filters
        )

    # -- answering -------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        filters: MetadataFilter | None = None,
        abstention: str | None = None,
    ) -> Answer:
        """Answer ``question`` from the articles, with citations.

        Each cited sentence is verified against its passage (``citations.mode``); when the
        generator is unavailable the answer is extractive (``Answer.extractive``), unless
        ``generation.fallback`` is ``error``.

        Raises:
            ValueError: empty question or bad setting.
            IndexNotFoundError, IndexMismatchError: no usable index.
            GeneratorError: the model failed and ``generation.fallback`` is ``error``.
        """
        answer = None
        for event in self.stream_events(
            question,
            top_k=top_k,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            filters=filters,
            abstention=abstention,
        ):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None
        return answer

    def stream(self, question: str, **options: Any) -> Iterator[str]:
        """Yield the answer text as it is generated (reasoning is not included)."""
        for event in self.stream_events(question, **options):
            if event.kind == "answer":
                yield event.text

    def stream_events(
        self,
        question: str,
        *,
        top_k: int | None = None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        query: str | None = None,
        filters: MetadataFilter | None = None,
        abstention: str | None = None,
    ) -> Iterator[StreamEvent]:
        """Retrieve, then stream reasoning and answer pieces, then the final :class:`Answer`.

        Args:
            question: the question to answer.
            top_k, temperature, max_new_tokens: per-call overrides of the config.
            query: text to retrieve with, when it differs from ``question`` (a rewritten
                follow-up).
            filters: restrict retrieval to articles by date range / source glob.
            abstention: ``balanced`` or ``cautious``, overriding ``evidence.abstention`` for this
                question (how readily it is declined).
        """
        question = _check_question(question)
        ev_cfg = self.config.evidence if abstention is None else self.config.evidence.with_abstention(abstention)
        gen_cfg = self.config.generation
        temperature = gen_cfg.temperature if temperature is None else temperature
        max_new_tokens = gen_cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
        if not 0.0 <= float(temperature) <= 2.0:
            raise ValueError(f"temperature must be between 0 and 2, got {temperature!r}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        search_text = (query or question).strip()
        passages = self.retrieve(search_text, top_k, filters=filters)
        yield StreamEvent("retrieved", passages=passages)
        if not passages:
            yield StreamEvent("answer", text=NOT_FOUND)
            yield StreamEvent(
                "done",
                answer=Answer(question=question, text=NOT_FOUND, passages=[], query=search_text, mode="declined"),
            )
            return
        yield from self._answer_events(question, passages, search_text, max_new_tokens, float(temperature), ev_cfg)

    def decline_rule(self, ev_cfg: EvidenceConfig | None = None) -> DeclineRule:
        """The decline thresholds in force for this index and embedder (:mod:`rag.answering.declining`), with
        ``ev_cfg`` in place of the config's ``evidence`` settings (one question's ``abstention``)."""
        ev_cfg = ev_cfg or self.config.evidence
        min_cov, below = ev_cfg.term_coverage_rule_for(self.embedder.name)
        return DeclineRule(
            floor=self.relevance_threshold()[0],
            min_answerability=ev_cfg.min_answerability_for(self.embedder.name),
            min_coverage=min_cov,
            below_relevance=below,
            max_passages=ev_cfg.max_passages,
        )

    def _answer_events(
        self,
        question: str,
        passages: list[Passage],
        search_text: str,
        max_new_tokens: int,
        temperature: float,
        ev_cfg: EvidenceConfig,
    ) -> Iterator[StreamEvent]:
        """Evidence first: choose the answering sentences, decline or let the model write the lead, check, fall back.

        1. :func:`rag.answering.evidence.select_evidence` picks the sentences that answer and scores
           answerability; below ``evidence.min_answerability``, with the top passage below the
           relevance floor, or with loosely related passages missing the question's rare words
           (:func:`rag.answering.declining.decline_text`), the question is declined without calling the generator (``mode="declined"``).
        2. The generator sees only those sentences and writes a short cited answer.
        3. :func:`rag.answering.verification.check_draft` verifies it and :mod:`rag.answering.lead` checks that it
           answers; an accepted draft is the lead (``mode="generated"``). Otherwise (unsupported,
           miscited, unresponsive, looping, empty, or the generator failed) the best evidence
           sentence leads (``mode="evidence"``). Either way the evidence sentences are quoted under it.
        """
        term_weights = self.term_weights(search_text)
        evidence = self.evidence(search_text, passages, term_weights=term_weights)
        base = dict(
            question=question,
            passages=list(passages),
            query=search_text,
            evidence=list(evidence.sentences),
            answerability=evidence.answerability,
        )
        declined = decline_text(search_text, evidence, passages, term_weights, self.decline_rule(ev_cfg))
        if declined:
            yield StreamEvent("answer", text=declined)
            yield StreamEvent("done", answer=Answer(text=declined, mode="declined", **base))
            return
        if self.config.generation.backend == "none":
            yield from self._evidence_events(evidence, base, notes=[])
            return
        # Nothing is shown before it is checked: the draft is read whole, checked, and only then
        # does the answer (lead, then quotes) go out, once. Reasoning still streams (collapsed on the page).
        run, looped = None, False
        try:
            run = self._draft_stream(search_text, evidence, max_new_tokens, temperature)
            for piece in run:
                # "draft": the model's unchecked text as it is written, for progress and diagnostics; never the answer.
                yield StreamEvent("reasoning" if piece.kind == "reasoning" else "draft", text=piece.text)
                if piece.kind == "answer" and repeats_a_line(run.answer):
                    looped = True  # greedy decoding of small models can loop on one line forever
                    break
        except GeneratorError as exc:
            if self.config.generation.fallback != "extractive":
                raise
            notes = [f"evidence lead: the generator is unavailable: {exc}"]
            yield from self._evidence_events(evidence, {**base, "reasoning": run.reasoning if run else ""}, notes)
            return
        finally:
            if run is not None:
                run.close()  # stops the model if the consumer left early
        yield from self._finish_draft(run, evidence, base, looped)

    def _draft_stream(
        self, question: str, evidence: EvidenceSet, max_new_tokens: int, temperature: float
    ) -> AnswerStream:
        gen_cfg = self.config.generation
        messages = build_evidence_prompt(
            question,
            [(e.n, e.text) for e in evidence.sentences],
            use_system_prompt=gen_cfg.use_system_prompt,
            few_shot=gen_cfg.few_shot,
        )
        return AnswerStream(
            self.generator,
            messages,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            stop=gen_cfg.stop,
            max_thinking_tokens=gen_cfg.max_thinking_tokens,
            opens_think=gen_cfg.opens_think,
        )

    def _finish_draft(
        self, run: AnswerStream, evidence: EvidenceSet, base: dict[str, Any], looped: bool
    ) -> Iterator[StreamEvent]:
        """Check the model's draft: faithful and responsive, it leads; otherwise the best evidence sentence does."""
        draft = run.answer
        if looped:  # the last sentence was still being written when the loop was cut
            draft = without_cut_sentence(draft)
        notes: list[str] = []
        if run.continued:
            budget = self.config.generation.max_thinking_tokens
            why = (
                f"the thinking budget of {budget} tokens was spent" if run.budget_spent else "the reasoning was cut off"
            )
            notes.append(f"{why}, so the reasoning was closed and the model was asked for its final answer")
        base = {**base, "reasoning": run.reasoning}
        question = base["query"] or base["question"]
        checked = check_draft(draft, question, base["passages"], self.embedder, self.config.citations)
        if checked.found_nothing and self.config.evidence.trust_model_decline and run.answer.strip():
            notes.append("declined: the model found no answer in the evidence (evidence.trust_model_decline)")
            yield StreamEvent("answer", text=NOT_FOUND)
            yield StreamEvent("done", answer=Answer(text=NOT_FOUND, mode="declined", notes=notes, **base))
            return
        why_not = (
            draft_rejection(checked.text, evidence, question, self.config.evidence)
            if checked.accepted
            else checked.reason
        )
        if why_not:
            reason = "the model reasoned but gave no answer" if not run.answer.strip() and run.reasoning else why_not
            notes.append(f"evidence lead: the model's draft was not used ({reason})")
            yield from self._evidence_events(
                evidence, {**base, "draft": checked.text, "out_of_range": checked.out_of_range}, notes
            )
            return
        lead = checked.text
        text = compose(lead, evidence.sentences)
        checked_by_n = {c.n: c for c in checked.citations}
        citations = [
            checked_by_n.get(c.n) or replace(c, status="supported", verified=1.0)
            for c in resolve_citations(text, base["passages"])
        ]
        answer = Answer(
            text=text,
            citations=citations,
            checks=checked.report.sentences,
            out_of_range=checked.out_of_range,
            notes=notes,
            mode="generated",
            lead=lead,
            lead_span=lead_span(lead, question),
            **base,
        )
        yield StreamEvent("answer", text=text)
        yield StreamEvent("done", answer=answer)

    def _evidence_events(self, evidence: EvidenceSet, base: dict[str, Any], notes: list[str]) -> Iterator[StreamEvent]:
        """The evidence answer: the best sentence leads, the other chosen sentences are quoted under it (``mode="evidence"``)."""
        lead = evidence_lead(evidence)
        text = compose(lead, evidence.sentences[1:])
        citations = resolve_citations(text, base["passages"])
        citations = [replace(c, status="supported", verified=1.0) for c in citations]  # the article's own words
        question = base["query"] or base["question"]
        yield StreamEvent("answer", text=text)
        yield StreamEvent(
            "done",
            answer=Answer(
                text=text,
                citations=citations,
                notes=notes,
                mode="evidence",
                extractive=True,
                lead=lead,
                lead_span=lead_span(lead, question),
                **base,
            ),
        )


def _check_question(question: Any) -> str:
    return check_question(
        question
    )  # the one check (rag/inputs.py); the length limit is the front ends' (ui.max_question_chars)
