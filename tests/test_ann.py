"""Tests for rag/store/ann.py: index types, auto choice, tuning to the recall target, filtered search."""

import faiss
import numpy as np
import pytest

from rag.store import ann


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around n/20 random unit centres at cosine ~0.85 to their centre.

    Like MiniLM chunks of real articles, a vector's nearest neighbour sits at cosine ~0.7-0.8.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x = 0.85 * centres[rng.integers(0, len(centres), n)] + np.sqrt(1 - 0.85**2) * noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def test_auto_picks_by_corpus_size():
    """auto: exact search below 50k chunks, ivf from there on (see the rag/store/ann.py docstring for why not hnsw)."""
    assert ann.resolve_type("auto", 0) == "flat"
    assert ann.resolve_type("auto", ann.AUTO_FLAT_MAX - 1) == "flat"
    assert ann.resolve_type("auto", ann.AUTO_FLAT_MAX) == "ivf"
    assert ann.resolve_type("auto", 10_000_000) == "ivf"
    assert ann.resolve_type("ivf", 10) == "ivf"
    assert ann.resolve_type("hnsw", 10_000_000) == "hnsw"


def test_unknown_type_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown index type 'annoy'.*'flat'.*'hnsw'.*'ivf'"):
        ann.resolve_type("annoy", 10)


def test_flat_matches_numpy_brute_force():
    x = clustered(500)
    q = clustered(20, seed=1)
    built = ann.build_index(x, np.arange(500) * 7, "flat")
    scores, ids = built.index.search(q, 10)
    expected = brute_force(x, q, 10)
    assert (ids == expected * 7).all()
    assert np.allclose(scores, np.take_along_axis(q @ x.T, expected, axis=1), atol=1e-5)
    assert built.info["type"] == "flat" and "ef_search" not in built.info


@pytest.mark.parametrize("kind, param", [("hnsw", "ef_search"), ("ivf", "nprobe")])
def test_approximate_types_are_tuned_to_the_recall_target(kind, param):
    """Guards against an index that is fast but misses neighbours: recall@10 >= 0.95 vs brute force on fresh queries."""
    both = clustered(4200)
    x, q = both[:4000], both[4000:]  # queries: fresh draws from the corpus' distribution, not in the index
    built = ann.build_index(x, None, kind, recall_target=0.95)
    assert built.info["type"] == kind and param in built.info and built.info["recall_met"]
    _, ids = built.index.search(q, 10)
    assert ann.recall_at_k(ids, brute_force(x, q, 10)) >= 0.93  # fresh queries: a little below the tuned 0.95 is noise


def test_tuned_parameter_is_saved_in_the_faiss_file():
    x = clustered(3000)
    for kind in ("hnsw", "ivf"):
        built = ann.build_index(x, None, kind, recall_target=0.99)
        name, value = ann.search_param(built.index)
        again = faiss.deserialize_index(faiss.serialize_index(built.index))
        assert ann.search_param(again) == (name, value) == (name, built.info[name])


def test_hnsw_searches_with_a_margin_over_what_its_probes_needed(monkeypatch):
    """Guards against hnsw missing the target on real queries: probes overrate graph search, so efSearch is doubled."""
    x = clustered(3000)
    doubled = ann.build_index(x, None, "hnsw", recall_target=0.9).info
    monkeypatch.setattr(ann, "HNSW_EF_FACTOR", 1)
    plain = ann.build_index(x, None, "hnsw", recall_target=0.9).info
    assert doubled["ef_search"] == 2 * plain["ef_search"] and doubled["tuned_recall"] >= plain["tuned_recall"]


def test_memory_bytes_is_the_serialised_size():
    """Guards against memory_bytes holding a serialised copy: it counts bytes as FAISS writes them, same total."""
    for kind in ("flat", "ivf"):
        index = ann.build_index(clustered(2000), None, kind).index
        assert ann.memory_bytes(index) == faiss.serialize_index(index).nbytes


def test_exact_neighbours_match_brute_force_with_ids():
    x, q = clustered(800), clustered(15, seed=3)
    ids = np.arange(800, dtype=np.int64) * 3 + 5
    assert (ann.exact_neighbours(x, ids, q, 10) == ids[brute_force(x, q, 10)]).all()


def test_higher_recall_target_never_lowers_the_search_parameter():
    x = clustered(3000)
    low = ann.build_index(x, None, "hnsw", recall_target=0.5).info["ef_search"]
    high = ann.build_index(x, None, "hnsw", recall_target=0.999).info["ef_search"]
    assert high >= low


def test_ivf_pq_uses_less_memory_than_flat_and_reports_recall():
    x = clustered(4000)
    flat = ann.build_index(x, None, "flat")
    pq = ann.build_index(x, None, "ivf", pq_bytes=8)
    assert pq.info["factory"].endswith("PQ8np") and pq.info["pq_bytes"] == 8
    assert ann.memory_bytes(pq.index) < ann.memory_bytes(flat.index) / 2
    assert 0.0 < pq.info["tuned_recall"] <= 1.0 and "recall_met" in pq.info


def test_tuning_stops_when_recall_stops_rising(monkeypatch):
    """Guards against PQ builds scanning every list while tuning: when recall is capped below the goal, wider searches are futile."""
    calls = []

    def capped(found, truth):
        calls.append(1)
        return 0.5  # like PQ codes: no nprobe reaches the goal

    monkeypatch.setattr(ann, "recall_at_k", capped)
    built = ann.build_index(clustered(4000), None, "ivf", recall_target=0.95)
    assert len(calls) == 3  # a first step, then two that add nothing
    assert built.info["nprobe"] == 1 and not built.info["recall_met"] and built.info["nlist"] > 64


def test_pq_bytes_must_divide_the_dimension():
    with pytest.raises(
        ValueError, match=r"pq_bytes must divide the embedding dimension 32, got 7; try one of \[1, 2, 4, 8, 16, 32\]"
    ):
        ann.build_index(clustered(100), None, "ivf", pq_bytes=7)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_filtered_search_with_typed_parameters(kind):
    """Guards against IVF refusing plain SearchParameters ('params have incorrect type') in filtered search."""
    x = clustered(2000)
    ids = np.arange(2000, dtype=np.int64) * 3
    built = ann.build_index(x, ids, kind)
    allowed = ids[::5]
    params = ann.search_parameters(built.index, faiss.IDSelectorBatch(allowed))
    _, found = built.index.search(x[:4], 5, params=params)
    assert set(found[found >= 0].tolist()) <= set(allowed.tolist())
    assert found[0, 0] == 0 and found[1, 0] != 3  # row 0 is allowed and its own best match; row 3 is filtered out
    assert (found >= 0).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_vectors_can_be_reconstructed_by_id(kind):
    """Incremental builds and MMR read stored vectors back by chunk row; IVF needs its direct map for that."""
    x = clustered(1000)
    ids = np.arange(1000, dtype=np.int64) + 100
    built = ann.build_index(x, ids, kind)
    assert np.allclose(built.index.reconstruct_batch(np.array([100, 599], dtype=np.int64)), x[[0, 499]], atol=1e-6)


def test_tiny_and_empty_corpora_fall_back_to_flat():
    """Guards against IVF training on fewer points than lists (FAISS aborts) on a tiny index."""
    tiny = ann.build_index(clustered(10), None, "ivf")
    assert tiny.info["type"] == "flat" and tiny.index.ntotal == 10
    empty = ann.build_index(np.zeros((0, 32), dtype=np.float32), None, "auto")
    assert empty.index.ntotal == 0 and empty.info["type"] == "flat"


def test_recall_at_k_hand_case():
    found = np.array([[1, 2, 3], [4, 5, -1]])
    truth = np.array([[1, 2, 9], [4, 6, 7]])
    assert ann.recall_at_k(found, truth) == pytest.approx(3 / 6)


def test_probe_queries_sit_at_the_requested_cosine():
    x = clustered(500, dim=64)
    q = ann.probe_queries(x, count=200, cosine=0.7)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    best = (q @ x.T).max(axis=1)
    assert 0.65 < np.median(best) < 0.95


def test_bad_arguments_name_the_value():
    from rag.config import Config

    with pytest.raises(ValueError, match="index.recall_target must be > 0"):  # checked once, at the config
        Config.load(None, {"index.recall_target": 0.0})
    with pytest.raises(ValueError, match="got 3 ids for 50 vectors"):
        ann.build_index(clustered(50), np.arange(3), "flat")


# -- through the store: real FAISS files on disk ---------------------------------------


def _many_articles(folder, n=80):
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(400)]
    folder.mkdir()
    for i in range(n):
        text = " ".join(rng.choice(words, 60)) + f". Article {i} mentions topic{i % 7}."
        (folder / f"a{i:03d}.txt").write_text(f"Title {i}\n\n{text}\n", encoding="utf-8")
    return folder


def _rag(tmp_path, embedder, **overrides):
    from rag import RAG, Config
    from fakes import FakeGenerator

    cfg = Config.load(
        None,
        {"index.path": str(tmp_path / "idx"), "retrieval.retriever": "dense", "retrieval.dedup": "none", **overrides},
    )
    return RAG(cfg, embedder=embedder, generator=FakeGenerator())


@pytest.mark.parametrize("kind, pq", [("hnsw", 0), ("ivf", 0), ("ivf", 8)])
def test_store_builds_the_configured_type_and_searches_like_flat(tmp_path, kind, pq):
    from fakes import FakeEmbedder

    folder = _many_articles(tmp_path / "arts")
    flat = _rag(tmp_path / "f", FakeEmbedder(), **{"index.type": "flat"})
    flat.build(folder)
    rag = _rag(tmp_path / "a", FakeEmbedder(), **{"index.type": kind, "index.pq_bytes": pq})
    rag.build(folder)
    built = rag.index().manifest.index["built"]
    assert (
        built["type"] == kind and built["factory"].startswith("IDMap2,") and (("PQ8" in built["factory"]) == bool(pq))
    )
    assert (rag.index().path / "vectors.npy").is_file() == bool(pq)
    query = "w1 w2 w3 topic3"
    if not pq:  # exact codes: the same top hits as exact search
        assert [p.chunk.id for p in rag.retrieve(query, 5)] == [p.chunk.id for p in flat.retrieve(query, 5)]
    else:
        assert len(rag.retrieve(query, 5)) == 5


def test_filtered_retrieval_on_ivf(tmp_path):
    """Guards against 'IndexIVF params have incorrect type' when a source filter is set."""
    from fakes import FakeEmbedder
    from rag.retrieval import MetadataFilter

    rag = _rag(tmp_path, FakeEmbedder(), **{"index.type": "ivf"})
    rag.build(_many_articles(tmp_path / "arts"))
    hits = rag.retrieve("w1 w2 topic3", 3, filters=MetadataFilter(source="a01*"))
    assert hits and all(p.chunk.source.startswith("a01") for p in hits)


def test_changing_the_index_type_rewrites_without_embedding(tmp_path):
    """A new index.type takes effect at the next build, re-using every stored (exact) vector."""
    from fakes import FakeEmbedder

    folder = _many_articles(tmp_path / "arts")
    emb = FakeEmbedder()
    first = _rag(tmp_path, emb, **{"index.type": "ivf", "index.pq_bytes": 8})
    first.build(folder)
    calls = emb.calls
    second = _rag(tmp_path, emb, **{"index.type": "flat"})
    summary = second.build(folder)
    assert emb.calls == calls and summary.mode != "full"  # nothing embedded again
    assert second.index().manifest.index["built"]["type"] == "flat"
    stored = dict(zip(*second.index().rows_and_vectors()))
    expect = dict(zip(*first.index().rows_and_vectors()))  # from vectors.npy: exact despite PQ
    row = next(iter(stored))
    assert np.allclose(stored[row], expect[row]) and np.allclose(
        stored[row], emb.vector(second.index().chunks_by_rows([row])[row].indexed_text)
    )


@pytest.mark.slow
def test_real_embedder_hnsw_index_on_disk(tmp_path, articles_dir, real_embedder):
    flat = _rag(tmp_path / "f", real_embedder, **{"index.type": "flat"})
    flat.build(articles_dir)
    hnsw = _rag(tmp_path / "h", real_embedder, **{"index.type": "hnsw"})
    hnsw.build(articles_dir)
    assert hnsw.index().manifest.index["built"]["type"] == "hnsw"
    q = "How much market value did Nvidia lose?"
    assert [p.chunk.id for p in hnsw.retrieve(q, 4)] == [p.chunk.id for p in flat.retrieve(q, 4)]
