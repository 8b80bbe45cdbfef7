"""Tests for rag/embedding/ (the torch backend, model names) and the FAISS search in rag/store.py against brute force."""

import numpy as np
import pytest

from rag.records import Chunk
from rag.embedding import resolve_embedder_path
from rag.store import IndexStore, write_generation


def test_packaged_model_resolves_to_local_folder():
    from pathlib import Path

    path = Path(resolve_embedder_path("all-MiniLM-L6-v2"))
    assert (path / "modules.json").is_file()
    assert resolve_embedder_path("/some/folder") == "/some/folder"


def _chunks(texts):
    return [
        Chunk(id=f"c{i}", doc_id=f"d{i}", title=f"t{i}", source=f"s{i}.txt", text=t, start=0, end=len(t))
        for i, t in enumerate(texts)
    ]


def test_faiss_top_k_matches_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = _chunks([f"text {i}" for i in range(200)])
    write_generation(tmp_path, vectors, chunks, {"embedder": {"name": "x", "dimension": 32}, "chunker": {}})
    index = IndexStore(tmp_path).load()
    query = rng.normal(size=(1, 32)).astype(np.float32)
    query /= np.linalg.norm(query)
    hits = index.search(query, 10)[0]
    expected = np.argsort(-(vectors @ query[0]))[:10]
    assert [c.id for c, _ in hits] == [f"c{i}" for i in expected]
    assert np.allclose([s for _, s in hits], (vectors @ query[0])[expected], atol=1e-5)


@pytest.mark.slow
def test_real_embedder_normalised_and_semantic(real_embedder):
    v = real_embedder.encode(
        ["Nvidia shares fell sharply.", "The chip maker's stock dropped.", "Sourdough needs a starter."]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert real_embedder.encode([]).shape == (0, 384)


def _contributing_block(heading: str) -> str:
    from conftest import ROOT

    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_contributing_example_backend_builds_and_answers(tmp_path, articles_dir, monkeypatch):
    """The worked example in CONTRIBUTING.md ("Adding an embedding backend") runs as written:
    one class plus one registry line make a backend that config validation accepts and RAG builds and answers with."""
    import rag.embedding as embedding
    from fakes import FakeGenerator
    from rag import RAG, Config

    monkeypatch.setattr(
        embedding, "BACKENDS", dict(embedding.BACKENDS)
    )  # the example's registry line is undone after the test
    exec(compile(_contributing_block("Adding an embedding backend"), "CONTRIBUTING.md", "exec"), {})  # noqa: S102 - the documented example, run as written
    assert "word-hash" in embedding.BACKENDS

    gen = FakeGenerator("DeepSeek released R1 on 20 January 2025 [1].")
    rag = RAG(Config.load(None, {"embedding.backend": "word-hash", "index.path": str(tmp_path / "i")}), generator=gen)
    assert rag.embedder.name == "word-hash-256"
    summary = rag.build(articles_dir)
    assert summary.articles == 3
    answer = rag.ask("When did DeepSeek release R1?")
    assert answer.passages[0].chunk.source == "r1.md"
    assert [c.source for c in answer.citations] == ["r1.md"] and len(gen.calls) == 1
    assert rag.info()["min_relevance_source"] == "uncalibrated"  # a model of its own: declines are off until calibrated
