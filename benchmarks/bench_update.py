"""Incremental update cost against a full build, over a copy of a corpus.

Usage:
    python -m benchmarks.bench_update [ARTICLES_DIR] [--rounds N] [--no-cli]

Copies ARTICLES_DIR (default ../shared/corpora/squad-articles) to a temporary folder (the
original is never touched), builds the index from scratch once, then N times edits one
article, adds one and deletes one and times the update. Prints the full build time, the
median update time, and their ratio (the target is under 5%). The embedder is loaded before
timing in-process builds; the ``cli`` figures time a whole ``rag build`` process (Python
start and model load included) for one more round of edits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from rag import RAG, Config  # noqa: E402


def _sentences(text: str) -> list[str]:
    return [s.strip() + "." for s in text.replace("\n", " ").split(". ") if s.strip()]


def change_folder(folder: Path, round_no: int) -> dict[str, str]:
    """Edit one article, add one and delete one; return their names."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and not p.name.startswith("bench-new-"))
    edit, delete = files[(7 * round_no + 3) % len(files)], files[(11 * round_no + 5) % len(files)]
    if delete == edit:
        delete = files[(11 * round_no + 6) % len(files)]
    a, b = files[(13 * round_no + 17) % len(files)], files[(19 * round_no + 23) % len(files)]
    text = edit.read_text(encoding="utf-8")
    middle = len(text) // 2
    edit.write_text(
        text[:middle] + f" (Corrected in round {round_no}: the figures above were revised.) " + text[middle:],
        encoding="utf-8",
    )
    # A new article with text no index chunk has: sentences of two articles interleaved.
    sa, sb = _sentences(a.read_text(encoding="utf-8")), _sentences(b.read_text(encoding="utf-8"))
    mixed = [s for pair in zip(sa, sb) for s in pair]
    new = folder / f"bench-new-{round_no}.txt"
    new.write_text(f"Bench article {round_no}\n\n" + " ".join(mixed), encoding="utf-8")
    delete.unlink()
    return {"edited": edit.name, "added": new.name, "deleted": delete.name}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("articles", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "squad-articles"))
    ap.add_argument("--rounds", type=int, default=3, help="edit/add/delete rounds timed in-process (median reported)")
    ap.add_argument("--no-cli", action="store_true", help="skip the whole-process `rag build` round")
    args = ap.parse_args()
    source = Path(args.articles)
    if not source.is_dir():
        print(f"articles folder {source} not found; pass one (e.g. ../shared/corpora/squad-articles)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        shutil.copytree(source, folder)
        index = Path(tmp) / "index"
        rag = RAG(Config.load(None, {"index.path": str(index)}))
        t0 = time.perf_counter()
        rag.embedder.warm_up()
        load_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        full = rag.build(folder, show_progress=True)
        full_s = time.perf_counter() - t0
        print(f"full build: {full.articles} articles, {full.chunks} chunks in {full_s:.1f} s", file=sys.stderr)

        t0 = time.perf_counter()
        noop = rag.build(folder)
        noop_s = time.perf_counter() - t0

        updates: list[float] = []
        rounds = []
        for r in range(args.rounds):
            names = change_folder(folder, r)
            t0 = time.perf_counter()
            s = rag.build(folder)
            took = time.perf_counter() - t0
            updates.append(took)
            ok = (s.added, s.updated, s.removed) == (1, 1, 1)
            hit = rag.retrieve(" ".join(_sentences((folder / names["added"]).read_text(encoding="utf-8"))[1:3]), 3)
            found = any(p.chunk.source == names["added"] for p in hit)
            rounds.append(
                {
                    **names,
                    "seconds": round(took, 2),
                    "embedded_chunks": s.embedded_chunks,
                    "counts_ok": ok,
                    "new_article_retrieved": found,
                }
            )
            print(
                f"update {r}: {took:.2f} s, {s.embedded_chunks} chunks embedded, added/updated/removed = {s.added}/{s.updated}/{s.removed}",
                file=sys.stderr,
            )

        cli = None
        if not args.no_cli:
            names = change_folder(folder, args.rounds)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "rag.cli", "build", str(folder), "--index", str(index), "--json", "--quiet"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
            )
            cli_s = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            out = json.loads(proc.stdout)
            cli = {
                **names,
                "seconds": round(cli_s, 2),
                "embedded_chunks": out["embedded_chunks"],
                "ratio_to_full_build_with_model_load": round(cli_s / (full_s + load_s), 4),
            }

    median = statistics.median(updates)
    result = {
        "corpus": str(source),
        "articles": full.articles,
        "chunks": full.chunks,
        "model_load_seconds": round(load_s, 1),
        "full_build_seconds": round(full_s, 1),
        "full_build_chunks_per_s": round(full.chunks / full_s, 1),
        "noop_rebuild_seconds": round(noop_s, 2),
        "update_seconds_median": round(median, 2),
        "update_seconds_all": [round(u, 2) for u in updates],
        "update_over_full": round(median / full_s, 4),
        "under_5_percent": median / full_s < 0.05,
        "rounds": rounds,
        "cli_round": cli,
    }
    print(json.dumps(result, indent=2))
    return 0 if result["under_5_percent"] else 1


if __name__ == "__main__":
    sys.exit(main())
