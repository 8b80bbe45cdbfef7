"""Shared fixtures: tiny article folders, fakes, and the real packaged models (loaded once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The checkout too, so tests import eval/ and benchmarks/ as packages (as `python -m eval.run_all` does).
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from fakes import FakeEmbedder, FakeGenerator  # noqa: E402

ARTICLES = {
    "r1.md": "# DeepSeek releases the R1 reasoning model\nDate: 2025-01-20\nSource: Test Tech Review\n\n"
    "The Chinese company DeepSeek released DeepSeek-R1 on 20 January 2025 under the MIT licence. "
    "The reasoning model was trained with large-scale reinforcement learning. "
    "DeepSeek is based in Hangzhou and is funded by the hedge fund High-Flyer.\n",
    "markets/nvidia.txt": "Nvidia shares plunge after the DeepSeek launch\nDate: 2025-01-27\nSource: Test Markets Daily\n\n"
    "On 27 January 2025 the share price of Nvidia fell about 17 percent, wiping close to 600 billion dollars "
    "from its market value. It was the largest one-day loss in value for any company in US history.\n",
    "bread.html": "<html><head><title>How to bake sourdough bread</title><script>var secret='SCRIPT_TEXT';</script>"
    "<style>.x{color:red}</style></head><body><nav><a href='/'>NAV_TEXT home</a></nav><h1>Sourdough</h1>"
    "<p>Sourdough bread needs a starter of flour and water that ferments for several days.</p>"
    "<p>Bake the loaf at 230 degrees Celsius for 40 minutes.</p></body></html>",
}


def write_articles(folder: Path, articles: dict[str, str] | None = None) -> Path:
    """Write ``articles`` (path -> text) under ``folder`` and return it."""
    for name, text in (articles or ARTICLES).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    """A small folder of three articles in three formats."""
    return write_articles(tmp_path / "articles")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture(scope="session")
def real_embedder():
    """The packaged MiniLM embedder, loaded once per test run."""
    from rag import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def real_generator(tmp_path_factory):
    """The packaged SmolLM2 GGUF through transformers, loaded once per test run."""
    from rag import TransformersGenerator

    gen = TransformersGenerator("smollm2")
    gen.warm_up()
    return gen


@pytest.fixture
def shared_dir() -> Path:
    """``../shared``; tests that need it skip with a reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (it sits beside the repository in CI and dev machines)")
    return SHARED


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A small real PDF (fpdf2), one page per string, for upload and page-number tests."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
