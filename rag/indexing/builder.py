"""The :class:`IndexBuilder`: one build of an index from a folder of articles, step by step
(see :mod:`rag.indexing` for what a build keeps, embeds and drops).

Example:
    >>> builder = IndexBuilder("index/default", embedder, chunker)
    >>> summary = builder.build("data/articles")
    >>> summary.added, summary.updated, summary.removed, summary.unchanged
    (1, 1, 0, 23)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chunking import Chunker
from ..config import IndexConfig, IndexingConfig, LoaderConfig
from ..documents import load_documents, supported_types
from ..embedding import Embedder
from ..embedding.window import EmbeddingWindow
from ..retrieval.keyword import write_keyword_index
from ..records import (
    Chunk,
    Document,
    Manifest,
    ManifestDocument,
    NearDuplicate,
    SkippedFile,
)
from ..store import (
    GenerationWriter,
    IndexBackend,
    IndexCorruptError,
    IndexMismatchError,
    IndexStore,
    SearchableIndex,
    is_disk_full,
    settings_difference,
)
from .dedup import (
    find_near_duplicates,
    minhash_signature,
    read_signatures,
    signature_writer,
)
from .errors import (
    BuildError,
    _VectorsUnavailable,
    disk_full_error,
)
from .lock import build_lock
from .plan import diff, group_copies, text_key
from .summary import BuildSummary, Plan

# What a build writes beside the vectors and chunks (the MinHash signatures are added per
# build). Passed to write_generation explicitly: whether BM25 is written never depends on
# which modules happen to be imported.
BUILD_WRITERS: tuple[GenerationWriter, ...] = (write_keyword_index,)


@dataclass(frozen=True)
class _Rows:
    """Step 4: chunk rows kept from the previous generation, and the new chunks."""

    kept_rows: list[int]
    kept_chunks: list[Chunk]
    new_chunks: list[Chunk]
    to_write: list[Document]  # documents chunked anew
    reuse: dict[bytes, int]  # chunk text key -> a previous row holding its vector
    counts: dict[str, int]  # chunks per document id
    dropped: int  # previous rows not kept


@dataclass(frozen=True)
class _Vectors:
    """Step 5: every row of the new generation with its chunk and vector."""

    rows: np.ndarray
    chunks: list[Chunk]
    vectors: np.ndarray
    dim: int
    embedded: int
    reused: int
    seconds: float


class IndexBuilder:
    """Builds the index at ``root`` from a folder, incrementally when it can.

    Args:
        root: the index folder.
        embedder: turns chunk texts into vectors (only new chunk texts are encoded).
        chunker: splits documents; its settings are recorded in the manifest.
        loader: which files are read and the size limit.
        indexing: near-duplicate policy, settings-change policy, lock timeout.
        on_message: called with notes worth showing before the work is done (e.g. why a
            full rebuild is needed).
        index: the FAISS index type and its recall target (rag/store/ann.py); a change takes
            effect at the next build, re-using every stored vector.
        writers: what is written beside the vectors and chunks (default
            :data:`BUILD_WRITERS`: the BM25 index); backends without a folder ignore them.
        store: where the index is kept (:data:`rag.store.BACKENDS`; default: the FAISS
            folder at ``root``).

    Example:
        >>> summary = IndexBuilder("index/default", embedder, Chunker()).build("data/articles")
        >>> print(summary.describe())
    """

    def __init__(
        self,
        root: str | Path,
        embedder: Embedder,
        chunker: Chunker,
        loader: LoaderConfig | None = None,
        indexing: IndexingConfig | None = None,
        on_message: Callable[[str], None] | None = None,
        index: IndexConfig | None = None,
        writers: Sequence[GenerationWriter] | None = None,
        store: IndexBackend | None = None,
    ) -> None:
        self.store: IndexBackend = store if store is not None else IndexStore(root)
        cfg = index or IndexConfig()
        self.index_settings = {"type": cfg.type, "recall_target": cfg.recall_target, "pq_bytes": cfg.pq_bytes}
        self.embedder = embedder
        self.chunker = chunker
        self.loader = loader or LoaderConfig()
        self.indexing = indexing or IndexingConfig()
        self.on_message = on_message or (lambda _msg: None)
        self.writers = tuple(BUILD_WRITERS if writers is None else writers)

    def build(self, articles_dir: str | Path, *, full: bool = False, show_progress: bool = False) -> BuildSummary:
        """Bring the index up to date with ``articles_dir``.

        Args:
            articles_dir: the folder of articles (read only; nothing in it is changed).
            full: re-embed everything instead of updating.
            show_progress: show a progress bar while embedding.

        Raises:
            FileNotFoundError: the folder does not exist.
            BuildError: no readable articles (the index is left as it was).
            BuildLockedError: another build of this index is running.
            IndexMismatchError: settings changed and ``indexing.on_settings_change`` is ``refuse``.
            DiskFullError: the disk filled up while writing (the previous index stays current).
        """
        t0 = time.perf_counter()
        try:
            with build_lock(self.store.root, self.indexing.lock_timeout):
                return self._build(Path(articles_dir), full, show_progress, t0)
        except BuildError:
            raise
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error(
                    self.store.root, exc, f"rag build {articles_dir} --index {self.store.root}"
                ) from exc
            raise

    # -- steps -------------------------------------------------------------------------
    def _previous(self, full: bool) -> tuple[SearchableIndex | None, str]:
        """The current generation to update from (None for a full build) and why not."""
        if full:
            return None, "--full was requested" if self.store.exists() else ""
        if not self.store.exists():
            return None, ""
        stale = self.store.stale_reason()
        if stale is not None:
            self.on_message(f"note: {stale}; rebuilding everything")
            return None, stale
        try:
            manifest = self.store.manifest()
        except IndexCorruptError as exc:
            reason = f"the previous index is unreadable ({exc})"
            self.on_message(f"note: {reason}; rebuilding everything")
            return None, reason
        why = settings_difference(manifest, self.embedder.name, self.chunker.settings)
        if why is not None:
            if self.indexing.on_settings_change == "refuse":
                raise IndexMismatchError(
                    f"cannot update index {str(self.store.root)!r}: {why}. Pass --full to rebuild it from scratch "
                    f"(or set indexing.on_settings_change: rebuild)"
                )
            self.on_message(f"note: {why}; rebuilding all articles")
            return None, why
        try:
            return self.store.load(), ""
        except (IndexCorruptError, IndexMismatchError) as exc:
            reason = f"the previous index is unreadable ({exc})"
            self.on_message(f"note: {reason}; rebuilding everything")
            return None, reason

    def _build(self, folder: Path, full: bool, show_progress: bool, t0: float) -> BuildSummary:
        # The index itself may lie inside the folder (a rebuild of "."): never read as articles.
        result = load_documents(
            folder,
            max_file_mb=self.loader.max_file_mb,
            extensions=self.loader.extensions,
            show_progress=show_progress,
            exclude=(self.store.root,),
        )
        if not result.documents:
            why = "; ".join(f"{s.source}: {s.reason}" for s in result.skipped[:5])
            raise BuildError(
                f"no readable articles in {str(folder)!r}"
                + (f" (skipped: {why})" if why else "")
                + f"; add {supported_types()} files. The index was left as it was"
            )
        prev, reason = self._previous(full)
        try:
            return self._update(folder, result.documents, list(result.skipped), prev, reason, show_progress, t0)
        except _VectorsUnavailable as exc:
            reason = f"the stored vectors cannot be read back for reuse ({exc})"
            self.on_message(f"note: {reason}; rebuilding all articles")
            return self._update(folder, result.documents, list(result.skipped), None, reason, show_progress, t0)
        finally:
            if prev is not None:
                prev.close()

    def _update(
        self,
        folder: Path,
        docs: list[Document],
        skipped: list[SkippedFile],
        prev: SearchableIndex | None,
        reason: str,
        show_progress: bool,
        t0: float,
    ) -> BuildSummary:
        old = prev.manifest if prev is not None else None
        plan, signatures = self._plan(docs, skipped, prev, show_progress)
        rows = self._rows(plan, prev, show_progress)
        dups = tuple(
            ManifestDocument.of(d, duplicate_of=c.source) for d, c in sorted(plan.duplicates, key=lambda p: p[0].source)
        )
        near = tuple(NearDuplicate(n.source, n.similar_to, round(n.similarity, 4), n.kept) for n in plan.near)
        if (
            old is not None
            and not rows.new_chunks
            and rows.dropped == 0
            and not rows.to_write
            and old.duplicates == dups
            and old.near_duplicates == near
            and len(old.documents) == len(plan.canonical)
            and old.index_settings == self.index_settings
        ):
            # Nothing to write: leave the generation as it is (readers keep it, nothing is churned).
            return BuildSummary.of(
                self.store.label, plan, prev.size, time.perf_counter() - t0, mode="unchanged", reason=reason
            )
        vec = self._vectors(rows, prev, folder, show_progress)
        mode = "full" if prev is None else "incremental"
        manifest = self._manifest(folder, plan, rows, vec, dups, near, mode, reason)
        kept = {d.content_hash: signatures[d.content_hash] for d in plan.canonical if d.content_hash in signatures}
        self.store.write(
            vec.vectors,
            vec.chunks,
            manifest,
            vec.rows,
            incremental=prev is not None,
            writers=[*self.writers, signature_writer(kept)],
            show_progress=show_progress,
        )
        return BuildSummary.of(
            self.store.label,
            plan,
            len(vec.chunks),
            time.perf_counter() - t0,
            embed_seconds=vec.seconds,
            embedded=vec.embedded,
            reused=vec.reused,
            mode=mode,
            reason=reason,
        )

    def _plan(
        self, docs: list[Document], skipped: list[SkippedFile], prev: SearchableIndex | None, show_progress: bool
    ) -> tuple[Plan, dict[str, np.ndarray]]:
        """Steps 1-3: one canonical document per text, near-duplicates, and what changed."""
        old = prev.manifest if prev is not None else None
        indexed = {e.source for e in old.documents} if old is not None else set()
        canonical, duplicates = group_copies(docs, indexed)
        signatures = self._signatures(canonical, prev, show_progress)
        # Documents already indexed come first, so a new syndicated copy is the one reported
        # (and dropped, if so set).
        order = sorted(canonical, key=lambda d: (d.source not in indexed, d.source))
        by_hash = {d.content_hash: d for d in canonical}
        found = find_near_duplicates(
            [d.content_hash for d in order], signatures, self.indexing.near_duplicate_threshold, show_progress
        )
        keep = self.indexing.near_duplicates == "keep"
        near = sorted(
            (NearDuplicate(by_hash[h].source, by_hash[other].source, sim, keep) for h, (other, sim) in found.items()),
            key=lambda n: n.source,
        )
        if not keep:
            dropped = {n.source for n in near}
            skipped = skipped + [
                SkippedFile(
                    n.source,
                    f"near-duplicate of {n.similar_to} (similarity {n.similarity:.2f}); "
                    f"set indexing.near_duplicates: keep to index it",
                )
                for n in near
            ]
            skipped += [
                SkippedFile(d.source, f"copy of {c.source}, a dropped near-duplicate")
                for d, c in duplicates
                if c.source in dropped
            ]
            canonical = [d for d in canonical if d.source not in dropped]
            duplicates = [(d, c) for d, c in duplicates if c.source not in dropped]
        skipped = sorted(skipped, key=lambda s: s.source)
        return Plan(canonical, duplicates, near, skipped, diff(canonical, duplicates, old)), signatures

    def _signatures(
        self, canonical: list[Document], prev: SearchableIndex | None, show_progress: bool
    ) -> dict[str, np.ndarray]:
        """MinHash signatures by content hash: stored ones reused, new texts hashed."""
        from tqdm.auto import tqdm

        stored = read_signatures(prev.path) if prev is not None and prev.path is not None else {}
        signatures: dict[str, np.ndarray] = {}
        for d in tqdm(canonical, desc="Near-duplicates: hashing", unit="doc", disable=not show_progress, delay=0.5):
            sig = stored.get(d.content_hash)
            if sig is None:
                sig = minhash_signature(d.text)
            if sig is not None:
                signatures[d.content_hash] = sig
        return signatures

    def _rows(self, plan: Plan, prev: SearchableIndex | None, show_progress: bool) -> _Rows:
        """Step 4: documents unchanged in place keep their chunk rows; the rest are chunked anew."""
        from tqdm.auto import tqdm

        old_docs = {e.source: e for e in prev.manifest.documents} if prev is not None else {}
        in_place = {d.source for d in plan.canonical if d.source in old_docs and old_docs[d.source].same_as(d)}
        keep_ids = {old_docs[s].id for s in in_place}
        to_write = [d for d in plan.canonical if d.source not in in_place]
        kept_rows: list[int] = []
        kept_chunks: list[Chunk] = []
        reuse: dict[bytes, int] = {}
        counts: dict[str, int] = {}
        if prev is not None:
            for row, chunk in prev.iter_rows():
                if chunk.doc_id in keep_ids:
                    kept_rows.append(row)
                    kept_chunks.append(chunk)
                    counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
                if to_write:
                    reuse.setdefault(text_key(chunk.indexed_text), row)
        new_chunks = [
            c
            for d in tqdm(to_write, desc="Chunking", unit="doc", disable=not show_progress, delay=0.5)
            for c in self.chunker.split(d)
        ]
        for c in new_chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        dropped = (prev.size if prev is not None else 0) - len(kept_rows)
        return _Rows(kept_rows, kept_chunks, new_chunks, to_write, reuse, counts, dropped)

    def _vectors(self, rows: _Rows, prev: SearchableIndex | None, folder: Path, show_progress: bool) -> _Vectors:
        """Step 5: reused vectors come from the previous generation; only new chunk texts are embedded."""
        old_ids, old_vectors = np.zeros(0, np.int64), None
        if prev is not None:
            try:
                old_ids, old_vectors = prev.rows_and_vectors()
            except RuntimeError as exc:  # an index type that cannot reconstruct its vectors
                raise _VectorsUnavailable(str(exc).strip().splitlines()[-1]) from exc
        position = {int(r): i for i, r in enumerate(old_ids)}
        embed_texts: dict[bytes, tuple[str, str]] = {}
        for c in rows.new_chunks:  # embedded: the title and heading path, then the text
            key = text_key(c.indexed_text)
            if key not in rows.reuse:
                embed_texts.setdefault(key, (c.indexed_prefix, c.text))
        t_embed = time.perf_counter()
        embedded = (
            self.embedder.encode(self._fitted(list(embed_texts.values())), show_progress=show_progress)
            if embed_texts
            else None
        )
        seconds = time.perf_counter() - t_embed if embed_texts else 0.0
        dim = (
            int(embedded.shape[1])
            if embedded is not None
            else prev.manifest.dimension
            if prev is not None
            else int(self.embedder.dimension)
        )
        if prev is not None and embedded is not None and dim != prev.manifest.dimension:
            raise BuildError(
                f"embedder {self.embedder.name!r} now gives {dim}-dimensional vectors but the index holds "
                f"{prev.manifest.dimension}-dimensional ones; rebuild with: rag build {folder} --full"
            )
        fresh = {key: i for i, key in enumerate(embed_texts)}
        new_vectors = np.zeros((len(rows.new_chunks), dim), dtype=np.float32)
        reused = 0
        for i, c in enumerate(rows.new_chunks):
            key = text_key(c.indexed_text)
            if key in fresh:
                new_vectors[i] = embedded[fresh[key]]
            else:
                new_vectors[i] = old_vectors[position[rows.reuse[key]]]
                reused += 1
        kept_vectors = (
            old_vectors[[position[r] for r in rows.kept_rows]]
            if rows.kept_rows
            else np.zeros((0, dim), dtype=np.float32)
        )
        start = int(old_ids.max()) + 1 if len(old_ids) else 0
        row_ids = np.concatenate(
            [np.asarray(rows.kept_rows, dtype=np.int64), np.arange(start, start + len(rows.new_chunks), dtype=np.int64)]
        )
        chunks = rows.kept_chunks + rows.new_chunks
        vectors = np.concatenate([kept_vectors, new_vectors]) if chunks else np.zeros((0, dim), dtype=np.float32)
        return _Vectors(row_ids, chunks, vectors, dim, len(embed_texts), reused, seconds)

    def _fitted(self, items: list[tuple[str, str]]) -> list[str]:
        """The texts to embed: each chunk's indexed text, its title and headings cut to fit the model's window."""
        window = EmbeddingWindow.of(self.embedder.name)
        return window.fit(items) if window is not None else [f"{prefix}\n{text}" for prefix, text in items]

    def _manifest(
        self,
        folder: Path,
        plan: Plan,
        rows: _Rows,
        vec: _Vectors,
        dups: tuple[ManifestDocument, ...],
        near: tuple[NearDuplicate, ...],
        mode: str,
        reason: str,
    ) -> Manifest:
        """Step 6: the new generation's manifest."""
        copies: dict[str, list[str]] = {}
        for d, c in plan.duplicates:
            copies.setdefault(c.source, []).append(d.source)
        c = plan.changes
        return Manifest(
            embedder=self.embedder.name,
            dimension=vec.dim,
            chunker=self.chunker.settings,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            articles_dir=str(folder.resolve()),
            documents=tuple(
                ManifestDocument.of(
                    d, chunks=rows.counts.get(d.id, 0), duplicates=tuple(sorted(copies.get(d.source, ())))
                )
                for d in plan.canonical
            ),
            duplicates=dups,
            near_duplicates=near,
            skipped=tuple(plan.skipped),
            indexing={
                "near_duplicates": self.indexing.near_duplicates,
                "near_duplicate_threshold": self.indexing.near_duplicate_threshold,
            },
            index=self.index_settings,
            build={
                "mode": mode,
                "reason": reason,
                "added": len(c.added),
                "updated": len(c.updated),
                "removed": len(c.removed),
                "renamed": len(c.renamed),
                "unchanged": len(c.unchanged),
                "embedded_chunks": vec.embedded,
                "reused_chunks": vec.reused,
            },
        )
