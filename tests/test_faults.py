"""Faults while the app runs: the index deleted or damaged, the model server dying mid-answer.

Each case checks the three things a user needs: a clear message (what broke, where, how to
fix it), no crash (the app keeps serving), and recovery (after a rebuild, or once the model
server is back, answers work again).

In-process cases drive :class:`ui.chat.ChatUI` with the fake embedder; the model server cases
use real processes on loopback: the packaged SmolLM2 under ``python -m llama_cpp.server``,
and tests/openai_stub.py, which the tests SIGKILL once the first piece of an answer has
reached the page. One test runs every fault against a
real ``rag serve`` with the real embedder, through its HTTP API.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from conftest import ROOT, write_articles
from fakes import FakeEmbedder

from rag import RAG, Config
from ui.chat import ChatUI

from benchmarks import bench_load  # noqa: E402
from test_ui_load import start_stub, stop, stub_config, wait_for  # noqa: E402

NVIDIA_Q = "How much did the Nvidia share price fall on 27 January 2025?"


def nvidia_reply(messages) -> str:
    m = re.search(r"^\[(\d+)\] On 27 January 2025 the share price of Nvidia", messages[-1]["content"], re.M)
    return f"On 27 January 2025 the share price of Nvidia fell about 17 percent [{m.group(1) if m else 1}]."


def make_ui(tmp_path: Path, **overrides) -> tuple[ChatUI, Path]:
    """A ChatUI over a built index of the test articles; returns it and the articles folder."""
    from fakes import FakeGenerator

    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "ui.rewrite": "heuristic", **overrides})
    generator = None if cfg.generation.backend != "transformers" else FakeGenerator(nvidia_reply)
    rag = RAG(cfg, embedder=FakeEmbedder(), generator=generator)
    articles = write_articles(tmp_path / "articles")
    rag.build(articles)
    return ChatUI(rag, allowed_roots=[tmp_path]), articles


class KillOnDraft:
    """The pipeline, calling ``kill`` once the model's first draft piece has arrived (the page shows only a
    "checking" line while the model writes, so a test cannot wait for streamed answer text any more)."""

    def __init__(self, rag: RAG, kill) -> None:
        self.inner, self.kill, self.killed = rag, kill, False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream_events(self, *args, **kwargs):
        for event in self.inner.stream_events(*args, **kwargs):
            if event.kind == "draft" and not self.killed:
                self.killed = True
                self.kill()
            yield event


def kill_when_stalled(proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> threading.Thread:
    """SIGKILL the stub once its log says it stalled mid-answer (it has sent its first pieces by then)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "stalling mid-answer" not in log.read_text():
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def ask(ui: ChatUI, question: str = NVIDIA_Q, max_new_tokens: int = 64) -> str:
    """The last chat message after answering ``question`` in a fresh conversation (HTML entities decoded)."""
    return html.unescape(list(ui.respond(question, None, None, 3, 0.0, max_new_tokens))[-1][0][-1]["content"])


def current_generation(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def garble(path: Path) -> None:
    """Overwrite a file in place with bytes that are no valid anything (same size, same inode)."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.write((b"\x00garbage\xff" * (size // 9 + 1))[:size])


# -- the index deleted or damaged while the app runs -------------------------------------------
def test_deleted_index_is_reported_and_a_rebuild_recovers(tmp_path):
    ui, articles = make_ui(tmp_path)
    assert "17 percent" in ask(ui)
    shutil.rmtree(tmp_path / "index")
    msg = ask(ui)
    assert "no index at '…/index'" in msg and str(tmp_path) not in msg, (
        "the page names the index without its absolute path"
    )
    assert "deleted or moved while the app was running" in msg and "Rebuild index from folder" in msg
    assert "Traceback" not in msg
    assert "deleted or moved" in ui.status()
    with pytest.raises(gr.Error, match="The index is missing"):
        ui.ask(NVIDIA_Q)
    done, status = ui.rebuild(str(articles))
    assert "Indexed 3 articles" in done and "<td>3</td>" in status
    assert "17 percent" in ask(ui)


def test_garbled_chunk_store_is_reported_and_a_rebuild_recovers(tmp_path):
    """The SQLite chunk store overwritten while open: a named error, not 'file is not a database'."""
    ui, articles = make_ui(tmp_path)
    assert "17 percent" in ask(ui)
    chunks = current_generation(tmp_path / "index") / "chunks.sqlite"
    garble(chunks)
    msg = ask(ui)
    assert "The index cannot be used: chunk store" in msg and "is unreadable" in msg
    assert f"'…/index/{chunks.parent.name}/chunks.sqlite'" in msg and str(tmp_path) not in msg
    assert "rag build ARTICLES_DIR" in msg and "Rebuild index from folder" in msg
    assert "Something went wrong" not in msg
    done, _ = ui.rebuild(str(articles))
    assert "Indexed 3 articles" in done, done
    assert "17 percent" in ask(ui)


@pytest.mark.parametrize("damage", ["truncate vectors.faiss", "garble manifest.json", "garble chunks.sqlite"])
def test_damaged_index_found_at_start_is_reported_and_a_rebuild_recovers(tmp_path, damage):
    """Damage a running app has not read yet (or holds in memory) shows on the next start.

    A loaded FAISS index lives in memory, so the running app keeps answering from it; a new
    process (here a new RAG over the same folder) must say which file is damaged and how to fix it.
    """
    ui, articles = make_ui(tmp_path)
    assert "17 percent" in ask(ui)
    gen = current_generation(tmp_path / "index")
    action, name = damage.split()
    if action == "truncate":
        with open(gen / name, "r+b") as fh:
            fh.truncate((gen / name).stat().st_size // 2)
    else:
        garble(gen / name)
    fresh = ChatUI(RAG(ui.rag.config, embedder=FakeEmbedder(), generator=ui.rag.generator), allowed_roots=[tmp_path])
    msg = ask(fresh)
    assert "The index cannot be used" in msg and f"…/index/{gen.name}/{name}" in msg and "rebuild" in msg, msg
    assert str(tmp_path) not in msg, "absolute paths stay in the server log"
    done, _ = fresh.rebuild(str(articles))
    assert "Indexed 3 articles" in done, done
    assert "17 percent" in ask(fresh)


# -- the model server dying mid-answer --------------------------------------------------------
@pytest.fixture
def stub(tmp_path):
    proc, port, log = start_stub(tmp_path)
    state = {"proc": proc, "port": port, "log": log}
    yield state
    stop(state["proc"])  # the test may have restarted it
    stop(proc)


@pytest.mark.parametrize("fallback", ["extractive", "error"])
def test_model_server_dying_mid_answer_is_reported_and_the_next_question_works(tmp_path, stub, fallback):
    ui, _ = make_ui(
        tmp_path,
        **{
            "generation.backend": "openai",
            "generation.model": "stub",
            "generation.openai.retries": 0,
            "generation.openai.base_url": f"http://127.0.0.1:{stub['port']}/v1",
            "generation.fallback": fallback,
        },
    )
    ui.rag = KillOnDraft(ui.rag, lambda: stub["proc"].send_signal(signal.SIGKILL))
    for step in ui.respond("STALL " + NVIDIA_Q, None, None, 3, 0.0, 64):
        pass
    assert ui.rag.killed, "the model should have started its draft first"
    ui.rag = ui.rag.inner
    assert stub["proc"].wait(10) == -signal.SIGKILL
    final = html.unescape(step[0][-1]["content"])
    if fallback == "extractive":
        assert final.startswith("On 27 January 2025") and "17 percent" in final  # the best evidence sentence leads
        assert (
            "the generator is unavailable: the connection to" in final
            and "broke mid-answer after 12 characters" in final
        )
    else:
        assert (
            "The model failed to answer: the connection to" in final and "broke mid-answer after 12 characters" in final
        )
        assert "is the server still running?" in final
        with pytest.raises(
            gr.Error, match="The model failed to answer: cannot get an answer from the OpenAI-compatible server"
        ):
            ui.ask(NVIDIA_Q)  # while it is down
    # The server comes back on the same port; the app was never restarted.
    stub["proc"], _, _ = start_stub_on(tmp_path, stub["port"])
    answer = ask(ui)
    assert "17 percent" in answer and "Extractive" not in answer and "Error" not in answer


def test_answer_cut_off_by_the_server_is_not_shown_as_complete(tmp_path, stub):
    """A stream that ends cleanly without [DONE] or a finish_reason is a cut-off answer: reported, extractive instead."""
    ui, _ = make_ui(
        tmp_path,
        **{
            "generation.backend": "openai",
            "generation.model": "stub",
            "generation.openai.retries": 0,
            "generation.openai.base_url": f"http://127.0.0.1:{stub['port']}/v1",
        },
    )
    final = html.unescape(list(ui.respond("CUT " + NVIDIA_Q, None, None, 3, 0.0, 64))[-1][0][-1]["content"])
    assert final.startswith("On 27 January 2025") and "17 percent" in final, final  # the best evidence sentence leads
    assert "closed the stream after 12 characters without finishing the answer" in final, final
    assert "cutting the answer short" in stub["log"].read_text()
    assert "17 percent" in ask(ui) and "Extractive" not in ask(ui)


def start_stub_on(tmp_path: Path, port: int):
    """Restart the stub on a given port (the app's configured base_url)."""

    log = tmp_path / f"stub-{port}-again.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "openai_stub.py"), str(port)], stdout=fh, stderr=subprocess.STDOUT
        )
    wait_for(lambda: _up(f"http://127.0.0.1:{port}/v1/models"), 20, "stub did not restart")
    return proc, port, log


def _up(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def start_llama_server(port: int, log: Path) -> subprocess.Popen:
    from rag.generation import resolve_gguf

    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(resolve_gguf("smollm2")),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
    ]
    with open(log, "a") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not _up(f"http://127.0.0.1:{port}/v1/models"):
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "llama_cpp.server did not start"
        time.sleep(0.1)
    return proc


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')",
)
def test_real_llama_server_killed_mid_answer(tmp_path, real_embedder):
    """The packaged SmolLM2 behind llama.cpp's OpenAI-compatible server, SIGKILLed as the answer streams."""
    port = bench_load.free_port()
    log = tmp_path / "llama.log"
    server = start_llama_server(port, log)
    try:
        cfg = Config.load(
            None,
            {
                "index.path": str(tmp_path / "index"),
                "ui.rewrite": "heuristic",
                "retrieval.top_k": 2,
                "generation.backend": "openai",
                "generation.model": "smollm2",
                "generation.openai.retries": 0,
                "generation.few_shot": False,
                "generation.openai.base_url": f"http://127.0.0.1:{port}/v1",
            },
        )
        rag = RAG(cfg, embedder=real_embedder)
        rag.build(write_articles(tmp_path / "articles"))
        ui = ChatUI(KillOnDraft(rag, server.kill))
        for step in ui.respond(NVIDIA_Q, None, None, 2, 0.0, 48):
            pass
        assert ui.rag.killed, "the model wrote no draft before the end"
        ui.rag = rag
        final = html.unescape(step[0][-1]["content"])
        assert server.wait(10) != 0
        assert final.startswith("On 27 January 2025"), final  # the best evidence sentence leads
        assert "broke mid-answer after" in final and "is the server still running?" in final
        server = start_llama_server(port, log)
        again = ask(ui, max_new_tokens=24)
        assert "Extractive" not in again and "Error" not in again and re.search(r"\(#src-1-\d\)", again), again
    finally:
        server.kill()
        server.wait(10)


# -- all of it against a real `rag serve` --------------------------------------------------------
@pytest.mark.slow
def test_rag_serve_survives_every_fault_and_recovers(tmp_path):
    """Through the real server's API: index deleted, chunk store garbled, model server killed mid-answer."""
    from gradio_client import Client

    stub_proc, port, stub_log = start_stub(tmp_path)
    articles = bench_load.write_articles(tmp_path / "data" / "articles")
    index = tmp_path / "index"
    server = bench_load.Server(stub_config(tmp_path, port), index, articles, tmp_path / "server.log")
    try:
        server.wait_up()
        client = Client(server.url, verbose=False)
        assert "17 percent" in client.predict(NVIDIA_Q, api_name="/ask")["answer"]

        # a. the index folder deleted
        shutil.rmtree(index)
        with pytest.raises(
            Exception, match="The index is missing: no index at .*deleted or moved while the app was running"
        ):
            client.predict(NVIDIA_Q, api_name="/ask")
        chat, _, _ = client.predict(NVIDIA_Q, api_name="/chat")
        assert "deleted or moved while the app was running" in str(chat[-1]["content"])
        done, status = client.predict(str(articles), api_name="/rebuild")
        assert "Indexed 5 articles" in done, done
        assert "17 percent" in client.predict(NVIDIA_Q, api_name="/ask")["answer"]

        # b. the chunk store garbled
        chunks = current_generation(index) / "chunks.sqlite"
        garble(chunks)
        shown = (
            f"…/index/{chunks.parent.name}/chunks.sqlite"  # relative to the index: no absolute path reaches the page
        )
        with pytest.raises(
            Exception, match=f"The index cannot be used: chunk store '{re.escape(shown)}' is unreadable"
        ):
            client.predict(NVIDIA_Q, api_name="/ask")
        done, _ = client.predict(str(articles), api_name="/rebuild")
        assert "Indexed 5 articles" in done, done
        assert "17 percent" in client.predict(NVIDIA_Q, api_name="/ask")["answer"]

        # c. the model server dies mid-answer
        watcher = kill_when_stalled(stub_proc, stub_log)  # the model server dies once it has sent its first pieces
        job = client.submit("STALL " + NVIDIA_Q, api_name="/chat")
        final = str(job.result(timeout=90)[0][-1]["content"])
        watcher.join(5)
        assert stub_proc.wait(10) == -signal.SIGKILL, "the stub never stalled mid-answer"
        assert "On 27 January 2025 the share price" in final and "broke mid-answer after 12 characters" in final, final
        stub_proc, _, _ = start_stub_on(tmp_path, port)
        result = client.predict(NVIDIA_Q, api_name="/ask")
        assert "17 percent" in result["answer"] and result["extractive"] is False
        assert server.proc.poll() is None, "the server must survive every fault"
        assert "Traceback" not in json.dumps(result)
    finally:
        server.stop()
        stop(stub_proc)


# -- rag.faults: the pause hook crash tests kill builds at -----------------------------------
def test_pause_point_is_a_no_op_unless_the_variable_names_the_phase(monkeypatch, capsys):
    """Guards against the test hook costing a production build anything (or pausing at the wrong phase)."""
    from rag import faults

    slept: list[float] = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    monkeypatch.delenv(faults.PAUSE_ENV, raising=False)
    faults.pause_point("switch")
    monkeypatch.setenv(faults.PAUSE_ENV, "writing")
    faults.pause_point("switch")
    assert slept == [] and capsys.readouterr().err == ""
    faults.pause_point("writing")
    assert slept == [3600] and "rag: paused at writing (RAG_TEST_PAUSE_AT)" in capsys.readouterr().err
