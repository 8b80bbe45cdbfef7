"""``rag build --ray`` (rag/embedding/ray_engine.py): a real local Ray cluster (2 CPUs) embeds the sample articles."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("ray", reason="the Ray embedding engine needs ray: pip install '.[ray]'")

from conftest import ROOT  # noqa: E402

from rag import RAG  # noqa: E402
from rag.config import Config  # noqa: E402

pytestmark = pytest.mark.slow


def test_ray_build_gives_the_local_build_vectors(real_embedder, tmp_path, capsys):
    """Every chunk's vector from Ray Data actors matches the local embedder's (cosine > 0.999), chunk for chunk,
    and the local Ray cluster the build started is stopped after it."""
    import ray

    from rag.cli import main

    articles = shutil.copytree(ROOT / "data" / "articles", tmp_path / "articles")
    local = RAG(Config.load(None, {"index.path": str(tmp_path / "local")}), embedder=real_embedder)
    local.build(articles)
    assert main(["build", str(articles), "--ray", "--index", str(tmp_path / "ray"), "--quiet"]) == 0
    assert "on Ray (a local cluster)" in capsys.readouterr().err
    assert not ray.is_initialized()
    remote = RAG(Config.load(None, {"index.path": str(tmp_path / "ray")}), embedder=real_embedder)
    a, b = local.index(), remote.index()
    by_id_a = {c.id: v for (_, c), v in zip(a.iter_rows(), a.rows_and_vectors()[1])}
    by_id_b = {c.id: v for (_, c), v in zip(b.iter_rows(), b.rows_and_vectors()[1])}
    assert by_id_a.keys() == by_id_b.keys() and len(by_id_a) > 50
    ids = sorted(by_id_a)
    cos = np.einsum("ij,ij->i", np.stack([by_id_a[i] for i in ids]), np.stack([by_id_b[i] for i in ids]))
    print(f"\nRay vs local: {len(ids)} chunks, min cosine {cos.min():.6f}", file=sys.stderr)
    assert cos.min() > 0.999
    assert (
        remote.store.manifest().embedder == local.store.manifest().embedder
    )  # queries embedded locally fit either index


def test_ray_engine_without_ray_says_which_extra_to_install(monkeypatch):
    """The default install has no ray: embedding.engine: ray must say how to get it."""
    from rag.embedding import make_embedder
    from rag.embedding.ray_engine import RayEmbedder

    monkeypatch.setitem(sys.modules, "ray", None)
    emb = RayEmbedder(Config.load(None, {"embedding.engine": "ray"}).embedding, "all-MiniLM-L6-v2", make_embedder)
    with pytest.raises(ImportError, match=r"pip install '\.\[ray\]'"):
        emb.encode(["a text"])


def test_failed_ray_embedding_leaves_the_previous_index_answering(real_embedder, articles_dir, tmp_path, monkeypatch):
    """A build whose Ray embedding fails (a worker died) raises, and the index it was updating still answers as before."""
    from rag.embedding.ray_engine import RayEmbedder

    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "embedding.engine": "local"}), embedder=real_embedder
    )
    rag.build(articles_dir)
    before = rag.store.current_name()
    answer = [p.chunk.id for p in rag.retrieve("sourdough starter", 2)]

    def dies(self, texts, show_progress=False):
        raise RuntimeError("ray worker died")

    monkeypatch.setattr(RayEmbedder, "encode", dies)
    (articles_dir / "new.txt").write_text("Quantum chips\n\nA lab showed a chip with a thousand qubits.\n")
    ray_rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "embedding.engine": "ray"}), embedder=real_embedder
    )
    with pytest.raises(RuntimeError, match="ray worker died"):
        ray_rag.build(articles_dir)
    assert rag.store.current_name() == before
    assert [p.chunk.id for p in RAG(rag.config, embedder=real_embedder).retrieve("sourdough starter", 2)] == answer
