"""Issue 15 without a browser: upload through the page's handler (ui/library.py), the source viewer
(ui/viewer.py, RAG.article), past chats (ui/history.py), ratings (ui/rating.py, rag/feedback.py),
and "p. N" everywhere a passage or citation is shown."""

from __future__ import annotations

import html
import json
import re
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import write_articles, write_pdf
from fakes import FakeEmbedder, FakeGenerator

from rag import RAG, Config, FeedbackLog, pages_label
from rag.cli import main
from rag.evaluation.qa import load_qa
from rag.store.loaded import assemble_text
from ui import history, viewer
from ui.chat import ChatUI
from ui.library import ArticlesPanel
from ui.rating import Ratings

# Long enough pages that the cables sentence lies in a chunk of page 2 alone.
PDF_PAGES = [
    "The Harbour Bridge survey.\n\n"
    + " ".join(f"Inspectors walked deck segment {i} in March and logged its paint." for i in range(1, 26)),
    "Findings.\n\n"
    + " ".join(f"Walkway section {i} was dry and clean." for i in range(1, 26))
    + " The survey found that the Harbour Bridge needs 42 new steel cables before 2027.",
]


def cite_first(messages) -> str:
    """Cite the passage that mentions the cables, else [1]."""
    m = re.search(r'<passage n="(\d+)"[^>]*>[^<]*steel cables', messages[-1]["content"])
    return f"The Harbour Bridge needs 42 new steel cables [{m.group(1) if m else 1}]."


class SlowEmbedder(FakeEmbedder):
    """Blocks encode() in the thread named "build" until released, to hold a build mid-way."""

    def __init__(self):
        super().__init__()
        self.block, self.entered = threading.Event(), threading.Event()

    def encode(self, texts, show_progress=False):
        if threading.current_thread().name == "build":
            self.entered.set()
            self.block.wait(30)
        return super().encode(texts, show_progress)


def make_ui(tmp_path: Path, embedder=None, **ui_settings) -> ChatUI:
    overrides = {
        "index.path": str(tmp_path / "index"),
        "ui.rewrite": "heuristic",
        "ui.feedback_path": str(tmp_path / "fb" / "feedback.jsonl"),
        **{f"ui.{k}": v for k, v in ui_settings.items()},
    }
    rag = RAG(Config.load(None, overrides), embedder=embedder or FakeEmbedder(), generator=FakeGenerator(cite_first))
    rag.build(write_articles(tmp_path / "articles"))
    return ChatUI(rag, allowed_roots=[tmp_path], upload_enabled=True)


def received(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / "gradio-tmp" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def answer(ui: ChatUI, question: str, chat=None, session=None):
    *_, (chat, session, sources, _) = ui.respond(question, chat, session, 4, 0.0, 64)
    return chat, session, sources


def test_uploaded_pdf_and_text_are_indexed_and_cited_with_their_page(tmp_path):
    ui = make_ui(tmp_path)
    panel = ArticlesPanel(ui)
    pdf = write_pdf(tmp_path / "gradio-tmp" / "bridge.pdf", PDF_PAGES)
    md = received(tmp_path, "notes.md", "# Ferry notes\n\nThe night ferry leaves at 23:40 from pier 7.\n")
    msg, _, update = panel.upload([str(pdf), md])
    assert "Added: bridge.pdf, notes.md" in msg and "Indexed 5 articles" in msg, msg
    assert update["choices"] == ["bridge.pdf", "notes.md"]
    assert sorted(p.name for p in (tmp_path / "articles" / "uploads").iterdir()) == ["bridge.pdf", "notes.md"]
    *_, (_, _, sources, _) = ui.respond("How many steel cables does the Harbour Bridge need?", None, None, 8, 0.0, 64)
    assert re.search(r'uploads/bridge\.pdf</span> · <span class="rag-pages">pp?\. \d', sources), sources
    # The /ask JSON (the Python API's Answer.to_dict) carries pages and offsets of every passage.
    result = ui.ask("How many steel cables does the Harbour Bridge need?", top_k=8)
    pdf_passages = [p for p in result["passages"] if p["source"] == "uploads/bridge.pdf"]
    assert pdf_passages and all(p["pages"] and p["end"] > p["start"] >= 0 for p in pdf_passages)
    for c in result["citations"]:
        assert {"start", "end", "pages"} <= set(c)


def test_upload_while_a_build_runs_is_refused_and_writes_nothing(tmp_path):
    emb = SlowEmbedder()
    ui = make_ui(tmp_path, embedder=emb)
    write_articles(tmp_path / "articles" / "fresh", {"new.md": "# New\n\nSomething new to embed.\n"})
    t = threading.Thread(target=lambda: ui.rebuild(str(tmp_path / "articles")), name="build")
    t.start()
    assert emb.entered.wait(10)
    try:
        msg, _, _ = ArticlesPanel(ui).upload([received(tmp_path, "a.md", "# A\n\ntext")])
        assert "Upload refused: A rebuild is already running; wait for it to finish, then try again." in msg
        assert not (tmp_path / "articles" / "uploads").exists()
    finally:
        emb.block.set()
        t.join(30)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("evil.exe", b"MZ", "'evil.exe' is not an accepted type"),
        ("bomb.zip", None, "looks like a zip bomb"),
        ("slip.zip", None, "contains '..', which would leave the upload folder"),
    ],
)
def test_bad_uploads_leave_the_index_and_the_folders_unchanged(tmp_path, name, data, message):
    ui = make_ui(tmp_path)
    if data is None:
        path = tmp_path / "gradio-tmp" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(
                "zeros.txt" if name == "bomb.zip" else "../../escape.md",
                b"0" * 3_000_000 if name == "bomb.zip" else b"# evil",
            )
        data_path = str(path)
    else:
        data_path = received(tmp_path, name, data)
    before_gen, before_files = (
        ui.generation(),
        sorted(p.as_posix() for p in tmp_path.rglob("*") if "gradio-tmp" not in p.parts),
    )
    msg, _, _ = ArticlesPanel(ui).upload([data_path])
    assert "Upload refused:" in msg and message in html.unescape(msg), msg
    assert ui.generation() == before_gen
    assert sorted(p.as_posix() for p in tmp_path.rglob("*") if "gradio-tmp" not in p.parts) == before_files


def test_upload_is_refused_when_off(tmp_path):
    ui = make_ui(tmp_path)
    ui.upload_enabled = False
    msg, _, _ = ArticlesPanel(ui).upload([received(tmp_path, "a.md", "# A\n\nx")])
    assert "Uploading is off on this server" in msg and not (tmp_path / "articles" / "uploads").exists()


def test_upload_dir_outside_the_indexed_folder_is_refused(tmp_path):
    """A build from another folder would drop every other article of the index."""
    ui = make_ui(tmp_path, upload_dir=str(tmp_path / "elsewhere"))
    msg, _, _ = ArticlesPanel(ui).upload([received(tmp_path, "a.md", "# A\n\nx")])
    assert "is outside the folder the index is built from" in msg and not (tmp_path / "elsewhere").exists()


def test_removing_an_upload_drops_it_from_the_index_and_the_folder(tmp_path):
    ui = make_ui(tmp_path)
    panel = ArticlesPanel(ui)
    panel.upload([received(tmp_path, "ferry.md", "# Ferry\n\nThe night ferry leaves at 23:40.\n")])
    assert ui.rag.info()["articles"] == 4
    msg, _, _ = panel.remove("ferry.md")
    assert "Removed:" in msg and ui.rag.info()["articles"] == 3 and panel.uploads() == []
    msg, _, _ = panel.remove("../articles/r1.md")
    assert "is not an uploaded article" in msg and (tmp_path / "articles" / "r1.md").exists()


# -- source viewer -------------------------------------------------------------------------
def test_article_text_is_reassembled_from_chunks_by_offset(tmp_path):
    ui = make_ui(
        tmp_path,
    )
    index = ui.rag.index()
    for doc_id in {c.doc_id for c in index.iter_chunks()}:
        text, chunks = ui.rag.article(doc_id)
        assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
    assert ui.rag.article("no-such-id") == ("", [])
    from rag import Chunk

    parts = [
        Chunk("a", "d", "t", "s", "Hello world", 0, 11),
        Chunk("b", "d", "t", "s", "world again", 6, 17),
        Chunk("c", "d", "t", "s", "end", 20, 23),
    ]
    assert assemble_text(parts) == "Hello world again   end"


def test_viewer_shows_the_article_with_the_passage_and_evidence_marked_and_escaped(tmp_path):
    ui = make_ui(tmp_path)
    panel = ArticlesPanel(ui)
    panel.upload(
        [
            received(
                tmp_path,
                "x.md",
                "# <b>Bold</b> title\n\nFirst part. The <script>alert(1)</script> evidence sentence is here. Last.\n",
            )
        ]
    )
    chunk = next(c for c in ui.rag.index().iter_chunks() if c.source == "uploads/x.md")
    s = chunk.start + chunk.text.index("The <script>")
    e = chunk.start + chunk.text.index("Last.")
    shown = ui.view_source(
        json.dumps({"doc": chunk.doc_id, "n": 2, "start": chunk.start, "end": chunk.end, "ev": [[s, e]]})
    )
    assert '<span class="rag-passage" id="viewer-passage">' in shown
    assert (
        '<mark class="rag-evidence">The &lt;script&gt;alert(1)&lt;/script&gt; evidence sentence is here. </mark>'
        in shown
    )
    assert "<script>" not in shown and "<b>" not in shown and "uploads/x.md" in shown and "[2]" in shown


@pytest.mark.parametrize(
    "request_text, message",
    [
        ("not json", "not valid"),
        ('{"doc": "../../etc/passwd"}', "names no article"),
        ('{"doc": "abc", "start": -1}', "start must be a whole number"),
        ('{"doc": "abc", "ev": [[1]]}', "must be [start, end] pairs"),
    ],
)
def test_viewer_refuses_bad_requests_with_a_message(tmp_path, request_text, message):
    ui = make_ui(tmp_path)
    assert message in ui.view_source(request_text)


def test_viewer_says_when_the_article_is_gone(tmp_path):
    assert "no longer in the index" in make_ui(tmp_path).view_source('{"doc": "deadbeef", "start": 0, "end": 5}')


def test_sources_panel_items_carry_the_viewer_request(tmp_path):
    ui = make_ui(tmp_path)
    _, _, sources = answer(ui, "How much did Nvidia shares fall?")
    m = re.search(r'data-view="([^"]+)"', sources)
    req = viewer.parse_request(m.group(1).replace("&quot;", '"'))
    assert ui.rag.article(req.doc)[1] and req.end > req.start
    assert "Read in article" in sources


# -- pages -----------------------------------------------------------------------------------
def test_pages_label():
    assert (pages_label(()), pages_label((2,)), pages_label((2, 3)), pages_label((5, 2))) == (
        "",
        "p. 2",
        "pp. 2\u20133",
        "pp. 2, 5",
    )


def test_cli_sources_and_json_show_pdf_pages(tmp_path, monkeypatch, capsys):
    articles = tmp_path / "pdfs"
    write_pdf(articles / "bridge.pdf", PDF_PAGES)
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index")}),
        embedder=FakeEmbedder(),
        generator=FakeGenerator(cite_first),
    )
    rag.build(articles)
    from rag import embedding, pipeline

    monkeypatch.setitem(embedding.BACKENDS, "torch", lambda cfg: FakeEmbedder())
    monkeypatch.setattr(pipeline, "make_generator", lambda cfg: FakeGenerator(cite_first))
    assert main(["ask", "How many steel cables does the Harbour Bridge need?", "--index", str(tmp_path / "index")]) == 0
    assert re.search(r"\*\[\d\] bridge \(bridge\.pdf, (p\. \d|pp\. \d\u2013\d)\)", capsys.readouterr().out)
    assert (
        main(
            ["ask", "How many steel cables does the Harbour Bridge need?", "--index", str(tmp_path / "index"), "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    by_n = {p["n"]: p for p in out["passages"]}
    cited = out["citations"][0]
    assert (
        cited["pages"]
        and cited["pages"] == by_n[cited["n"]]["pages"]
        and (cited["start"], cited["end"]) == (by_n[cited["n"]]["start"], by_n[cited["n"]]["end"])
    )


# -- past chats --------------------------------------------------------------------------------
def test_past_chats_round_trip_and_delete(tmp_path):
    ui = make_ui(tmp_path)
    chat, session, _ = answer(ui, "How much did Nvidia shares fall?")
    saved, cid = history.save_chat([], None, chat, session)
    saved = json.loads(json.dumps(saved))  # what the browser stores is JSON
    assert history.choices(saved) == [("How much did Nvidia shares fall?", cid)]
    chat2, session2, cid2 = history.open_chat(saved, cid, max_question_chars=2000)
    assert cid2 == cid and chat2 == chat and session2["sections"] == session["sections"]
    # The restored conversation continues: a follow-up is rewritten from the restored turns.
    chat3, session3, _ = answer(ui, "Why did its share price fall?", chat2, session2)
    assert len(session3["turns"]) == 2 and "searched for" in " ".join(m["content"] for m in chat3)
    saved, _ = history.save_chat(saved, cid, chat3, session3)
    assert len(saved) == 1 and history.delete_chat(saved, cid) == []
    assert history.open_chat(saved, "nope", max_question_chars=2000)[2] is None
    # The page sends messages back in Gradio 6's form: content as a list of parts.
    assert (
        history.title_of([{"role": "user", "content": [{"type": "text", "text": "Who \\[1\\] won?"}]}])
        == "Who [1] won?"
    )


# -- ratings and export ----------------------------------------------------------------------------
def test_a_rating_records_its_own_answer_after_the_chat_drops_old_messages(tmp_path):
    """A chat sent back with more than ui.chat.MAX_CHAT_MESSAGES messages loses its oldest ones; answers
    are keyed by position, so the keys must move with the trim, or a thumbs up would record another
    answer (or none)."""
    from ui.chat import MAX_CHAT_MESSAGES

    ui = make_ui(tmp_path)
    chat, session, _ = answer(ui, "How much did Nvidia shares fall?")
    chat, session, _ = answer(ui, "Who released DeepSeek-R1?", chat, session)
    by_question = {info["question"]: int(k) for k, info in session["answers"].items()}
    first, second = by_question["How much did Nvidia shares fall?"], by_question["Who released DeepSeek-R1?"]
    ratings = Ratings(ui)
    assert "thumbs down saved" in ratings.rate(session, second, False)
    drop = first + 1  # the trim takes the first question and its answer
    filler = [
        {"role": "user", "content": f"q{i}"} if i % 2 == 0 else {"role": "assistant", "content": f"a{i}"}
        for i in range(MAX_CHAT_MESSAGES + drop - len(chat))
    ]
    chat2, session2, _ = answer(ui, "Why did Nvidia shares fall?", chat + filler, session)
    assert chat2[0] == chat[drop]
    assert {info["question"]: int(k) for k, info in session2["answers"].items()} == {
        "Who released DeepSeek-R1?": second - drop,
        "Why did Nvidia shares fall?": len(chat2) - 1,
    }
    assert session2["rated"]["index"] == str(second - drop)
    assert "thumbs up saved" in ratings.rate(session2, second - drop, True)
    assert "Only finished answers" in ratings.rate(session2, len(chat2) - 2, True)  # the user's question
    records = FeedbackLog(tmp_path / "fb" / "feedback.jsonl").read()
    assert [(r["question"], r["rating"]) for r in records] == [
        ("Who released DeepSeek-R1?", "down"),
        ("Who released DeepSeek-R1?", "up"),
    ]


def test_rating_is_stored_and_disliked_answers_export_as_qa(tmp_path, capsys):
    ui = make_ui(tmp_path)
    _, session, _ = answer(ui, "How much did Nvidia shares fall?")
    index = int(next(iter(session["answers"])))
    ratings = Ratings(ui)
    assert "thumbs down saved" in ratings.rate(session, index, False)
    note, box = ratings.comment(session, "the date is missing")
    assert "Comment saved" in note and box == ""
    assert "Only finished answers" in ratings.rate(session, 0, True)  # the user's own message
    records = FeedbackLog(tmp_path / "fb" / "feedback.jsonl").read()
    assert [r["rating"] for r in records] == ["down", "down"] and records[1]["comment"] == "the date is missing"
    r = records[0]
    assert (
        r["question"] == "How much did Nvidia shares fall?" and r["mode"] and r["index_generation"] == ui.generation()
    )
    assert r["citations"] and {"n", "title", "source", "pages"} == set(r["citations"][0])
    out = tmp_path / "regress.jsonl"
    assert main(["feedback", "export", "--feedback", str(tmp_path / "fb" / "feedback.jsonl"), "--out", str(out)]) == 0
    items = load_qa(out)
    assert [i.question for i in items] == ["How much did Nvidia shares fall?"] and items[0].answerable
    assert json.loads(out.read_text().splitlines()[0])["feedback"]["comment"] == "the date is missing"
