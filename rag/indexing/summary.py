"""What a build found and did: the plan of changes and the summaries shown to people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import Document, NearDuplicate, SkippedFile


@dataclass(frozen=True)
class Changes:
    """How the folder differs from the previous index, by source (copies included)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "renamed": [f"{a} -> {b}" for a, b in self.renamed],
        }


@dataclass(frozen=True)
class Plan:
    """What a build will index: one canonical document per text, its copies, near-duplicates,
    skipped files and the changes against the previous index."""

    canonical: list[Document]
    duplicates: list[tuple[Document, Document]]  # (copy, the canonical document it copies)
    near: list[NearDuplicate]
    skipped: list[SkippedFile]
    changes: Changes


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

    @classmethod
    def of(
        cls,
        index_path: str,
        plan: Plan,
        chunks: int,
        seconds: float,
        *,
        embed_seconds: float = 0.0,
        embedded: int = 0,
        reused: int = 0,
        mode: str = "full",
        reason: str = "",
    ) -> BuildSummary:
        """The summary of a build that carried out ``plan`` and left ``chunks`` chunks."""
        c = plan.changes
        return cls(
            index_path=index_path,
            articles=len(plan.canonical),
            chunks=chunks,
            skipped=plan.skipped,
            seconds=seconds,
            embed_seconds=embed_seconds,
            added=len(c.added),
            updated=len(c.updated),
            removed=len(c.removed),
            unchanged=len(c.unchanged),
            renamed=len(c.renamed),
            duplicates=sorted((d.source, o.source) for d, o in plan.duplicates),
            near_duplicates=plan.near,
            embedded_chunks=embedded,
            reused_chunks=reused,
            mode=mode,
            reason=reason,
            changes=c.to_dict(),
        )

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
            "near_duplicates": [
                {"source": n.source, "similar_to": n.similar_to, "similarity": round(n.similarity, 3), "kept": n.kept}
                for n in self.near_duplicates
            ],
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
            lines += [
                f"  {n.source} ~ {n.similar_to} (similarity {n.similarity:.2f}, {'kept' if n.kept else 'dropped'})"
                for n in self.near_duplicates
            ]
        if self.skipped:
            lines.append(f"Skipped {self.skipped_count} file(s):")
            lines += [f"  {s.source}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


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
        return {
            "index_path": self.index_path,
            "removed": self.removed,
            "promoted": [{"from": a, "to": b} for a, b in self.promoted],
            "chunks_removed": self.chunks_removed,
            "articles": self.articles,
            "chunks": self.chunks,
        }
