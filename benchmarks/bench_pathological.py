"""Pathological inputs: a single multi-megabyte line, a 200 MB file, many tiny files.

Usage:
    python -m benchmarks.bench_pathological [--files 10000,50000] [--repeat 3]

Prints, as medians of --repeat runs:

* chunking one line of 1 MB and 5 MB (words without punctuation, one unbroken word,
  digits): seconds, MB/s, and the 5 MB / 1 MB time ratio (5 means linear);
* loading a folder holding a 200 MB sparse file (skipped by the size limit, never read);
* a full `rag build` subprocess over N tiny files for each N of --files, with FakeEmbedder
  in place of MiniLM (50,000 chunks would take MiniLM ~30 minutes here; everything else is
  the real build): wall seconds, peak RSS, microseconds per file, and the ratio of the
  per-file cost at the largest N to the smallest (1 means linear).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from rag.chunking import Chunker  # noqa: E402
from rag.documents import load_documents, make_document  # noqa: E402
from benchmarks.pathological_inputs import RUNNER, one_line, runner_env, tiny_folder


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_lines(repeat: int) -> None:
    chunker = Chunker()
    chunker.count_tokens("warm up")
    print("Chunking one line (median of %d):" % repeat)
    for kind in ("words", "no-spaces", "digits"):
        row = {}
        for mb in (1, 5):
            doc = make_document(one_line(mb * 10**6, kind), "line", "line.txt")
            row[mb] = median_seconds(lambda: chunker.split(doc), repeat)
        print(
            f"  {kind:10} 1 MB {row[1]:6.2f} s ({1 / row[1]:5.2f} MB/s)   5 MB {row[5]:6.2f} s ({5 / row[5]:5.2f} MB/s)   "
            f"ratio 5MB/1MB {row[5] / row[1]:.1f}"
        )


def bench_huge_file(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with open(folder / "huge.txt", "wb") as fh:
            fh.truncate(200 * 2**20)
        (folder / "ok.txt").write_text("Harbour\n\nThe harbour opened in 1850.", encoding="utf-8")
        seconds = median_seconds(lambda: load_documents(folder), repeat)
        print(
            f"Loading a folder with a 200 MB file: {seconds * 1000:.1f} ms (skipped: {load_documents(folder).skipped[0].reason})"
        )


def bench_tiny_files(counts: list[int]) -> None:
    print("rag build over N tiny files (FakeEmbedder, one run each):")
    per_file = {}
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "articles"
            tiny_folder(folder, n)
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", RUNNER, "build", str(folder), "--index", str(Path(tmp) / "idx"), "--quiet"],
                capture_output=True,
                text=True,
                env=runner_env(),
            )
            seconds = time.perf_counter() - t0
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                raise SystemExit(1)
            peak = int(done.stderr.rsplit("peak_rss_kb=", 1)[1].split()[0]) / 1024
            per_file[n] = seconds / n
            print(f"  {n:>7} files: {seconds:6.1f} s, {per_file[n] * 1e6:5.0f} us/file, peak RSS {peak:5.0f} MB")
    if len(per_file) > 1:
        lo, hi = min(per_file), max(per_file)
        print(f"  per-file cost at {hi} / at {lo}: {per_file[hi] / per_file[lo]:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default="10000,50000", help="comma-separated tiny-file counts (default: 10000,50000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per chunking/loading measurement (default: 3)")
    args = ap.parse_args()
    bench_lines(args.repeat)
    bench_huge_file(args.repeat)
    bench_tiny_files([int(n) for n in args.files.split(",") if n.strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
