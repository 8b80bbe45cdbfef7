"""Split documents into token-bounded, sentence-aligned chunks.

Chunks are packed from whole sentences up to ``chunk_tokens`` cl100k tokens, and consecutive
chunks share up to ``overlap_tokens`` of trailing sentences. A sentence longer than a chunk
is split at word boundaries (and a "word" longer than a chunk at character boundaries).
Each chunk's ``text`` equals ``document.text[start:end]`` exactly.

Example:
    >>> chunker = Chunker(chunk_tokens=160, overlap_tokens=32)
    >>> chunks = chunker.split(document)
    >>> chunks[0].text == document.text[chunks[0].start:chunks[0].end]
    True
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from .records import Chunk, Document
from .text import _append_trimmed, get_encoding, sentence_spans


@lru_cache(maxsize=4)
def _longest_token(name: str) -> int:
    """Bytes in the longest token of encoding ``name`` (128 for cl100k): a bound on characters per token."""
    return max(map(len, get_encoding(name).token_byte_values()))


# Sentence ends: ., ! or ? (optionally followed by closing quotes/brackets) then whitespace,
# or a blank line. pysbd was measured at well under 1 MB/s on the SQuAD corpus, too slow for
# ingestion at the encoder's rate; this regex keeps exact offsets at tens of MB/s.
_WORD = re.compile(r"\S+\s*")


class Chunker:
    """Token-aware, sentence-aware chunker.

    Args:
        chunk_tokens: maximum cl100k tokens per chunk.
        overlap_tokens: tokens of trailing sentences repeated at the start of the next chunk.
        encoding: tiktoken encoding name (resolved offline).
    """

    def __init__(self, chunk_tokens: int = 160, overlap_tokens: int = 32, encoding: str = "cl100k_base") -> None:
        # Values come checked from ChunkingConfig (rag/config/stages.py): no second check here.
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.encoding_name = encoding

    @property
    def settings(self) -> dict:
        """Settings recorded in the index manifest (a change means a rebuild)."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "overlap_tokens": self.overlap_tokens,
            "encoding": self.encoding_name,
            "splitter": "sentence-v1",
        }

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` in this chunker's encoding."""
        return len(get_encoding(self.encoding_name).encode_ordinary(text))

    def split(self, doc: Document) -> list[Chunk]:
        """Split one document into chunks covering all of its non-whitespace text."""
        units = self._units(doc.text)
        if not units:
            return []
        chunks: list[Chunk] = []
        i = 0
        n = len(units)
        while i < n:
            total = 0
            j = i
            while j < n and (j == i or total + units[j][2] <= self.chunk_tokens):
                total += units[j][2]
                j += 1
            start, end = units[i][0], units[j - 1][1]
            # Units are counted alone; joined, they can tokenize a little differently. Check
            # the real count and give back units until the chunk fits (rare).
            while j - 1 > i and self.count_tokens(doc.text[start:end]) > self.chunk_tokens:
                j -= 1
                end = units[j - 1][1]
            chunks.append(self._make_chunk(doc, start, end))
            if j >= n:
                break
            # Step back over trailing units that fit in the overlap, but always advance.
            back, k = 0, j
            while k - 1 > i and back + units[k - 1][2] <= self.overlap_tokens:
                k -= 1
                back += units[k][2]
            i = k
        return chunks

    def split_all(self, docs: list[Document]) -> list[Chunk]:
        """Split several documents, in order."""
        return [c for d in docs for c in self.split(d)]

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        """Sentences (or pieces of over-long sentences) as ``(start, end, tokens)``."""
        enc = get_encoding(self.encoding_name)
        spans = sentence_spans(text)
        # One encode_ordinary call per span, not encode_ordinary_batch: even with num_threads=1 the
        # batch call submits one thread-pool future per text, 25x slower on many short texts
        # (measured: 200k words in 6.0 s batched vs 0.24 s in a loop) and ~1.5 GB of futures for a 5 MB line.
        # A span of more characters than chunk_tokens times the longest token (in bytes) cannot
        # fit, so it is not counted whole: BPE over one multi-megabyte piece without spaces
        # costs seconds (a 5 MB line: 3.5 s of its 5.9 s) and the count would be thrown away.
        too_long = self.chunk_tokens * _longest_token(self.encoding_name)
        units: list[tuple[int, int, int]] = []
        for s, e in spans:
            count = len(enc.encode_ordinary(text[s:e])) if e - s <= too_long else self.chunk_tokens + 1
            if count <= self.chunk_tokens:
                units.append((s, e, count))
            else:
                units.extend(self._split_long(text, s, e))
        return units

    def _split_long(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Split an over-long sentence into word-aligned pieces of at most ``chunk_tokens``."""
        enc = get_encoding(self.encoding_name)
        # Very long "words" (URLs, base64, a 5 MB line without spaces) are cut into
        # character windows of chunk_tokens // 2 characters: even at two tokens per
        # character (rare non-Latin symbols) such a window fits in one chunk.
        max_chars = max(8, self.chunk_tokens // 2)
        words: list[tuple[int, int]] = []
        for m in _WORD.finditer(text, start, end):
            ws, we = m.start(), m.end()
            while we - ws > max_chars:
                words.append((ws, ws + max_chars))
                ws += max_chars
            words.append((ws, we))
        counts = [len(enc.encode_ordinary(text[s:e])) for s, e in words]
        pieces: list[tuple[int, int, int]] = []
        cur_start, cur_end, cur = words[0][0], words[0][0], 0
        for (ws, we), c in zip(words, counts):
            if cur and cur + c > self.chunk_tokens:
                pieces.append((cur_start, cur_end, cur))
                cur_start, cur = ws, 0
            cur_end = we
            cur += c
        pieces.append((cur_start, cur_end, cur))
        out: list[tuple[int, int, int]] = []
        for s, e, _ in pieces:
            sub: list[tuple[int, int]] = []
            _append_trimmed(text, s, e, sub)
            for ts, te in sub:
                # Recount: joined words can tokenize differently than their sum, and rare
                # characters can take several tokens each; halve anything still too long.
                out.extend(self._fit(text, ts, te))
        return out

    def _fit(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        count = len(get_encoding(self.encoding_name).encode_ordinary(text[start:end]))
        if count <= self.chunk_tokens or end - start <= 1:
            return [(start, end, count)]
        mid = (start + end) // 2
        out: list[tuple[int, int, int]] = []
        for s, e in ((start, mid), (mid, end)):
            trimmed: list[tuple[int, int]] = []
            _append_trimmed(text, s, e, trimmed)
            for ts, te in trimmed:
                out.extend(self._fit(text, ts, te))
        return out

    def _make_chunk(self, doc: Document, start: int, end: int) -> Chunk:
        return Chunk(
            id=chunk_id(doc.id, start, end),
            doc_id=doc.id,
            title=doc.title,
            source=doc.source,
            text=doc.text[start:end],
            start=start,
            end=end,
            url=doc.url,
            date=doc.date,
            pages=doc.pages_of(start, end),
            headings=heading_path(doc, start),
        )


def heading_path(doc: Document, offset: int) -> tuple[str, ...]:
    """The headings in effect at ``offset`` of ``doc``, outermost first, without a leading one equal to the title."""
    path: list[tuple[int, str]] = []
    for at, level, text in doc.headings:
        if at > offset:
            break
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, text))
    names = tuple(t for _, t in path)
    return names[1:] if names and names[0] == doc.title else names


def chunk_id(doc_id: str, start: int, end: int) -> str:
    """The id of the chunk ``start:end`` of document ``doc_id`` (stable across rebuilds)."""
    return hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).hexdigest()[:16]
