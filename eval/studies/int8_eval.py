"""Retrieval quality of the int8 recipes of ``benchmarks/int8_variants.py``, through ``eval/run_all.py``.

Usage:
    python -m eval.studies.int8_eval RECIPE [run_all.py options]

Registers the recipe as embedding backend ``int8x-RECIPE`` (an ``OnnxEmbedder`` running the
recipe's file, named ``all-MiniLM-L6-v2@int8x-RECIPE`` so its indexes are cached apart), writes
a config selecting it and runs ``eval/run_all.py --config`` that config with the other options.

Example:
    python -m eval.studies.int8_eval fused --retrieval-only --retriever hybrid,dense --shared ../shared
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from benchmarks import int8_variants
from eval import run_all

from rag.embedding import BACKENDS, OnnxEmbedder


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    recipe, rest = argv[0], argv[1:]
    fp32 = OnnxEmbedder(variant="onnx").onnx_path()
    path = int8_variants.quantize(fp32, recipe, int8_variants.recipes(fp32)[recipe])
    backend = f"int8x-{recipe}"

    def make(cfg):
        e = OnnxEmbedder(cfg.model, cfg.batch_size, "onnx-int8", cfg.cache_dir)
        e.onnx_path = lambda: path  # type: ignore[method-assign]
        e.name = f"{cfg.model}@{backend}"
        e.backend = e.variant = backend
        return e

    BACKENDS[backend] = make
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(f"embedding:\n  backend: {backend}\nindex:\n  path: /tmp/rag-int8-variants/index-{recipe}\n")
    return run_all.main(["--config", fh.name, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
