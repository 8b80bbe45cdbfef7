"""Streaming helpers: stop strings, R1-style ``<think>`` splitting, and :class:`AnswerStream`.

:class:`AnswerStream` runs a generator for the pipeline: it splits ``<think>`` reasoning
from the answer, enforces a thinking budget and, when the reasoning used up the budget or
the token limit, closes it and asks for the final answer, so the answer is never empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from .base import (
    BUDGET_NOTE,
    FINAL_ANSWER_REQUEST,
    THINK_CLOSE,
    THINK_OPEN,
    ContinuingGenerator,
    Generator,
    Message,
    strip_history_reasoning,
)


def cut_at_stop(pieces, stop: tuple[str, ...]) -> Iterator[str]:
    """Pass text through until any stop string appears; hold back possible partial matches."""
    if not stop:
        yield from (p for p in pieces if p)
        return
    buffer = ""
    hold = max(len(s) for s in stop) - 1
    for piece in pieces:
        buffer += piece
        hits = [buffer.find(s) for s in stop if s in buffer]
        if hits:
            cut = min(hits)
            if buffer[:cut]:
                yield buffer[:cut]
            return
        if len(buffer) > hold:
            out, buffer = buffer[: len(buffer) - hold], buffer[len(buffer) - hold :]
            yield out
    if buffer:
        yield buffer


@dataclass(frozen=True)
class Piece:
    """A streamed piece of output: ``kind`` is ``"answer"`` or ``"reasoning"``."""

    kind: str
    text: str


class ThinkSplitter:
    """Splits R1-style ``<think>…</think>`` output into reasoning and answer pieces, streaming.

    Tags split across pieces are handled by holding back text that could start a tag.

    Args:
        starts_in_reasoning: the prompt already opened ``<think>`` (only ``</think>`` comes).
    """

    def __init__(self, starts_in_reasoning: bool = False) -> None:
        self.mode = "reasoning" if starts_in_reasoning else "start"
        self._buffer = ""

    def feed(self, text: str) -> list[Piece]:
        """Consume generated text; return the pieces that are certain so far."""
        self._buffer += text
        out: list[Piece] = []
        while self._buffer:
            if self.mode == "start":
                stripped = self._buffer.lstrip()
                if stripped.startswith(THINK_OPEN):
                    self._buffer = stripped[len(THINK_OPEN) :]
                    self.mode = "reasoning"
                    continue
                if THINK_OPEN.startswith(stripped):
                    break  # could still become "<think>"
                self.mode = "answer"
                continue
            if self.mode == "reasoning":
                idx = self._buffer.find(THINK_CLOSE)
                if idx >= 0:
                    if self._buffer[:idx]:
                        out.append(Piece("reasoning", self._buffer[:idx]))
                    self._buffer = self._buffer[idx + len(THINK_CLOSE) :].lstrip()
                    self.mode = "answer"
                    continue
                keep = _partial_suffix(self._buffer, THINK_CLOSE)
                emit = self._buffer[: len(self._buffer) - keep]
                if emit:
                    out.append(Piece("reasoning", emit))
                self._buffer = self._buffer[len(emit) :]
                break
            # answer mode: a stray </think> means everything before it was reasoning the
            # template opened without telling us; it is dropped from the answer stream.
            idx = self._buffer.find(THINK_CLOSE)
            if idx >= 0:
                out.append(Piece("reasoning", self._buffer[:idx]))
                self._buffer = self._buffer[idx + len(THINK_CLOSE) :].lstrip()
                continue
            keep = _partial_suffix(self._buffer, THINK_CLOSE)
            emit = self._buffer[: len(self._buffer) - keep]
            if emit:
                out.append(Piece("answer", emit))
            self._buffer = self._buffer[len(emit) :]
            break
        return out

    def flush(self) -> list[Piece]:
        """Return whatever is held back at the end of generation."""
        rest, self._buffer = self._buffer, ""
        if not rest:
            return []
        return [Piece("reasoning" if self.mode == "reasoning" else "answer", rest)]


def split_reasoning(text: str, starts_in_reasoning: bool = False) -> tuple[str, str]:
    """Split complete output into ``(reasoning, answer)``."""
    splitter = ThinkSplitter(starts_in_reasoning)
    pieces = splitter.feed(text) + splitter.flush()
    reasoning = "".join(p.text for p in pieces if p.kind == "reasoning").strip()
    answer = "".join(p.text for p in pieces if p.kind == "answer").strip()
    return reasoning, answer


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class AnswerStream:
    """Run a generator for one answer: reasoning split off, thinking budget, never an empty answer.

    Iterate to get :class:`Piece` objects as they are generated; afterwards ``reasoning``
    and ``answer`` hold the complete parts.

    - Earlier turns' ``<think>`` parts are removed from ``messages`` first.
    - With ``max_thinking_tokens`` set, the first request may generate that many tokens
      on top of ``max_new_tokens``; once the reasoning reaches the budget, generation is
      stopped, and the answer is capped at ``max_new_tokens``.
    - When the reasoning was cut (budget, token limit or a stop string) before any answer
      came, the reasoning is closed with ``</think>`` and the model is asked for the final
      answer: backends declaring ``can_continue`` continue their own turn after
      "…</think>"; others get the reasoning back in the user turn with a request to answer.
    - A ``</think>`` arriving after text that looked like answer (a template that opened
      ``<think>`` without saying so) turns that text into reasoning.

    Args:
        generator: any :class:`Generator`.
        messages: the chat messages.
        max_new_tokens: tokens for the answer.
        temperature: 0 for greedy.
        stop: stop strings.
        max_thinking_tokens: reasoning budget in tokens (None: no separate budget).
        opens_think: the prompt opens ``<think>`` (None: ask the generator).

    Example:
        >>> run = AnswerStream(gen, messages, max_new_tokens=256, max_thinking_tokens=512)
        >>> for piece in run: print(piece.kind, piece.text)
        >>> run.answer, run.reasoning, run.budget_spent
    """

    def __init__(
        self,
        generator: Generator,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
        max_thinking_tokens: int | None = None,
        opens_think: bool | None = None,
    ) -> None:
        self.generator = generator
        self.messages = strip_history_reasoning(messages)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.stop = tuple(stop)
        self.max_thinking_tokens = max_thinking_tokens
        self.opens_think = generator.opens_think_in_prompt if opens_think is None else opens_think
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self.thinking_tokens = 0
        #: True when the reasoning reached ``max_thinking_tokens`` and was cut.
        self.budget_spent = False
        #: True when the model was asked again for the final answer after its reasoning was cut.
        self.continued = False
        self._open_streams: list[Any] = []

    @property
    def reasoning(self) -> str:
        """The reasoning so far (never part of the answer)."""
        return "".join(self._reasoning).strip()

    @property
    def answer(self) -> str:
        """The answer so far, without any reasoning."""
        return "".join(self._answer).strip()

    def __iter__(self) -> Iterator[Piece]:
        budget = self.max_thinking_tokens
        first_cap = self.max_new_tokens + (budget or 0)
        stream = self.generator.stream(
            self.messages, max_new_tokens=first_cap, temperature=self.temperature, stop=self.stop
        )
        yield from self._consume(stream, ThinkSplitter(self.opens_think))
        if self.answer or not self.reasoning:
            return
        # The reasoning never finished: close it and ask for the final answer.
        self.continued = True
        reasoning = self.reasoning
        if self.generator.can_continue:
            prefix = (
                "" if self.opens_think else THINK_OPEN + "\n"
            ) + f"{reasoning}\n\n{BUDGET_NOTE}\n{THINK_CLOSE}\n\n"
            continuing = cast(ContinuingGenerator, self.generator)
            stream = continuing.stream_continuation(
                self.messages, prefix, max_new_tokens=self.max_new_tokens, temperature=self.temperature, stop=self.stop
            )
            yield from self._consume(stream, ThinkSplitter(False))
            return
        last = self.messages[-1]
        messages = [
            *self.messages[:-1],
            {
                **last,
                "content": f"{last['content']}\n\n{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{FINAL_ANSWER_REQUEST}",
            },
        ]
        stream = self.generator.stream(
            messages, max_new_tokens=self.max_new_tokens + (budget or 0), temperature=self.temperature, stop=self.stop
        )
        yield from self._consume(stream, ThinkSplitter(self.opens_think))

    def _consume(self, stream, splitter: ThinkSplitter) -> Iterator[Piece]:
        budget = self.max_thinking_tokens
        count = self.generator.count_tokens
        answer_tokens = thinking_tokens = 0  # per request: a second request gets the budget again
        self._open_streams.append(stream)
        try:
            for raw in stream:
                for piece in splitter.feed(raw):
                    if piece.kind == "reasoning":
                        if self._answer:
                            # A late </think>: what looked like answer was reasoning all along.
                            self._reasoning.extend(self._answer)
                            self._answer.clear()
                        self._reasoning.append(piece.text)
                        tokens = count(piece.text)
                        thinking_tokens += tokens
                        self.thinking_tokens += tokens
                    else:
                        self._answer.append(piece.text)
                        answer_tokens += count(piece.text)
                    yield piece
                if budget is not None and splitter.mode == "reasoning" and thinking_tokens >= budget:
                    self.budget_spent = True
                    return
                if budget is not None and answer_tokens >= self.max_new_tokens:
                    return
            for piece in splitter.flush():
                if piece.kind == "reasoning":
                    self._reasoning.append(piece.text)
                else:
                    self._answer.append(piece.text)
                yield piece
        finally:
            self._close(stream)

    def _close(self, stream) -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the model if the consumer left early
        if stream in self._open_streams:
            self._open_streams.remove(stream)

    def close(self) -> None:
        """Stop generating (safe to call more than once)."""
        for stream in list(self._open_streams):
            self._close(stream)
