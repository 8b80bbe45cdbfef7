"""Any OpenAI-compatible ``/v1/chat/completions`` server, streamed over server-sent events."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from .base import THINK_CLOSE, THINK_OPEN, BackendOptions, FromConfig, GeneratorError, Message, strip_history_reasoning
from .reasoning import cut_at_stop

log = logging.getLogger(__name__)


class _Transient(Exception):
    """A failure worth retrying: the server is unreachable, overloaded or restarting."""


class OpenAIGenerator(FromConfig):
    """Any OpenAI-compatible ``/v1/chat/completions`` server, streamed over SSE.

    Works with vLLM, llama.cpp's server (``python -m llama_cpp.server``), Ollama and others.
    Connection failures, timeouts, HTTP 429 and 5xx before the first token are retried with
    exponential backoff (tenacity); a failure after text has streamed is not retried (it
    would repeat the text) and raises :class:`GeneratorError`.

    Token counts are approximate: the server's tokenizer is not available locally, so
    ``count_tokens`` uses tiktoken's ``cl100k_base``, which counts within about 10-20% of
    Llama/Qwen tokenizers on English prose. Keep ``context_window`` a little below the
    server's real context to leave room for the difference.

    Reasoning sent as ``delta.reasoning_content`` (DeepSeek API, vLLM's reasoning parser)
    or ``delta.reasoning`` (Ollama, OpenRouter) is turned back into ``<think>…</think>``.

    Args:
        model: the model name the server expects (``model`` in the request body).
        base_url: the API root, ending in ``/v1`` (e.g. ``http://127.0.0.1:8080/v1``).
        api_key_env: environment variable holding the API key (the key itself is never
            stored in config or written anywhere); unset means no ``Authorization`` header.
        timeout: seconds to connect and, after that, to wait for each piece of the stream.
        retries: extra attempts after a transient failure before the first token.
        backoff: first retry delay in seconds (doubling, at most 10 s).
        context_window: prompt + answer tokens (None: 4096).
        opens_think: the server's chat template opens ``<think>`` in the prompt.
        encoding: tiktoken encoding for :meth:`count_tokens`.
        api_key: the key itself, held in memory only (a server this process started); overrides ``api_key_env``.

    Example:
        >>> gen = OpenAIGenerator("deepseek-r1:7b", base_url="http://127.0.0.1:11434/v1")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
    """

    can_continue: ClassVar[bool] = False
    supports_reasoning: ClassVar[bool] = True
    notice: str = ""

    class Options(BackendOptions):
        """This backend's own settings: ``generation.openai`` in the config."""

        base_url: str = Field(
            "http://127.0.0.1:8080/v1", pattern=r"^https?://[^/\s]+", description="API root ending in /v1."
        )
        api_key_env: str = Field(
            "OPENAI_API_KEY", description="The environment variable holding the key (the key never goes in a file)."
        )
        timeout: float = Field(60.0, gt=0, description="Seconds to connect / between streamed pieces.")
        retries: int = Field(2, ge=0, description="Retries with exponential backoff before the first token.")

    shared: ClassVar[tuple[str, ...]] = ("model", "context_window", "opens_think")

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://127.0.0.1:8080/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        context_window: int | None = None,
        opens_think: bool | None = False,
        encoding: str = "cl100k_base",
        api_key: str | None = None,
    ) -> None:
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env or None
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._context_window = context_window
        self._opens_think = bool(opens_think)
        self._encoding_name = encoding
        self._encoding = None
        # A key held in memory only (the llama_server backend's per-child key); overrides api_key_env.
        self.api_key = api_key

    def warm_up(self) -> None:
        """Nothing to load: the server holds the model (a request made now would only cost it time)."""

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.base_url}/chat/completions"

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer (configured; 4096 when not)."""
        return self._context_window or 4096

    @property
    def opens_think_in_prompt(self) -> bool:
        """Configured (``generation.opens_think``): the server's template is not visible here."""
        return self._opens_think

    def count_tokens(self, text: str) -> int:
        """Approximate tokens of ``text`` (tiktoken ``cl100k_base``; see the class notes)."""
        if self._encoding is None:
            from ..text import get_encoding

            self._encoding = get_encoding(self._encoding_name)
        return len(self._encoding.encode(text, disallowed_special=()))

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        key = self.api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]:
        """Stream the server's answer; ``stop`` is sent to the server and also applied here."""
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": strip_history_reasoning(messages),
            "stream": True,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        if stop:
            payload["stop"] = list(stop)[:4]  # OpenAI's own API accepts at most 4; the rest are cut here
        yield from cut_at_stop(self._stream_payload(payload), stop)

    def _stream_payload(self, payload: dict[str, Any]) -> Iterator[str]:
        import httpx

        client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
        try:
            response = self._open_with_retries(client, payload)
            try:
                yield from self._read_stream(response)
            finally:
                response.close()
        finally:
            client.close()

    def _open_with_retries(self, client, payload: dict[str, Any]):
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=10),
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda state: log.warning(
                "%s: attempt %d failed (%s); retrying", self.url, state.attempt_number, state.outcome.exception()
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._open(client, payload)
        except _Transient as exc:
            tries = self.retries + 1
            raise GeneratorError(
                f"cannot get an answer from the OpenAI-compatible server at {self.url} after {tries} attempt{'s' * (tries > 1)}: {exc}. "
                "Start the server, or fix generation.openai.base_url (it should end in /v1), or raise generation.openai.timeout / generation.openai.retries"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, client, payload: dict[str, Any]):
        import httpx

        try:
            response = client.send(
                client.build_request("POST", self.url, json=payload, headers=self._headers()), stream=True
            )
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
        if response.status_code < 400:
            return response
        try:
            body = response.read().decode("utf-8", "replace")[:300]
        except httpx.HTTPError:
            body = ""
        finally:
            response.close()
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}: {body}")
        if status in (401, 403):
            where = (
                f"the environment variable {self.api_key_env}"
                if self.api_key_env
                else "an environment variable named by generation.openai.api_key_env"
            )
            have = "is set but was refused" if self.api_key_env and os.environ.get(self.api_key_env) else "is not set"
            raise GeneratorError(
                f"the server at {self.url} refused the request (HTTP {status}: {body}); put the API key in {where} (it {have})"
            )
        if status == 404:
            raise GeneratorError(
                f"HTTP 404 from {self.url}: {body}; check generation.openai.base_url (it should end in /v1) and generation.model ({self.name!r})"
            )
        raise GeneratorError(f"the server at {self.url} rejected the request (HTTP {status}): {body}")

    def _read_stream(self, response) -> Iterator[str]:
        import httpx

        ctype = response.headers.get("content-type", "")
        received = 0
        in_reasoning = False
        saw_event = False
        # A stream is complete only with "[DONE]" or a finish_reason. A proxy or server that
        # closes the connection cleanly mid-answer leaves neither, and the text is cut off.
        finished = False
        try:
            if "text/event-stream" not in ctype:
                # Some servers ignore "stream": answer with one JSON object, or with garbage.
                body = response.read().decode("utf-8", "replace")
                yield from self._whole_response(body)
                return
            for line in response.iter_lines():
                line = line.strip()
                if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                    continue  # keep-alive comments and SSE fields we do not need
                if not line.startswith("data:"):
                    raise GeneratorError(
                        f"the server at {self.url} sent a line that is not server-sent events: {line[:200]!r}; is generation.openai.base_url an OpenAI-compatible API?"
                    )
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                saw_event = True
                reasoning, content, finish_reason = self._parse_event(data)
                finished = finished or bool(finish_reason)
                if reasoning:
                    if not in_reasoning:
                        in_reasoning = True
                        yield THINK_OPEN
                    received += len(reasoning)
                    yield reasoning
                if content:
                    if in_reasoning:
                        in_reasoning = False
                        yield THINK_CLOSE
                    received += len(content)
                    yield content
        except httpx.TimeoutException as exc:
            raise GeneratorError(
                f"the server at {self.url} stopped sending for {self.timeout:g} s after {received} characters; raise generation.openai.timeout or check the server"
            ) from exc
        except httpx.HTTPError as exc:
            raise GeneratorError(
                f"the connection to {self.url} broke mid-answer after {received} characters ({type(exc).__name__}: {exc}); is the server still running?"
            ) from exc
        if in_reasoning:
            yield THINK_CLOSE
        if not saw_event:
            raise GeneratorError(
                f"the server at {self.url} ended the stream without any answer event; check the server log"
            )
        if not finished:
            raise GeneratorError(
                f"the server at {self.url} closed the stream after {received} characters without finishing the answer "
                "(no finish_reason and no [DONE]), so it is probably cut off; check the server log"
            )

    def _parse_event(self, data: str) -> tuple[str, str, str]:
        """(reasoning, content, finish_reason) of one streamed chat-completions event."""
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise GeneratorError(f"the server at {self.url} sent an event that is not JSON: {data[:200]!r}") from None
        if not isinstance(event, dict):
            raise GeneratorError(f"the server at {self.url} sent an unexpected event: {data[:200]!r}")
        if event.get("error"):
            err = event["error"]
            raise GeneratorError(
                f"the server at {self.url} reported an error: {err.get('message', err) if isinstance(err, dict) else err}"
            )
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise GeneratorError(
                f"the server at {self.url} sent an event without 'choices' (not chat-completions streaming?): {data[:200]!r}"
            )
        if not choices:
            return "", "", ""  # e.g. a final usage-only event
        delta = choices[0].get("delta") or choices[0].get("message") or {}
        if not isinstance(delta, dict):
            raise GeneratorError(f"the server at {self.url} sent a malformed delta: {data[:200]!r}")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        finish_reason = choices[0].get("finish_reason") or ""
        return (reasoning if isinstance(reasoning, str) else ""), (delta.get("content") or ""), str(finish_reason)

    def _whole_response(self, body: str) -> Iterator[str]:
        try:
            obj = json.loads(body)
            message = obj["choices"][0]["message"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise GeneratorError(
                f"the server at {self.url} did not answer like an OpenAI-compatible chat-completions API: {body[:200]!r}; "
                "check generation.openai.base_url (it should end in /v1)"
            ) from None
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        if reasoning:
            yield f"{THINK_OPEN}{reasoning}{THINK_CLOSE}"
        if message.get("content"):
            yield message["content"]
