"""Fit a chunk's title and headings into the embedding model's window, never its own words.

A chunk is embedded as ``"title — headings"`` on a line, then its text
(:attr:`rag.records.Chunk.indexed_text`). The model reads at most ``max_seq_length`` word
pieces (256 for MiniLM) and silently drops the rest, so a long title would push the chunk's
last words out of its vector. :class:`EmbeddingWindow` counts with the model's own tokenizer
and cuts the title-and-headings line word by word from its end until the whole fits; the
chunk's text is never cut here (the chunker sizes chunks to fit the window on its own, see
``chunking.chunk_tokens``).

The window is the model's, not the backend's: torch, onnx and Ray embed the same model with
the same ``tokenizer.json``, so the text embedded is the same whichever backend runs.

Example:
    >>> window = EmbeddingWindow.of("all-MiniLM-L6-v2")
    >>> window.fit([("A very long title ...", chunk.text)])[0].endswith(chunk.text)
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from .base import model_of, resolve_embedder_path


class EmbeddingWindow:
    """A model's word-piece window and its tokenizer.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (truncation and padding are switched off here).
        size: word pieces the model reads, special tokens included.
    """

    def __init__(self, tokenizer: Any, size: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.size = size

    @classmethod
    def of(cls, embedder_name: str) -> EmbeddingWindow | None:
        """The window of the model behind ``embedder_name``, or None when its folder has no
        ``tokenizer.json`` and ``max_seq_length`` (a test's fake embedder, an uncached hub id):
        then texts are embedded as they are."""
        try:
            folder = Path(resolve_embedder_path(model_of(embedder_name)))
        except ImportError:
            return None
        return _window_of(str(folder.resolve())) if folder.is_dir() else None

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text as the model reads it, special tokens included."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def fit(self, items: Sequence[tuple[str, str]]) -> list[str]:
        """``prefix + "\\n" + text`` for each ``(prefix, text)``, the prefix cut from its end,
        word by word, until the whole fits the window; the text is never cut.

        An item that fits is exactly ``prefix + "\\n" + text`` (what BM25 indexes,
        ``Chunk.indexed_text``); a text that alone overfills the window keeps no prefix.
        """
        joined = [f"{prefix}\n{text}" for prefix, text in items]
        # A word piece covers a character or more (two, with margin for a character that
        # normalises into two): a text this short fits uncounted.
        maybe = [i for i, t in enumerate(joined) if 2 * len(t) + 2 > self.size]
        for i, n in zip(maybe, self.count([joined[i] for i in maybe])):
            if n > self.size:
                joined[i] = self._cut(*items[i])
        return joined

    def _cut(self, prefix: str, text: str) -> str:
        """The longest word prefix of ``prefix`` that fits with ``text`` (binary search: fitting is monotone in words)."""
        words = prefix.split()
        lo, hi = 0, len(words) - 1  # words[:lo] is known to fit (none at all, at worst); words[:len] does not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count([" ".join(words[:mid]) + "\n" + text])[0] <= self.size:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo]) + "\n" + text


@lru_cache(maxsize=8)
def _window_of(folder: str) -> EmbeddingWindow | None:
    tokenizer_file = Path(folder) / "tokenizer.json"
    try:
        size = int(
            json.loads((Path(folder) / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not tokenizer_file.is_file():
        return None
    from tokenizers import Tokenizer

    return EmbeddingWindow(Tokenizer.from_file(str(tokenizer_file)), size)
