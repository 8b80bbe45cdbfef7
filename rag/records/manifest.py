"""Records of an index generation: Manifest, ManifestDocument, NearDuplicate, SkippedFile (see :mod:`rag.records`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .content import Document


@dataclass(frozen=True)
class SkippedFile:
    """A file (or a record of one) that was not indexed, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class ManifestDocument:
    """One article as an index records it (in ``Manifest.documents``, or ``Manifest.duplicates``
    with ``duplicate_of`` set for an exact copy indexed under another name)."""

    id: str
    source: str
    title: str
    content_hash: str
    chars: int
    date: str | None = None
    url: str | None = None
    chunks: int = 0
    duplicates: tuple[str, ...] = ()
    duplicate_of: str | None = None

    @classmethod
    def of(cls, doc: Document, **extra: Any) -> ManifestDocument:
        """The entry for ``doc`` (``extra``: chunks, duplicates or duplicate_of)."""
        return cls(
            id=doc.id,
            source=doc.source,
            title=doc.title,
            content_hash=doc.content_hash,
            chars=len(doc.text),
            date=doc.date,
            url=doc.url,
            **extra,
        )

    def same_as(self, doc: Document) -> bool:
        """Whether ``doc`` is this entry unchanged (same id, name, metadata and text)."""
        return (self.id, self.source, self.title, self.date, self.url, self.content_hash, self.chars) == (
            doc.id,
            doc.source,
            doc.title,
            doc.date,
            doc.url,
            doc.content_hash,
            len(doc.text),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "url": self.url,
            "content_hash": self.content_hash,
            "chars": self.chars,
        }
        if self.duplicate_of is not None:
            return {**out, "duplicate_of": self.duplicate_of}
        return {**out, "chunks": self.chunks, **({"duplicates": list(self.duplicates)} if self.duplicates else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ManifestDocument:
        return cls(
            id=str(d["id"]),
            source=str(d["source"]),
            title=str(d.get("title") or ""),
            content_hash=str(d.get("content_hash") or ""),
            chars=int(d.get("chars") or 0),
            date=d.get("date"),
            url=d.get("url"),
            chunks=int(d.get("chunks") or 0),
            duplicates=tuple(d.get("duplicates") or ()),
            duplicate_of=d.get("duplicate_of"),
        )


@dataclass(frozen=True)
class NearDuplicate:
    """An article whose text nearly equals an earlier one's (estimated Jaccard ``similarity``)."""

    source: str
    similar_to: str
    similarity: float
    kept: bool


@dataclass(frozen=True)
class Manifest:
    """What an index generation holds and how it was built (``manifest.json``): the embedder
    (never mixed) and its dimension, the chunker settings and ``format_version`` (a change means
    a rebuild), the generation's name and chunk count, the articles (``duplicates``: copies
    indexed once), the ``index.*`` settings (plus ``built``: what was built), the
    near-duplicate policy (``indexing``) and what the last build did (``build``)."""

    embedder: str
    dimension: int
    normalized: bool = True
    chunker: Mapping[str, Any] = field(default_factory=dict)
    format_version: int | None = None
    generation: str = ""
    chunks: int = 0
    built_at: str = ""
    articles_dir: str | None = None
    documents: tuple[ManifestDocument, ...] = ()
    duplicates: tuple[ManifestDocument, ...] = ()
    near_duplicates: tuple[NearDuplicate, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    indexing: Mapping[str, Any] = field(default_factory=dict)
    index: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] = field(default_factory=dict)

    @property
    def index_settings(self) -> dict[str, Any]:
        """The ``index.*`` settings asked for, without what was built."""
        return {k: v for k, v in self.index.items() if k != "built"}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json``."""
        out: dict[str, Any] = {
            "embedder": {"name": self.embedder, "dimension": self.dimension, "normalized": self.normalized},
            "chunker": dict(self.chunker),
            "built_at": self.built_at,
            "articles_dir": self.articles_dir,
            "documents": [d.to_dict() for d in self.documents],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "near_duplicates": [asdict(n) for n in self.near_duplicates],
            "skipped": [asdict(s) for s in self.skipped],
            "indexing": dict(self.indexing),
            "index": dict(self.index),
            "build": dict(self.build),
        }
        if self.format_version is not None:
            out.update(format_version=self.format_version, chunks=self.chunks, generation=self.generation)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Read a ``manifest.json`` object.

        Raises:
            ValueError: a key is missing or has the wrong type (the message names it).
        """
        try:
            emb = d["embedder"]
            return cls(
                embedder=str(emb["name"]),
                dimension=int(emb["dimension"]),
                normalized=bool(emb.get("normalized", True)),
                chunker=dict(d.get("chunker") or {}),
                format_version=d.get("format_version"),
                generation=str(d.get("generation") or ""),
                chunks=int(d.get("chunks") or 0),
                built_at=str(d.get("built_at") or ""),
                articles_dir=d.get("articles_dir"),
                documents=tuple(ManifestDocument.from_dict(e) for e in d.get("documents") or ()),
                duplicates=tuple(ManifestDocument.from_dict(e) for e in d.get("duplicates") or ()),
                near_duplicates=tuple(
                    NearDuplicate(str(n["source"]), str(n["similar_to"]), float(n["similarity"]), bool(n["kept"]))
                    for n in d.get("near_duplicates") or ()
                ),
                skipped=tuple(SkippedFile(str(s["source"]), str(s["reason"])) for s in d.get("skipped") or ()),
                indexing=dict(d.get("indexing") or {}),
                index=dict(d.get("index") or {}),
                build=dict(d.get("build") or {}),
            )
        except KeyError as exc:
            raise ValueError(f"manifest has no {exc.args[0]!r}") from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"manifest has a value of the wrong type ({exc})") from None
