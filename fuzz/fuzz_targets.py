"""atheris fuzz targets for the article loaders and the citation parser.

Usage:
    python fuzz/fuzz_targets.py loaders -max_total_time=30 -rss_limit_mb=6144
    python fuzz/fuzz_targets.py citations -atheris_runs=100000

A target fails (and atheris prints the input) when anything other than the documented
error escapes: ``UnreadableFile`` for loaders; nothing at all for the citation parser.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from rag.records import Chunk
    from rag.answering.citations import attribute_citations, parse_markers, resolve_citations, strip_invalid_markers
    from rag.documents import UnreadableFile, load_file
    from rag.answering.prompting import quote_passage_text
    from rag.records import Passage

SUFFIXES = [".txt", ".md", ".html", ".json", ".jsonl", ".pdf"]
_TMP = Path(tempfile.mkdtemp(prefix="rag-fuzz-"))
_PASSAGES = [
    Passage(n=i, chunk=Chunk(id=str(i), doc_id="d", title="t", source="s", text=t, start=0, end=len(t)), score=0.5)
    for i, t in enumerate(["Nvidia fell 17 percent.", "DeepSeek released R1 in January.", "Bread is baked."], start=1)
]


def fuzz_loaders(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    suffix = SUFFIXES[fdp.ConsumeIntInRange(0, len(SUFFIXES) - 1)]
    path = _TMP / f"input{suffix}"
    path.write_bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    try:
        docs = load_file(path, path.name, max_file_mb=1)
    except UnreadableFile:
        return
    for doc in docs:
        assert isinstance(doc.text, str) and doc.text.strip()


def fuzz_citations(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    numbers = parse_markers(text)
    assert all(isinstance(n, int) for n in numbers)
    for c in resolve_citations(text, _PASSAGES):
        assert 1 <= c.n <= len(_PASSAGES)
    assert all(1 <= n <= 3 for n in parse_markers(strip_invalid_markers(text, {1, 2, 3})))
    fixed, added = attribute_citations(text, _PASSAGES)
    assert added <= {1, 2, 3}
    assert "</passage" not in quote_passage_text(text).lower()


TARGETS = {"loaders": fuzz_loaders, "citations": fuzz_citations}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags]", file=sys.stderr)
        sys.exit(2)
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
