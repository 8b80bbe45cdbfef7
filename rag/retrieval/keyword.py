"""BM25 keyword index over the chunks of an index generation, with ``bm25s``.

Every new index generation gets a ``bm25/`` folder beside its vectors (a build passes
:func:`write_keyword_index` to :func:`rag.store.write_generation` among its writers), so the
keyword index is always built from exactly the chunks the FAISS index holds and is replaced
with it::

    gen-.../bm25/params.index.json ...   bm25s' own files (sparse score matrix, vocabulary)
    gen-.../bm25/rows.npy                chunk row (FAISS id) of each BM25 document
    gen-.../bm25/keyword.json            tokenizer settings and format version

An index built before this module existed has no ``bm25/`` folder: :func:`open_keyword_index`
then builds the BM25 index from the stored chunks on first use (a second or so per 10k
chunks) and tries to save it into the generation for next time.

Scores are Lucene BM25: ``sum over query terms t of idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))``
with ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``. Because the tf factor is below 1,
``score / sum(idf(t))`` lies in ``[0, 1)``: the share of the query's evidence a chunk matches.
:meth:`KeywordIndex.relevance` returns it, so one relevance threshold works for short and
long questions alike.

Example:
    >>> kw = KeywordIndex.build(["The cat sat.", "A dog barked."], rows=[0, 1])
    >>> kw.scores("cat")            # one BM25 score per chunk, in ``kw.rows`` order
    array([0.69..., 0.], dtype=float32)
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import RagError
from ..records import Chunk

KEYWORD_DIR = "bm25"
KEYWORD_FORMAT = 1
# Lucene's defaults; k1=1.2 measured no worse than bm25s' 1.5 on rgb-en-fact (see README "Quality").
K1 = 1.2
B = 0.75
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class KeywordIndexError(RagError, RuntimeError):
    """The BM25 files of an index generation are unreadable; the message says how to rebuild."""


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer  # PyStemmer
    except ImportError as exc:
        raise ImportError(
            "BM25 retrieval needs the PyStemmer package; pip install PyStemmer (it is a dependency of rag-articles)"
        ) from exc
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed word tokens (two characters or more)."""
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    return _stemmer().stemWords(words) if words else []


def tokenizer_settings() -> dict:
    """Recorded with a saved index: a different tokenizer means the index must be rebuilt."""
    return {
        "format": KEYWORD_FORMAT,
        "text": "title-headings-text",
        "token_pattern": _TOKEN.pattern,
        "lower": True,
        "stopwords": "bm25s-english",
        "stemmer": "snowball-english",
        "k1": K1,
        "b": B,
        "method": "lucene",
    }


class KeywordIndex:
    """A BM25 index whose documents are chunks, identified by their FAISS row ids.

    Args:
        model: a ``bm25s.BM25`` model indexed over the chunks.
        rows: the chunk row of each BM25 document, in the model's document order.
    """

    def __init__(self, model, rows: np.ndarray) -> None:
        self.model = model
        self.rows = np.asarray(rows, dtype=np.int64)
        indptr = np.asarray(model.scores["indptr"])
        # Every stored score is > 0 (idf > 0 and tf >= 1), so a token's column holds one
        # entry per document containing it: df straight from the sparse matrix.
        self._df = np.diff(indptr)
        self._n_docs = int(model.scores["num_docs"])
        self._position = {int(r): i for i, r in enumerate(self.rows)}

    @classmethod
    def build(cls, texts: Sequence[str], rows: Sequence[int] | np.ndarray | None = None) -> KeywordIndex:
        """Index ``texts`` (one per chunk); ``rows`` are their FAISS ids (default ``0..n-1``)."""
        import bm25s

        rows_arr = np.arange(len(texts), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows_arr) != len(texts):
            raise ValueError(f"got {len(rows_arr)} rows for {len(texts)} texts")
        model = bm25s.BM25(k1=K1, b=B, method="lucene")
        # An empty token list would make bm25s' average length 0; "" keeps every document non-empty-safe.
        corpus = [tokenize(t) or [""] for t in texts]
        if corpus:
            model.index(corpus, show_progress=False)
        else:
            model.index([[""]], show_progress=False)
            rows_arr = np.zeros(0, dtype=np.int64)
        return cls(model, rows_arr)

    @property
    def size(self) -> int:
        """Number of chunks indexed."""
        return len(self.rows)

    def _ids(self, query: str) -> tuple[list[int], int]:
        """Vocabulary ids of the distinct query tokens, and how many tokens are not in the vocabulary."""
        vocab = self.model.vocab_dict
        tokens = list(dict.fromkeys(t for t in tokenize(query) if t))
        known = [vocab[t] for t in tokens if t in vocab]
        return known, len(tokens) - len(known)

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every chunk for ``query``, aligned with :attr:`rows`.

        Args:
            query: free text (tokenised like the chunks).
            mask: optional boolean array aligned with :attr:`rows`; chunks where it is False score 0.
        """
        ids, _ = self._ids(query)
        if not ids or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        out = np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)[: self.size]
        if mask is not None:
            out = np.where(mask, out, np.float32(0.0))
        return out

    def max_score(self, query: str) -> float:
        """Upper bound of any chunk's score for ``query``: the sum of its distinct tokens' idf.

        Tokens absent from the corpus count with ``df = 0`` (the largest idf), so a question
        about words no article uses gets a low :meth:`relevance`.
        """
        ids, unknown = self._ids(query)
        n = self._n_docs
        total = sum(math.log(1 + (n - int(self._df[i]) + 0.5) / (int(self._df[i]) + 0.5)) for i in ids)
        total += unknown * math.log(1 + (n + 0.5) / 0.5)
        return total

    def term_weights(self, query: str) -> dict[str, float]:
        """Each distinct query token (as :func:`tokenize` makes it) and its idf in this corpus.

        A token no chunk holds gets the largest idf, so a question's words that no article uses
        weigh most. Example: ``KeywordIndex.build(["The cat sat.", "A dog barked."]).term_weights("cat zebra")``
        gives ``cat`` 0.69 and ``zebra`` 1.79.
        """
        vocab, n = self.model.vocab_dict, self._n_docs
        out: dict[str, float] = {}
        for token in dict.fromkeys(t for t in tokenize(query) if t):
            df = int(self._df[vocab[token]]) if token in vocab else 0
            out[token] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return out

    def relevance(self, query: str, scores: np.ndarray) -> np.ndarray:
        """``scores / max_score(query)``: in ``[0, 1)``, comparable across queries."""
        top = self.max_score(query)
        if top <= 0:
            return np.zeros_like(scores, dtype=np.float32)
        return (np.asarray(scores, dtype=np.float32) / np.float32(top)).astype(np.float32)

    def position_of(self, row: int) -> int | None:
        """Index into :attr:`rows` of chunk ``row`` (None when not indexed)."""
        return self._position.get(int(row))

    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder`` (created)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder), show_progress=False)
        np.save(folder / "rows.npy", self.rows)
        (folder / "keyword.json").write_text(
            json.dumps({**tokenizer_settings(), "documents": self.size}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: str | Path) -> KeywordIndex:
        """Load an index saved by :meth:`save`.

        Raises:
            FileNotFoundError: no keyword index in ``folder``.
            KeywordIndexError: the files are unreadable or were written with other tokenizer settings.
        """
        import bm25s

        folder = Path(folder)
        meta_path = folder / "keyword.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no BM25 index in {str(folder)!r}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            rows = np.load(folder / "rows.npy")
        except (OSError, ValueError) as exc:
            raise KeywordIndexError(
                f"BM25 index in {str(folder)!r} is unreadable ({exc}); rebuild with: rag build ARTICLES_DIR --index INDEX --full"
            ) from exc
        expected = tokenizer_settings()
        if {k: meta.get(k) for k in expected} != expected:
            raise KeywordIndexError(
                f"BM25 index in {str(folder)!r} was built with settings {meta}, this version uses {expected}; rebuild with: rag build ARTICLES_DIR --index INDEX --full"
            )
        try:
            model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        except Exception as exc:  # bm25s raises assorted errors for truncated files
            raise KeywordIndexError(
                f"BM25 index in {str(folder)!r} is unreadable ({type(exc).__name__}: {exc}); rebuild with: rag build ARTICLES_DIR --index INDEX --full"
            ) from exc
        return cls(model, rows)


def write_keyword_index(generation_dir: Path, chunks: Sequence[Chunk], rows: np.ndarray) -> None:
    """Generation writer: save the BM25 index of ``chunks`` (their ``indexed_text``: title, headings, text) into ``generation_dir/bm25``."""
    KeywordIndex.build([c.indexed_text for c in chunks], rows).save(Path(generation_dir) / KEYWORD_DIR)


def open_keyword_index(
    generation_dir: Path, rows_and_chunks: Callable[[], Iterable[tuple[int, Chunk]]]
) -> KeywordIndex:
    """The BM25 index of a generation: loaded from its ``bm25/`` folder, else built from its chunks.

    A generation built before BM25 was added (no ``bm25/`` folder, or one with outdated
    settings) gets its BM25 index built from ``rows_and_chunks()`` now; it is saved into the
    generation when the folder is writable, so this happens once. The loaded index keeps
    the result (:meth:`rag.store.LoadedIndex.keyword_index`).
    """
    folder = Path(generation_dir) / KEYWORD_DIR
    try:
        return KeywordIndex.load(folder)
    except (FileNotFoundError, KeywordIndexError) as exc:
        reason = "has no BM25 index" if isinstance(exc, FileNotFoundError) else f"has an outdated BM25 index ({exc})"
        print(
            f"note: index generation {str(generation_dir)!r} {reason}; building it from the stored chunks "
            "(once; `rag build ARTICLES_DIR --full` makes it part of the build)",
            file=sys.stderr,
        )
    rows, texts = [], []
    for row, chunk in rows_and_chunks():
        rows.append(row)
        texts.append(chunk.indexed_text)
    kw = KeywordIndex.build(texts, rows)
    _try_save(kw, folder)
    return kw


def _try_save(kw: KeywordIndex, folder: Path) -> None:
    """Save atomically next to the generation's files; a read-only index just keeps it in memory."""
    tmp = folder.parent / f".tmp-{KEYWORD_DIR}-{secrets.token_hex(3)}"
    try:
        kw.save(tmp)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
