"""Shared by the API and MCP tests: the sample index (built once per test run) and a server subprocess.

The servers run through tests/ui_launcher.py, which registers the scripted ``ui-test``
generator (it answers from the prompt's evidence, holds on HOLD while $RAG_TEST_HOLD is
missing and logs ``generate: ...`` per call), so ``rag api``, ``rag serve`` and ``rag mcp``
are the real commands with a test-only model.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

SAMPLE_ARTICLES = ROOT / "data" / "articles"
NVIDIA_Q = "How much did Nvidia shares fall on 27 January 2025?"
SCRIPTED_CONFIG = (
    "generation:\n  backend: ui-test\nui:\n  max_queue: 1\n  rewrite: heuristic\n  allowed_hosts: [rag.test]\n"
)
_built: dict[str, Path] = {}


def sample_index(base: Path, embedder) -> Path:
    """The index of data/articles (real MiniLM), built once per test run under ``base``."""
    if "index" not in _built:
        from rag import RAG, Config

        index = base / "sample-index"
        RAG(Config.load(None, {"index.path": str(index)}), embedder=embedder).build(SAMPLE_ARTICLES)
        _built["index"] = index
    return _built["index"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``rag <command>`` through tests/ui_launcher.py on a free loopback port, logging to ``work/<command>.log``.

    Args:
        work: a folder of its own (config, log, the HOLD release file).
        command: ``api``, ``serve`` or ``mcp``.
        config: the YAML config's text.
        index: the index folder.
        ready: the log line that says it is up.
        env: extra environment (e.g. RAG_API_KEY).
    """

    def __init__(
        self,
        work: Path,
        command: str,
        config: str,
        index: Path,
        ready: str,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.work, self.ready = work, ready
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.release = work / "release"
        self.log_path = work / f"{command}.log"
        (work / "config.yaml").write_text(config, encoding="utf-8")
        cmd = [
            sys.executable,
            str(ROOT / "tests" / "ui_launcher.py"),
            command,
            "--config",
            str(work / "config.yaml"),
            "--index",
            str(index),
            "--port",
            str(self.port),
            *args,
        ]
        full_env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "GRADIO_TEMP_DIR": str(work / "gradio-tmp"),
            "RAG_TEST_HOLD": str(self.release),
            "RAG_UI_AUTH": "",
            "RAG_API_KEY": "",
            **(env or {}),
        }
        with open(self.log_path, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_up(self, timeout: float = 180.0) -> Server:
        deadline = time.monotonic() + timeout
        while self.ready not in self.log():
            assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"the server did not start:\n{self.log()[-3000:]}"
            time.sleep(0.2)
        return self

    def wait_for(self, text: str, count: int, timeout: float = 60.0) -> None:
        """Until ``text`` appears ``count`` times in the log."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} did not appear {count} times:\n{self.log()[-2000:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        self.release.touch()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
