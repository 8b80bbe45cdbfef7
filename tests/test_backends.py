"""Tests for the generation backends in rag/generation/ against real processes.

- ``openai``: a real ``python -m llama_cpp.server`` on the packaged SmolLM2 GGUF, on
  loopback (started once per session; skipped when the ``llamacpp`` extra is missing, which
  CI installs): streaming, max tokens, a stop sequence, the API key from the environment,
  the server killed mid-answer, a wrong port; plus small local HTTP servers that answer
  with garbage, errors and reasoning deltas.
- ``llama_cpp``: the same GGUF in process, the same cited answer as transformers greedy,
  a missing extra named in the ImportError, a real thinking-budget cut-off.
- ``llama_server`` (the default): a real supervised ``llama_cpp.server`` child answers, a
  SIGKILL mid-answer is a clear error and the next question is answered, the child is gone
  after ``close()`` and when its parent is killed, the fixed prompt prefix is reused.
- ``transformers``: the second start reads the dequantised safetensors cache; stop strings,
  ``max_new_tokens``, temperature and ``stream_continuation`` with the real SmolLM2.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fakes import FakeEmbedder
from rag import RAG, Config
from rag.generation import (
    AnswerStream,
    GeneratorError,
    LlamaCppGenerator,
    LlamaServerGenerator,
    OpenAIGenerator,
    TransformersGenerator,
    make_generator,
    packaged_smollm2_gguf,
)

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
needs_llama_cpp = pytest.mark.skipif(
    not HAVE_LLAMA_CPP, reason="llama-cpp-python is not installed: pip install '.[llamacpp]' (CI installs it)"
)

STORY = [{"role": "user", "content": "Write a short story about a cat named Tom who lives in Paris."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start llama.cpp's OpenAI-compatible server on loopback and wait until it answers."""
    import httpx

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(packaged_smollm2_gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code in (200, 401):
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"llama_cpp.server did not answer within 120 s: {log.read_text(errors='replace')[-2000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """Base URL of a llama.cpp server on the packaged SmolLM2 GGUF (one per test run)."""
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed: pip install '.[llamacpp]' (CI installs it)")
    proc, base = start_llama_server(tmp_path_factory.mktemp("llama-server") / "server.log")
    yield base
    stop_process(proc)


def openai_gen(base: str, **kwargs) -> OpenAIGenerator:
    return OpenAIGenerator("smollm2", base_url=base, **{"retries": 1, "backoff": 0.05, "timeout": 60, **kwargs})


# -- openai against a real llama.cpp server ------------------------------------------------
@pytest.mark.slow
def test_openai_streams_and_honours_max_tokens(llama_server):
    gen = openai_gen(llama_server)
    pieces = list(gen.stream(STORY, max_new_tokens=12, temperature=0.0))
    assert 3 <= len(pieces) <= 12, pieces  # one SSE event per token, at most max_new_tokens
    assert "".join(pieces).strip()
    # Greedy is deterministic: the same request gives the same text.
    assert "".join(gen.stream(STORY, max_new_tokens=12, temperature=0.0)) == "".join(pieces)


@pytest.mark.slow
def test_openai_stop_sequence(llama_server):
    gen = openai_gen(llama_server)
    full = "".join(gen.stream(STORY, max_new_tokens=40))
    words = full.split()
    assert len(words) > 8, full
    stop = words[6]
    cut = "".join(gen.stream(STORY, max_new_tokens=40, stop=(stop,)))
    assert cut == full[: full.find(stop)], (full, stop, cut)


@pytest.mark.slow
def test_openai_temperature_reaches_the_server(llama_server):
    """At temperature 1.5 the sampled continuations differ from greedy at least once in three tries."""
    gen = openai_gen(llama_server)
    greedy = "".join(gen.stream(STORY, max_new_tokens=20))
    sampled = {"".join(gen.stream(STORY, max_new_tokens=20, temperature=1.5)) for _ in range(3)}
    assert sampled - {greedy}


@pytest.mark.slow
def test_openai_count_tokens_is_tiktoken_cl100k(llama_server):
    from rag.text import get_encoding

    text = "DeepSeek released R1 on 20 January 2025 under the MIT licence."
    assert openai_gen(llama_server).count_tokens(text) == len(get_encoding("cl100k_base").encode(text))


def test_openai_wrong_port_is_a_clear_error():
    port = free_port()
    gen = openai_gen(f"http://127.0.0.1:{port}/v1", retries=2, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(
        GeneratorError,
        match=rf"127\.0\.0\.1:{port}/v1/chat/completions after 3 attempts: ConnectError.*Start the server",
    ):
        list(gen.stream(STORY))
    assert time.monotonic() - t0 < 10


@pytest.mark.slow
@needs_llama_cpp
def test_openai_api_key_then_server_killed_mid_answer(tmp_path, monkeypatch):
    """The key comes from the environment variable only; a server killed mid-answer is a clear
    error for the backend and an extractive answer for `ask`."""
    monkeypatch.delenv("RAG_TEST_KEY", raising=False)
    proc, base = start_llama_server(tmp_path / "server.log", "--api_key", "s3cret")
    try:
        gen = openai_gen(base, api_key_env="RAG_TEST_KEY", retries=0)
        with pytest.raises(GeneratorError, match="HTTP 401.*environment variable RAG_TEST_KEY \\(it is not set\\)"):
            list(gen.stream(STORY, max_new_tokens=5))
        monkeypatch.setenv("RAG_TEST_KEY", "s3cret")
        assert "".join(gen.stream(STORY, max_new_tokens=5)).strip()

        got: list[str] = []
        with pytest.raises(GeneratorError, match="broke mid-answer after \\d+ characters.*still running"):
            for i, piece in enumerate(gen.stream(STORY, max_new_tokens=300)):
                got.append(piece)
                if i == 3:
                    os.kill(proc.pid, signal.SIGKILL)
        assert len(got) >= 4
    finally:
        stop_process(proc)


@pytest.mark.slow
@needs_llama_cpp
def test_ask_falls_back_to_extractive_when_the_server_dies_mid_answer(tmp_path, articles_dir):
    proc, base = start_llama_server(tmp_path / "server.log")
    try:
        cfg = Config.load(
            None,
            {
                "index.path": str(tmp_path / "index"),
                "generation.backend": "openai",
                "generation.openai.base_url": base,
                "generation.openai.retries": 0,
                "generation.max_new_tokens": 200,
                "retrieval.top_k": 1,
            },
        )
        rag = RAG(cfg, embedder=FakeEmbedder())
        rag.build(articles_dir)
        events = []
        for event in rag.stream_events("By how much did Nvidia's share price fall on 27 January 2025?"):
            events.append(event)
            if event.kind == "draft" and sum(e.kind == "draft" for e in events) == 2:
                os.kill(proc.pid, signal.SIGKILL)
        answer = events[-1].answer
        assert answer.extractive and "17 percent" in answer.text
        assert any("broke mid-answer" in n for n in answer.notes)
    finally:
        stop_process(proc)


# -- openai against small local servers: garbage, errors, reasoning ------------------------------
class _Handler(BaseHTTPRequestHandler):
    respond: Callable[[BaseHTTPRequestHandler, dict], None]
    requests: list[dict]

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        type(self).requests.append({"body": body, "auth": self.headers.get("authorization")})
        type(self).respond(self, body)

    def log_message(self, *args):
        pass


def local_server(respond) -> tuple[ThreadingHTTPServer, str, list[dict]]:
    handler = type("H", (_Handler,), {"respond": staticmethod(respond), "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", handler.requests


def send(handler, status: int, body: str, ctype: str = "application/json") -> None:
    data = body.encode()
    handler.send_response(status)
    handler.send_header("content-type", ctype)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def sse(events: list) -> str:
    return "".join(f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n" for e in events)


def delta(**d) -> dict:
    return {"choices": [{"index": 0, "delta": d}]}


@pytest.mark.parametrize(
    "status, body, ctype, message",
    [
        (200, "<html>hello</html>", "text/html", "did not answer like an OpenAI-compatible chat-completions API"),
        (200, sse(["not json at all"]), "text/event-stream", "sent an event that is not JSON"),
        (200, sse([{"object": "something else"}]), "text/event-stream", "without 'choices'"),
        (200, "garbage line\n\n", "text/event-stream", "not server-sent events"),
        (
            200,
            sse([{"error": {"message": "model overloaded"}}]),
            "text/event-stream",
            "reported an error: model overloaded",
        ),
        (404, '{"error": "no such route"}', "application/json", "HTTP 404.*should end in /v1"),
        (400, '{"error": "bad request"}', "application/json", "rejected the request \\(HTTP 400\\)"),
    ],
)
def test_openai_garbage_and_errors_are_clear(status, body, ctype, message):
    server, base, _ = local_server(lambda h, b: send(h, status, body, ctype))
    try:
        with pytest.raises(GeneratorError, match=message):
            list(openai_gen(base).stream(STORY))
    finally:
        server.shutdown()


def test_openai_stream_closed_without_finishing_is_an_error_not_a_short_answer():
    """A connection closed cleanly mid-answer (no [DONE], no finish_reason) must not pass as a complete answer."""
    cut = [delta(content="Nvidia fell"), delta(content=" 17")]
    finished = [
        delta(content="Nvidia fell"),
        {"choices": [{"index": 0, "delta": {"content": " 17 percent."}, "finish_reason": "stop"}]},
    ]
    for events, outcome in ((cut, None), (finished, "Nvidia fell 17 percent."), ([*cut, "[DONE]"], "Nvidia fell 17")):
        server, base, _ = local_server(lambda h, b, events=events: send(h, 200, sse(events), "text/event-stream"))
        try:
            if outcome is None:
                with pytest.raises(
                    GeneratorError, match=r"closed the stream after 14 characters without finishing the answer.*cut off"
                ):
                    list(openai_gen(base).stream(STORY))
            else:
                assert "".join(openai_gen(base).stream(STORY)) == outcome
        finally:
            server.shutdown()


def test_openai_retries_server_errors_with_backoff_then_succeeds():
    calls = {"n": 0}

    def respond(h, body):
        calls["n"] += 1
        if calls["n"] < 3:
            send(h, 503, '{"error": "loading model"}')
        else:
            send(h, 200, sse([delta(content="Hello"), delta(content=" world"), "[DONE]"]), "text/event-stream")

    server, base, requests = local_server(respond)
    try:
        assert "".join(openai_gen(base, retries=2).stream(STORY)) == "Hello world"
        assert calls["n"] == 3
        with pytest.raises(GeneratorError, match="after 1 attempt: HTTP 503"):
            calls["n"] = 0
            list(openai_gen(base, retries=0).stream(STORY))
    finally:
        server.shutdown()


def test_openai_request_carries_settings_and_strips_history_reasoning(monkeypatch):
    server, base, requests = local_server(
        lambda h, b: send(h, 200, sse([delta(content="ok"), "[DONE]"]), "text/event-stream")
    )
    monkeypatch.setenv("RAG_TEST_KEY2", "k-123")
    try:
        history = [{"role": "assistant", "content": "<think>old</think>Earlier answer."}, *STORY]
        "".join(
            openai_gen(base, api_key_env="RAG_TEST_KEY2").stream(
                history, max_new_tokens=7, temperature=0.3, stop=("a", "b", "c", "d", "e")
            )
        )
        req = requests[0]
        assert req["auth"] == "Bearer k-123"
        assert req["body"]["max_tokens"] == 7 and req["body"]["temperature"] == 0.3 and req["body"]["stream"] is True
        assert req["body"]["stop"] == ["a", "b", "c", "d"]  # OpenAI takes 4; the 5th is applied locally
        assert req["body"]["messages"][0]["content"] == "Earlier answer."
    finally:
        server.shutdown()


def test_openai_reasoning_deltas_become_think_tags():
    """vLLM/DeepSeek send reasoning as delta.reasoning_content: it must not reach the answer."""
    events = [
        delta(reasoning_content="Passage 1 says"),
        delta(reasoning_content=" 17%."),
        delta(content="It fell 17 percent [1]."),
        "[DONE]",
    ]
    server, base, _ = local_server(lambda h, b: send(h, 200, sse(events), "text/event-stream"))
    try:
        run = AnswerStream(openai_gen(base), STORY, max_new_tokens=50)
        list(run)
        assert run.reasoning == "Passage 1 says 17%." and run.answer == "It fell 17 percent [1]."
    finally:
        server.shutdown()


# -- llama_cpp ----------------------------------------------------------------------------------
def test_llama_cpp_missing_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install '\.\[llamacpp\]'"):
        LlamaCppGenerator("smollm2")


def test_llama_cpp_needs_a_gguf(tmp_path):
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed: pip install '.[llamacpp]'")
    with pytest.raises(GeneratorError, match="needs a .gguf file"):
        LlamaCppGenerator("some/hub-model").warm_up()


@pytest.fixture(scope="session")
def llama_generator():
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed: pip install '.[llamacpp]' (CI installs it)")
    gen = LlamaCppGenerator("smollm2")
    gen.warm_up()
    return gen


@pytest.fixture(scope="session")
def llama_server_gen():
    """The default backend: the packaged GGUF behind a supervised llama.cpp server, started once."""
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed: pip install '.[llamacpp]' (CI installs it)")
    gen = LlamaServerGenerator("smollm2")
    gen.warm_up()
    yield gen
    gen.close()


@pytest.mark.slow
def test_llama_cpp_streams_stops_and_counts(llama_generator, real_generator):
    gen = llama_generator
    pieces = list(gen.stream(STORY, max_new_tokens=10))
    assert 3 <= len(pieces) <= 10 and gen.count_tokens("".join(pieces)) <= 11
    full = "".join(gen.stream(STORY, max_new_tokens=40))
    stop = full.split()[5]
    assert "".join(gen.stream(STORY, max_new_tokens=40, stop=(stop,))) == full[: full.find(stop)]
    # The GGUF's template renders the same prompt as transformers', and tokens are counted alike.
    assert gen.render(STORY) == real_generator.render(STORY)
    assert gen.count_tokens(full) == real_generator.count_tokens(full)
    assert gen.opens_think_in_prompt is False


@pytest.mark.slow
def test_llama_cpp_budget_cut_closes_reasoning_and_answers(llama_generator):
    """Treat SmolLM2 as if its template opened <think>: it never writes </think>, so the budget
    must cut it and the continuation after '</think>' must produce a non-empty answer."""
    run = AnswerStream(llama_generator, STORY, max_new_tokens=20, max_thinking_tokens=8, opens_think=True)
    list(run)
    assert run.budget_spent and run.continued
    assert run.reasoning and run.answer
    assert run.answer not in run.reasoning


def cited_claim(answer) -> tuple[list[str], list[tuple[int, str]], list[str]]:
    """What must agree between backends: the numbers stated, the sources cited, the words (case, spacing and punctuation aside)."""
    text = re.sub(r"\[\d+\]", " ", answer.text)
    return (
        re.findall(r"\d+(?:[.,]\d+)*", text),
        sorted((c.n, c.source) for c in answer.citations),
        re.findall(r"\w+", text.lower()),
    )


def test_cited_claim_ignores_spacing_and_punctuation_but_not_numbers_or_sources():
    """Guards the comparison below: a double space or a missing full stop must not count, a different number or source must."""
    from rag.records import Answer, Citation

    def answer(text, source="markets/nvidia.txt"):
        return Answer(
            question="q",
            text=text,
            citations=[Citation(n=1, title="t", source=source, snippet="s", score=1.0, chunk_id="c", start=0, end=1)],
        )

    base = cited_claim(answer("The share price fell 17 percent on 27 January 2025 [1]."))
    assert cited_claim(answer("The share price fell 17 percent  on 27 January 2025 [1]")) == base
    assert cited_claim(answer("The share price fell 16 percent on 27 January 2025 [1].")) != base
    assert cited_claim(answer("The share price fell 17 percent on 27 January 2025 [1].", source="r1.md")) != base


@pytest.mark.slow
def test_llama_cpp_and_transformers_give_the_same_cited_answer(
    tmp_path, articles_dir, real_embedder, real_generator, llama_generator, llama_server_gen
):
    """Greedy decoding of the same GGUF through transformers, llama.cpp in process and the
    supervised llama.cpp server (the default path), same evidence prompt.

    Not byte for byte: transformers computes with the dequantised float32 weights, llama.cpp
    with Q8_0 and its own kernels (which differ between CPU builds), so greedy output can part
    at a near-tie, and one engine's draft may fail the citation check and give way to the
    evidence answer. What must agree is what the reader gets: the figure and the cited
    source; and the two llama.cpp paths (same engine, same file) the same cited claim.
    The facts rule is off here (the one-sentence draft leaves out the 600 billion dollars):
    the engines' drafts are what is compared.
    """
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "evidence.draft_must_keep": "none"})
    answers = []
    for gen in (real_generator, llama_generator, llama_server_gen):
        rag = RAG(cfg, embedder=real_embedder, generator=gen)
        if not answers:
            rag.build(articles_dir)
        answers.append(rag.ask("By how much did Nvidia's share price fall on 27 January 2025?", temperature=0.0))
    tf, ll, server = answers
    for a in answers:
        assert a.mode in ("generated", "evidence") and "17" in a.text, a.text
        assert [c.source for c in a.citations] == ["markets/nvidia.txt"], a.text
    assert ll.mode == server.mode == "generated", (ll.text, ll.notes, server.text, server.notes)
    assert cited_claim(server) == cited_claim(ll), (server.text, ll.text)


# -- transformers --------------------------------------------------------------------------------
@pytest.mark.slow
def test_transformers_second_start_reads_the_safetensors_cache(real_generator, monkeypatch):
    """The session fixture already loaded the GGUF once, so its dequantised copy is cached:
    a fresh generator must load from it without converting the GGUF again."""
    import rag.generation.transformers as generation

    cache = real_generator.gguf_cache_path(packaged_smollm2_gguf())
    assert (cache / "model.safetensors").is_file() and (cache / "config.json").is_file()
    monkeypatch.setattr(generation, "_save_dequantised", lambda *a: pytest.fail("the GGUF was converted again"))
    fresh = TransformersGenerator("smollm2")
    fresh.warm_up()
    assert fresh.count_tokens("Hello world") == real_generator.count_tokens("Hello world")


@pytest.mark.slow
def test_transformers_max_new_tokens_and_stop_strings_with_the_real_model(real_generator):
    gen = real_generator
    full = "".join(gen.stream(STORY, max_new_tokens=40))
    short = "".join(gen.stream(STORY, max_new_tokens=8))
    assert gen.count_tokens(full) >= 30, full  # the story goes on past 8 tokens
    assert 6 <= gen.count_tokens(short) <= 8 and full.startswith(short), (short, full)
    stop = full.split()[5]
    cut = "".join(gen.stream(STORY, max_new_tokens=40, stop=(stop,)))
    assert cut == full[: full.find(stop)], (full, stop, cut)


@pytest.mark.slow
def test_transformers_temperature_samples_with_the_real_model(real_generator):
    """Greedy is repeatable; at temperature 1.5 the text differs from greedy at least once in three tries."""
    import torch

    torch.manual_seed(0)
    greedy = "".join(real_generator.stream(STORY, max_new_tokens=20))
    assert "".join(real_generator.stream(STORY, max_new_tokens=20, temperature=0.0)) == greedy
    sampled = {"".join(real_generator.stream(STORY, max_new_tokens=20, temperature=1.5)) for _ in range(3)}
    assert sampled - {greedy}, sampled


@pytest.mark.slow
def test_transformers_stream_continuation_continues_the_assistant_turn(real_generator):
    """Greedy continuation after the first words of the model's own answer gives the rest of that answer."""
    gen = real_generator
    assert gen.can_continue
    full = "".join(gen.stream(STORY, max_new_tokens=30))
    words = full.split(" ")
    prefix = " ".join(words[:4])
    rest = "".join(gen.stream_continuation(STORY, prefix, max_new_tokens=10))
    assert rest.strip() and full.startswith(prefix + rest), (prefix, rest, full)


@pytest.mark.slow
def test_transformers_budget_cut_closes_reasoning_and_answers(real_generator):
    """The thinking-budget path of the real transformers backend: cut, close </think> with
    stream_continuation, and a non-empty answer (SmolLM2 treated as if its template opened <think>)."""
    run = AnswerStream(real_generator, STORY, max_new_tokens=12, max_thinking_tokens=8, opens_think=True)
    list(run)
    assert run.budget_spent and run.continued
    assert run.reasoning and run.answer and run.answer not in run.reasoning


# -- llama_server: the default path -----------------------------------------------------------
def process_gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # our own child: reap it if it is a zombie
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


@pytest.mark.slow
@needs_llama_cpp
def test_llama_server_restarts_after_sigkill_mid_answer_and_stops_on_close():
    gen = LlamaServerGenerator("smollm2")
    try:
        assert "".join(gen.stream(STORY, max_new_tokens=8)).strip()
        first = gen.pid
        got = []
        with pytest.raises(
            GeneratorError,
            match=rf"local model process \(llama.cpp server, pid {first}\) stopped while answering \(killed by SIGKILL\); it is being restarted",
        ):
            for i, piece in enumerate(gen.stream(STORY, max_new_tokens=200)):
                got.append(piece)
                if i == 2:
                    os.kill(first, signal.SIGKILL)
        assert len(got) >= 3
        again = "".join(gen.stream(STORY, max_new_tokens=8))
        assert again.strip() and gen.pid not in (None, first) and gen.restarts == 1
        second = gen.pid
    finally:
        gen.close()
    assert gen.pid is None and process_gone(second)


@pytest.mark.slow
@needs_llama_cpp
def test_llama_server_child_exits_when_its_parent_is_killed(tmp_path):
    """No orphans: SIGKILL skips atexit, so the child watches a pipe from its parent and exits when it closes."""
    code = "from rag.generation import LlamaServerGenerator\ng = LlamaServerGenerator('smollm2'); g.warm_up(); print(g.pid, flush=True)\nimport time; time.sleep(300)"
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.kill()
        parent.wait(10)
        assert process_gone(child), f"llama.cpp server {child} outlived its killed parent"
    finally:
        parent.kill()


@pytest.mark.slow
@needs_llama_cpp
def test_llama_server_reuses_the_fixed_prompt_prefix(tmp_path, articles_dir, llama_server_gen):
    """The second question's prompt shares the system prompt and few-shot example with the first:
    the server must evaluate only the tokens after that prefix (llama.cpp's prefix matching)."""
    cfg = Config.load(None, {"index.path": str(tmp_path / "index"), "generation.max_new_tokens": 4})
    rag = RAG(cfg, embedder=FakeEmbedder(), generator=llama_server_gen)
    rag.build(articles_dir)
    start = llama_server_gen.log_path.stat().st_size
    rag.ask("By how much did Nvidia's share price fall on 27 January 2025?")
    rag.ask("Who released DeepSeek-R1 and under which licence?")
    log = llama_server_gen.log_path.read_text(errors="replace")[start:]
    hits = [(int(a), int(b)) for a, b in re.findall(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens", log)]
    assert hits, log[-2000:]
    reused, remaining = hits[-1]
    # The system prompt and few-shot example are ~160 tokens and come back from the cache; only
    # this question's evidence and words are evaluated (fewer tokens than the shared prefix).
    assert reused >= 150 and 10 < remaining < reused, hits


@pytest.mark.slow
@needs_llama_cpp
def test_default_path_answers_then_falls_back_to_extractive_when_the_child_dies_then_recovers(
    tmp_path, articles_dir, real_embedder
):
    """Through RAG with the default configuration (the facts rule off, so the model's draft is shown): a cited
    answer; SIGKILL mid-answer gives an extractive answer whose note says the model process is being restarted;
    the next question is generated again."""
    cfg = Config.load(
        None,
        {"index.path": str(tmp_path / "index"), "generation.max_new_tokens": 60, "evidence.draft_must_keep": "none"},
    )
    assert cfg.generation.backend == "llama_server"
    rag = RAG(cfg, embedder=real_embedder)
    try:
        rag.build(articles_dir)
        question = "By how much did Nvidia's share price fall on 27 January 2025?"
        first = rag.ask(question)
        assert not first.extractive and "17" in first.text and first.citations
        events = []
        for event in rag.stream_events(question):
            events.append(event)
            if event.kind == "draft" and sum(e.kind == "draft" for e in events) == 2:
                os.kill(rag.generator.pid, signal.SIGKILL)
        killed = events[-1].answer
        assert killed.extractive and "17 percent" in killed.text
        assert any("local model process" in n and "being restarted" in n for n in killed.notes), killed.notes
        again = rag.ask(question)
        assert not again.extractive and "17" in again.text
    finally:
        rag.generator.close()


# -- the fallback to transformers ---------------------------------------------------------------
def write_build_record(folder: Path, ok: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "ok": ok,
        "version": "0.3.36",
        "target": None if not ok else "avx2",
        "failures": [] if ok else ["avx2: died with SIGILL (an instruction this CPU reports but cannot run)"],
    }
    (folder / "llama-build.json").write_text(json.dumps(record))
    return folder


@needs_llama_cpp
def test_default_backend_falls_back_to_transformers_when_the_smoke_test_failed(tmp_path, monkeypatch):
    """The set-up recorded a crashing build: the default backend is transformers, with a one-line notice saying why."""
    from rag.generation.llama_server import llama_server_or_fallback

    cfg = Config.load(None).generation
    gen = llama_server_or_fallback(cfg, status_prefix=write_build_record(tmp_path / "bad", ok=False))
    assert isinstance(gen, TransformersGenerator) and gen._model is None
    assert gen.notice.startswith(
        "llama.cpp is not available (the llama.cpp build failed its smoke test at set-up (avx2: died with SIGILL"
    )
    assert "transformers" in gen.notice and "\n" not in gen.notice
    good = llama_server_or_fallback(cfg, status_prefix=write_build_record(tmp_path / "good", ok=True))
    assert isinstance(good, LlamaServerGenerator) and good.notice == "" and good.pid is None
    # The same through the registry, with the record named by the environment variable.
    monkeypatch.setenv("RAG_LLAMA_BUILD_STATUS", str(tmp_path / "bad" / "llama-build.json"))
    assert isinstance(make_generator(cfg), TransformersGenerator)


def test_default_backend_falls_back_to_transformers_without_llama_cpp(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    gen = make_generator(Config.load(None).generation)
    assert isinstance(gen, TransformersGenerator)
    assert gen.notice.startswith("llama.cpp is not available (llama-cpp-python is not installed)")


@pytest.mark.slow
@needs_llama_cpp
def test_fallback_generator_answers_through_rag(tmp_path, articles_dir, real_embedder, monkeypatch):
    """The transformers fallback is a working generator: a cited answer, and RAG exposes the notice."""
    monkeypatch.setenv(
        "RAG_LLAMA_BUILD_STATUS", str(write_build_record(tmp_path / "bad", ok=False) / "llama-build.json")
    )
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "generation.max_new_tokens": 40}),
        embedder=real_embedder,
    )
    rag.build(articles_dir)
    answer = rag.ask("By how much did Nvidia's share price fall on 27 January 2025?")
    assert isinstance(rag.generator, TransformersGenerator) and "smoke test" in rag.generator.notice
    # The model really ran (its draft is the answer, or was checked and kept aside), and the
    # reader gets the figure with its source either way.
    assert answer.mode == "generated" or answer.draft
    assert "17" in answer.text and [c.source for c in answer.citations] == ["markets/nvidia.txt"]
