"""Titles (rag/documents/titles.py): a short label from the document, its first line or its file name; never a paragraph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_pdf
from rag.documents import load_documents, load_file
from rag.documents.titles import MAX_TITLE_WORDS, first_line_title, readable_name

PARAGRAPH = (
    "The 1973 oil crisis began in October 1973 when the members of the Organization of Arab Petroleum Exporting "
    "Countries proclaimed an oil embargo. By the end of the embargo in March 1974, the price of oil had risen."
)


def _load(tmp_path: Path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return load_documents(tmp_path).documents


def test_html_title_element(tmp_path: Path) -> None:
    """Guards against an HTML page losing its <title> to a body paragraph."""
    [doc] = _load(
        tmp_path, "page.html", f"<html><head><title>Harbour lights</title></head><body><p>{PARAGRAPH}</p></body></html>"
    )
    assert doc.title == "Harbour lights"


def test_markdown_hash_line(tmp_path: Path) -> None:
    """Guards against a Markdown article's ``#`` line not being its title (its ``#`` marks kept)."""
    [doc] = _load(tmp_path, "notes.md", f"# Why FP8 Mattered\n\n{PARAGRAPH}\n")
    assert doc.title == "Why FP8 Mattered" and doc.text.startswith("# Why FP8 Mattered")


def test_json_title_field(tmp_path: Path) -> None:
    """Guards against a JSON record's ``title`` being replaced by its text or file name."""
    [doc] = _load(tmp_path, "brief.json", json.dumps({"title": "DeepSeek Limits Sign-Ups", "text": PARAGRAPH}))
    assert doc.title == "DeepSeek Limits Sign-Ups"


def test_pdf_metadata_title(tmp_path: Path) -> None:
    """Guards against a PDF's metadata title being ignored for its first line of text."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Orsa River Footbridge: Principal Inspection Report")
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, PARAGRAPH)
    pdf.output(str(tmp_path / "report.pdf"))
    [doc] = load_documents(tmp_path).documents
    assert doc.title == "Orsa River Footbridge: Principal Inspection Report"


def test_pdf_without_metadata_uses_a_title_line_else_the_file_name(tmp_path: Path) -> None:
    """Guards against an untitled PDF taking its first paragraph as its title."""
    titled = load_file(write_pdf(tmp_path / "a" / "guide.pdf", ["Visiting Brennhaven\n" + PARAGRAPH]), "guide.pdf")
    untitled = load_file(write_pdf(tmp_path / "b" / "water_report_2023.pdf", [PARAGRAPH]), "water_report_2023.pdf")
    assert titled[0].title == "Visiting Brennhaven"
    assert untitled[0].title == "water report 2023"


def test_plain_text_with_a_title_line(tmp_path: Path) -> None:
    """Guards against a plain-text article's short first line not being its title (and against the body losing it)."""
    [doc] = _load(tmp_path, "battle.txt", f"The Battle of a Hundred Models: China's 2023 Chatbot Rush\n\n{PARAGRAPH}\n")
    assert doc.title == "The Battle of a Hundred Models: China's 2023 Chatbot Rush"
    assert doc.text.startswith("The Battle of a Hundred Models") and doc.text.endswith(PARAGRAPH)


def test_plain_text_without_a_title_line_keeps_its_first_paragraph_and_is_named_after_the_file(tmp_path: Path) -> None:
    """Guards against issue 29: a squad article's first paragraph (46+ words) became its title, embedded in every chunk."""
    body = PARAGRAPH + "\nThe crisis had a major impact on international relations."
    [doc] = _load(tmp_path, "1973_oil_crisis.txt", body)
    assert doc.title == "1973 oil crisis"
    assert doc.text == body  # the first line stays in the body: no lost text


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("Italy's Privacy Watchdog Orders DeepSeek Blocked", "Italy's Privacy Watchdog Orders DeepSeek Blocked"),
        (
            "Does DeepSeek-R1 Really Rival OpenAI's o1? Reading the Benchmark Table",
            "Does DeepSeek-R1 Really Rival OpenAI's o1? Reading the Benchmark Table",
        ),
        ("Season 3 of Netflix series The Crown premiered on November 17, 2019.", ""),  # a sentence
        ("Winner · All Players ...", ""),  # an ellipsis: cut-off text
        ("The following were found:", ""),
        ("- first item of a list", ""),
        ("1. Open the box", ""),
        ("2024", ""),  # no letter
        (" ".join(["word"] * (MAX_TITLE_WORDS + 1)), ""),  # too long for a label
    ],
)
def test_first_line_title_rule(line: str, title: str) -> None:
    """Guards against sentences, list items and long lines passing for titles (and real titles failing)."""
    assert first_line_title(line, followed=True) == title


def test_a_one_line_text_is_its_body_not_its_title(tmp_path: Path) -> None:
    """Guards against a one-line snippet (rgb-en-fact) being both title and text, so embedded twice."""
    [doc] = _load(tmp_path, "rgb-0783.txt", "Cast & Crew\n")
    assert doc.title == "rgb 0783" and doc.text == "Cast & Crew"


@pytest.mark.parametrize(
    ("source", "title"),
    [
        ("Age_of_Enlightenment.txt", "Age of Enlightenment"),
        ("Bill_%26_Melinda_Gates_Foundation.txt", "Bill & Melinda Gates Foundation"),
        ("Sino-Tibetan_relations.txt", "Sino-Tibetan relations"),
        ("Arsenal_F.C..txt", "Arsenal F.C."),
        ("news/deepseek-r1-release.md", "deepseek r1 release"),
        ("news/briefs.jsonl#3", "briefs"),
    ],
)
def test_file_name_made_readable(source: str, title: str) -> None:
    """Guards against file-name titles keeping underscores, URL escapes or the suffix."""
    assert readable_name(source) == title


def test_header_title_line_and_long_declared_titles(tmp_path: Path) -> None:
    """Guards against a ``Title:`` header being ignored, and a declared title that is a paragraph staying one."""
    docs = {d.source: d for d in _load(tmp_path, "a.txt", f"Title: Harbour Report\nDate: 2024-05-01\n\n{PARAGRAPH}")}
    docs |= {d.source: d for d in _load(tmp_path, "b.json", json.dumps({"title": PARAGRAPH, "text": PARAGRAPH}))}
    assert docs["a.txt"].title == "Harbour Report" and docs["a.txt"].date == "2024-05-01"
    assert len(docs["b.json"].title.split()) <= 25 and docs["b.json"].title.endswith("\u2026")


def test_first_hundred_squad_articles_have_short_titles(shared_dir: Path) -> None:
    """Guards against issue 29's paragraph titles on the squad corpus: none over 15 words on the first 100 articles (sorted)."""
    folder = shared_dir / "corpora" / "squad-articles"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    docs = sorted(load_documents(folder).documents, key=lambda d: d.source)[:100]
    longest = max(docs, key=lambda d: len(d.title.split()))
    assert len(docs) == 100 and len(longest.title.split()) <= 15, (longest.source, longest.title)
    assert all(d.title == readable_name(d.source) for d in docs)  # none declares a title; none starts with a title line
