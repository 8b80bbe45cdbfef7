"""``rag mcp`` (ui/mcp_server.py) through the official ``mcp`` SDK's client: over stdio, and streamable HTTP on loopback.

The server is the real command (tests/ui_launcher.py, scripted ``ui-test`` generator) over
the sample index (data/articles, real MiniLM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from api_helpers import NVIDIA_Q, SCRIPTED_CONFIG, Server, sample_index
from conftest import ROOT

pytest.importorskip("mcp", reason="the MCP SDK is the mcp extra: pip install -e '.[mcp]'")


@pytest.fixture(scope="module")
def index(tmp_path_factory, real_embedder) -> Path:
    return sample_index(tmp_path_factory.getbasetemp(), real_embedder)


def stdio_params(work: Path, index: Path):
    from mcp import StdioServerParameters

    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(SCRIPTED_CONFIG, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_TEST_HOLD": str(work / "release")}
    (work / "release").touch()
    return StdioServerParameters(
        command=sys.executable,
        args=[
            str(ROOT / "tests" / "ui_launcher.py"),
            "mcp",
            "--config",
            str(work / "config.yaml"),
            "--index",
            str(index),
        ],
        env=env,
        cwd=str(ROOT),
    )


def call_all(server) -> dict:
    """List the tools, then call each (and a few bad calls) in one session."""
    from mcp import Client

    async def run() -> dict:
        async with Client(server, read_timeout_seconds=180) as client:
            tools = await client.list_tools()
            return {
                "tools": {t.name: t for t in tools.tools},
                "search": await client.call_tool("search_articles", {"query": "Nvidia shares fall", "top_k": 3}),
                "ask": await client.call_tool("ask", {"question": NVIDIA_Q}),
                "list": await client.call_tool("list_articles", {}),
                "empty": await client.call_tool("ask", {"question": "  "}),
                "bad_k": await client.call_tool("search_articles", {"query": "Nvidia", "top_k": 0}),
                "too_long": await client.call_tool("ask", {"question": "x" * 2001}),
            }

    return anyio.run(run)


@pytest.fixture(scope="module")
def stdio_results(tmp_path_factory, index) -> dict:
    return call_all(stdio_params(tmp_path_factory.mktemp("mcp-stdio"), index))


def structured(result) -> object:
    assert not result.is_error, result.content
    data = result.structured_content
    return data["result"] if isinstance(data, dict) and set(data) == {"result"} else data


def test_stdio_lists_the_three_tools_with_their_arguments(stdio_results):
    tools = stdio_results["tools"]
    assert set(tools) == {"search_articles", "ask", "list_articles"}
    assert set(tools["search_articles"].input_schema["properties"]) == {"query", "top_k"}
    assert tools["search_articles"].input_schema["required"] == ["query"]
    assert set(tools["ask"].input_schema["properties"]) == {"question"}
    assert tools["ask"].description and "cited" in tools["ask"].description


def test_search_articles_returns_passages_with_source_offsets_and_relevance(stdio_results):
    passages = structured(stdio_results["search"])
    assert len(passages) == 3 and passages[0]["source"] == "news/nvidia-selloff.md"
    assert {"n", "title", "source", "pages", "start", "end", "relevance", "text"} <= set(passages[0])
    assert [p["n"] for p in passages] == [1, 2, 3]
    assert all(0 <= p["start"] < p["end"] for p in passages)


def test_ask_returns_the_cited_answer_with_its_mode(stdio_results):
    answer = structured(stdio_results["ask"])
    assert "17%" in answer["answer"] and "\n\nSources:\n[" in answer["answer"]
    assert answer["mode"] in ("generated", "evidence") and answer["citations"]
    assert any(c["source"] == "news/nvidia-selloff.md" for c in answer["citations"])


def test_list_articles_lists_the_sample_articles(stdio_results):
    articles = structured(stdio_results["list"])
    on_disk = {
        p.relative_to(ROOT / "data" / "articles").as_posix()
        for p in (ROOT / "data" / "articles").rglob("*")
        if p.is_file()
    }
    listed = {a["source"] for a in articles}
    assert listed and all(s.split("#")[0] in on_disk for s in listed), listed - on_disk
    assert "news/nvidia-selloff.md" in listed


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty", "the question is empty"),
        ("bad_k", "top-k must be a whole number from 1 to 20, got 0"),
        ("too_long", "the limit is 2000 (ui.max_question_chars)"),
    ],
)
def test_tool_errors_are_mcp_errors_with_a_message_not_a_traceback(stdio_results, name, message):
    result = stdio_results[name]
    assert result.is_error
    text = " ".join(c.text for c in result.content)
    assert message in text and "Traceback" not in text and "InputError" not in text


@pytest.fixture(scope="module")
def http_server(tmp_path_factory, index) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("mcp-http"), "mcp", SCRIPTED_CONFIG, index, "Serving MCP (streamable HTTP)", "--http"
    )
    try:
        yield server.wait_up()
    finally:
        server.stop()


def test_streamable_http_on_loopback(http_server):
    from mcp import Client

    async def run():
        async with Client(http_server.url + "/mcp", read_timeout_seconds=180) as client:
            return await client.list_tools(), await client.call_tool(
                "search_articles", {"query": "Nvidia shares fall", "top_k": 2}
            )

    tools, search = anyio.run(run)
    assert {t.name for t in tools.tools} == {"search_articles", "ask", "list_articles"}
    assert structured(search)[0]["source"] == "news/nvidia-selloff.md"
    forged = httpx.post(
        http_server.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Host": "evil.example"},
        timeout=30,
    )
    assert forged.status_code == 403


def test_http_refuses_a_non_loopback_host(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "mcp", "--http", "--host", "0.0.0.0", "--index", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "serves on loopback only" in out.stderr


def test_result_text_is_json_for_clients_without_structured_output(stdio_results):
    text = stdio_results["ask"].content[0].text
    assert "17%" in json.loads(text)["answer"]
