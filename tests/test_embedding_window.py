"""The embedding window (rag/embedding/window.py): title and headings give way, the chunk's own words are never cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import FakeEmbedder
from rag import Config, IndexBuilder
from rag.chunking import Chunker
from rag.embedding.window import EmbeddingWindow

# Words of one word piece (and one cl100k token) each.
WORDS = ("harbour", "city", "council", "grain", "ships", "convened")
TITLE = "Zephyrine Tortoise Council Records And The Long History Of Quillbrook Harbour Governance Before The Reforms"


@pytest.fixture(scope="module")
def window() -> EmbeddingWindow:
    window = EmbeddingWindow.of("all-MiniLM-L6-v2")
    assert window is not None and window.size == 256
    return window


def _text_of(window: EmbeddingWindow, pieces: int) -> str:
    """English words ending in "Quillbrook 1847.", exactly ``pieces`` word pieces in all (special tokens not counted)."""
    words: list[str] = []
    tail = "Quillbrook 1847."
    while window.count([" ".join([*words, tail])])[0] - 2 < pieces:
        words.append(WORDS[len(words) % len(WORDS)])
    text = " ".join([*words, tail])
    assert window.count([text])[0] - 2 == pieces  # each of these words is one piece
    return text


def test_short_texts_are_kept_whole(window: EmbeddingWindow) -> None:
    """Guards against cutting a title that fits: the embedded text then equals what BM25 indexes."""
    assert window.fit([(TITLE, "The council met in 1847."), ("", "Untitled text.")]) == [
        f"{TITLE}\nThe council met in 1847.",
        "\nUntitled text.",
    ]


def test_a_text_that_fills_the_window_keeps_no_title(window: EmbeddingWindow) -> None:
    """Guards against the title pushing a full chunk's last words out of the window (issue 29)."""
    text = _text_of(window, 254)  # with [CLS] and [SEP]: the whole window
    assert window.fit([(TITLE, text)]) == ["\n" + text] and window.count(["\n" + text]) == [window.size]


def test_title_is_cut_word_by_word_at_the_edge(window: EmbeddingWindow) -> None:
    """Guards against an off-by-one at the window's edge: the title keeps exactly the words that fit."""
    text = _text_of(window, 240)
    free = window.size - window.count([text])[0]
    [fitted] = window.fit([(TITLE, text)])
    kept = fitted[: -len(text) - 1]
    assert TITLE.startswith(kept) and 0 < len(kept.split()) < len(TITLE.split())
    assert (
        window.count([fitted])[0]
        <= window.size
        < window.count([" ".join(TITLE.split()[: len(kept.split()) + 1]) + "\n" + text])[0]
    )
    assert free > 0


@pytest.mark.slow
def test_the_real_sentence_transformer_reads_every_word_of_the_chunk(window: EmbeddingWindow, real_embedder) -> None:
    """Guards against our count disagreeing with sentence-transformers' own tokenizer at the edge (its truncation would cut the text)."""
    tok = real_embedder.tokenizer
    for pieces in (200, 230, 245, 250):
        text = _text_of(window, pieces)
        [fitted] = window.fit([(TITLE, text)])
        full = tok(fitted, add_special_tokens=True)["input_ids"]
        cut = real_embedder.model.tokenize([fitted])["input_ids"][0].tolist()  # what the model reads (truncated to 256)
        assert len(full) <= real_embedder.max_seq_length == window.size and cut == full, pieces
        assert tok.decode(cut[-6:-1]).endswith("quillbrook 1847."), pieces  # the chunk's last words are read
    # Without the fit, the same chunk behind its title loses its last words: the test can fail.
    text = _text_of(window, 250)
    cut = real_embedder.model.tokenize([f"{TITLE}\n{text}"])["input_ids"][0].tolist()
    assert not tok.decode(cut[-6:-1]).endswith("quillbrook 1847.")


class _Recording(FakeEmbedder):
    """A fake with the real model's name (so the real window applies), recording what it encodes."""

    def __init__(self) -> None:
        super().__init__(name="all-MiniLM-L6-v2")
        self.texts: list[str] = []

    def encode(self, texts, show_progress: bool = False):
        self.texts.extend(texts)
        return super().encode(texts, show_progress)


def test_the_build_embeds_fitted_texts_and_indexes_the_whole_title(tmp_path: Path, window: EmbeddingWindow) -> None:
    """Guards against a build embedding texts over the window (the chunk cut) or BM25 losing the title words."""
    # One word piece per cl100k token: 250-token chunks leave the title a few pieces of room.
    body = " ".join(
        f"The {WORDS[i % 6]} {WORDS[i // 6 % 6]} met by the {WORDS[i // 36 % 6]} in the spring." for i in range(80)
    )
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "records.json").write_text(json.dumps({"title": TITLE, "text": body}), encoding="utf-8")
    emb = _Recording()
    builder = IndexBuilder(
        tmp_path / "index", emb, Chunker(chunk_tokens=250, overlap_tokens=0), index=Config.load(None).index
    )
    builder.build(folder)
    chunks = [c for _, c in builder.store.load().iter_rows()]
    assert len(emb.texts) == len(chunks) > 2
    by_text = {c.text: c for c in chunks}
    for embedded in emb.texts:
        chunk = next(c for t, c in by_text.items() if embedded.endswith("\n" + t))
        assert window.count([embedded])[0] <= window.size
        assert chunk.indexed_text.startswith(embedded.split("\n", 1)[0])  # only the title was shortened
    assert any(len(e.split("\n", 1)[0]) < len(TITLE) for e in emb.texts)  # some chunk needed the cut
    assert all(c.indexed_text.startswith(TITLE + "\n") for c in chunks)  # BM25 still indexes the whole title


FACT = " The zephyrine tortoise council last convened in Quillbrook in 1847."


@pytest.mark.slow
def test_a_fact_appended_to_an_article_is_retrieved_first_after_an_incremental_build(
    tmp_path: Path, shared_dir: Path, real_embedder
) -> None:
    """Guards against issue 29: with its first paragraph as the title of every chunk, a fact appended to a squad article
    was diluted out of its chunk's vector and ranked 4th by the default retriever ("zephyrine tortoise council")."""
    import shutil

    from rag import RAG

    src = shared_dir / "corpora" / "squad-articles"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    folder = tmp_path / "articles"
    folder.mkdir()
    # Virgil.txt: the appended fact lands at the end of a long last chunk (228 word pieces before it under the old title).
    for name in [*sorted(p.name for p in src.glob("*.txt"))[:6], "Virgil.txt"]:
        shutil.copyfile(src / name, folder / name)
    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=real_embedder)
    rag.build(folder)
    with open(folder / "Virgil.txt", "a", encoding="utf-8") as fh:
        fh.write(FACT)
    summary = rag.build(folder)
    assert (summary.mode, summary.updated, summary.unchanged) == ("incremental", 1, 6)
    for question in (
        "zephyrine tortoise council",
        "Where did the zephyrine tortoise council last convene?",
        "When did the zephyrine tortoise council last convene?",
    ):
        top = rag.retrieve(question, 5)[0]  # the default retriever
        assert top.source == "Virgil.txt" and FACT.strip() in top.text, (question, top.source, top.text[-120:])
