"""Pathological inputs shared by ``tests/test_pathological.py`` and ``benchmarks/bench_pathological.py``.

:func:`one_line` and :func:`tiny_folder` make the inputs; :data:`RUNNER` is a ``python -c``
program that runs ``rag`` with the tests' FakeEmbedder in place of MiniLM and reports its peak
memory; start it with :func:`runner_env`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILLER = (
    "orchard garden quarry mill canal museum library railway factory engine harvest council festival market river "
    "bridge lantern meadow village bakery"
).split()


def one_line(n_chars: int, kind: str, seed: int = 0) -> str:
    """``n_chars`` of text on one line: words without punctuation, one unbroken "word", or digits."""
    rng = random.Random(seed)
    if kind == "words":
        words, size = [], 0
        while size < n_chars:
            w = rng.choice(FILLER)
            words.append(w)
            size += len(w) + 1
        return " ".join(words)[:n_chars].rstrip()
    if kind == "no-spaces":
        return ("abcdefghijklmnopqrstuvwxyz" * (n_chars // 26 + 1))[:n_chars]
    return "".join(rng.choice("0123456789") for _ in range(n_chars))


def tiny_folder(root: Path, n: int) -> tuple[int, int]:
    """``n`` one-sentence files in folders of 1,000; a tenth are copies of 10 texts. Returns (unique, copies)."""
    copies = n // 10 if n >= 100 else 0
    for i in range(n):
        sub = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        if i < n - copies:
            text = f"Note {i}\n\nThe harbour log entry number {i} records ferry crossing {i * 7} at pier {i % 13}.\n"
        else:
            text = f"Bulletin {i % 10}\n\nThe port bulletin number {i % 10} repeats the storm warning for the coast.\n"
        (sub / f"n{i:05d}.txt").write_text(text, encoding="utf-8")
    return n - copies, copies


# Peak RSS from /proc/self/status VmHWM, the high-water mark of this process's own memory.
# Not getrusage's ru_maxrss: Linux carries the parent's high-water mark across fork/vfork
# + exec, so under a full pytest run (models loaded, ~2.5 GB) it reported the parent's size.
RUNNER = """
import sys
from fakes import FakeEmbedder  # tests/ is on the child's PYTHONPATH (runner_env)
import rag.embedding as embedding
embedding.BACKENDS["torch"] = lambda cfg: FakeEmbedder(name=cfg.model)
from rag.cli import main
code = main(sys.argv[1:])
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"peak_rss_kb={peak_kb}", file=sys.stderr)
sys.exit(code)
"""


def runner_env(**extra: str) -> dict[str, str]:
    """The environment :data:`RUNNER` needs: the checkout and tests/ (for ``fakes``) on PYTHONPATH, offline."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}
