"""Tests for rag/cli/ (the rag command): help texts, errors, and build/ask through real subprocesses."""

import json
import re
import os
import subprocess
import sys

import pytest

from conftest import ROOT

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def run(*args, cwd=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=ENV,
        timeout=timeout,
    )


def test_help_explains_commands():
    out = run("--help").stdout
    for word in ("build", "ask", "index", "serve", "offline"):
        assert word in out
    ask_help = run("ask", "--help").stdout
    assert "--top-k" in ask_help and "--json" in ask_help


def test_missing_folder_is_a_clear_error(tmp_path):
    r = run("build", str(tmp_path / "nope"), "--index", str(tmp_path / "i"))
    assert r.returncode == 1
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_ask_without_index_says_how_to_build(tmp_path):
    r = run("ask", "anything", "--index", str(tmp_path / "i"))
    assert r.returncode == 1 and "rag build" in r.stderr and "Traceback" not in r.stderr


def test_bad_config_value_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  top_k: -3\n")
    r = run("ask", "q", "--config", str(cfg), "--index", str(tmp_path / "i"))
    assert r.returncode == 1 and "top_k" in r.stderr and "-3" in r.stderr


@pytest.mark.slow
def test_build_and_ask_json_real_models(tmp_path, articles_dir):
    index = tmp_path / "index"
    r = run("build", str(articles_dir), "--index", str(index), "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["articles"] == 3 and summary["chunks"] >= 3

    r = run("ask", "When did DeepSeek release R1?", "--index", str(index), "--json", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) >= {"question", "answer", "reasoning", "citations", "passages", "lead", "lead_span"}
    # The lead (one direct sentence) starts the answer; its answer phrase, when marked, is a date for "when".
    assert data["lead"] and data["answer"].startswith(data["lead"]) and data["mode"] in ("generated", "evidence")
    if data["lead_span"] is not None:
        a, b = data["lead_span"]
        assert re.search(r"20\d\d|January|Jan", data["lead"][a:b]), data["lead"][a:b]
    assert len(data["passages"]) == 2
    assert data["passages"][0]["source"] == "r1.md"
    assert set(data["passages"][0]) >= {"n", "title", "source", "score", "relevance", "text"}
    assert all(0 <= p["relevance"] <= 1.0001 for p in data["passages"])
    for c in data["citations"]:
        assert set(c) >= {"n", "title", "source", "snippet"}
        assert c["n"] in {p["n"] for p in data["passages"]}

    # The plain listing shows each passage's relevance (not the RRF rank score), as --json has it.
    r = run("ask", "When did DeepSeek release R1?", "--index", str(index), "--top-k", "2")
    assert r.returncode == 0, r.stderr
    # The checked answer is printed once (nothing streamed and then replaced); how it was made goes to stderr.
    assert (
        r.stdout.startswith(data["lead"]) and r.stdout.count(data["lead"]) == 1 and "How it was made: mode:" in r.stderr
    )
    sources = r.stdout.split("\nSources:\n", 1)[1]
    for p in data["passages"]:
        assert f"[{p['n']}] {p['title']} ({p['source']}" in sources and f"relevance={p['relevance']:.2f}" in sources, (
            sources
        )

    r = run("index", "info", "--index", str(index), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["articles"] == 3 and info["embedder"] == "all-MiniLM-L6-v2"
    assert info["index_type"] == "flat (auto)"  # index.type auto picks exact search for small indexes
    assert (info["min_relevance"], info["min_relevance_source"]) == (0.2, "calibrated")
    assert info["term_coverage_rule"] == [0.5, 0.45]  # the term-coverage decline is in force for MiniLM over FAISS


@pytest.mark.parametrize("embedder, note", [("my-e5", True), ("all-MiniLM-L6-v2@onnx-int8", False)])
def test_index_info_says_when_no_threshold_is_calibrated(tmp_path, articles_dir, monkeypatch, capsys, embedder, note):
    """Guards against an embedder without a calibrated threshold silently never declining (issue 12).

    Every backend of MiniLM keeps MiniLM's threshold; another model says "not covered" declines are off.
    """
    import rag.embedding as embedding
    from fakes import FakeEmbedder
    from rag.cli import main

    monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: FakeEmbedder(name=embedder))
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["index", "info", "--index", "idx", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["min_relevance"], info["min_relevance_source"]) == (
        (0.0, "uncalibrated") if note else (0.2, "calibrated")
    )
    assert main(["index", "info", "--index", "idx"]) == 0
    out = capsys.readouterr().out
    assert ('"not covered" declines are off' in out and "set retrieval.min_relevance_hybrid" in out) is note, out
    (tmp_path / "c.yaml").write_text("retrieval:\n  min_relevance_hybrid: 0.4\n")
    assert main(["index", "info", "--index", "idx", "--config", "c.yaml"]) == 0
    assert "declines are off" not in capsys.readouterr().out


def test_cli_choices_come_from_the_registry(monkeypatch, capsys):
    """Guards against a second hand-typed list of retrievers in the CLI drifting from rag.retrieval.RETRIEVERS."""
    import rag.retrieval as retrieval
    from rag.cli import build_parser

    monkeypatch.setattr(retrieval, "RETRIEVERS", ("dense", "bm25", "hybrid", "toy"))
    parser = build_parser()
    assert parser.parse_args(["ask", "q", "--retriever", "toy"]).retriever == "toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "q", "--retriever", "colbert"])
    assert "choose from 'dense', 'bm25', 'hybrid', 'toy'" in capsys.readouterr().err
    assert "dense, bm25, hybrid, toy, or several" in " ".join(
        parser._subparsers._group_actions[0].choices["eval"].format_help().split()
    )


def test_index_info_names_the_model_and_warns_once_for_the_135m_fallback(tmp_path, articles_dir, monkeypatch, capsys):
    """Guards against users never learning that the packaged 135M model only tidies quoted evidence (issue 25)."""
    import rag.embedding as embedding
    from fakes import FakeEmbedder
    from rag.cli import main
    from rag.models import FALLBACK_WARNING

    monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: FakeEmbedder())
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(articles_dir), "--index", "idx", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["index", "info", "--index", "idx"]) == 0
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct (packaged, llama_server)" in out and out.count(FALLBACK_WARNING) == 1, out
    (tmp_path / "c.yaml").write_text("generation:\n  model: qwen2.5-1.5b\n")
    assert main(["index", "info", "--index", "idx", "--config", "c.yaml", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "qwen2.5-1.5b (Qwen2.5-1.5B-Instruct-Q4_K_M.gguf, llama_server)"
    assert (info["model_profile"], info["model_warning"]) == ("qwen2.5-1.5b", "")


def test_every_ui_command_names_a_function_of_the_ui_package():
    """Guards against a dotted name in rag.cli.common.UI_COMMANDS that no longer exists (rag serve/api/mcp would fail only when run)."""
    from rag.cli.common import UI_COMMANDS, ui_command

    for name, target in UI_COMMANDS.items():
        assert target.startswith("ui."), target
        assert callable(ui_command(name)), target
