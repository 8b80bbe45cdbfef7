"""Tests for rag/answering/citations.py: marker parsing, resolution, attribution."""

from rag import parse_markers, resolve_citations
from rag.records import Chunk
from rag.answering.citations import attribute_citations, lexical_support, strip_invalid_markers
from rag.records import Passage


def passage(n, text, title=None):
    return Passage(
        n=n,
        chunk=Chunk(
            id=f"c{n}",
            doc_id=f"d{n}",
            title=title or f"Title {n}",
            source=f"s{n}.txt",
            text=text,
            start=0,
            end=len(text),
        ),
        score=0.9,
    )


PASSAGES = [
    passage(1, "DeepSeek released R1 on 20 January 2025 under the MIT licence."),
    passage(2, "Nvidia shares fell about 17 percent on 27 January 2025."),
    passage(3, "Sourdough bread is baked at 230 degrees."),
]


def test_parse_forms():
    assert parse_markers("a [1] b [1, 3] c [2][3] d [2-3] e") == [1, 1, 3, 2, 3, 2, 3]


def test_parse_malformed_ranges_are_ignored_not_raised():
    """Guards against "[1-1-7]" (found by atheris) raising ValueError out of int("1-1-7")."""
    assert parse_markers("a [1-1-7] b [3-2] c [1-99] d [4, 5-6-7] e [2]") == [4, 2]


def test_stripping_a_dead_marker_cannot_leave_a_new_one():
    """Guards against "[[0]0]" becoming "[0]" (found by atheris): only valid markers remain."""
    from rag.answering.citations import strip_invalid_markers

    assert strip_invalid_markers("x [[\t0\x1f\t]0\x1f] y [2] [[[9]9]9] z", {1, 2, 3}) == "x  y [2]  z"


def test_resolve_lists_each_source_once_in_order():
    cits = resolve_citations("Shares fell [2]. R1 came out [1][2].", PASSAGES)
    assert [c.n for c in cits] == [2, 1]
    assert cits[0].title == "Title 2" and cits[0].source == "s2.txt"
    assert "17 percent" in cits[0].snippet


def test_out_of_range_dropped():
    assert [c.n for c in resolve_citations("x [0] y [4] z [9, 1]", PASSAGES)] == [1]
    assert strip_invalid_markers("x [4]. y [9, 1].", {1, 2, 3}) == "x . y [1]."


def test_support_scores():
    assert lexical_support("Nvidia shares fell 17 percent", PASSAGES[1].chunk.text) == 1.0
    assert lexical_support("The moon is made of cheese", PASSAGES[1].chunk.text) == 0.0


def test_attribution_adds_marker_to_supported_uncited_sentence():
    text, added = attribute_citations("Nvidia shares fell about 17 percent.", PASSAGES)
    assert text == "Nvidia shares fell about 17 percent [2]."
    assert added == {2}


def test_attribution_fixes_wrong_marker_but_keeps_right_one():
    text, added = attribute_citations("Nvidia shares fell about 17 percent [3]. R1 used the MIT licence [1].", PASSAGES)
    assert text == "Nvidia shares fell about 17 percent [2]. R1 used the MIT licence [1]."
    assert added == {2}


def test_attribution_leaves_unsupported_sentence_alone():
    text, added = attribute_citations("The moon is made of cheese.", PASSAGES)
    assert text == "The moon is made of cheese." and added == set()
