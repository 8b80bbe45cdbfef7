"""Tests for rag calibrate (rag/cli/calibrate.py, rag/store/calibration.py, RAG.relevance_threshold):
a per-index "not covered" threshold that travels with the index folder."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT
from fakes import FakeEmbedder, FakeGenerator

from rag import RAG, Config, IndexCorruptError, IndexNotFoundError, IndexStore
from rag.records import Calibration
from rag.store.calibration import CALIBRATION, read_calibration, save_calibration

SAMPLE = ROOT / "data" / "articles"
SAMPLE_QA = ROOT / "eval" / "sample-qa.jsonl"


def fake_rag(index, name="all-MiniLM-L6-v2"):
    return RAG(
        Config.load(None, {"index.path": str(index)}), embedder=FakeEmbedder(name=name), generator=FakeGenerator()
    )


@pytest.fixture
def built(tmp_path, articles_dir):
    rag = fake_rag(tmp_path / "idx")
    rag.build(articles_dir)
    return rag


def test_calibration_round_trips_and_removes(built):
    root = built.store.root
    assert read_calibration(root) is None
    cal = Calibration(
        "all-MiniLM-L6-v2",
        {"hybrid": 0.41, "dense": 0.4},
        0.05,
        24,
        6,
        {"hybrid": 3},
        "mine.jsonl",
        "2026-12-01T00:00:00+00:00",
    )
    save_calibration(built.store, cal)
    assert read_calibration(root) == cal
    assert [p.name for p in root.iterdir() if p.name.startswith(f".{CALIBRATION}")] == []  # no temporary file left
    save_calibration(built.store, None)
    assert not (root / CALIBRATION).exists()


def test_a_damaged_calibration_names_the_file_and_the_fix(built):
    (built.store.root / CALIBRATION).write_text('{"embedder": "x"}', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=r"calibration\.json.*is damaged.*delete it or run rag calibrate again"):
        read_calibration(built.store.root)


def test_calibrating_without_an_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index at .* to calibrate; build one with: rag build"):
        save_calibration(IndexStore(tmp_path / "nothing"), Calibration("m", {"hybrid": 0.5}, 0.05, 10))


def test_threshold_order_config_then_index_then_shipped(built, tmp_path):
    """Shipped 0.2 for MiniLM; a calibration for this index replaces it; a configured value wins over both;
    a calibration measured with another model is ignored."""
    assert built.relevance_threshold() == (0.2, "calibrated")
    save_calibration(built.store, Calibration("all-MiniLM-L6-v2@onnx-int8", {"hybrid": 0.31, "dense": 0.33}, 0.05, 20))
    assert built.relevance_threshold() == (0.31, "index")  # same model, another backend: still holds
    assert built.relevance_threshold("dense") == (0.33, "index")
    assert built.relevance_threshold("bm25") == (0.17, "calibrated")  # not calibrated for bm25: the shipped one
    assert built.info()["min_relevance_source"] == "index"
    configured = RAG(
        Config.load(None, {"index.path": str(built.store.root), "retrieval.min_relevance_hybrid": 0.5}),
        embedder=FakeEmbedder(name="all-MiniLM-L6-v2"),
        generator=FakeGenerator(),
    )
    assert configured.relevance_threshold() == (0.5, "configured")
    assert fake_rag(built.store.root, name="e5-small").relevance_threshold() == (0.0, "uncalibrated")


def test_calibration_survives_a_rebuild_and_travels_with_the_folder(built, tmp_path, articles_dir):
    save_calibration(built.store, Calibration("all-MiniLM-L6-v2", {"hybrid": 0.29}, 0.05, 12))
    (articles_dir / "new.txt").write_text("Saffron comes from the stigmas of the crocus flower.\n", encoding="utf-8")
    built.build(articles_dir)
    assert built.relevance_threshold() == (0.29, "index")
    copy = tmp_path / "copied-index"
    shutil.copytree(built.store.root, copy)
    assert fake_rag(copy).relevance_threshold() == (0.29, "index")


def test_rag_calibrate_end_to_end_with_the_real_model(tmp_path, monkeypatch, capsys):
    """The real path: MiniLM index of the sample articles, `rag calibrate` over eval/sample-qa.jsonl (30 answerable),
    the stored threshold shown by `rag index info` and applied as a hard floor when asking."""
    if not SAMPLE.is_dir() or not SAMPLE_QA.is_file():
        pytest.skip(f"sample articles or {SAMPLE_QA.name} missing")
    from rag.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("generation:\n  backend: none\n", encoding="utf-8")
    assert main(["build", str(SAMPLE), "--index", "idx", "--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "calibrate",
                str(SAMPLE_QA),
                "--index",
                "idx",
                "--config",
                str(cfg),
                "--json",
                "--retrievers",
                "hybrid,dense",
            ]
        )
        == 0
    )
    cal = json.loads(capsys.readouterr().out)
    assert cal["questions"] == 30 and cal["unanswerable"] == 26 and cal["qa_file"] == "sample-qa.jsonl"
    # At most 5% of 30 answerable questions (1) may fall below it: the threshold is at or under the second-lowest best relevance.
    assert 0.2 < cal["thresholds"]["hybrid"] < 0.7 and set(cal["thresholds"]) == {"hybrid", "dense"}
    assert read_calibration(tmp_path / "idx").thresholds["hybrid"] == cal["thresholds"]["hybrid"]
    assert main(["index", "info", "--index", "idx", "--config", str(cfg), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["min_relevance"], info["min_relevance_source"]) == (cal["thresholds"]["hybrid"], "index")
    # A stored threshold above every passage's relevance declines even an answerable question, saying "not covered".
    save_calibration(IndexStore(tmp_path / "idx"), Calibration("all-MiniLM-L6-v2", {"hybrid": 0.99}, 0.05, 30))
    assert (
        main(
            [
                "ask",
                "How many parameters does DeepSeek-V3 have in total?",
                "--index",
                "idx",
                "--config",
                str(cfg),
                "--json",
            ]
        )
        == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "declined" and answer["answer"].startswith("The articles don't cover this question."), (
        answer
    )
    assert main(["calibrate", "--remove", "--index", "idx", "--config", str(cfg)]) == 0
    assert read_calibration(tmp_path / "idx") is None


def test_rag_calibrate_refuses_too_few_questions(built, tmp_path, capsys):
    from rag.cli import main

    qa = tmp_path / "few.jsonl"
    qa.write_text(
        "".join(
            json.dumps(
                {"id": f"q{i}", "question": f"What about bread {i}?", "answers": ["bread"], "sources": ["bread.html"]}
            )
            + "\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )
    assert main(["calibrate", str(qa), "--index", str(built.store.root)]) == 1
    assert "has 3 answerable question(s); calibrating needs at least 10" in capsys.readouterr().err


def test_ui_status_shows_which_threshold_is_in_force(built):
    from ui.render import status_html

    save_calibration(built.store, Calibration("all-MiniLM-L6-v2", {"hybrid": 0.29}, 0.05, 12))
    assert "relevance 0.290 (calibrated for this index)" in status_html(built.info())
    html = status_html(fake_rag(built.store.root, name="e5-small").info())
    assert "off: no threshold is calibrated for this embedder (run rag calibrate)" in html
    assert "rare words" not in html  # no term-coverage rule is calibrated for that embedder either
    ruled = status_html({**built.info(), "term_coverage_rule": (0.5, 0.45)})
    assert "below relevance 0.45 when the passages hold under 50% of the question&#x27;s rare words" in ruled
    # the year rule needs no calibration: it is named with every threshold, and without one
    assert "a year the question names that no retrieved passage writes" in ruled and "that no retrieved passage" in html
