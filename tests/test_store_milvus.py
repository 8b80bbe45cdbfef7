"""The Milvus backend (rag/store/milvus*.py) against a real ``milvus-lite server`` and an embedded ``.db``.

One server process and one build of the sample articles (FAISS and Milvus, sharing one set of
vectors) serve the whole module; the incremental and crash tests use their own collections.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs pymilvus: pip install '.[milvus]'")
pytest.importorskip("milvus_lite", reason="the Milvus tests need milvus-lite: pip install '.[milvus]'")

from conftest import ARTICLES, ROOT, write_articles  # noqa: E402
from fakes import FakeEmbedder  # noqa: E402

from rag import RAG  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.retrieval.filters import MetadataFilter  # noqa: E402
from rag.faults import PAUSE_ENV  # noqa: E402

pytestmark = pytest.mark.slow

SAMPLE = ROOT / "data" / "articles"
QUESTIONS = [
    "When was DeepSeek-R1 released and under which licence?",
    "How much did Nvidia's share price fall after the DeepSeek launch?",
    "What is GRPO?",
    "Who is Liang Wenfeng and what is High-Flyer?",
    "Why did the Italian Garante block DeepSeek?",
    "What did the US chip export controls restrict?",
    "How does FP8 mixed precision training work in DeepSeek-V3?",
    "What is knowledge distillation?",
    "How much did training DeepSeek-V3 cost?",
    "How does R1 compare with o1 on benchmarks?",
    "What was the price war among Chinese model makers in May 2024?",
    "Is an open-weights model open source?",
]


class CachingEmbedder:
    """The real embedder, remembering every text's vector: the FAISS and Milvus builds share them."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self._memo: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def encode(self, texts, show_progress: bool = False) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            for t, v in zip(todo, self.inner.encode(todo)):
                self._memo[t] = v
        return np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, self.dimension), dtype=np.float32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A ``milvus-lite server`` on loopback; stopped by its pid at teardown. Yields its URL."""
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus-data")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"milvus-lite server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("milvus-lite server did not listen within 60 s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _config(tmp: Path, **index) -> Config:
    milvus = {"uri", "collection", "token_env"}  # the milvus backend's own settings: index.milvus.*
    keys = {(f"index.milvus.{k}" if k in milvus else f"index.{k}"): v for k, v in index.items()}
    return Config.load(None, keys | {"retrieval.dedup": "none"})


@pytest.fixture(scope="module")
def built(milvus_server, real_embedder, tmp_path_factory):
    """The sample articles built into FAISS and into the Milvus server, with the same vectors."""
    tmp = tmp_path_factory.mktemp("sample")
    articles = shutil.copytree(SAMPLE, tmp / "articles")
    emb = CachingEmbedder(real_embedder)
    faiss = RAG(_config(tmp, path=str(tmp / "faiss")), embedder=emb)
    faiss.build(articles)
    milvus = RAG(
        _config(tmp, backend="milvus", uri=milvus_server, collection="sample", path=str(tmp / "milvus-lock")),
        embedder=emb,
    )
    milvus.build(articles)
    return faiss, milvus, articles


def _overlap(a: RAG, b: RAG, retriever: str, k: int = 4, filters: MetadataFilter | None = None) -> float:
    same = total = 0
    for q in QUESTIONS:
        ids_a = {p.chunk.id for p in a.retrieve(q, k, retriever=retriever, filters=filters)}
        ids_b = {p.chunk.id for p in b.retrieve(q, k, retriever=retriever, filters=filters)}
        same += len(ids_a & ids_b)
        total += max(len(ids_a), 1)
    return same / total


def test_milvus_dense_top_passages_equal_faiss(built):
    """Exact dense search (FLAT in Milvus, flat FAISS) over the same vectors must give the same top 4 for every question."""
    faiss, milvus, _ = built
    overlap = _overlap(faiss, milvus, "dense")
    print(f"\ndense top-4 overlap FAISS vs Milvus: {overlap:.3f}")
    assert overlap == 1.0
    q = QUESTIONS[0]
    a, b = faiss.retrieve(q, 4, retriever="dense"), milvus.retrieve(q, 4, retriever="dense")
    assert [round(p.relevance, 4) for p in a] == [
        round(p.relevance, 4) for p in b
    ]  # "not covered" sees the same cosine


def test_milvus_hybrid_overlaps_faiss_and_reports_it(built):
    """FAISS fuses by score (convex), Milvus by rank, and Milvus's BM25 does not stem: most but not all passages agree."""
    faiss, milvus, _ = built
    overlap = _overlap(faiss, milvus, "hybrid")
    print(f"\nhybrid top-4 overlap FAISS vs Milvus: {overlap:.3f}")
    assert overlap >= 0.6
    hits = milvus.retrieve("Garante", 3, retriever="bm25")
    assert hits and all("Garante" in p.chunk.title + p.chunk.text for p in hits)


def test_milvus_hybrid_fuses_by_rank_because_lite_bm25_scores_are_order_only(built):
    """Convex fusion mixes BM25 by value on FAISS; Milvus declares its BM25 scores order-only, so hybrid falls back to RRF."""
    from rag.retrieval import HybridRetriever, reciprocal_rank_fusion

    faiss, milvus, _ = built
    assert faiss.index().bm25_scores_comparable and not milvus.index().bm25_scores_comparable
    index, q = milvus.index(), QUESTIONS[0]
    hybrid = HybridRetriever(index, milvus.embedder, fusion="convex", dedup="none", candidates=20)
    assert not hybrid.score_is_similarity
    got = hybrid.retrieve(q, 4)
    dense = index.dense_search(milvus.embedder.encode([q]), 20)
    sparse = index.bm25_retrieval(q, None, 20)
    expected = reciprocal_rank_fusion([[h.row for h in dense], [h.row for h in sparse]], [1.0, 1.0], 60)[:4]
    assert [p.score for p in got] == pytest.approx([s for _, s in expected])


def test_the_source_viewer_reads_an_article_back_from_milvus(built):
    """RAG.article rebuilds the article text from its chunks in Milvus exactly as from FAISS."""
    faiss, milvus, _ = built
    doc = faiss.retrieve(QUESTIONS[0], 1, retriever="dense")[0].chunk.doc_id
    text, chunks = milvus.article(doc)
    assert (text, [c.id for c in chunks]) == (faiss.article(doc)[0], [c.id for c in faiss.article(doc)[1]])
    assert text and all(text[c.start : c.end] == c.text for c in chunks)
    assert milvus.article("no-such-article") == ("", [])


def test_milvus_filters_by_date_and_source_as_faiss_does(built):
    """A date range and a source glob restrict Milvus's results to exactly what they restrict FAISS's to."""
    faiss, milvus, _ = built
    for flt in (
        MetadataFilter(since="2025-01-25"),
        MetadataFilter(until="2025-01-10"),
        MetadataFilter(source="policy/*,news/*.md"),
    ):
        assert _overlap(faiss, milvus, "dense", filters=flt) == 1.0, flt
        for p in milvus.retrieve("DeepSeek", 6, retriever="hybrid", filters=flt):
            assert flt.matches(p.chunk.source, p.chunk.date), (flt, p.chunk.source, p.chunk.date)
    assert milvus.retrieve("DeepSeek", 3, filters=MetadataFilter(source="no-such-folder/*")) == []


def test_rag_index_info_and_remove_work_against_milvus(built, milvus_server, tmp_path, capsys):
    """``rag index info`` reads the Milvus manifest; ``rag index remove`` deletes an article's rows in place."""
    from rag.cli import main

    faiss, milvus, _ = built
    cfg = tmp_path / "milvus.yaml"
    cfg.write_text(
        json.dumps(
            {
                "index": {
                    "backend": "milvus",
                    "milvus": {"uri": milvus_server, "collection": "sample"},
                    "path": str(milvus.store.root),
                }
            }
        )
    )
    assert main(["index", "info", "--json", "--config", str(cfg)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["articles"] == faiss.info()["articles"] and info["chunks"] == faiss.info()["chunks"]
    assert info["index_type"] == "milvus FLAT (auto)"
    before = milvus.store.live_collection()
    assert main(["index", "remove", "explainers/grpo-explained.md", "--config", str(cfg)]) == 0
    assert "Removed explainers/grpo-explained.md" in capsys.readouterr().out
    assert milvus.store.live_collection() == before  # in place, no new collection
    sources = {p.chunk.source for p in milvus.retrieve("What is GRPO?", 8, retriever="dense")}
    assert "explainers/grpo-explained.md" not in sources
    assert milvus.index().size == info["chunks"] - sum(
        d.chunks for d in faiss.index().manifest.documents if d.source == "explainers/grpo-explained.md"
    )


def _table(rag: RAG) -> list[tuple[str, str]]:
    return sorted((c.source, c.text) for _, c in rag.index().iter_rows())


def test_embedded_db_applies_edit_add_delete_rename_in_place(tmp_path):
    """An embedded .db index follows edits, additions, deletions and renames without a new collection,
    embedding only new text, and ends up holding exactly what a FAISS build of the folder holds."""
    arts = write_articles(tmp_path / "articles")
    emb = FakeEmbedder()
    rag = RAG(
        _config(tmp_path, backend="milvus", uri=str(tmp_path / "m.db"), path=str(tmp_path / "lock")), embedder=emb
    )
    rag.build(arts)
    first = rag.store.live_collection()
    (arts / "r1.md").write_text(ARTICLES["r1.md"] + "\nThe weights were published on Hugging Face.\n")
    (arts / "bread.html").rename(arts / "sourdough.html")
    (arts / "markets" / "nvidia.txt").unlink()
    (arts / "new.txt").write_text("Quantum chips\nDate: 2025-03-01\n\nA lab showed a chip with a thousand qubits.\n")
    s = rag.build(arts)
    assert (s.added, s.updated, s.removed, s.renamed) == (1, 1, 1, 1)
    assert (
        s.reused_chunks >= 1 and s.embedded_chunks == 2
    )  # the renamed article is not embedded again; the edit and the new one are
    assert rag.store.live_collection() == first and rag.store.stale_reason() is None
    assert rag.retrieve("qubits chip", 1)[0].chunk.source == "new.txt"
    assert rag.index().size == rag.store.manifest().chunks == len(list(rag.index().iter_rows()))
    faiss = RAG(_config(tmp_path, path=str(tmp_path / "faiss")), embedder=FakeEmbedder())
    faiss.build(arts)
    assert _table(rag) == _table(faiss)
    assert rag.build(arts).mode == "unchanged"


def test_a_process_reads_an_embedded_db_another_process_built(tmp_path):
    """Milvus Lite reopens a stored collection released: a second process (rag ask after rag build) must load it to read."""
    arts = write_articles(tmp_path / "articles")
    db = str(tmp_path / "m.db")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    writer = (
        "import sys; from fakes import FakeEmbedder; from rag import RAG; from rag.config import Config; "
        "RAG(Config.load(None, {'index.backend': 'milvus', 'index.milvus.uri': sys.argv[1], 'index.path': sys.argv[2]}), "
        "embedder=FakeEmbedder()).build(sys.argv[3])"
    )
    reader = (
        "import sys; from rag.config import Config; from rag.store import make_store; "
        "s = make_store(Config.load(None, {'index.backend': 'milvus', 'index.milvus.uri': sys.argv[1]}).index); "
        "i = s.load(); print(sorted(c.source for c in i.chunks_by_rows([r for r, _ in i.iter_rows()]).values()))"
    )
    for code, args in ((writer, [db, str(tmp_path / "lock"), str(arts)]), (reader, [db])):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(sorted(ARTICLES))


def test_interrupted_update_in_place_triggers_a_full_rebuild(tmp_path):
    """A collection left dirty by an interrupted in-place update is not updated again: the next build rebuilds it."""
    arts = write_articles(tmp_path / "articles")
    rag = RAG(
        _config(tmp_path, backend="milvus", uri=str(tmp_path / "m.db"), path=str(tmp_path / "lock")),
        embedder=FakeEmbedder(),
    )
    rag.build(arts)
    live = rag.store.live_collection()
    rag.store.set_state(live, "dirty: updating to x")
    notes: list[str] = []
    s = rag.build(arts, on_message=notes.append)
    assert s.mode == "full" and "interrupted" in s.reason and any("interrupted" in n for n in notes)
    assert rag.store.live_collection() != live and rag.store.stale_reason() is None
    assert rag.retrieve("sourdough starter", 1)[0].chunk.source == "bread.html"


def test_build_killed_before_the_alias_switch_leaves_the_old_collection_answering(
    milvus_server, real_embedder, tmp_path
):
    """SIGKILL while paused after the new collection is written, before the alias switch: the alias still
    names the old, complete collection, which answers; the next build drops the orphan."""
    arts = write_articles(tmp_path / "articles")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(
        json.dumps(
            {
                "index": {
                    "backend": "milvus",
                    "milvus": {"uri": milvus_server, "collection": "killed"},
                    "path": str(tmp_path / "lock"),
                }
            }
        )
    )
    cfg = Config.load(cfg_file)
    rag = RAG(cfg, embedder=real_embedder)
    rag.build(arts)
    old = rag.store.live_collection()
    answer_before = [p.chunk.id for p in rag.retrieve("sourdough starter", 2)]
    env = {**os.environ, PAUSE_ENV: "switch", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "build", str(arts), "--full", "--config", str(cfg_file), "--quiet"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "paused at switch" in line:
                break
        else:
            pytest.fail(f"the build never reached the pause point (exit {proc.wait()})")
        orphans = [c for c in rag.store.physical_collections() if c != old]
        assert (
            len(orphans) == 1 and rag.store.read_manifest(orphans[0])["chunks"] == rag.store.manifest().chunks
        )  # written, complete
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    fresh = RAG(cfg, embedder=real_embedder)
    assert fresh.store.live_collection() == old and fresh.store.stale_reason() is None
    assert [p.chunk.id for p in fresh.retrieve("sourdough starter", 2)] == answer_before
    assert fresh.index().size == fresh.store.manifest().chunks == len(list(fresh.index().iter_rows()))
    fresh.build(arts, full=True)
    left = fresh.store.physical_collections()
    assert orphans[0] not in left and old in left and fresh.store.live_collection() not in (old, orphans[0])


def test_milvus_backend_without_pymilvus_says_which_extra_to_install(tmp_path, monkeypatch):
    """The default install has no pymilvus: choosing the milvus backend must say how to get it."""
    from rag.store import make_store

    monkeypatch.setitem(sys.modules, "pymilvus", None)
    store = make_store(Config.load(None, {"index.backend": "milvus", "index.milvus.uri": str(tmp_path / "m.db")}).index)
    with pytest.raises(ImportError, match=r"pip install '\.\[milvus\]'"):
        store.exists()


def test_milvus_uri_must_be_a_db_file_or_a_url():
    """A typo such as a folder path for index.milvus.uri is caught when the config is loaded."""
    with pytest.raises(ValueError, match=r"index\.milvus\.uri.*\.db file .* or an http"):
        Config.load(None, {"index.backend": "milvus", "index.milvus.uri": "index/milvus"})


def test_old_flat_milvus_keys_still_load_with_a_warning_naming_the_new_key():
    """index.uri / collection / token_env moved to index.milvus.* (the backend owns its settings); the old keys
    still work, in a file and as overrides, and say where the key went."""
    with pytest.warns(FutureWarning, match=r"index\.uri is deprecated; write index\.milvus\.uri"):
        cfg = Config.load(None, {"index.backend": "milvus", "index.uri": "old/place.db"})
    assert cfg.index.options_for("milvus").uri == "old/place.db"
    with pytest.raises(ValueError, match=r"index\.milvus\.colour"):
        Config.load(None, {"index.milvus.colour": "red"})
