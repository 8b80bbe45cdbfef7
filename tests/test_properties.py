"""Property tests (Hypothesis) for the loaders, the chunker and the citation parser.

Arbitrary input must never raise anything but the documented error, chunk offsets must map
back to the exact chunk text, and chunks must cover the document.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import Chunker, parse_markers, resolve_citations
from rag.records import Chunk
from rag.text import sentence_spans
from rag.answering.citations import attribute_citations, strip_invalid_markers
from rag.documents import UnreadableFile, decode_bytes, load_file, make_document
from rag.answering.prompting import quote_passage_text
from rag.records import Passage

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHUNKER = Chunker(chunk_tokens=24, overlap_tokens=6)
PASSAGES = [
    Passage(n=i, chunk=Chunk(id=str(i), doc_id="d", title="t", source="s", text=t, start=0, end=len(t)), score=0.5)
    for i, t in enumerate(["Nvidia fell 17 percent.", "DeepSeek released R1 in January."], start=1)
]
_TMP = Path(tempfile.mkdtemp(prefix="rag-props-"))


@FAST
@given(st.binary(max_size=3000), st.sampled_from([".txt", ".md", ".html", ".json", ".jsonl", ".pdf"]))
def test_loader_raises_only_unreadable_file(data, suffix):
    path = _TMP / f"x{suffix}"
    path.write_bytes(data)
    try:
        docs = load_file(path, path.name)
    except UnreadableFile:
        return
    assert all(d.text.strip() and d.source.startswith(path.name) for d in docs)


@FAST
@given(st.binary(max_size=3000))
def test_decode_bytes_returns_text_or_documented_error(data):
    try:
        assert isinstance(decode_bytes(data), str)
    except UnreadableFile:
        pass


@FAST
@given(st.text(max_size=2000))
def test_chunk_offsets_exact_and_within_limit(text):
    doc = make_document(text, "t", "a.txt")
    for c in CHUNKER.split(doc):
        assert doc.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert CHUNKER.count_tokens(c.text) <= 24


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=2000))
def test_chunks_cover_document(text):
    doc = make_document(text, "t", "a.txt")
    covered = bytearray(len(doc.text))
    for c in CHUNKER.split(doc):
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(doc.text))


@FAST
@given(st.text(max_size=500))
def test_sentence_spans_are_ordered_and_trimmed(text):
    last = 0
    for s, e in sentence_spans(text):
        assert last <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        last = e


@FAST
@given(st.text(max_size=400))
def test_citation_parser_never_raises_and_stays_in_range(text):
    assert all(isinstance(n, int) for n in parse_markers(text))
    assert {c.n for c in resolve_citations(text, PASSAGES)} <= {1, 2}
    assert set(parse_markers(strip_invalid_markers(text, {1, 2}))) <= {1, 2}
    fixed, added = attribute_citations(text, PASSAGES)
    assert added <= {1, 2} and isinstance(fixed, str)


@FAST
@given(st.text(max_size=400))
def test_quoted_article_text_cannot_close_passage(text):
    quoted = quote_passage_text(text).lower()
    assert "</passage" not in quoted and "<|im_end|>" not in quoted
    assert parse_markers(quoted) == []


# Every form the marker grammar accepts: brackets (ASCII or full-width), digits (ASCII or
# full-width), list separators and range dashes of every kind, any spacing.
_DIGITS = st.integers(min_value=0, max_value=120).map(str) | st.integers(min_value=0, max_value=99).map(
    lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
)
_SEPARATOR = st.sampled_from(
    [
        ",",
        ";",
        "\uff0c",
        "\uff1b",
        "-",
        "\u2010",
        "\u2011",
        "\u2012",
        "\u2013",
        "\u2014",
        "\u2015",
        "\u2212",
        "\ufe63",
        "\uff0d",
    ]
)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def marker_forms(draw):
    numbers = draw(st.lists(_DIGITS, min_size=1, max_size=4))
    body = draw(_SPACE) + numbers[0]
    for n in numbers[1:]:
        body += draw(_SPACE) + draw(_SEPARATOR) + draw(_SPACE) + n
    body += draw(_SPACE)
    left, right = draw(st.sampled_from([("[", "]"), ("\uff3b", "\uff3d"), ("[", "\uff3d")]))
    return left + body + right


@FAST
@given(st.text(max_size=60), marker_forms(), st.text(max_size=60))
def test_every_marker_form_the_parser_reads_is_neutralised_in_quoted_text(before, marker, after):
    """What parse_markers can read in an answer, article text (and titles) can never carry into one."""
    from rag.answering.prompting import format_passage
    from rag.text import MARKER, neutralise_markers

    text = before + marker + after
    assert MARKER.search(marker), marker  # the generator really produces parser-readable forms
    assert parse_markers(neutralise_markers(text)) == []
    assert parse_markers(quote_passage_text(text)) == []
    p = Passage(
        n=1, chunk=Chunk(id="c", doc_id="d", title=text, source="s", text=text, start=0, end=len(text)), score=0.5
    )
    block = format_passage(p)
    assert parse_markers(block) == [], block
