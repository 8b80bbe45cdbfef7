"""Build and update an index from a folder of articles that keeps changing.

A build compares the folder with the current generation's manifest, which records every
document's content hash:

* unchanged documents keep their chunk rows and vectors as they are;
* new and changed documents are chunked, and only chunks whose text is not already in the
  index are embedded (a renamed file, or a copy promoted when its original is deleted,
  costs no embedding at all);
* chunks of changed and deleted documents are dropped.

The result is written as a new generation and switched in atomically
(:func:`rag.store.write_generation`), under a lock that lets one build run per index.
Exact duplicates (same text under several names) are indexed once, with every name
recorded; near-duplicates are found with MinHash over word 3-shingles and reported, and
either kept or dropped (``indexing.near_duplicates``).

Example:
    >>> builder = IndexBuilder("index/default", embedder, chunker)
    >>> summary = builder.build("data/articles")
    >>> summary.added, summary.updated, summary.removed, summary.unchanged
    (1, 1, 0, 23)
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import Chunker, chunk_id
from .config import IndexConfig, IndexingConfig, LoaderConfig
from .documents import SkippedFile, document_id, load_documents
from .records import Chunk, Document
from .embedding import Embedder
from .store import IndexCorruptError, IndexMismatchError, IndexStore, LoadedIndex, check_compatible, is_disk_full, write_generation

LOCK_FILE = ".build.lock"
OWNER_FILE = ".build.owner"
SIGNATURES = "minhash.npz"
NUM_PERM = 128
SHINGLE_WORDS = 3
_SEED = 1


class BuildError(RuntimeError):
    """A build could not produce an index (e.g. no readable articles)."""


class _VectorsUnavailable(Exception):
    """The previous generation's vectors cannot be reconstructed, so nothing can be reused."""


class DiskFullError(BuildError):
    """The disk (or quota) holding the index filled up while a build wrote it.

    The unfinished generation is removed and the previous one stays current; the message
    names the index folder, the free space and the command to run again.
    """


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.0f} KB"


def disk_full_error(root: Path, exc: BaseException, rerun: str) -> DiskFullError:
    """A :class:`DiskFullError` for ``exc`` raised while writing the index at ``root``."""
    where = getattr(exc, "filename", None)
    m = re.search(r"write error in (\S+?):", str(exc))
    where = where or (m.group(1) if m else None)
    store = IndexStore(root)
    try:
        current = store.current_name_or_none()
        held = store.size_on_disk()["current_bytes"] if current else 0
        free = shutil.disk_usage(root).free
    except OSError:
        current, held, free = None, 0, None
    kept = (f"The previous index ({current}) is unchanged and still answers questions"
            if current else "No index was there before, so there is still none")
    space = (f" (the current index takes {_mb(held)}; {_mb(free)} free now)" if current and free is not None
             else f" ({_mb(free)} free now)" if free is not None else "")
    return DiskFullError(
        f"no space left on the disk holding index {str(root)!r}"
        + (f" while writing {where}" if where else "")
        + f": the build was abandoned and its unfinished files removed. {kept}. "
        f"Free some disk space{space}, or point --index at another disk, and run the build again: {rerun}")


class BuildLockedError(BuildError):
    """Another build of the same index is running.

    Attributes:
        holder_pid: the process id of the running build, when known.
    """

    def __init__(self, message: str, holder_pid: int | None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid


@dataclass(frozen=True)
class NearDuplicate:
    """A document whose text nearly equals an earlier one's.

    Attributes:
        source: the later document.
        similar_to: the document it nearly duplicates (indexed).
        similarity: estimated Jaccard similarity of their word 3-shingles.
        kept: whether ``source`` was indexed too (``indexing.near_duplicates: keep``).
    """

    source: str
    similar_to: str
    similarity: float
    kept: bool


@dataclass(frozen=True)
class BuildSummary:
    """What a build did.

    ``articles`` counts the documents indexed (an exact duplicate is indexed once and listed
    in ``duplicates``); ``added``/``updated``/``removed``/``unchanged``/``renamed`` compare
    every document of the folder with the previous index (all ``added`` on a full build).
    """

    index_path: str
    articles: int
    chunks: int
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    renamed: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    embedded_chunks: int = 0
    reused_chunks: int = 0
    mode: str = "full"
    reason: str = ""
    changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def chunks_per_second(self) -> float:
        """Chunks indexed per second of the whole build."""
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    @property
    def skipped_count(self) -> int:
        """Number of files (or JSONL lines) skipped."""
        return len(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "index_path": self.index_path,
            "mode": self.mode,
            "reason": self.reason,
            "articles": self.articles,
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "skipped_count": self.skipped_count,
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "duplicates": [{"source": s, "duplicate_of": of} for s, of in self.duplicates],
            "near_duplicates": [{"source": n.source, "similar_to": n.similar_to, "similarity": round(n.similarity, 3), "kept": n.kept} for n in self.near_duplicates],
            "changes": self.changes,
            "embedded_chunks": self.embedded_chunks,
            "reused_chunks": self.reused_chunks,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
        }

    def describe(self) -> str:
        """Several lines for people: what changed, duplicates, and each skipped file with its reason."""
        verb = {"full": "Built", "incremental": "Updated", "unchanged": "Checked"}.get(self.mode, "Built")
        lines = [
            f"{verb} index {self.index_path} in {self.seconds:.1f} s: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.renamed} renamed, {self.unchanged} unchanged, {self.skipped_count} skipped.",
            f"It holds {self.articles} articles as {self.chunks} chunks ({self.embedded_chunks} chunks embedded in {self.embed_seconds:.1f} s, "
            f"{self.reused_chunks} reused).",
        ]
        if self.mode == "unchanged":
            lines[1] = f"Nothing changed; the index is up to date ({self.articles} articles, {self.chunks} chunks)."
        if self.reason:
            lines.append(f"Full rebuild: {self.reason}.")
        if self.duplicates:
            lines.append(f"Exact duplicates, indexed once ({len(self.duplicates)}):")
            lines += [f"  {s} = {of}" for s, of in self.duplicates]
        if self.near_duplicates:
            lines.append(f"Near-duplicates ({len(self.near_duplicates)}):")
            lines += [f"  {n.source} ~ {n.similar_to} (similarity {n.similarity:.2f}, {'kept' if n.kept else 'dropped'})" for n in self.near_duplicates]
        if self.skipped:
            lines.append(f"Skipped {self.skipped_count} file(s):")
            lines += [f"  {s.source}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


# -- the build lock ------------------------------------------------------------------


def read_lock_holder(root: str | Path) -> dict[str, Any] | None:
    """What the running build of ``root`` wrote about itself (pid, host, start time), if anything."""
    try:
        return json.loads((Path(root) / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def build_lock(root: str | Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the one-writer lock of the index at ``root``.

    The lock is an OS file lock (``filelock``), so it is released when its process dies,
    even by SIGKILL. The holder's pid goes into a separate file: the lock file itself is
    opened by every contender, so it cannot carry the holder's details.

    Raises:
        BuildLockedError: another process holds the lock for longer than ``timeout`` seconds.
    """
    from filelock import FileLock, Timeout

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_FILE))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        holder = read_lock_holder(root)
        for _ in range(10):  # the holder writes its details right after taking the lock
            if holder:
                break
            time.sleep(0.1)
            holder = read_lock_holder(root)
        holder = holder or {}
        pid = holder.get("pid")
        who = f"pid {pid}" + (f" on {holder['host']}" if holder.get("host") else "") + (f", started {holder['started']}" if holder.get("started") else "") if pid else "pid unknown"
        stop = f"stop it (kill {pid}) and " if pid else ""
        raise BuildLockedError(
            f"another build of index {str(root)!r} is running ({who}); wait for it to finish, or {stop}run the build again "
            f"(raise indexing.lock_timeout to wait automatically)",
            int(pid) if isinstance(pid, int) else None,
        ) from None
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = root / f"{OWNER_FILE}.{os.getpid()}"
        try:
            tmp.write_text(json.dumps(owner), encoding="utf-8")
            os.replace(tmp, root / OWNER_FILE)
        except OSError:
            # The holder's details only make a contender's message nicer; the lock itself holds.
            # On a full disk, leave no half-written file: the build reports the disk when it writes.
            tmp.unlink(missing_ok=True)
        yield
    finally:
        try:
            (root / OWNER_FILE).unlink(missing_ok=True)
        finally:
            lock.release()


# -- near-duplicate signatures -------------------------------------------------------

_WORDS = re.compile(r"\w+")


def _shingles(text: str) -> set[bytes]:
    words = _WORDS.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8") for i in range(len(words) - SHINGLE_WORDS + 1)}


_TEMPLATE: Any = None


def _template() -> Any:
    """One MinHash whose permutations every signature shares (creating them costs more than hashing)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        from datasketch import MinHash

        _TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED)
    return _TEMPLATE


def minhash_signature(text: str) -> np.ndarray | None:
    """MinHash of ``text``'s word 3-shingles (``NUM_PERM`` uint32 values); None for text without words."""
    from datasketch import MinHash

    shingles = _shingles(text)
    if not shingles:
        return None
    t = _template()
    m = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=t.permutations, scheme=t.scheme)
    m.update_batch(list(shingles))
    return np.asarray(m.hashvalues).copy()


def find_near_duplicates(order: Sequence[str], signatures: dict[str, np.ndarray], threshold: float,
                         show_progress: bool = False) -> dict[str, tuple[str, float]]:
    """Map each key of ``order`` that nearly duplicates an earlier key to ``(earlier, similarity)``.

    Candidates come from MinHash LSH; a pair counts when the estimated Jaccard similarity is
    at least ``threshold``. Only earlier keys that are not themselves near-duplicates are
    compared against, so a chain of small edits is reported against its first version.
    """
    from datasketch import LeanMinHash, MinHashLSH
    from tqdm.auto import tqdm

    if len(order) < 2:
        return {}
    scheme = str(_template().scheme)
    # LSH only proposes candidates; a lower bar than the threshold misses fewer true pairs,
    # and each candidate is then checked against the threshold itself.
    lsh = MinHashLSH(threshold=max(0.1, min(threshold - 0.1, 0.9)), num_perm=NUM_PERM)
    found: dict[str, tuple[str, float]] = {}
    position = {k: i for i, k in enumerate(order)}
    for key in tqdm(order, desc="Near-duplicates: comparing", unit="doc", disable=not show_progress, delay=0.5):
        sig = signatures.get(key)
        if sig is None:
            continue
        m = LeanMinHash(seed=_SEED, hashvalues=sig, scheme=scheme)
        best: tuple[str, float] | None = None
        for other in lsh.query(m):
            sim = float(np.mean(signatures[other] == sig))
            if sim >= threshold and (best is None or sim > best[1] or (sim == best[1] and position[other] < position[best[0]])):
                best = (other, sim)
        if best is not None:
            found[key] = best
        else:
            lsh.insert(key, m)
    return found


# -- the build -----------------------------------------------------------------------


def _meta(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "source": doc.source, "title": doc.title, "date": doc.date, "url": doc.url, "content_hash": doc.content_hash, "chars": len(doc.text)}


def _same(entry: dict[str, Any], doc: Document) -> bool:
    return all(entry.get(k) == v for k, v in _meta(doc).items())


def _text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def _settings_difference(manifest: dict[str, Any], embedder: str, chunker: dict[str, Any]) -> str | None:
    """Why an index cannot be updated in place with these settings, or None when it can."""
    from .store import FORMAT_VERSION

    if manifest.get("format_version") != FORMAT_VERSION:
        return f"the index format changed (version {manifest.get('format_version')} -> {FORMAT_VERSION})"
    built_with = (manifest.get("embedder") or {}).get("name")
    if built_with != embedder:
        return f"the embedder changed ({built_with!r} -> {embedder!r}); vectors of two embedders are never mixed"
    old = manifest.get("chunker") or {}
    if old != chunker:
        diffs = [f"{k} {old.get(k)!r} -> {chunker.get(k)!r}" for k in sorted(set(old) | set(chunker)) if old.get(k) != chunker.get(k)]
        return "the chunker settings changed (" + ", ".join(diffs) + ")"
    return None


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
        index: the FAISS index type and its recall target (rag/ann.py); a change takes
            effect at the next build, re-using every stored vector.

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
    ) -> None:
        self.store = IndexStore(root)
        cfg = index or IndexConfig()
        self.index_settings = {"type": cfg.type, "recall_target": cfg.recall_target, "pq_bytes": cfg.pq_bytes}
        self.embedder = embedder
        self.chunker = chunker
        self.loader = loader or LoaderConfig()
        self.indexing = indexing or IndexingConfig()
        self.on_message = on_message or (lambda _msg: None)

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
                raise disk_full_error(self.store.root, exc, f"rag build {articles_dir} --index {self.store.root}") from exc
            raise

    # -- steps -------------------------------------------------------------------------
    def _previous(self, full: bool) -> tuple[LoadedIndex | None, str]:
        """The current generation to update from (None for a full build) and why not."""
        if full:
            return None, "--full was requested" if self.store.exists() else ""
        if not self.store.exists():
            return None, ""
        try:
            manifest = self.store.read_manifest()
        except IndexCorruptError as exc:
            reason = f"the previous index is unreadable ({exc})"
            self.on_message(f"note: {reason}; rebuilding everything")
            return None, reason
        why = _settings_difference(manifest, self.embedder.name, self.chunker.settings)
        if why is not None:
            if self.indexing.on_settings_change == "refuse":
                raise IndexMismatchError(f"cannot update index {str(self.store.root)!r}: {why}. Pass --full to rebuild it from scratch "
                                         f"(or set indexing.on_settings_change: rebuild)")
            self.on_message(f"note: {why}; rebuilding all articles")
            return None, why
        try:
            return self.store.load(), ""
        except (IndexCorruptError, IndexMismatchError) as exc:
            reason = f"the previous index is unreadable ({exc})"
            self.on_message(f"note: {reason}; rebuilding everything")
            return None, reason

    def _build(self, folder: Path, full: bool, show_progress: bool, t0: float) -> BuildSummary:
        result = load_documents(folder, max_file_mb=self.loader.max_file_mb, extensions=self.loader.extensions, show_progress=show_progress)
        if not result.documents:
            why = "; ".join(f"{s.source}: {s.reason}" for s in result.skipped[:5])
            raise BuildError(f"no readable articles in {str(folder)!r}" + (f" (skipped: {why})" if why else "")
                             + "; add .txt, .md, .html, .json, .jsonl or .pdf files. The index was left as it was")
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

    def _update(self, folder: Path, docs: list[Document], skipped: list[SkippedFile], prev: LoadedIndex | None, reason: str,
                show_progress: bool, t0: float) -> BuildSummary:
        old = prev.manifest if prev is not None else {}
        old_docs: dict[str, dict[str, Any]] = {e["source"]: e for e in old.get("documents", [])}
        old_dups: dict[str, dict[str, Any]] = {e["source"]: e for e in old.get("duplicates", [])}
        old_all = {**old_dups, **old_docs}

        # 1. Exact duplicates: one canonical document per content hash. The one already
        #    indexed stays canonical, so adding a copy never moves rows.
        by_hash: dict[str, list[Document]] = {}
        for d in docs:
            by_hash.setdefault(d.content_hash, []).append(d)
        canonical: list[Document] = []
        duplicates: list[tuple[Document, Document]] = []
        for group in by_hash.values():
            group = sorted(group, key=lambda d: (d.source not in old_docs, d.source))
            canonical.append(group[0])
            duplicates += [(d, group[0]) for d in group[1:]]
        canonical.sort(key=lambda d: d.source)

        # 2. Near-duplicates among the canonical documents; documents already indexed come
        #    first, so a new syndicated copy is the one reported (and dropped, if so set).
        from tqdm.auto import tqdm

        old_sigs = _read_signatures(prev.path) if prev is not None else {}
        signatures: dict[str, np.ndarray] = {}
        for d in tqdm(canonical, desc="Near-duplicates: hashing", unit="doc", disable=not show_progress, delay=0.5):
            sig = old_sigs.get(d.content_hash)
            if sig is None:
                sig = minhash_signature(d.text)
            if sig is not None:
                signatures[d.content_hash] = sig
        order = sorted(canonical, key=lambda d: (d.source not in old_docs, d.source))
        by_chash = {d.content_hash: d for d in canonical}
        near = find_near_duplicates([d.content_hash for d in order], signatures, self.indexing.near_duplicate_threshold, show_progress)
        keep_near = self.indexing.near_duplicates == "keep"
        near_list = [NearDuplicate(by_chash[h].source, by_chash[other].source, sim, keep_near) for h, (other, sim) in near.items()]
        near_list.sort(key=lambda n: n.source)
        if not keep_near:
            dropped = {n.source for n in near_list}
            for n in near_list:
                skipped.append(SkippedFile(n.source, f"near-duplicate of {n.similar_to} (similarity {n.similarity:.2f}); "
                                                     f"set indexing.near_duplicates: keep to index it"))
            for d, c in duplicates:
                if c.source in dropped:
                    skipped.append(SkippedFile(d.source, f"copy of {c.source}, a dropped near-duplicate"))
            canonical = [d for d in canonical if d.source not in dropped]
            duplicates = [(d, c) for d, c in duplicates if c.source not in dropped]
        skipped.sort(key=lambda s: s.source)

        # 3. What changed, over every document of the folder (copies included).
        new_all: dict[str, Document] = {d.source: d for d in canonical}
        new_all.update({d.source: d for d, _ in duplicates})
        added = sorted(s for s in new_all if s not in old_all)
        removed = sorted(s for s in old_all if s not in new_all)
        updated = sorted(s for s in new_all if s in old_all and not _same(old_all[s], new_all[s]))
        unchanged = sorted(s for s in new_all if s in old_all and _same(old_all[s], new_all[s]))
        removed_by_hash: dict[str, list[str]] = {}
        for s in removed:
            removed_by_hash.setdefault(old_all[s].get("content_hash", ""), []).append(s)
        for names in removed_by_hash.values():
            names.reverse()  # pop() from the end takes them in sorted order without quadratic pop(0)
        renamed: list[tuple[str, str]] = []
        for s in added:
            candidates = removed_by_hash.get(new_all[s].content_hash)
            if candidates:
                renamed.append((candidates.pop(), s))
        if renamed:  # sets: list.remove per rename is quadratic when a whole folder moves
            moved_to, moved_from = {b for _, b in renamed}, {a for a, _ in renamed}
            added = [s for s in added if s not in moved_to]
            removed = [s for s in removed if s not in moved_from]

        # 4. Chunk rows: canonical documents unchanged in place keep theirs; the rest are
        #    chunked, reusing stored vectors for chunk texts already embedded.
        keep_ids = {old_docs[d.source]["id"] for d in canonical if d.source in old_docs and _same(old_docs[d.source], d)}
        to_write = [d for d in canonical if not (d.source in old_docs and _same(old_docs[d.source], d))]
        kept_rows: list[int] = []
        kept_chunks: list[Chunk] = []
        reuse: dict[bytes, int] = {}
        chunk_counts: dict[str, int] = {}
        if prev is not None:
            for row, chunk in prev.iter_rows():
                if chunk.doc_id in keep_ids:
                    kept_rows.append(row)
                    kept_chunks.append(chunk)
                    chunk_counts[chunk.doc_id] = chunk_counts.get(chunk.doc_id, 0) + 1
                if to_write:
                    reuse.setdefault(_text_key(chunk.text), row)
        dropped_rows = (prev.size if prev is not None else 0) - len(kept_rows)
        new_chunks = [c for d in tqdm(to_write, desc="Chunking", unit="doc", disable=not show_progress, delay=0.5)
                      for c in self.chunker.split(d)]
        for c in new_chunks:
            chunk_counts[c.doc_id] = chunk_counts.get(c.doc_id, 0) + 1

        # Nothing to write: leave the generation as it is (readers keep it, nothing is churned).
        dup_records = [{**_meta(d), "duplicate_of": c.source} for d, c in sorted(duplicates, key=lambda p: p[0].source)]
        near_records = [{"source": n.source, "similar_to": n.similar_to, "similarity": round(n.similarity, 4), "kept": n.kept} for n in near_list]
        if prev is not None and not new_chunks and dropped_rows == 0 and not to_write and old.get("duplicates", []) == dup_records \
                and old.get("near_duplicates", []) == near_records and len(old_docs) == len(canonical) \
                and {k: v for k, v in (old.get("index") or {}).items() if k != "built"} == self.index_settings:
            return self._summary(len(canonical), prev.size, skipped, t0, 0.0, added, updated, removed, unchanged, renamed, duplicates,
                                 near_list, 0, 0, "unchanged", reason)

        # 5. Vectors: reused ones come from the previous generation's FAISS file.
        old_ids, old_vectors = np.zeros(0, np.int64), None
        if prev is not None:
            try:
                old_ids, old_vectors = prev.rows_and_vectors()
            except RuntimeError as exc:  # an index type that cannot reconstruct its vectors
                raise _VectorsUnavailable(str(exc).strip().splitlines()[-1]) from exc
        position = {int(r): i for i, r in enumerate(old_ids)}
        embed_texts: dict[bytes, str] = {}
        for c in new_chunks:
            key = _text_key(c.text)
            if key not in reuse:
                embed_texts.setdefault(key, c.text)
        t_embed = time.perf_counter()
        embedded = self.embedder.encode(list(embed_texts.values()), show_progress=show_progress) if embed_texts else None
        embed_seconds = time.perf_counter() - t_embed if embed_texts else 0.0
        dim = int(embedded.shape[1]) if embedded is not None else int((old.get("embedder") or {}).get("dimension") or self.embedder.dimension)
        if prev is not None and embedded is not None and dim != int(old["embedder"]["dimension"]):
            raise BuildError(f"embedder {self.embedder.name!r} now gives {dim}-dimensional vectors but the index holds "
                             f"{old['embedder']['dimension']}-dimensional ones; rebuild with: rag build {folder} --full")
        fresh = {key: i for i, key in enumerate(embed_texts)}
        new_vectors = np.zeros((len(new_chunks), dim), dtype=np.float32)
        reused = 0
        for i, c in enumerate(new_chunks):
            key = _text_key(c.text)
            if key in fresh:
                new_vectors[i] = embedded[fresh[key]]
            else:
                new_vectors[i] = old_vectors[position[reuse[key]]]
                reused += 1
        kept_vectors = old_vectors[[position[r] for r in kept_rows]] if kept_rows else np.zeros((0, dim), dtype=np.float32)
        start = int(old_ids.max()) + 1 if len(old_ids) else 0
        rows = np.concatenate([np.asarray(kept_rows, dtype=np.int64), np.arange(start, start + len(new_chunks), dtype=np.int64)])
        chunks = kept_chunks + new_chunks
        vectors = np.concatenate([kept_vectors, new_vectors]) if len(chunks) else np.zeros((0, dim), dtype=np.float32)

        # 6. The manifest and the new generation.
        dups_of: dict[str, list[str]] = {}
        for d, c in duplicates:
            dups_of.setdefault(c.source, []).append(d.source)
        mode = "full" if prev is None else "incremental"
        manifest = {
            "embedder": {"name": self.embedder.name, "dimension": dim, "normalized": True},
            "chunker": self.chunker.settings,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "articles_dir": str(folder.resolve()),
            "documents": [{**_meta(d), "chunks": chunk_counts.get(d.id, 0), **({"duplicates": sorted(dups_of[d.source])} if d.source in dups_of else {})}
                          for d in canonical],
            "duplicates": dup_records,
            "near_duplicates": near_records,
            "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
            "indexing": {"near_duplicates": self.indexing.near_duplicates, "near_duplicate_threshold": self.indexing.near_duplicate_threshold},
            "index": self.index_settings,
            "build": {"mode": mode, "reason": reason, "added": len(added), "updated": len(updated), "removed": len(removed),
                      "renamed": len(renamed), "unchanged": len(unchanged), "embedded_chunks": len(embed_texts), "reused_chunks": reused},
        }
        sig_writer = _signature_writer({d.content_hash: signatures[d.content_hash] for d in canonical if d.content_hash in signatures})
        write_generation(self.store.root, vectors, chunks, manifest, rows, writers=[sig_writer], show_progress=show_progress)
        return self._summary(len(canonical), len(chunks), skipped, t0, embed_seconds, added, updated, removed, unchanged, renamed, duplicates,
                             near_list, len(embed_texts), reused, mode, reason)

    def _summary(self, articles: int, chunks: int, skipped: list[SkippedFile], t0: float, embed_seconds: float, added: list[str],
                 updated: list[str], removed: list[str], unchanged: list[str], renamed: list[tuple[str, str]],
                 duplicates: list[tuple[Document, Document]], near: list[NearDuplicate], embedded: int, reused: int, mode: str,
                 reason: str) -> BuildSummary:
        return BuildSummary(
            index_path=str(self.store.root),
            articles=articles,
            chunks=chunks,
            skipped=skipped,
            seconds=time.perf_counter() - t0,
            embed_seconds=embed_seconds,
            added=len(added),
            updated=len(updated),
            removed=len(removed),
            unchanged=len(unchanged),
            renamed=len(renamed),
            duplicates=sorted((d.source, c.source) for d, c in duplicates),
            near_duplicates=near,
            embedded_chunks=embedded,
            reused_chunks=reused,
            mode=mode,
            reason=reason,
            changes={"added": added, "updated": updated, "removed": removed, "renamed": [f"{a} -> {b}" for a, b in renamed]},
        )


def _signature_writer(signatures: dict[str, np.ndarray]):
    def write(tmp: Path, _chunks: Sequence[Chunk], _rows: np.ndarray) -> None:
        keys = sorted(signatures)
        values = np.stack([signatures[k] for k in keys]) if keys else np.zeros((0, NUM_PERM), dtype=np.uint32)
        with open(tmp / SIGNATURES, "wb") as fh:
            np.savez(fh, hashes=np.asarray(keys, dtype="U64"), values=values)

    return write


def _read_signatures(path: Path) -> dict[str, np.ndarray]:
    """Stored MinHash signatures by content hash ({} when absent or unreadable: they are recomputed)."""
    try:
        with np.load(path / SIGNATURES) as data:
            return {str(h): v for h, v in zip(data["hashes"], data["values"])}
    except (OSError, ValueError, KeyError):
        return {}


# -- removing one article ------------------------------------------------------------


@dataclass(frozen=True)
class RemoveSummary:
    """What ``rag index remove`` did."""

    index_path: str
    removed: list[str]
    promoted: list[tuple[str, str]]
    chunks_removed: int
    articles: int
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"index_path": self.index_path, "removed": self.removed, "promoted": [{"from": a, "to": b} for a, b in self.promoted],
                "chunks_removed": self.chunks_removed, "articles": self.articles, "chunks": self.chunks}


def _source_for(path: str, manifest: dict[str, Any]) -> str:
    """``path`` as a source of the index: relative to the articles folder, with ``/`` separators.

    A path to an existing file (or any absolute path) is taken relative to the folder the
    index was built from; anything else is taken as a source name as listed by the index.
    """
    p = Path(path)
    base = manifest.get("articles_dir")
    if base and (p.is_absolute() or p.exists()):
        for candidate in (p.absolute(), p.resolve()):
            try:
                return candidate.relative_to(Path(base)).as_posix()
            except ValueError:
                continue
    return p.as_posix()


def remove_article(root: str | Path, path: str, *, lock_timeout: float = 0.0) -> RemoveSummary:
    """Drop one article (every record of a JSONL file, for a file) from the index at ``root``.

    The article's file is not touched; the next ``rag build`` adds it back if it is still
    in the folder. An exact duplicate of a removed article takes its place, reusing its
    vectors.

    Args:
        root: the index folder.
        path: the article as listed in the index (relative to the articles folder), or a
            path to the file.

    Raises:
        IndexNotFoundError: nothing built at ``root``.
        KeyError: no such article in the index (the message suggests close names).
        BuildLockedError: a build of this index is running.
        DiskFullError: the disk filled up while writing (the index stays as it was).
    """
    try:
        return _remove_article(IndexStore(root), path, lock_timeout)
    except (BuildError, KeyError):
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(Path(root), exc, f"rag index remove {path} --index {root}") from exc
        raise


def _remove_article(store: IndexStore, path: str, lock_timeout: float) -> RemoveSummary:
    with build_lock(store.root, lock_timeout):
        manifest = store.read_manifest()
        source = _source_for(path, manifest)

        def matches(s: str) -> bool:
            return s == source or s.startswith(source + "#")

        docs = manifest.get("documents", [])
        dups = manifest.get("duplicates", [])
        gone = [e for e in docs if matches(e["source"])]
        gone_dups = [e for e in dups if matches(e["source"])]
        if not gone and not gone_dups:
            names = [e["source"] for e in docs] + [e["source"] for e in dups]
            close = difflib.get_close_matches(source, names, n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see the sources with: rag index info --json"
            raise KeyError(f"no article {source!r} in index {str(store.root)!r}{hint}")
        index = store.load()
        try:
            ids, vectors = index.rows_and_vectors()
            by_row = dict(index.iter_rows())
        finally:
            index.close()
        gone_sources = {e["source"] for e in gone} | {e["source"] for e in gone_dups}
        remaining_dups = [e for e in dups if e["source"] not in gone_sources]
        new_docs = [e for e in docs if e["source"] not in gone_sources]
        promoted: list[tuple[str, str]] = []
        heirs: dict[str, dict[str, Any]] = {}  # old doc id -> promoted duplicate's record
        for e in gone:
            heir = next((d for d in remaining_dups if d.get("duplicate_of") == e["source"]), None)
            if heir is None:
                continue
            remaining_dups.remove(heir)
            others = sorted(d["source"] for d in remaining_dups if d.get("duplicate_of") == e["source"])
            for d in remaining_dups:
                if d.get("duplicate_of") == e["source"]:
                    d["duplicate_of"] = heir["source"]
            record = {k: heir[k] for k in ("id", "source", "title", "date", "url", "content_hash", "chars")}
            record["id"] = document_id(heir["source"], heir["content_hash"])
            new_docs.append({**record, "chunks": e.get("chunks", 0), **({"duplicates": others} if others else {})})
            heirs[e["id"]] = record
            promoted.append((e["source"], heir["source"]))
        for e in new_docs:
            if "duplicates" in e:
                e["duplicates"] = [s for s in e["duplicates"] if s not in gone_sources]
                if not e["duplicates"]:
                    del e["duplicates"]
        new_docs.sort(key=lambda e: e["source"])
        gone_ids = {e["id"] for e in gone} - set(heirs)
        position = {int(r): i for i, r in enumerate(ids)}
        rows: list[int] = []
        chunks: list[Chunk] = []
        for row in sorted(by_row):
            c = by_row[row]
            if c.doc_id in gone_ids:
                continue
            heir = heirs.get(c.doc_id)
            if heir is not None:
                # Same text at another name: same vector, records re-pointed (ids as rag.chunking makes them).
                c = replace(c, id=chunk_id(heir["id"], c.start, c.end), doc_id=heir["id"], title=heir["title"], source=heir["source"], url=heir["url"], date=heir["date"])
            rows.append(row)
            chunks.append(c)
        dim = int(manifest["embedder"]["dimension"])
        kept_vectors = vectors[[position[r] for r in rows]] if rows else np.zeros((0, dim), dtype=np.float32)
        new_manifest = {
            **{k: v for k, v in manifest.items() if k not in ("format_version", "chunks", "generation")},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "documents": new_docs,
            "duplicates": remaining_dups,
            "near_duplicates": [n for n in manifest.get("near_duplicates", []) if n["source"] not in gone_sources and n["similar_to"] not in gone_sources],
            "build": {"mode": "remove", "removed": sorted(gone_sources), "promoted": [list(p) for p in promoted]},
        }
        write_generation(store.root, kept_vectors, chunks, new_manifest, np.asarray(rows, dtype=np.int64),
                         writers=[_signature_writer(_read_signatures(store.root / manifest["generation"]))])
        return RemoveSummary(str(store.root), sorted(gone_sources), promoted, len(by_row) - len(chunks), len(new_docs), len(chunks))

