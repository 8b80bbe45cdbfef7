"""An OpenAI-compatible chat endpoint over the articles: ``POST /v1/chat/completions``, ``GET /v1/models``.

``rag serve`` adds these routes to the page's server (same port, same request guard) and
``rag api`` serves them alone. The ``messages`` become a :class:`rag.Conversation`, so earlier
turns drive follow-up rewriting as on the page; system messages are accepted and not used for
retrieval. Answers wait in the page's line (:class:`ui.queue.AnswerQueue`); a full line is 429
with ``Retry-After``. Beyond loopback (or whenever ``RAG_API_KEY`` is set) a bearer key is
required.

The content is :func:`ui.plain.answer_content` of the checked answer: a stream cannot take
back text, and the checker may replace the model's draft (the page replaces it on screen),
so a stream sends the role at once, SSE comments while the answer is made, then the
checked answer in pieces. The response, and a stream's last chunk, carry ``citations`` and
``mode``.

Example:
    >>> from openai import OpenAI
    >>> client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused-on-loopback")
    >>> client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "Who founded DeepSeek?"}])
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rag import Answer, IndexCorruptError, IndexMismatchError, IndexNotFoundError, InputError, StreamEvent

from .chat import ChatUI
from .errors import EXPECTED
from .openai_request import APIError, ChatRequest, bad, cut_at_stop, parse_chat_request
from .plain import answer_content, citations_json
from .queue import QueueFull
from .security import BodyTooLarge, LoginThrottle, client_of

log = logging.getLogger("rag.api")

API_KEY_ENV = "RAG_API_KEY"
MODEL_ID = "rag"
# Seconds a busy server asks a client to wait (Retry-After).
BUSY_RETRY_S = 5
# Seconds between SSE comments while an answer is being made (keeps proxies from closing the stream).
KEEPALIVE_S = 1.0
QUEUE_POLL_S = 0.1
PIECE_CHARS = 24


def api_key_from_env() -> str | None:
    """The bearer key from ``RAG_API_KEY`` (None when unset or empty); it is never written anywhere."""
    return os.environ.get(API_KEY_ENV) or None


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of about :data:`PIECE_CHARS` characters, cut before a space (they join back to ``text``)."""
    start = 0
    while start < len(text):
        end = text.find(" ", start + PIECE_CHARS)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end


class ChatAPI:
    """The endpoint's handlers over a :class:`ui.chat.ChatUI` (its pipeline, line and model loading).

    Args:
        ui: the page's logic (or a page-less one for ``rag api``).
        loopback: the server listens on loopback only; elsewhere a key is required.
        key: the bearer key (``RAG_API_KEY``); when set it is required on loopback too.
        throttle: failed-key bookkeeping (5 wrong keys within a minute lock the address out for a minute).
    """

    def __init__(
        self, ui: ChatUI, *, loopback: bool, key: str | None = None, throttle: LoginThrottle | None = None
    ) -> None:
        self.ui = ui
        self.key = key
        self.key_required = key is not None or not loopback
        self.throttle = throttle or LoginThrottle()
        self.models = (MODEL_ID,)
        self.created = int(time.time())
        self._encoding = None
        if self.key_required and key is None:
            log.warning(
                "the OpenAI-compatible API answers 401 to every request: this server is reachable "
                "beyond loopback and %s is not set",
                API_KEY_ENV,
            )

    def routes(self) -> list[Route]:
        """The Starlette routes (``rag serve`` passes them to the page's app)."""
        return [
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model}", self.get_model, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
        ]

    # -- models ---------------------------------------------------------------------------
    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self.created, "owned_by": "rag-articles"}

    async def list_models(self, request: Request) -> Response:
        refused = self._key_refusal(request)
        if refused is not None:
            return refused.response()
        return JSONResponse({"object": "list", "data": [self._model(m) for m in self.models]})

    async def get_model(self, request: Request) -> Response:
        refused = self._key_refusal(request)
        if refused is not None:
            return refused.response()
        name = request.path_params["model"]
        if name not in self.models:
            message = f"the model {name[:100]!r} does not exist here; use {', '.join(self.models)}"
            return APIError(404, message, param="model", code="model_not_found").response()
        return JSONResponse(self._model(name))

    # -- the key --------------------------------------------------------------------------
    def _key_refusal(self, request: Request) -> APIError | None:
        """401 without the right bearer key where one is required; 429 after repeated wrong keys."""
        if not self.key_required:
            return None
        client = client_of(request.scope)
        wait = self.throttle.retry_after(client)
        if wait:
            return APIError(
                429,
                f"too many wrong API keys from this address; try again in {wait:.0f} s",
                type="rate_limit_error",
                code="too_many_failed_keys",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        if self.key is None:
            return APIError(
                401,
                f"this server is reachable beyond this machine and has no API key: restart it with "
                f"{API_KEY_ENV} set in its environment, then send Authorization: Bearer <key>",
                type="authentication_error",
                code="api_key_not_configured",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key.encode()):
            self.throttle.succeeded(client)
            return None
        if token:
            self.throttle.failed(client)
        message = (
            "wrong API key"
            if token
            else f"an API key is required: send Authorization: Bearer <key> (the server's {API_KEY_ENV})"
        )
        return APIError(
            401, message, type="authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )

    # -- chat -----------------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        """Answer the conversation's last user message (JSON, or server-sent events with ``stream: true``)."""
        try:
            refused = self._key_refusal(request)
            if refused is not None:
                raise refused
            req = parse_chat_request(
                await _read_json(request),
                models=self.models,
                max_question_chars=self.ui.cfg.max_question_chars,
                max_tokens_limit=self.ui.cfg.max_new_tokens_limit,
            )
            settings = self._settings(req)
            place = self.ui.queue.join()
        except APIError as exc:
            return exc.response()
        except QueueFull as exc:
            busy = APIError(
                429, str(exc), type="rate_limit_error", code="server_busy", headers={"Retry-After": str(BUSY_RETRY_S)}
            )
            return busy.response()
        if not place.admitted:
            log.info("an API question waits in line (%d waiting)", self.ui.queue.waiting)
        events: Iterator[StreamEvent] | None = None
        try:
            if not await _wait_turn(place, request):
                place.leave()
                return Response(status_code=499)  # the client left while waiting; nobody reads this
            first, events = await anyio.to_thread.run_sync(self._start, req, settings)
            if req.stream:
                return StreamingResponse(
                    self._sse(req, place, first, events),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            answer = await _collect(first, events)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI-shaped error, never a traceback
            place.leave()
            if events is not None:
                events.close()
            return self._failure(exc, req.question).response()
        place.leave()
        return JSONResponse(self._completion(req, answer))

    def _settings(self, req: ChatRequest) -> tuple[int, float, int]:
        gen = self.ui.rag.config.generation
        try:
            temperature = gen.temperature if req.temperature is None else req.temperature
            n_tokens = req.max_tokens or min(gen.max_new_tokens, self.ui.cfg.max_new_tokens_limit)
            return self.ui.settings(self.ui.rag.config.retrieval.top_k, temperature, n_tokens)
        except InputError as exc:
            raise bad("", str(exc)) from None

    def _start(self, req: ChatRequest, settings: tuple[int, float, int]) -> tuple[StreamEvent, Iterator[StreamEvent]]:
        """Load the models (once), rewrite, retrieve: errors up to here are an HTTP status, not a broken stream."""
        self.ui.ensure_loaded()
        k, temperature, n_tokens = settings
        conversation = self.ui.conversation(req.turns)
        events = conversation.stream_events(req.question, top_k=k, temperature=temperature, max_new_tokens=n_tokens)
        event = next(events)
        while event.kind == "rewritten":  # on to retrieval: the answer's query says what was searched for
            event = next(events)
        return event, events

    def _failure(self, exc: BaseException, question: str) -> APIError:
        if not isinstance(exc, EXPECTED):
            log.exception("API answer to %.100r failed", question)
        message = self.ui.explain(exc)
        if isinstance(exc, (InputError, ValueError)):
            return APIError(400, message)
        if isinstance(exc, (IndexNotFoundError, IndexMismatchError, IndexCorruptError)):
            return APIError(503, message, type="server_error", code="index_unavailable")
        return APIError(500, message, type="server_error", code="answer_failed")

    def _content(self, req: ChatRequest, answer: Answer) -> str:
        return cut_at_stop(answer_content(answer), req.stop)

    def _usage(self, req: ChatRequest, content: str) -> dict[str, int]:
        """Tokens of what was sent and of the content, counted with the chunker's tiktoken encoding."""
        if self._encoding is None:
            from rag.text import get_encoding

            self._encoding = get_encoding(self.ui.rag.config.chunking.encoding)
        sent, said = len(self._encoding.encode(req.sent_text)), len(self._encoding.encode(content))
        return {"prompt_tokens": sent, "completion_tokens": said, "total_tokens": sent + said}

    def _completion(self, req: ChatRequest, answer: Answer) -> dict[str, Any]:
        content = self._content(req, answer)
        message = {"role": "assistant", "content": content, "refusal": None}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": self._usage(req, content),
            "citations": citations_json(answer),
            "mode": answer.mode,
            "query": answer.query,
        }

    async def _sse(
        self, req: ChatRequest, place: Any, first: StreamEvent, events: Iterator[StreamEvent]
    ) -> AsyncIterator[str]:
        """The answer as OpenAI chat-completion chunks, then ``data: [DONE]``.

        The line's slot is freed at the end, or when the client leaves.
        """
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            body = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [choice],
                **extra,
            }
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        try:
            yield chunk({"role": "assistant", "content": ""})
            answer = None
            async for tick in _events(first, events):
                if isinstance(tick, Answer):
                    answer = tick
                else:
                    yield ": answering\n\n"
            if answer is None:
                raise RuntimeError("the pipeline ended without an answer")
            content = self._content(req, answer)
            for piece in _pieces(content):
                yield chunk({"content": piece})
            yield chunk({}, "stop", citations=citations_json(answer), mode=answer.mode, query=answer.query)
            if req.include_usage:
                body = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": req.model,
                    "choices": [],
                    "usage": self._usage(req, content),
                }
                yield f"data: {json.dumps(body)}\n\n"
            yield "data: [DONE]\n\n"
        except Exception as exc:  # noqa: BLE001 - the stream has begun: the error goes in it, in OpenAI's shape
            yield f"data: {json.dumps(self._failure(exc, req.question).body(), ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            place.leave()
            events.close()  # stops the model when the client left early


async def _read_json(request: Request) -> Any:
    try:
        raw = await request.body()
    except BodyTooLarge as exc:
        message = f"the request body is too large ({exc}); send a shorter conversation"
        raise APIError(413, message, code="body_too_large") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        message = "the request body is not valid JSON; send {\"model\": ..., \"messages\": [...]}"
        raise bad("", message, "invalid_json") from None


async def _wait_turn(place: Any, request: Request) -> bool:
    """Wait in line without holding a thread; False when the client went away first."""
    while not place.wait(0):
        if await request.is_disconnected():
            return False
        await anyio.sleep(QUEUE_POLL_S)
    return True


async def _events(first: StreamEvent, events: Iterator[StreamEvent]) -> AsyncIterator[Answer | None]:
    """The final :class:`Answer` when it comes, and before it a ``None`` tick at most every :data:`KEEPALIVE_S` s.

    Each event is pulled in a worker thread; a cancelled request stops at the next event, so
    the caller can close ``events`` (and with it the model) safely.
    """
    event: StreamEvent | None = first
    last = time.monotonic()
    while event is not None:
        if event.kind == "done":
            yield event.answer
            return
        if time.monotonic() - last >= KEEPALIVE_S:
            last = time.monotonic()
            yield None
        event = await anyio.to_thread.run_sync(next, events, None)


async def _collect(first: StreamEvent, events: Iterator[StreamEvent]) -> Answer:
    async for tick in _events(first, events):
        if tick is not None:
            return tick
    raise RuntimeError("the pipeline ended without an answer")
