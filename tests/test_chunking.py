"""Tests for rag/chunking.py: token limits, sentence alignment, overlap and exact offsets."""

import pytest

from rag import Chunker
from rag.text import get_encoding
from rag.text import sentence_spans
from rag.documents import make_document

TEXT = " ".join(f"Sentence number {i} talks about DeepSeek and Nvidia in some detail." for i in range(60))


def test_offline_encoding_matches_cl100k_counts():
    enc = get_encoding("cl100k_base")
    # Reference counts for cl100k_base (as tiktoken gives online).
    assert enc.encode_ordinary("hello world") == [15339, 1917]
    assert Chunker().count_tokens("DeepSeek released R1.") == len(enc.encode_ordinary("DeepSeek released R1."))


def test_chunks_respect_token_limit_and_offsets():
    doc = make_document(TEXT, "t", "a.txt")
    chunker = Chunker(chunk_tokens=50, overlap_tokens=10)
    chunks = chunker.split(doc)
    assert len(chunks) > 5
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
        assert chunker.count_tokens(c.text) <= 50
        assert c.doc_id == doc.id and c.title == "t"


def test_chunks_end_on_sentence_boundaries():
    doc = make_document(TEXT, "t", "a.txt")
    for c in Chunker(chunk_tokens=50, overlap_tokens=10).split(doc):
        assert c.text.endswith("detail.")
        assert c.text.startswith("Sentence number")


def test_overlap_repeats_trailing_sentences():
    doc = make_document(TEXT, "t", "a.txt")
    a, b = Chunker(chunk_tokens=50, overlap_tokens=20).split(doc)[:2]
    assert b.start < a.end, "consecutive chunks should overlap"
    no_overlap = Chunker(chunk_tokens=50, overlap_tokens=0).split(doc)
    assert no_overlap[1].start > no_overlap[0].end - 1


def test_chunks_cover_document():
    doc = make_document(TEXT, "t", "a.txt")
    chunks = Chunker(chunk_tokens=40, overlap_tokens=8).split(doc)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and i not in covered]
    assert missing == []


def test_overlong_sentence_and_word_are_split():
    """A single huge line without sentence ends (or without spaces) must still fit the limit."""
    words = "word " * 3000 + "x" * 5000
    doc = make_document(words, "t", "a.txt")
    chunker = Chunker(chunk_tokens=64, overlap_tokens=8)
    chunks = chunker.split(doc)
    assert all(chunker.count_tokens(c.text) <= 64 for c in chunks)
    assert all(c.text == doc.text[c.start : c.end] for c in chunks)


def test_abbreviations_do_not_split_sentences():
    spans = sentence_spans("Mr. Liang founded it in the U.S. market. Then it grew.")
    assert len(spans) == 2


def test_bad_settings_name_the_value_once_at_the_config():
    """Checked once, where settings enter (ChunkingConfig), with the key's name; the Chunker does not check again."""
    from rag.config import Config, ConfigError

    with pytest.raises(ConfigError, match="chunking.overlap_tokens must be >= 0 and below chunk_tokens"):
        Config.load(None, {"chunking.chunk_tokens": 32, "chunking.overlap_tokens": 32})


def test_empty_document_has_no_chunks():
    assert Chunker().split(make_document("   \n  ", "t", "a.txt")) == []


@pytest.mark.slow
def test_default_chunks_fit_embedder_window(real_embedder, shared_dir):
    """Default chunk size must not exceed MiniLM's 256 word-piece window (truncation would drop text)."""
    from rag import Config, load_documents

    cfg = Config.load(None).chunking
    chunker = Chunker(cfg.chunk_tokens, cfg.overlap_tokens)
    folder = shared_dir / "corpora" / "squad-articles"
    docs = load_documents(folder).documents[:60]
    chunks = chunker.split_all(docs)
    tok = real_embedder.tokenizer
    limit = real_embedder.max_seq_length
    lengths = [len(tok(c.text, add_special_tokens=True)["input_ids"]) for c in chunks]
    assert max(lengths) <= limit, f"longest chunk has {max(lengths)} word pieces, window is {limit}"
