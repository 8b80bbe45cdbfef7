"""Wire the stages into :class:`RAG`: build an index from articles, answer with citations.

Example:
    >>> rag = RAG.from_config("configs/default.yaml")   # cheap: models load on first use
    >>> summary = rag.build("data/articles")
    >>> answer = rag.ask("Who released DeepSeek-R1?")
    >>> answer.text, [c.title for c in answer.citations]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .chunking import Chunker
from .citations import attribute_citations, parse_markers, resolve_citations, strip_invalid_markers
from .config import Config
from .embedding import Embedder, SentenceTransformerEmbedder, make_embedder
from .extractive import EXTRACTIVE_HEADER, extractive_answer
from .generation import AnswerStream, Generator, GeneratorError, make_generator
from .prompting import NOT_FOUND, build_prompt
from .records import Answer, Passage
from .retrieval import MetadataFilter, make_retriever, not_covered_text
from .text import MARKER, sentence_spans
from .indexing import BuildError, BuildSummary, IndexBuilder
from .store import IndexStore, LoadedIndex
from .records import Verification
from .verification import CitationVerifier, remove_unsupported, removal_note


@dataclass(frozen=True)
class StreamEvent:
    """One event of :meth:`RAG.stream_events`.

    ``kind`` is ``"retrieved"`` (``passages`` set), ``"reasoning"`` or ``"answer"`` (``text``
    is the new piece), or ``"done"`` (``answer`` is the final :class:`Answer`).
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
    return built["type"] + (f" ({requested})" if requested and requested != built["type"] else "")


class RAG:
    """Grounded question answering over a folder of articles.

    Args:
        config: the full configuration.
        embedder: override the configured embedder (tests pass fakes).
        generator: override the configured generator.
    """

    def __init__(self, config: Config | None = None, *, embedder: Embedder | None = None, generator: Generator | None = None) -> None:
        self.config = config or Config()
        emb = self.config.embedding
        if embedder is None and emb.backend == "torch":
            # Named here (not via make_embedder) so tests can swap the model class on this module.
            embedder = SentenceTransformerEmbedder(emb.model, batch_size=emb.batch_size, device=emb.device)
        self.embedder: Embedder = embedder or make_embedder(emb)
        self._generator = generator
        ch = self.config.chunking
        self.chunker = Chunker(ch.chunk_tokens, ch.overlap_tokens, ch.encoding)
        self.store = IndexStore(self.config.index.path)
        self._loaded: LoadedIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None, *, index: str | None = None, overrides: dict[str, Any] | None = None, **kwargs: Any) -> RAG:
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
    def build(self, articles_dir: str | Path, show_progress: bool = False, *, full: bool = False,
              on_message: Callable[[str], None] | None = None) -> BuildSummary:
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
        builder = IndexBuilder(self.store.root, self.embedder, self.chunker, cfg.loader, cfg.indexing, on_message, cfg.index)
        summary = builder.build(articles_dir, full=full, show_progress=show_progress)
        with self._lock:
            self._loaded = None  # next question picks up the new generation
        return summary

    # -- reading ---------------------------------------------------------------------
    def index(self) -> LoadedIndex:
        """The current index, reloaded when a build has switched generations since."""
        with self._lock:
            current = self.store.current_name()
            if self._loaded is None or self._loaded.manifest.generation != current:
                self._loaded = self.store.load(expect_embedder=self.embedder.name, expect_chunker=self.chunker.settings)
            return self._loaded

    def info(self) -> dict[str, Any]:
        """Index status: articles, chunks, embedder, chunker, build time, generator."""
        m = self.store.manifest()
        return {
            "index_path": str(self.store.root),
            "articles": len(m.documents),
            "chunks": m.chunks,
            "embedder": m.embedder,
            "dimension": m.dimension,
            "chunker": dict(m.chunker),
            "index_type": _index_type(m.index),
            "built_at": m.built_at,
            "generator": f"{self.config.generation.backend}:{self.config.generation.model}",
        }

    def retrieve(self, query: str, top_k: int | None = None, *, filters: MetadataFilter | None = None, retriever: str | None = None) -> list[Passage]:
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
        return make_retriever(self.config.retrieval, self.index(), self.embedder, retriever).retrieve(query, k, filters=filters)

    # -- answering -------------------------------------------------------------------
    def ask(self, question: str, *, top_k: int | None = None, temperature: float | None = None, max_new_tokens: int | None = None,
            filters: MetadataFilter | None = None) -> Answer:
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
        for event in self.stream_events(question, top_k=top_k, temperature=temperature, max_new_tokens=max_new_tokens, filters=filters):
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
    ) -> Iterator[StreamEvent]:
        """Retrieve, then stream reasoning and answer pieces, then the final :class:`Answer`.

        Args:
            question: the question to answer.
            top_k, temperature, max_new_tokens: per-call overrides of the config.
            query: text to retrieve with, when it differs from ``question`` (a rewritten
                follow-up).
            filters: restrict retrieval to articles by date range / source glob.
        """
        question = _check_question(question)
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
            yield StreamEvent("done", answer=Answer(question=question, text=NOT_FOUND, passages=[], query=search_text))
            return
        if max(p.relevance_or_score for p in passages) < self.config.retrieval.min_relevance_for(embedder=self.embedder.name):
            # Nothing is relevant enough: say so and name the closest sources, without the generator.
            text = not_covered_text(passages)
            yield StreamEvent("answer", text=text)
            yield StreamEvent("done", answer=Answer(question=question, text=text, passages=passages, query=search_text))
            return
        yield from self._answer_events(question, passages, search_text, max_new_tokens, float(temperature))

    def _answer_events(self, question: str, passages: list[Passage], search_text: str, max_new_tokens: int, temperature: float) -> Iterator[StreamEvent]:
        """Generate the answer from ``passages`` (extractive when the generator is unavailable), then check its citations."""
        gen_cfg = self.config.generation
        run: AnswerStream | None = None
        streamed = False
        try:
            gen = self.generator
            prompt = build_prompt(
                question,
                passages,
                count_tokens=gen.count_tokens,
                context_window=gen.context_window,
                # A reasoning model's thinking budget needs room in the context too.
                max_new_tokens=max_new_tokens + (gen_cfg.max_thinking_tokens or 0),
                use_system_prompt=gen_cfg.use_system_prompt,
                few_shot=gen_cfg.few_shot,
            )
            run = AnswerStream(gen, prompt.messages, max_new_tokens=max_new_tokens, temperature=temperature, stop=gen_cfg.stop,
                               max_thinking_tokens=gen_cfg.max_thinking_tokens, opens_think=gen_cfg.opens_think)
            for piece in run:
                streamed = streamed or piece.kind == "answer"
                yield StreamEvent(piece.kind, text=piece.text)
                if piece.kind == "answer" and _repeats_a_line(run.answer):
                    break  # greedy decoding of small models can loop on one line forever
        except GeneratorError as exc:
            if gen_cfg.fallback != "extractive":
                raise
            yield from self._extractive_events(question, passages, search_text, f"the generator is unavailable: {exc}", run.reasoning if run else "", streamed)
            return
        finally:
            if run is not None:
                run.close()  # stops the model if the consumer left early
        notes: list[str] = []
        if run.continued:
            why = f"the thinking budget of {gen_cfg.max_thinking_tokens} tokens was spent" if run.budget_spent else "the reasoning was cut off"
            notes.append(f"{why}, so the reasoning was closed and the model was asked for its final answer")
        if not run.answer and run.reasoning:
            yield from self._extractive_events(question, prompt.passages, search_text, "the model reasoned but gave no answer", run.reasoning, streamed, notes)
            return
        valid = {p.n for p in prompt.passages}
        out_of_range = list(dict.fromkeys(n for n in parse_markers(run.answer) if n not in valid))
        text = strip_invalid_markers(drop_repeated_lines(run.answer).strip(), valid)
        added: set[int] = set()
        cit_cfg = self.config.citations
        if cit_cfg.attribute and text != NOT_FOUND:
            text, added = attribute_citations(text, prompt.passages, cit_cfg.min_support)
        citations = resolve_citations(text, prompt.passages, added=added)
        draft = ""
        if cit_cfg.require_support and text != NOT_FOUND and not any(c.support >= cit_cfg.min_support / 2 for c in citations):
            # Nothing the model said is backed by a passage: decline rather than pass on a guess.
            draft, text, citations = text, NOT_FOUND, []
        checks, removed = [], []
        if cit_cfg.mode != "off" and text != NOT_FOUND:
            verifier = CitationVerifier(self.embedder, cit_cfg.supported_threshold, cit_cfg.weak_threshold)
            report = verifier.verify(text, prompt.passages)
            if cit_cfg.mode == "strict" and report.flagged:
                kept, removed = remove_unsupported(text, report)
                notes.append(removal_note(removed))
                if not parse_markers(kept):
                    draft, text, citations, report = text, NOT_FOUND, [], Verification()
                else:
                    text = kept
                    report = verifier.verify(text, prompt.passages)
                    citations = resolve_citations(text, prompt.passages, added=added)
            checks = report.sentences
            best = report.by_passage()
            citations = [replace(c, similarity=best[c.n].similarity, verified=best[c.n].support, status=best[c.n].status) if c.n in best else c for c in citations]
            if removed and text != NOT_FOUND:
                text = f"{text}\n\n{removal_note(removed)}"  # strict mode says what it removed
        answer = Answer(
            question=question,
            text=text,
            citations=citations,
            draft=draft,
            passages=prompt.passages,
            reasoning=run.reasoning,
            query=search_text,
            checks=checks,
            removed=removed,
            out_of_range=out_of_range,
            notes=notes,
        )
        yield StreamEvent("done", answer=answer)

    def _extractive_events(self, question: str, passages: list[Passage], search_text: str, reason: str, reasoning: str = "",
                           streamed: bool = False, notes: list[str] | None = None) -> Iterator[StreamEvent]:
        """The extractive fallback: the best passage sentences, cited, marked as extractive."""
        body = extractive_answer(question, passages, self.embedder)
        text = f"{EXTRACTIVE_HEADER}\n\n{body}" if body else NOT_FOUND
        if not streamed:
            yield StreamEvent("answer", text=text)
        answer = Answer(question=question, text=text, citations=resolve_citations(body, passages), passages=list(passages), reasoning=reasoning,
                        query=search_text, extractive=bool(body), notes=[*(notes or []), f"extractive answer: {reason}"])
        yield StreamEvent("done", answer=answer)


def _repeats_a_line(text: str) -> bool:
    """True when a completed sentence or line of ``text`` repeats an earlier one."""
    spans = sentence_spans(text)[:-1]  # the last sentence may still be growing
    seen: set[str] = set()
    for start, end in spans:
        key = " ".join(MARKER.sub("", text[start:end]).split()).lower()
        if key in seen:
            return True
        seen.add(key)
    return False


def drop_repeated_lines(text: str) -> str:
    """Remove second and later copies of identical sentences (markers ignored when comparing)."""
    seen: set[str] = set()
    out: list[str] = []
    last = 0
    for start, end in sentence_spans(text):
        key = " ".join(MARKER.sub("", text[start:end]).split()).lower()
        if key in seen:
            last = end
            continue
        seen.add(key)
        out.append(text[last:end])
        last = end
    out.append(text[last:])
    return "".join(out)


def _check_question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question is empty; ask something about the articles, e.g. 'Who released DeepSeek-R1?'")
    return question.strip()


