"""Tests for rag/embedding/ (the torch backend, model names) and the FAISS search in rag/store.py against brute force."""

import numpy as np
import pytest

from fakes import FakeEmbedder
from rag.records import Chunk
from rag.embedding import resolve_embedder_path
from rag.store import IndexStore, write_generation


def test_packaged_model_resolves_to_local_folder():
    from pathlib import Path

    path = Path(resolve_embedder_path("all-MiniLM-L6-v2"))
    assert (path / "modules.json").is_file()
    assert resolve_embedder_path("/some/folder") == "/some/folder"


def _chunks(texts):
    return [Chunk(id=f"c{i}", doc_id=f"d{i}", title=f"t{i}", source=f"s{i}.txt", text=t, start=0, end=len(t)) for i, t in enumerate(texts)]


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


def test_fake_embedder_is_normalised():
    v = FakeEmbedder().encode(["a b c", "d"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)


@pytest.mark.slow
def test_real_embedder_normalised_and_semantic(real_embedder):
    v = real_embedder.encode(["Nvidia shares fell sharply.", "The chip maker's stock dropped.", "Sourdough needs a starter."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert real_embedder.encode([]).shape == (0, 384)
