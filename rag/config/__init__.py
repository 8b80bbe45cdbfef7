"""Typed configuration loaded from YAML, validated once.

One frozen pydantic model per pipeline stage, nested in :class:`Config`. YAML keys equal
field names; unknown keys, wrong types and out-of-range values raise :class:`ConfigError`
naming the key, the bad value and the fix. Names of backends, retrievers, index types and
rewrite modes are checked against the registries that build them, so a typo in
``generation.backend`` fails at load, not at the first question. Constructors downstream
receive a validated config and trust it.

Example:
    >>> cfg = Config.load("configs/default.yaml", overrides={"retrieval.top_k": 3})
    >>> cfg.retrieval.top_k
    3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from .backends import override_keys
from .base import ConfigError, _describe, _Section
from .profile import apply_profile, user_fields
from .stages import (
    CALIBRATED_ANSWERABILITY,
    CALIBRATED_TERM_COVERAGE,
    CALIBRATED_RELEVANCE,
    ChunkingConfig,
    CitationsConfig,
    EmbeddingConfig,
    EvidenceConfig,
    GenerationConfig,
    IndexConfig,
    IndexingConfig,
    LoaderConfig,
    RetrievalConfig,
)
from .ui import UIConfig

__all__ = [
    "CALIBRATED_ANSWERABILITY",
    "CALIBRATED_RELEVANCE",
    "CALIBRATED_TERM_COVERAGE",
    "ChunkingConfig",
    "CitationsConfig",
    "Config",
    "ConfigError",
    "EmbeddingConfig",
    "EvidenceConfig",
    "GenerationConfig",
    "IndexConfig",
    "IndexingConfig",
    "LoaderConfig",
    "RetrievalConfig",
    "UIConfig",
    "apply_profile",
    "user_fields",
]


class Config(_Section):
    """The whole configuration, one section per stage."""

    loader: LoaderConfig = Field(default_factory=LoaderConfig, description="How articles are read.")
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig, description="How articles are split.")
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig, description="The embedder.")
    index: IndexConfig = Field(default_factory=IndexConfig, description="Where the index lives and how it is searched.")
    indexing: IndexingConfig = Field(default_factory=IndexingConfig, description="How builds update an index.")
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig, description="How passages are retrieved.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="The generator.")
    citations: CitationsConfig = Field(default_factory=CitationsConfig, description="How citations are checked.")
    evidence: EvidenceConfig = Field(
        default_factory=EvidenceConfig, description="Evidence-first answering: evidence sentences and answerability."
    )
    ui: UIConfig = Field(default_factory=UIConfig, description="The web UI.")

    @model_validator(mode="before")
    @classmethod
    def _model_profile(cls, data: Any) -> Any:
        """The model's profile (rag.models) fills the generation and evidence fields this config leaves open."""
        return apply_profile(data) if isinstance(data, dict) else data

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
        """Load a YAML file (or the defaults when ``path`` is None) and apply dotted overrides.

        Args:
            path: a YAML file whose top-level keys are section names.
            overrides: ``{"retrieval.top_k": 3}``-style values applied after the file
                (None values are skipped); ``generation.openai.retries`` sets a key of a
                backend's own section.

        Raises:
            ConfigError: the file is missing or malformed, or a key or value is invalid.
        """
        data = _read_yaml(Path(path)) if path is not None else {}
        if isinstance(data.get("citations"), str):
            data = {**data, "citations": {"mode": data["citations"]}}  # `citations: strict` shorthand
        for dotted, value in (overrides or {}).items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            if not key:
                raise ConfigError(f"override {dotted!r} must look like 'section.key'")
            current = data.get(section, {})
            if not isinstance(current, dict):
                raise ConfigError(f"section {section!r} must be a mapping")
            model = cls.model_fields[section].annotation if section in cls.model_fields else None
            for nested in override_keys(model, key):  # an old flat key: each backend section taking it
                current = _set_in(current, nested.split("."), value)
            data = {**data, section: current}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, cls)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for manifests and display)."""
        return self.model_dump()


def _set_in(mapping: dict[str, Any], keys: list[str], value: Any) -> dict[str, Any]:
    """``mapping`` with ``value`` at the nested ``keys`` (``generation.openai.retries``: a backend's own section)."""
    head, *rest = keys
    inner = mapping.get(head)
    return {**mapping, head: _set_in(inner if isinstance(inner, dict) else {}, rest, value) if rest else value}


def _read_yaml(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; pass an existing YAML file (e.g. configs/default.yaml)")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded
