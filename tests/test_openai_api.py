"""The OpenAI-compatible endpoint (ui/openai_api.py) through real clients against real server processes.

``rag api`` and ``rag serve`` run as subprocesses on 127.0.0.1 over the sample index
(data/articles, real MiniLM) with the scripted ``ui-test`` generator; the last test asks the
packaged SmolLM2 through the shipped configuration. Clients: the ``openai`` package, the
``llm`` CLI (its extra-openai-models.yaml), and raw HTTP for the SSE format and the guards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import NVIDIA_Q, SCRIPTED_CONFIG, Server, sample_index
from conftest import ROOT

API_READY = "Serving the OpenAI-compatible API"
FOLLOW_UP = "and why did it fall?"


@pytest.fixture(scope="module")
def index(tmp_path_factory, real_embedder) -> Path:
    return sample_index(tmp_path_factory.getbasetemp(), real_embedder)


@pytest.fixture(scope="module")
def api(tmp_path_factory, index) -> Iterator[Server]:
    """``rag api`` on loopback without a key, one answer at a time and one waiting."""
    server = Server(tmp_path_factory.mktemp("rag-api"), "api", SCRIPTED_CONFIG, index, API_READY)
    try:
        yield server.wait_up()
    finally:
        server.stop()


def openai_client(server: Server, key: str = "unused-on-loopback"):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


def ask_body(question: str = NVIDIA_Q, **extra) -> dict:
    return {"model": "rag", "messages": [{"role": "user", "content": question}], **extra}


def tokens(text: str) -> int:
    import tiktoken

    from rag.text import get_encoding

    assert isinstance(get_encoding("cl100k_base"), tiktoken.Encoding)
    return len(get_encoding("cl100k_base").encode(text))


# -- the openai package -----------------------------------------------------------------------------
def test_models_lists_the_served_model(api):
    models = openai_client(api).models.list()
    assert [m.id for m in models.data] == ["rag"]
    assert openai_client(api).models.retrieve("rag").id == "rag"


def test_openai_client_answer_has_sources_and_citations_in_the_raw_response(api):
    """The content ends with a plain Sources list naming each cited passage; the raw JSON carries citations, mode and usage."""
    raw = openai_client(api).chat.completions.with_raw_response.create(
        model="rag", messages=[{"role": "user", "content": NVIDIA_Q}]
    )
    completion, body = raw.parse(), raw.http_response.json()
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop" and "17%" in content
    citations = body["citations"]
    assert citations and body["mode"] in ("generated", "evidence")
    assert {"n", "title", "source", "pages", "start", "end", "snippet", "support"} <= set(citations[0])
    answer, _, sources = content.partition("\n\nSources:\n")
    assert sources.splitlines() == [f"[{c['n']}] {c['title']} ({c['source']}, {c['date']})" for c in citations]
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer)} == {c["n"] for c in citations}
    assert any(c["source"] == "news/nvidia-selloff.md" for c in citations)
    assert body["usage"] == {
        "prompt_tokens": tokens(NVIDIA_Q),
        "completion_tokens": tokens(content),
        "total_tokens": tokens(NVIDIA_Q) + tokens(content),
    }


def test_openai_client_stream_joins_to_the_same_answer(api):
    """Streamed pieces add up to the non-streamed content; the last content chunk carries citations and mode."""
    client = openai_client(api)
    whole = client.chat.completions.create(**ask_body()).choices[0].message.content
    chunks = list(client.chat.completions.create(**ask_body(), stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert finish[0].model_extra["mode"] in ("generated", "evidence")
    assert [c["n"] for c in finish[0].model_extra["citations"]] == [
        int(n) for n in re.findall(r"^\[(\d+)\]", whole, re.MULTILINE)
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == tokens(whole)
    assert len({c.id for c in chunks}) == 1


def test_follow_up_in_the_message_history_is_answered_about_the_earlier_subject(api):
    """Earlier turns drive rewriting: "and why did it fall?" after the Nvidia question is searched as about Nvidia."""
    client = openai_client(api)
    first = client.chat.completions.create(**ask_body()).choices[0].message.content
    history = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": NVIDIA_Q},
        {"role": "assistant", "content": first},
        {"role": "user", "content": FOLLOW_UP},
    ]
    raw = client.chat.completions.with_raw_response.create(model="rag", messages=history)
    body = raw.http_response.json()
    assert "Nvidia" in body["query"] and body["query"] != FOLLOW_UP
    assert any(c["source"] == "news/nvidia-selloff.md" for c in body["citations"]), body["citations"]
    alone = client.chat.completions.with_raw_response.create(
        model="rag", messages=[{"role": "user", "content": FOLLOW_UP}]
    )
    assert alone.http_response.json()["query"] == FOLLOW_UP  # no history: nothing to rewrite from


def test_a_system_message_does_not_change_retrieval(api):
    plain = httpx.post(api.url + "/v1/chat/completions", json=ask_body(), timeout=120).json()
    told = ask_body()
    told["messages"].insert(0, {"role": "system", "content": "Talk only about sourdough bread baking."})
    with_system = httpx.post(api.url + "/v1/chat/completions", json=told, timeout=120).json()
    assert with_system["query"] == plain["query"] == NVIDIA_Q
    assert with_system["citations"] == plain["citations"]


def test_unknown_fields_are_ignored_and_stop_cuts_the_content(api):
    body = ask_body(
        top_p=0.5,
        user="someone",
        presence_penalty=0,
        tools=[],
        metadata={"x": 1},
        stop=["\n\nSources:"],
        max_tokens=100_000,
        temperature=0,
        messages=[{"role": "user", "content": [{"type": "text", "text": NVIDIA_Q}]}],
    )
    r = httpx.post(api.url + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert "17%" in content and "Sources:" not in content


# -- the llm CLI -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [True, False])
def test_llm_cli_through_its_openai_compatible_model_configuration(api, tmp_path, stream):
    """llm's extra-openai-models.yaml entry pointing at the server answers with the cited text and its Sources."""
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: articles\n  model_name: rag\n  api_base: {api.url}/v1\n", encoding="utf-8"
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "LLM_LOAD_PLUGINS": ""}
    cmd = [sys.executable, "-m", "llm", "-m", "articles", NVIDIA_Q, "--no-log", *([] if stream else ["--no-stream"])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "17%" in out.stdout and "\n\nSources:\n[" in out.stdout and "news/nvidia-selloff.md" in out.stdout, (
        out.stdout
    )


# -- the raw stream ----------------------------------------------------------------------------------
def test_raw_sse_stream_is_openai_chunks_then_done(api):
    """Every event is a ``data:`` line (or an SSE comment) and a blank line; JSON chunks, then usage, then [DONE]."""
    with httpx.stream(
        "POST",
        api.url + "/v1/chat/completions",
        json=ask_body(stream=True, stream_options={"include_usage": True}),
        timeout=120,
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode("utf-8")
    events = [e for e in text.split("\n\n") if e]
    assert text.endswith("data: [DONE]\n\n") and events[-1] == "data: [DONE]"
    data = []
    for event in events[:-1]:
        assert "\n" not in event and (event.startswith("data: ") or event.startswith(":")), event
        if event.startswith("data: "):
            data.append(json.loads(event[len("data: ") :]))
    assert all(d["object"] == "chat.completion.chunk" and d["model"] == "rag" for d in data)
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finish, usage = data[-2], data[-1]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["citations"] and finish["mode"]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert "Sources:" in "".join(d["choices"][0]["delta"].get("content", "") for d in data[:-1])


# -- bad requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, param, status",
    [
        ({"temperature": 5}, "temperature", 400),
        ({"temperature": "hot"}, "temperature", 400),
        ({"max_tokens": 0}, "max_tokens", 400),
        ({"stream": "yes"}, "stream", 400),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", 400),
        ({"n": 2}, "n", 400),
        ({"messages": []}, "messages", 400),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages", 400),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content",
            400,
        ),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", 400),
        ({"messages": [{"role": "user", "content": "x" * 2001}]}, "messages", 400),
        ({"model": "gpt-4o"}, "model", 404),
    ],
)
def test_bad_fields_are_errors_in_openai_shape(api, change, param, status):
    calls = api.log().count("generate:")
    r = httpx.post(api.url + "/v1/chat/completions", json={**ask_body(), **change}, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert (
        set(error) == {"message", "type", "param", "code"}
        and error["param"] == param
        and error["type"] == "invalid_request_error"
    )
    assert api.log().count("generate:") == calls, "a refused request reached the model"


def test_bad_temperature_through_the_openai_client(api):
    from openai import BadRequestError

    with pytest.raises(BadRequestError, match=r"temperature must be a number from 0 to 2, got '5'") as info:
        openai_client(api).chat.completions.create(**ask_body(), temperature=5)
    assert info.value.body == {
        "message": "temperature must be a number from 0 to 2, got '5'",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }


def test_question_limit_names_the_setting(api):
    r = httpx.post(api.url + "/v1/chat/completions", json=ask_body("x" * 2001), timeout=30)
    assert r.status_code == 400 and "the limit is 2000 (ui.max_question_chars)" in r.json()["error"]["message"]


def test_invalid_json_is_400(api):
    r = httpx.post(
        api.url + "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    deep = b"[" * 100_000 + b"]" * 100_000
    assert (
        httpx.post(api.url + "/v1/chat/completions", content=deep, timeout=30).json()["error"]["code"] == "invalid_json"
    )


# -- guards ----------------------------------------------------------------------------------------------
def test_forged_host_and_origin_get_403(api):
    """DNS rebinding and cross-site pages: the guard refuses before the endpoint runs."""
    evil_host = httpx.post(
        api.url + "/v1/chat/completions", json=ask_body(), headers={"Host": "evil.example"}, timeout=30
    )
    assert evil_host.status_code == 403 and "evil.example" in evil_host.text
    evil_origin = httpx.post(
        api.url + "/v1/chat/completions", json=ask_body(), headers={"Origin": "http://evil.example"}, timeout=30
    )
    assert evil_origin.status_code == 403
    assert httpx.get(api.url + "/v1/models", headers={"Host": f"rag.test:{api.port}"}, timeout=30).status_code == 200


def test_oversized_body_is_413(api):
    big = json.dumps(ask_body(padding="x" * (5 * 1024 * 1024))).encode()
    r = httpx.post(
        api.url + "/v1/chat/completions", content=big, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 413 and "the limit is 4194304" in r.text

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap applies as the body streams in
        for _ in range(6):
            yield b" " * (1024 * 1024)

    r = httpx.post(
        api.url + "/v1/chat/completions", content=chunked(), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_full_queue_is_429_with_retry_after_and_a_client_gone_from_the_line_leaves_it(api):
    """One answer with the model (held), one waiting (ui.max_queue: 1): the next is told the server is busy.
    A client that gives up while waiting frees its place, so the one after it is not refused."""
    api.release.unlink(missing_ok=True)
    answers = api.log().count("generate: answer")
    results: dict[str, httpx.Response] = {}

    def ask(name: str) -> None:
        results[name] = httpx.post(api.url + "/v1/chat/completions", json=ask_body("HOLD " + NVIDIA_Q), timeout=120)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    third = threading.Thread(target=ask, args=("third",))
    try:
        api.wait_for("generate: answer", answers + 1)
        waiting = api.log().count("an API question waits in line")
        with pytest.raises(httpx.ReadTimeout):  # waits in line (a refusal would come at once), then gives up
            httpx.post(api.url + "/v1/chat/completions", json=ask_body("HOLD " + NVIDIA_Q), timeout=3)
        assert api.log().count("an API question waits in line") == waiting + 1
        threading.Event().wait(0.5)
        third.start()
        api.wait_for("an API question waits in line", waiting + 2)
        busy = httpx.post(api.url + "/v1/chat/completions", json=ask_body(), timeout=30)
        assert busy.status_code == 429, busy.text
        assert int(busy.headers["retry-after"]) > 0
        assert busy.json()["error"] == {
            "message": "The server is busy: 1 question is waiting (ui.max_queue = 1). Try again in a moment.",
            "type": "rate_limit_error",
            "param": None,
            "code": "server_busy",
        }
    finally:
        api.release.touch()
        first.join(120)
        if third.is_alive() or "third" in results:
            third.join(120)
    assert results["first"].status_code == 200
    assert results["third"].status_code == 200, "the client that gave up kept its place in line"


def test_api_refuses_to_start_beyond_loopback_without_a_key(tmp_path):
    env = {**os.environ, "RAG_API_KEY": ""}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "api", "--host", "0.0.0.0", "--index", str(tmp_path / "none")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 2
        and "refusing to serve the API on '0.0.0.0' without a key" in out.stderr
        and "RAG_API_KEY" in out.stderr
    )


def test_beyond_loopback_without_a_configured_key_every_request_is_401():
    """rag serve on 0.0.0.0 (with a page login) but no RAG_API_KEY: the API stays shut rather than open."""
    from starlette.requests import Request

    from ui.openai_api import ChatAPI

    api = ChatAPI(None, loopback=False, key=None)  # type: ignore[arg-type]  # the key check needs no pipeline
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "headers": [(b"authorization", b"Bearer anything")],
        "client": ("10.0.0.2", 1),
    }
    refused = api._key_refusal(Request(scope))
    assert refused is not None and refused.status == 401 and refused.code == "api_key_not_configured"
    assert ChatAPI(None, loopback=True)._key_refusal(Request(scope)) is None  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def keyed_serve(tmp_path_factory, index) -> Iterator[Server]:
    """``rag serve`` (the page and the API on one port) with RAG_API_KEY set."""
    server = Server(
        tmp_path_factory.mktemp("rag-serve-key"),
        "serve",
        SCRIPTED_CONFIG + "  upload: false\n",
        index,
        "Serving the chat UI",
        env={"RAG_API_KEY": "s3cret-key"},
    )
    try:
        yield server.wait_up()
    finally:
        server.stop()


def test_serve_answers_the_api_on_the_page_port_with_the_key(keyed_serve):
    from openai import AuthenticationError

    assert "bearer key required" in keyed_serve.log()
    assert httpx.get(keyed_serve.url + "/config", timeout=30).status_code == 200  # the page itself is unchanged
    missing = httpx.post(keyed_serve.url + "/v1/chat/completions", json=ask_body(), timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert missing.headers["www-authenticate"] == "Bearer"
    with pytest.raises(AuthenticationError, match="wrong API key"):
        openai_client(keyed_serve, key="guess").chat.completions.create(**ask_body())
    answer = openai_client(keyed_serve, key="s3cret-key").chat.completions.create(**ask_body())
    assert "17%" in answer.choices[0].message.content
    assert "s3cret-key" not in keyed_serve.log()


def test_repeated_wrong_keys_lock_the_address_out(keyed_serve):
    codes = [
        httpx.get(keyed_serve.url + "/v1/models", headers={"Authorization": f"Bearer guess{i}"}, timeout=30).status_code
        for i in range(5)
    ]
    assert codes == [401] * 5
    locked = httpx.get(keyed_serve.url + "/v1/models", headers={"Authorization": "Bearer s3cret-key"}, timeout=30)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert locked.json()["error"]["code"] == "too_many_failed_keys"


def test_no_index_is_503_before_any_stream_starts(tmp_path):
    """Failures up to retrieval are an HTTP status in OpenAI's shape, for a stream too (not a 200 that breaks)."""
    server = Server(tmp_path / "no-index", "api", SCRIPTED_CONFIG, tmp_path / "missing-index", API_READY).wait_up()
    try:
        for stream in (False, True):
            r = httpx.post(server.url + "/v1/chat/completions", json=ask_body(stream=stream), timeout=60)
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "index_unavailable" and "no index" in error["message"].lower(), error
            assert str(tmp_path) not in error["message"] and "Traceback" not in r.text
    finally:
        server.stop()


# -- the real model --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_smollm2_answer_through_the_openai_client(tmp_path, index):
    """The shipped configuration (llama.cpp, else transformers, SmolLM2) behind ``rag api``: a cited answer, streamed and not."""
    config = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    server = Server(tmp_path / "real", "api", config, index, API_READY).wait_up()
    try:
        client = openai_client(server)
        question = "Who founded DeepSeek and when?"
        raw = client.chat.completions.with_raw_response.create(
            model="rag", messages=[{"role": "user", "content": question}]
        )
        body = raw.http_response.json()
        content = body["choices"][0]["message"]["content"]
        assert body["mode"] in ("generated", "evidence") and body["citations"], body
        assert "Liang Wenfeng" in content and "\n\nSources:\n" in content
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(
                model="rag", messages=[{"role": "user", "content": question}], stream=True
            )
            if c.choices
        )
        assert streamed == content  # greedy decoding: the same checked answer
    finally:
        server.stop()
