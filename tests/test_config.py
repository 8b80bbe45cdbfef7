"""Tests for rag/config.py: typed YAML config, overrides, and errors that name the key."""

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
