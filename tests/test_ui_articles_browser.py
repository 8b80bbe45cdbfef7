"""Issue 15 in a real browser (Playwright + Debian's chromium), against one ``rag serve`` with the
scripted generator (tests/ui_launcher.py) and the real MiniLM embedder: upload two articles (one a
PDF) and ask about them; open a citation in the source viewer (passage highlighted, page shown);
rate the answer and find it in the export; reload and find the conversation; bad uploads through
the page. Set RAG_SCREENSHOT_DIR to save the source viewer's screenshot (docs/source-viewer.png)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, write_articles, write_pdf
from test_ui_browser import browser, send, start_server  # noqa: F401  (the module-scoped Chromium fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "How many steel cables does the Harbour Bridge need?"
PDF_PAGES = [
    "Harbour Bridge inspection report.\n\n"
    + " ".join(f"Inspectors walked deck segment {i} in March and logged its paint." for i in range(1, 26)),
    "Findings.\n\n"
    + " ".join(f"Walkway section {i} was dry and clean." for i in range(1, 26))
    + " The survey found that the Harbour Bridge needs 42 new steel cables before 2027.",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, real_embedder) -> Iterator[tuple[str, Path]]:
    """The test launcher's server over an index of the three test articles, upload on."""
    from rag import RAG, Config

    work = tmp_path_factory.mktemp("ui-articles")
    articles = write_articles(work / "allowed" / "articles")
    index = work / "index"
    RAG(Config.load(None, {"index.path": str(index)}), embedder=real_embedder).build(articles)
    config = f"generation:\n  backend: ui-test\nui:\n  feedback_path: {work / 'feedback.jsonl'}\n  upload_max_file_mb: 1\n  upload_max_total_mb: 2\n"
    launcher = [sys.executable, str(ROOT / "tests" / "ui_launcher.py")]
    yield from ((url, work) for url in start_server(work, config, index, work / "allowed", launcher))


def _files(work: Path) -> tuple[Path, Path]:
    pdf = write_pdf(work / "picked" / "bridge.pdf", PDF_PAGES)
    md = work / "picked" / "ferry.md"
    md.write_text(
        "# Night ferry timetable\n\nThe night ferry to the island leaves at 23:40 from pier 7.\n", encoding="utf-8"
    )
    return pdf, md


def test_upload_ask_view_rate_reload(server, browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    url, work = server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(url)
    uploads = work / "allowed" / "articles" / "uploads"

    # 1. Upload two files, one a PDF: saved in the upload folder and indexed.
    page.locator("#add-articles").get_by_text("Add articles").click()
    page.locator("#upload-files input[type=file]").set_input_files([str(p) for p in _files(work)])
    expect(page.locator("#upload-files a[href$='/ferry.md']")).to_have_count(1, timeout=30_000)
    page.locator("#upload").click()
    expect(page.locator("#upload-message")).to_contain_text("Added: bridge.pdf, ferry.md", timeout=120_000)
    expect(page.locator("#upload-message")).to_contain_text("Indexed 5 articles")
    assert sorted(p.name for p in uploads.iterdir()) == ["bridge.pdf", "ferry.md"]

    # 2. Bad uploads through the page: a clear message, nothing written, the index unchanged.
    slip = work / "picked" / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../../escape.md", "# escape")
    bad = work / "picked" / "tool.exe"
    bad.write_bytes(b"MZ")
    big = work / "picked" / "big.md"
    big.write_text("# Big\n\n" + "word " * 300_000, encoding="utf-8")
    for path, message in [
        (slip, "contains '..', which would leave the upload folder"),
        (bad, "'tool.exe' is not an accepted type"),
        (big, "'big.md' is 1.50001 MB; the limit is 1 MB per file"),
    ]:
        page.locator("#upload-files input[type=file]").set_input_files([str(path)])
        expect(page.locator(f"#upload-files a[href$='/{path.name}']")).to_have_count(1, timeout=30_000)
        page.locator("#upload").click()
        expect(page.locator("#upload-message")).to_contain_text(message, timeout=30_000)
    expect(page.locator("#index-status")).to_contain_text("5")
    assert sorted(p.name for p in uploads.iterdir()) == ["bridge.pdf", "ferry.md"]
    assert not list(work.rglob("escape.md"))
    # Past the upload limit (ui.upload_max_total_mb, plus 4 MB of room) the route refuses the body unread.
    import httpx

    r = httpx.post(url + "gradio_api/upload", files={"files": ("huge.md", b"x" * 7_000_000)}, timeout=30)
    assert r.status_code == 413 and "the limit is 6194304" in r.text

    # 3. Ask about the PDF; the citation's source shows its page.
    box = page.locator("#question textarea")
    send(box, QUESTION)
    expect(page.locator("#sources .rag-cited")).to_have_count(1, timeout=120_000)
    expect(page.locator("#chat .bot").last).to_contain_text("42 new steel cables")
    cited = page.locator("#sources .rag-cited li.rag-source").first
    expect(cited).to_contain_text("uploads/bridge.pdf")
    expect(cited.locator(".rag-pages")).to_have_text("p. 2")

    # 4. Clicking the [n] marker opens the article in the source viewer, scrolled to the highlighted passage.
    page.locator("#chat a[href^='#src-1-']").first.click()
    passage = page.locator("#source-viewer .rag-passage")
    expect(passage).to_contain_text("42 new steel cables", timeout=30_000)
    expect(passage).to_be_in_viewport()
    expect(page.locator("#source-viewer .rag-viewer-meta")).to_contain_text("p. 2")
    expect(page.locator("#source-viewer .rag-article")).to_contain_text(
        "Inspectors walked deck segment 1 "
    )  # the whole article, not the chunk
    expect(page.locator("#source-viewer mark.rag-evidence").first).to_contain_text("42 new steel cables")
    page.locator("#add-articles").get_by_text("Add articles").click()  # folded, for the screenshot
    page.evaluate("window.scrollTo(0, 0)")
    expect(passage).to_be_in_viewport()
    shot = tmp_path / "source-viewer.png"
    page.screenshot(path=str(shot))
    if os.environ.get("RAG_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["RAG_SCREENSHOT_DIR"]) / "source-viewer.png")
    # The "Read in article" button of any source does the same: an uncited one, then the cited one again.
    page.locator("#sources .rag-uncited summary").click()
    other = page.locator("#sources .rag-uncited li.rag-source").first
    other.locator("button.rag-view").click()
    title = other.locator(".rag-src-title").inner_text().split("]", 1)[1].replace("Read in article", "").strip()
    expect(page.locator("#source-viewer .rag-viewer-title")).to_contain_text(title, timeout=30_000)
    cited.locator("button.rag-view").click()
    expect(page.locator("#source-viewer .rag-passage")).to_contain_text("42 new steel cables", timeout=30_000)

    # 5. Thumbs down with a comment; the export holds it as a QA item.
    page.locator("#chat .bot").last.hover()
    page.locator("#chat").get_by_label("Dislike").last.click()
    expect(page.locator("#rating-message")).to_contain_text("thumbs down saved", timeout=30_000)
    page.locator("#rating-comment textarea").fill("should say which year")
    page.locator("#send-comment").click()
    expect(page.locator("#rating-message")).to_contain_text("Comment saved")
    from rag.cli import main

    out = tmp_path / "regress.jsonl"
    assert main(["feedback", "export", "--feedback", str(work / "feedback.jsonl"), "--out", str(out)]) == 0
    items = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [i["question"] for i in items] == [QUESTION] and items[0]["feedback"]["comment"] == "should say which year"
    assert items[0]["feedback"]["citations"][0]["source"] == "uploads/bridge.pdf" and items[0]["feedback"]["citations"][
        0
    ]["pages"] == [2]

    # 6. Reload: the conversation is in the list of past chats and opens again; it can be deleted.
    page.reload()
    past = page.locator("#past-chats")
    expect(past).to_contain_text(QUESTION, timeout=30_000)
    expect(page.locator("#chat .bot")).to_have_count(0)
    past.get_by_text(QUESTION).click()
    expect(page.locator("#chat .bot").last).to_contain_text("42 new steel cables", timeout=30_000)
    expect(page.locator("#sources .rag-cited")).to_have_count(1)
    page.locator("#delete-chat").click()
    expect(past).not_to_contain_text(QUESTION, timeout=30_000)
    page.reload()
    expect(page.locator("#past-chats")).not_to_contain_text(QUESTION, timeout=30_000)
    page.close()


def _articles_count(page) -> str:
    return page.locator("#index-status tr", has=page.locator("th", has_text="Articles")).locator("td").inner_text()


def test_an_upload_can_be_removed_from_a_fresh_page(server, browser, tmp_path):  # noqa: F811
    """The list of uploads is read when a page loads, not only when the server started: a file uploaded
    through one page is listed on a page opened afterwards, and removed from the index from there."""
    from playwright.sync_api import expect

    url, work = server
    uploads = work / "allowed" / "articles" / "uploads"
    kettle = tmp_path / "kettle.md"
    kettle.write_text(
        "# Kettle descaling\n\nDescale the office kettle every 14 days with citric acid.\n", encoding="utf-8"
    )
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.locator("#add-articles").get_by_text("Add articles").click()
    page.locator("#upload-files input[type=file]").set_input_files([str(kettle)])
    expect(page.locator("#upload-files a[href$='/kettle.md']")).to_have_count(1, timeout=30_000)
    page.locator("#upload").click()
    expect(page.locator("#upload-message")).to_contain_text("Added: kettle.md", timeout=120_000)
    with_kettle = _articles_count(page)
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.locator("#add-articles").get_by_text("Add articles").click()
    page.locator("#uploaded input").click()
    options = page.locator("#uploaded [role=option]")
    expect(options).to_have_count(len(list(uploads.iterdir())), timeout=30_000)
    assert sorted(options.all_inner_texts()) == sorted(p.name for p in uploads.iterdir())
    options.filter(has_text="kettle.md").click()
    page.locator("#remove-upload").click()
    expect(page.locator("#upload-message")).to_contain_text("Removed: kettle.md", timeout=120_000)
    assert not (uploads / "kettle.md").exists()
    assert int(_articles_count(page)) == int(with_kettle) - 1
    page.close()


def test_upload_api_cannot_name_a_server_file(server):
    """An API caller may send a file path instead of uploading bytes: Gradio must refuse any
    path outside its upload cache, so /upload never copies a server file into the index."""
    import httpx

    url, work = server
    secret = work / "secret.md"
    secret.write_text("# Secret\n\nThe vault code is 4711.\n", encoding="utf-8")
    r = httpx.post(
        url + "gradio_api/call/upload",
        json={"data": [[{"path": str(secret), "meta": {"_type": "gradio.FileData"}}]]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    events = httpx.get(url + f"gradio_api/call/upload/{r.json()['event_id']}", timeout=60).text
    assert "event: error" in events, events[:500]
    assert "because it was not uploaded by a user" in (work / "server.log").read_text(errors="replace")
    assert not (work / "allowed" / "articles" / "uploads" / "secret.md").exists()
