"""The body of ``POST /v1/chat/completions``, checked: OpenAI's request shape to a question, turns and settings.

Unknown fields are ignored (clients send many: ``top_p``, ``user``, ``tools``...); a field we
read with a bad value is an :class:`APIError` in OpenAI's error shape, naming the field.

Example:
    >>> req = parse_chat_request({"model": "rag", "messages": [{"role": "user", "content": "Who founded DeepSeek?"}]},
    ...                          models=("rag",), max_question_chars=2000)
    >>> req.question, req.stream
    ('Who founded DeepSeek?', False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from rag import InputError, Turn
from rag.conversation import MAX_ANSWER_CHARS, MAX_TURNS, check_question, turns_from_history

from .chat import TEMPERATURE_MAX
from .plain import strip_sources

# OpenAI takes at most 4 stop sequences.
MAX_STOPS = 4
MAX_STOP_CHARS = 200
# Roles that carry no turn of the conversation: instructions (ignored for retrieval) and tool results.
SIDE_ROLES = ("system", "developer", "tool", "function")


class APIError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

    Args:
        status: the HTTP status.
        message: what is wrong and what to do (shown by clients).
        type: OpenAI's error type (``invalid_request_error``, ``authentication_error``, ...).
        param: the request field at fault, if one is.
        code: a short machine-readable code.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad(param: str, message: str, code: str = "invalid_value") -> APIError:
    """A 400 naming ``param``."""
    return APIError(400, message, param=param, code=code)


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat request.

    Attributes:
        model: the model id asked for (one this server lists).
        question: the last user message.
        turns: earlier user/assistant pairs, oldest first (at most the conversation's turn limit).
        stream: answer as server-sent events.
        include_usage: ``stream_options.include_usage``: a last chunk with ``usage``.
        temperature, max_tokens: overrides (None: the config's); ``max_tokens`` is capped at the server's limit.
        stop: strings the content is cut at.
        sent_text: every message's text, for ``usage.prompt_tokens``.
    """

    model: str
    question: str
    turns: list[Turn] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    sent_text: str = ""


def parse_chat_request(
    body: Any, *, models: tuple[str, ...], max_question_chars: int, max_tokens_limit: int = 1024
) -> ChatRequest:
    """Check an OpenAI chat request body.

    Raises:
        APIError: 400 naming the bad field, or 404 for a model this server does not serve.
    """
    if not isinstance(body, dict):
        raise bad("", f"the request body must be a JSON object, got {type(body).__name__}", "invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad(
            "model",
            f"model must be the name of a served model ({', '.join(models)}); see GET /v1/models",
            "missing_model",
        )
    if model not in models:
        raise APIError(
            404,
            f"the model {model[:100]!r} does not exist here; use one of: {', '.join(models)} "
            "(GET /v1/models lists them)",
            param="model",
            code="model_not_found",
        )
    texts = _message_texts(body.get("messages"))
    question, turns = _conversation(texts, max_question_chars)
    if body.get("n") not in (None, 1):
        raise bad("n", f"n must be 1 (one answer per request), got {body.get('n')!r}")
    return ChatRequest(
        model=model,
        question=question,
        turns=turns,
        stream=_flag(body, "stream"),
        include_usage=_include_usage(body),
        temperature=_temperature(body.get("temperature")),
        max_tokens=_max_tokens(body, max_tokens_limit),
        stop=_stops(body.get("stop")),
        sent_text="\n".join(text for _, text in texts),
    )


def _message_texts(messages: Any) -> list[tuple[str, str]]:
    """``(role, text)`` of each message; content may be a string or a list of text parts."""
    if not isinstance(messages, list) or not messages:
        raise bad(
            "messages", "messages must be a non-empty list of {\"role\": ..., \"content\": ...} objects", "invalid_type"
        )
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad(
                f"messages[{i}]",
                f"messages[{i}] must be an object with role and content, got {type(m).__name__}",
                "invalid_type",
            )
        role = m.get("role")
        if role not in ("user", "assistant", *SIDE_ROLES):
            raise bad(
                f"messages[{i}].role",
                f"messages[{i}].role must be one of user, assistant, {', '.join(SIDE_ROLES)}; got {str(role)[:50]!r}",
            )
        out.append((role, _text_of(m.get("content"), f"messages[{i}].content")))
    return out


def _text_of(content: Any, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad(
                    param,
                    f"{param} may hold only text parts ({{\"type\": \"text\", \"text\": ...}}): "
                    "this server answers text questions",
                )
            parts.append(part["text"])
        return "\n".join(parts)
    raise bad(param, f"{param} must be a string or a list of text parts, got {type(content).__name__}", "invalid_type")


def _conversation(texts: list[tuple[str, str]], max_question_chars: int) -> tuple[str, list[Turn]]:
    """The last user message as the question; earlier user/assistant pairs as turns (system messages left out)."""
    said = [(role, text) for role, text in texts if role in ("user", "assistant")]
    if not said or said[-1][0] != "user":
        raise bad("messages", "the last message (besides system messages) must be the user's question")
    try:
        question = check_question(said[-1][1], max_question_chars)
    except InputError as exc:
        raise bad("messages", str(exc)) from None
    history: list[dict[str, str]] = []
    for role, text in said[:-1]:
        if role == "user":
            history.append({"question": text, "answer": ""})
        elif history and not history[-1]["answer"]:
            # Only the history's answers feed the rewriter; a long one is cut rather than refused.
            history[-1]["answer"] = strip_sources(text).strip()[:MAX_ANSWER_CHARS]
    try:
        turns = turns_from_history(history[-MAX_TURNS:], max_question_chars=max_question_chars)
    except InputError as exc:
        raise bad("messages", f"an earlier message: {exc}") from None
    return question, turns


def _flag(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(name, f"{name} must be true or false, got {str(value)[:50]!r}", "invalid_type")
    return value


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad(
            "stream_options", "stream_options must be an object such as {\"include_usage\": true}", "invalid_type"
        )
    return _flag(options, "include_usage")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    t = _number(value)
    if t is None or not 0.0 <= t <= TEMPERATURE_MAX:
        raise bad("temperature", f"temperature must be a number from 0 to {TEMPERATURE_MAX:g}, got {str(value)[:50]!r}")
    return t


def _max_tokens(body: dict, limit: int) -> int | None:
    """``max_completion_tokens`` (OpenAI's newer name) or ``max_tokens``, at most the server's limit."""
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    n = _number(value)
    if n is None or not n.is_integer() or n < 1:
        raise bad(name, f"{name} must be a whole number >= 1, got {str(value)[:50]!r}")
    return min(int(n), limit)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    fine = isinstance(stops, list) and len(stops) <= MAX_STOPS
    if not fine or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops):
        raise bad(
            "stop",
            f"stop must be a string or a list of up to {MAX_STOPS} non-empty strings "
            f"of at most {MAX_STOP_CHARS} characters",
        )
    return tuple(stops)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """``text`` up to the first of ``stops`` it contains (all of it when none)."""
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[: min(cuts)] if cuts else text
