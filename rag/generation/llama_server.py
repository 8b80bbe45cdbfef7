"""The default answer path: llama.cpp in a supervised child process, spoken to over loopback HTTP.

Why a child process: llama.cpp is native code; a build that executes an instruction the
CPU cannot run dies with SIGILL, and a crash in-process would take ``rag serve`` and every
open chat down with it. Here the child dies alone: the answer being written fails with a
:class:`GeneratorError` saying the local model process stopped and is being restarted (the
pipeline then answers extractively), and the next question finds a fresh server.

The child is ``python -m llama_cpp.server`` on ``127.0.0.1`` and a free port, talked to
with :class:`~rag.generation.openai.OpenAIGenerator`. Only this process can use it: each
start gets a random API key that only this process knows (requests without it get 401),
it answers only ``Host: 127.0.0.1`` (400 otherwise), sends no CORS headers, and
``/v1/models`` lists the model by a short alias, not by its path (SECURITY.md). llama.cpp keeps the KV cache of the
previous request and reuses its longest common token prefix, so the fixed system prompt
and few-shot example are processed once and each question pays only for its own tokens.

A backend of its own rather than a change to ``llama_cpp``: the in-process backend stays
the raw reference for benchmarks, and the one that can continue a half-written assistant
turn (``can_continue``; the server's chat API cannot, so here a spent thinking budget asks
again in the user turn). Token counts here are tiktoken's approximation (the GGUF's
tokenizer lives in the child), so ``context_window`` is reported a tenth below ``n_ctx``.

It never outlives this process: it is stopped by :meth:`LlamaServerGenerator.close`, at
exit (``atexit``, killing its process group), and, if this process is killed outright, by
itself: it watches a pipe from this process and exits when the pipe closes.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from .base import FromConfig, GeneratorError, Message
from .gguf import LlamaOptions, llama_status, prepared_gguf, require_llama_cpp, thread_counts
from .openai import OpenAIGenerator
from .transformers import TransformersGenerator

log = logging.getLogger(__name__)

# Runs llama_cpp.server in the child after starting a thread that exits the process as soon
# as the parent's end of stdin closes (the parent exited or was killed). The server's app is
# narrowed first: its CORS layer (any origin, with credentials) is dropped and only Host
# 127.0.0.1 is answered, so no web page can use it; the API key comes in $API_KEY (read by
# llama_cpp.server's settings), never on the command line, where every local user sees it.
_CHILD = r"""
import os, runpy, sys, threading

def _watch_parent():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)

threading.Thread(target=_watch_parent, daemon=True, name="parent-watch").start()

import llama_cpp.server.app as _app
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

_create_app = _app.create_app

def _narrowed_app(*args, **kwargs):
    app = _create_app(*args, **kwargs)
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not CORSMiddleware]
    app.user_middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1"]))
    return app

_app.create_app = _narrowed_app
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

_LIVE: weakref.WeakSet[LlamaServerGenerator] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for gen in list(_LIVE):
        gen.close()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_alias(model: str) -> str:
    """The name the child serves the model under: a ``.gguf`` path's file stem, so no path reaches ``/v1/models``."""
    return Path(model).stem if model.lower().endswith(".gguf") else model


def describe_exit(returncode: int | None) -> str:
    """``killed by SIGKILL`` / ``exit code 1`` for a child's return code."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class LlamaServerGenerator(FromConfig):
    """GGUF models through a supervised ``llama_cpp.server`` child process (the default backend).

    The constructor is cheap; the server starts on :meth:`warm_up` or the first question
    (a few seconds, plus about one second once to re-quantise the GGUF to ``gguf_type``).

    Args:
        model: ``smollm2`` (the packaged GGUF) or a ``.gguf`` path.
        context_window: the server's ``n_ctx`` (None: 2048).
        n_threads: CPU threads for generation (None: derived from the CPUs available).
        n_threads_batch: CPU threads for prompt processing (None: every CPU available).
        gguf_type: ``packaged`` or the type to re-quantise the GGUF to once (``q8_0``, ``q4_0``, ``f16``).
        cache_dir: where re-quantised GGUF files go (None: ``~/.cache/rag/models``).
        prompt_lookup: prompt-lookup decoding (the server's ``draft_model: prompt-lookup-decoding``),
            this many draft tokens copied from the prompt per step (0: plain decoding).
        opens_think: the model's chat template opens ``<think>`` in the prompt.
        timeout: seconds to wait for each streamed piece.
        startup_timeout: seconds the server may take to answer ``/v1/models`` after starting.

    Raises:
        ImportError: llama-cpp-python is missing (names the extra to install).

    Example:
        >>> gen = LlamaServerGenerator("smollm2")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
        >>> gen.close()                                      # or let the process exit
    """

    can_continue: ClassVar[bool] = False
    supports_reasoning: ClassVar[bool] = True
    notice: str = ""

    class Options(LlamaOptions):
        """This backend's own settings (``generation.llama_server``): every llama.cpp backend's, plus these."""

        timeout: float = Field(60.0, gt=0, description="Seconds to wait for each piece the server streams.")

    shared: ClassVar[tuple[str, ...]] = ("model", "context_window", "cache_dir", "opens_think")

    @classmethod
    def from_config(cls, cfg: Any, options: LlamaOptions | None = None) -> LlamaServerGenerator | TransformersGenerator:
        """The registry's factory: this backend, or transformers with a notice when llama.cpp is unusable here."""
        return llama_server_or_fallback(cfg, options=options)

    def __init__(
        self,
        model: str = "smollm2",
        *,
        context_window: int | None = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        gguf_type: str = "q8_0",
        cache_dir: str | None = None,
        prompt_lookup: int = 0,
        opens_think: bool | None = None,
        timeout: float = 60.0,
        startup_timeout: float = 120.0,
    ) -> None:
        require_llama_cpp()
        self.prompt_lookup = prompt_lookup
        self.name = model
        self.n_ctx = context_window or 2048
        self.n_threads, self.n_threads_batch = thread_counts(n_threads, n_threads_batch)
        self.gguf_type = gguf_type
        self._cache_dir = cache_dir
        self.startup_timeout = startup_timeout
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._client = OpenAIGenerator(
            model_alias(model),
            base_url="http://127.0.0.1:1/v1",
            api_key_env=None,
            timeout=timeout,
            retries=0,
            context_window=self.context_window,
            opens_think=opens_think,
        )
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by close(), so a restart scheduled before it does not run after it
        self.log_path: Path | None = None

    # -- the protocol ---------------------------------------------------------------
    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer, a tenth below ``n_ctx``: counts here are approximate (tiktoken)."""
        return int(self.n_ctx * 0.9)

    @property
    def opens_think_in_prompt(self) -> bool:
        """Configured (``generation.opens_think``): the template is applied by the server."""
        return self._client.opens_think_in_prompt

    def count_tokens(self, text: str) -> int:
        """Approximate tokens (tiktoken ``cl100k_base``): the GGUF's tokenizer lives in the child."""
        return self._client.count_tokens(text)

    def warm_up(self) -> None:
        """Start the server now (otherwise on the first question); a no-op while it runs."""
        with self._lock:
            self._ensure_running()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]:
        """Stream the server's answer; a server that died mid-answer is restarted for the next question.

        Raises:
            GeneratorError: the server could not start, or it stopped while answering (the
                message says so and that it is being restarted).
        """
        with self._lock:
            proc = self._ensure_running()
            client = self._client
        try:
            yield from client.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop)
        except GeneratorError as exc:
            # A transport failure (connection refused or broken) may be the child dying: its
            # sockets close just before it can be reaped, so wait for it briefly. An HTTP error
            # from a live server is not worth the wait.
            if not _has_exited(proc, wait=2.0 if exc.__cause__ is not None else 0.0):
                raise
            self._restart_in_background()
            raise GeneratorError(
                f"the local model process (llama.cpp server, pid {proc.pid}) stopped while answering ({describe_exit(proc.returncode)}); "
                "it is being restarted, so ask again in a moment"
            ) from exc

    def close(self) -> None:
        """Stop the server (safe to call more than once; the next question starts it again)."""
        with self._lock:
            self._epoch += 1
            self._stop()

    # -- the child process ------------------------------------------------------------
    def _ensure_running(self) -> subprocess.Popen:
        """Start the server unless it runs (the caller holds ``self._lock``)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return self._proc
            log.warning(
                "the local model process (pid %d) stopped (%s); restarting it",
                self._proc.pid,
                describe_exit(self._proc.returncode),
            )
            self._stop()
            self.restarts += 1
        gguf = prepared_gguf(self.name, self.gguf_type, self._cache_dir)
        for attempt in range(3):  # another program may take the free port before the server binds it
            port = free_port()
            key = secrets.token_urlsafe(32)  # a new one for each child: only this process ever knows it
            proc = self._spawn(gguf, port, key)
            if self._wait_ready(proc, port, key, last_try=attempt == 2):
                self._proc = proc
                self._client.base_url = f"http://127.0.0.1:{port}/v1"
                self._client.api_key = key
                _LIVE.add(self)
                return proc
        raise AssertionError("unreachable")  # pragma: no cover - _wait_ready raises on the last try

    def _spawn(self, gguf: Path, port: int, key: str) -> subprocess.Popen:
        args = [
            "--model",
            str(gguf),
            "--model_alias",
            self._client.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads_batch),
        ]
        if self.prompt_lookup:
            args += [
                "--draft_model",
                "prompt-lookup-decoding",
                "--draft_model_num_pred_tokens",
                str(self.prompt_lookup),
            ]
        self.log_path = Path(tempfile.gettempdir()) / f"rag-llama-server-{os.getpid()}-{id(self):x}.log"
        # llama.cpp's OpenMP threads spin at every barrier by default; when anything else runs
        # on the cores (the embedder, the UI, other programs) a descheduled thread stalls the
        # others. Measured at load average ~8 on 2 cores, 2 threads, ~550-token prompt: TTFT
        # 21.6 s and 1.6 tokens/s by default, 4.6 s and 16.8 tokens/s with passive waiting.
        env = {**os.environ, "API_KEY": key}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with self.log_path.open("wb") as out:
            # Its own process group, so close() and atexit stop everything it started.
            return subprocess.Popen(
                [sys.executable, "-c", _CHILD, *args],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

    def _wait_ready(self, proc: subprocess.Popen, port: int, key: str, *, last_try: bool) -> bool:
        """Wait until ``/v1/models`` answers; False when the port was taken (worth another try)."""
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self._log_tail()
                if "address already in use" in tail.lower() and not last_try:
                    return False
                raise GeneratorError(
                    f"the local model process (llama.cpp server) {describe_exit(proc.returncode)} while starting: {tail[-500:]!r}; "
                    "check the build with `python scripts/llama_build.py --check`, or set generation.backend: transformers"
                )
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=2
                    ).status_code
                    == 200
                ):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        _kill_group(proc)
        raise GeneratorError(
            f"the local model process (llama.cpp server) did not answer within {self.startup_timeout:g} s (log: {self.log_path}); "
            "the machine may be overloaded, or set generation.backend: transformers"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip() if self.log_path else ""
        except OSError:
            return ""

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc)
            _LIVE.discard(self)

    def _restart_in_background(self) -> None:
        epoch = self._epoch

        def restart() -> None:
            with self._lock:
                if self._epoch != epoch:
                    return  # closed since: stay stopped
                try:
                    self._ensure_running()
                except GeneratorError as exc:
                    log.warning("restarting the local model process failed: %s", exc)

        threading.Thread(target=restart, daemon=True, name="rag-llama-restart").start()


def _has_exited(proc: subprocess.Popen, wait: float) -> bool:
    """Whether the child is gone, waiting up to ``wait`` seconds for it."""
    if proc.poll() is not None:
        return True
    if wait <= 0:
        return False
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        return False
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, SIGKILL it after 5 s, and reap the child."""
    if proc.stdin is not None:
        try:
            proc.stdin.close()
        except OSError:
            pass
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- the registry's factory: llama.cpp when it runs here, transformers otherwise --------------
_NOTICES_LOGGED: set[str] = set()


def fallback_notice(reason: str) -> str:
    """The one-line notice shown when the default path falls back to transformers."""
    return (
        f"llama.cpp is not available ({reason}), so answers come from the slower transformers backend; "
        "run `bash scripts/setup.sh` to rebuild it, or set generation.backend: transformers to silence this"
    )


def llama_server_or_fallback(
    cfg: Any, *, options: LlamaOptions | None = None, status_prefix: str | Path | None = None
) -> LlamaServerGenerator | TransformersGenerator:
    """The ``llama_server`` backend, or :class:`TransformersGenerator` with a notice when llama.cpp is unusable.

    Args:
        cfg: a :class:`~rag.config.GenerationConfig`.
        options: this backend's settings (default: ``cfg.options``).
        status_prefix: folder holding ``llama-build.json`` (None: ``sys.prefix``, or ``$RAG_LLAMA_BUILD_STATUS``).

    Returns:
        The generator; on fallback its ``notice`` says why (also logged once per process).
    """
    status = llama_status(status_prefix)
    if status.usable:
        return LlamaServerGenerator(**LlamaServerGenerator.config_kwargs(cfg, options))
    gen = TransformersGenerator.from_config(cfg, TransformersGenerator.Options())
    gen.notice = fallback_notice(status.reason)
    if gen.notice not in _NOTICES_LOGGED:
        _NOTICES_LOGGED.add(gen.notice)
        log.warning("%s", gen.notice)
    return gen
