"""What a run needs around the pipeline: its cached index, the gold files checked, questions encoded ahead, ``--retriever`` variants."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import FORMAT_VERSION
from .qa import QAItem, source_file

if TYPE_CHECKING:
    from ..pipeline import RAG


def default_eval_index(articles_dir: str | Path, config_key: dict[str, Any]) -> Path:
    """A cache folder for the index of ``articles_dir`` under the system temp folder.

    Keyed by the articles folder and the embedder/chunker settings, so evaluating several
    corpora or configs never overwrites the user's own index (``index.path``).
    """
    import hashlib
    import tempfile

    key = json.dumps({"articles": str(Path(articles_dir).resolve()), **config_key}, sort_keys=True)
    return (
        Path(tempfile.gettempdir())
        / "rag-eval"
        / (Path(articles_dir).resolve().name + "-" + hashlib.sha256(key.encode()).hexdigest()[:10])
    )


def ensure_index(
    rag: RAG,
    articles_dir: str | Path,
    *,
    rebuild: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> bool:
    """Make sure ``rag``'s index holds ``articles_dir``: reuse it when it was built from that folder
    in the current index format (an older format is brought up to date by a build).

    Returns:
        True when an index was built.

    Raises:
        FileNotFoundError: ``articles_dir`` is missing.
        ValueError: the index folder holds an index of another articles folder (and ``rebuild`` is False).
    """
    articles = Path(articles_dir)
    if not articles.is_dir():
        raise FileNotFoundError(
            f"articles folder {str(articles)!r} does not exist; pass the folder the QA file's sources are relative to"
        )
    if rag.store.exists() and not rebuild:
        built_from = rag.store.read_manifest().get("articles_dir")
        if built_from and Path(built_from).resolve() != articles.resolve():
            raise ValueError(
                f"index {str(rag.store.root)!r} was built from {built_from!r}, not {str(articles.resolve())!r}; "
                "pass another --index, or --rebuild to replace it"
            )
        if rag.store.manifest().format_version == FORMAT_VERSION:
            rag.index()  # fails early with a clear message when it was built with other settings
            return False
        # An index of an older format still loads, but without what the new one adds (pages,
        # headings in the embedded text): measure the current format.
        log(f"Index {rag.store.root} has an older format; updating it ...")
    log(f"Building index {rag.store.root} from {articles} ...")
    summary = rag.build(articles, show_progress=progress)
    log(f"Indexed {summary.articles} articles as {summary.chunks} chunks in {summary.seconds:.1f} s.")
    return True


def missing_sources(items: Sequence[QAItem], articles_dir: str | Path) -> list[str]:
    """Gold sources named in ``items`` that are not files under ``articles_dir`` (likely typos)."""
    root = Path(articles_dir)
    names = sorted({source_file(s) for it in items for s in it.sources})
    return [n for n in names if not (root / n).is_file()]


class QueryCache:
    """Wraps an embedder so questions encoded ahead in one batch are not encoded again.

    Encoding a hundred questions in one batch takes a fraction of the time of a hundred
    single calls on a busy CPU, and the vectors are identical.

    Example:
        >>> cached = QueryCache(rag.embedder); cached.prime([it.question for it in items])
    """

    def __init__(self, embedder: Any) -> None:
        self.inner = embedder
        self.name = embedder.name
        self._cache: dict[str, Any] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def prime(self, texts: Sequence[str], show_progress: bool = False) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for text, vec in zip(todo, self.inner.encode(todo, show_progress=show_progress)):
                self._cache[text] = vec

    def encode(self, texts: Sequence[str], show_progress: bool = False):
        import numpy as np

        if texts and all(t in self._cache for t in texts):
            return np.stack([self._cache[t] for t in texts])
        return self.inner.encode(texts, show_progress=show_progress)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """``"hybrid/bm25_weight=1/dedup=none"`` -> ``("hybrid", {"retrieval.bm25_weight": "1", "retrieval.dedup": "none"})``.

    Raises:
        ValueError: unknown retriever, or a setting that is not ``key=value``.
    """
    from ..config import RetrievalConfig
    from ..retrieval import RETRIEVERS

    name, *pairs = [part.strip() for part in spec.strip().split("/")]
    if name not in RETRIEVERS:
        raise ValueError(
            f"unknown retriever {name!r} in --retriever; choose from {sorted(RETRIEVERS)}, optionally with settings like hybrid/bm25_weight=1/dedup=none"
        )
    fields = set(RetrievalConfig.model_fields)
    overrides = {"retrieval.retriever": name}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in fields:
            raise ValueError(
                f"bad setting {pair!r} in --retriever {spec!r}; write retrieval settings as key=value, keys: {sorted(fields)}"
            )
        overrides[f"retrieval.{key.strip()}"] = None if value.strip() == "null" else value.strip()
    return name, overrides
