"""ui/plain.py: the answer as plain text for the API and MCP clients (one place builds it)."""

from __future__ import annotations

from types import SimpleNamespace

from rag import Answer, Citation
from ui.plain import SOURCES_HEADING, answer_body, answer_content, citations_json, sources_text, strip_sources


def citation(n: int, **kw) -> Citation:
    fields = dict(
        n=n,
        title=f"Title {n}",
        source=f"news/a{n}.md",
        snippet="...",
        score=0.5,
        chunk_id=f"c{n}",
        start=10 * n,
        end=10 * n + 5,
    )
    return Citation(**{**fields, **kw})


def test_content_is_the_answer_then_one_line_per_cited_passage():
    answer = Answer(
        question="q",
        text="It fell 17% [1]. Chips were hit [2].",
        citations=[citation(1, date="2025-01-28"), citation(2, source="report.pdf", pages=(3, 4))],
    )
    assert answer_content(answer) == (
        "It fell 17% [1]. Chips were hit [2].\n\nSources:\n"
        "[1] Title 1 (news/a1.md, 2025-01-28)\n[2] Title 2 (report.pdf, pp. 3\u20134)"
    )


def test_an_answer_citing_nothing_has_no_sources_list():
    """A declined answer must not end with an empty "Sources:" heading."""
    answer = Answer(question="q", text="I could not find the answer in the articles.", mode="declined")
    assert answer_content(answer) == "I could not find the answer in the articles." and sources_text(answer) == ""


def test_the_lead_comes_first_and_the_quotes_under_it():
    """The content is the answer as the page shows it: the lead, then the articles' quotes, then the plain sources."""
    lead = "Nvidia shares fell about 17 percent [1]."
    answer = Answer(
        question="q",
        text=f"{lead}\n\nFrom the articles: Nvidia shares fell about 17% on Monday [1].",
        lead=lead,
        citations=[citation(1, date="2025-01-28")],
    )
    content = answer_content(answer)
    assert content.startswith(lead + "\n\nFrom the articles: ") and content.count(lead) == 1
    assert content.endswith("\n\nSources:\n[1] Title 1 (news/a1.md, 2025-01-28)")


def test_strip_sources_gives_back_the_answer_a_client_returns_in_its_history():
    answer = Answer(question="q", text="It fell [1].", citations=[citation(1)])
    assert strip_sources(answer_content(answer)) == "It fell [1]."
    assert strip_sources("No list here. Sources: in the middle") == "No list here. Sources: in the middle"
    assert SOURCES_HEADING == "Sources:"


def test_citations_json_has_the_fields_clients_read():
    row = citations_json(Answer(question="q", text="x [1].", citations=[citation(1, support=0.8333, pages=(2,))]))[0]
    assert row == {
        "n": 1,
        "title": "Title 1",
        "source": "news/a1.md",
        "pages": [2],
        "start": 10,
        "end": 15,
        "snippet": "...",
        "support": 0.833,
        "status": "",
        "url": None,
        "date": None,
    }
