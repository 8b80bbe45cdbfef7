"""Deterministic stand-ins for the embedder and generator, for unit tests.

FakeEmbedder derives vectors from the words of a text (like simonw/llm's EmbedDemo), so
texts sharing words score higher and scores can be asserted exactly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np


class FakeEmbedder:
    """Bag-of-hashed-words vectors, L2-normalised."""

    def __init__(self, dimension: int = 64, name: str = "fake-embedder") -> None:
        self.name = name
        self._dim = dimension
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self._dim

    def warm_up(self) -> None:
        """Nothing to load (part of the Embedder protocol)."""

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            v[h % self._dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts]).astype(np.float32)


class FakeGenerator:
    """Streams a scripted reply in small pieces; records the messages it was given.

    ``reply`` may be a string or a function of the messages.
    """

    can_continue = False
    supports_reasoning = True
    notice = ""

    def __init__(
        self,
        reply="Answer [1].",
        *,
        opens_think: bool = False,
        context_window: int = 2048,
        piece: int = 3,
        fail: Exception | None = None,
    ) -> None:
        self.name = "fake-generator"
        self.reply = reply
        self._opens_think = opens_think
        self._context_window = context_window
        self.piece = piece
        self.fail = fail
        self.calls: list[list[dict]] = []

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def opens_think_in_prompt(self) -> bool:
        return self._opens_think

    def warm_up(self) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages, *, max_new_tokens: int = 256, temperature: float = 0.0, stop=()) -> Iterator[str]:
        self.calls.append(messages)
        if self.fail is not None:
            raise self.fail
        text = self.reply(messages) if callable(self.reply) else self.reply
        for i in range(0, len(text), self.piece):
            yield text[i : i + self.piece]


def leads_with_evidence(answer) -> bool:
    """The answer is the evidence answer's shape: the best evidence sentence leads (cited), the text starts with it."""
    from rag.answering.evidence import quotes

    return bool(answer.evidence) and answer.lead == quotes(answer.evidence[:1]) and answer.text.startswith(answer.lead)
