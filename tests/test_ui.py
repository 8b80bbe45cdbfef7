"""Tests for ui/app.py and ui/render.py with fakes: chat streaming, citations, follow-ups,
errors, rebuild checks, safe defaults, and the named API endpoint through gradio_client."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import write_articles
from fakes import FakeEmbedder, FakeGenerator

from rag import RAG, Config
from ui import render
from ui.app import build_app
from ui.chat import ChatUI, check_settings
from ui.errors import friendly_error
from ui.folders import resolve_rebuild_folder
from ui.server import is_loopback, parse_auth, serve


def nvidia_reply(messages) -> str:
    """Cite whichever passage holds the Nvidia article, as a good model would."""
    m = re.search(r'<passage n="(\d+)" title="Nvidia', messages[-1]["content"])
    n = m.group(1) if m else "1"
    return f"On 27 January 2025 the share price of Nvidia fell about 17 percent [{n}]."


def make_rag(tmp_path: Path, generator=None, embedder=None, build: bool = True, **ui) -> RAG:
    overrides = {
        "index.path": str(tmp_path / "index"),
        "ui.rewrite": "heuristic",
        **{f"ui.{k}": v for k, v in ui.items()},
    }
    rag = RAG(
        Config.load(None, overrides),
        embedder=embedder or FakeEmbedder(),
        generator=generator or FakeGenerator(nvidia_reply),
    )
    if build:
        rag.build(write_articles(tmp_path / "articles"))
    return rag


def run(ui: ChatUI, question: str, chat=None, session=None, top_k=3, temperature=0.0, max_new_tokens=64):
    """All yields of one respond() call; returns (list of yields, final chat, final session, final sources)."""
    steps = list(ui.respond(question, chat, session, top_k, temperature, max_new_tokens))
    chat, session, sources, box = steps[-1]
    assert box == ""
    return steps, chat, session, sources


def texts(chat) -> list[str]:
    return [m["content"] for m in chat]


# -- rendering -------------------------------------------------------------------------
def test_answer_markers_become_links_to_their_sources():
    md = render.answer_markdown("Nvidia fell 17% [1]. Also [1, 3] and [9].", 2, {1, 3})
    assert "[\\[1\\]](#src-2-1)" in md
    assert "[\\[1\\]](#src-2-1)[\\[3\\]](#src-2-3)" in md
    assert "#src-2-9" not in md and "\\[9\\]" in md  # no such passage: plain text, no dead link


def test_weak_markers_carry_a_warning_sign():
    md = render.answer_markdown("A [1]. B [2].", 1, {1, 2}, weak={2})
    assert "[\\[1\\]](#src-1-1)." in md  # supported: the plain link, no sign
    assert f'[\\[2\\]](#src-1-2)[⚠](#src-1-2 "{render.WEAK_MARK_TITLE}")' in md


def test_chat_marks_a_weakly_supported_citation(tmp_path):
    """Through ChatUI and the real citation checker: a loosely matching claim gets the ⚠ sign."""
    rag = make_rag(tmp_path, generator=FakeGenerator("Shares of Nvidia dropped after the new chip rules [1]."))
    # It gives no number for "how much", so it would not lead; turned off here to show the mark.
    rag.config = rag.config.model_copy(
        update={
            "evidence": rag.config.evidence.model_copy(update={"draft_must_answer": False, "draft_must_agree": False})
        }
    )
    _, chat, _, sources = run(ChatUI(rag), "How much did Nvidia shares fall?")
    assert "[⚠](#src-1-1" in texts(chat)[-1]
    assert "weakly supported by this passage" in sources
    rag = make_rag(
        tmp_path / "supported",
        generator=FakeGenerator("Nvidia shares fell 17% on 27 January 2025, close to 600 billion dollars [1]."),
    )
    _, chat, _, _ = run(ChatUI(rag), "How much did Nvidia shares fall?")
    assert "(#src-1-1)" in texts(chat)[-1] and "⚠" not in texts(chat)[-1]


def test_model_output_cannot_inject_html_or_links():
    md = render.answer_markdown(
        '<img src=x onerror="alert(1)"> see [here](javascript:alert(1)) ![x](http://e/x.png) [1]', 1, {1}
    )
    assert "<img" not in md and "&lt;img" in md
    assert "](javascript" not in md and "![" not in md
    assert "(#src-1-1)" in md


def test_article_fields_are_escaped_in_sources(tmp_path):
    """Articles are untrusted: a title or passage with markup must show as text, never run."""
    hostile = {
        "evil.md": "# <script>alert('t')</script> Nvidia title\nDate: <b>2025</b>\n\nNvidia <img src=x onerror=alert(1)> fell 17 percent on 27 January 2025.\n"
    }
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "idx")}),
        embedder=FakeEmbedder(),
        generator=FakeGenerator("Nvidia fell 17 percent [1]."),
    )
    rag.build(write_articles(tmp_path / "a", hostile))
    answer = rag.ask("How far did Nvidia fall?")
    html = render.answer_section(1, answer, answer.question)
    assert "<script>" not in html and "<img" not in html and "<b>2025" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert 'id="src-1-1"' in html


def test_verifier_verdicts_and_notes_are_shown(tmp_path):
    """When the pipeline marks a citation weak/unsupported or adds notes, the reader sees it."""
    from dataclasses import replace
    from types import SimpleNamespace

    rag = make_rag(tmp_path)
    answer = rag.ask("How much did Nvidia shares fall?")
    fake = replace(answer, citations=[replace(c, status="weak") for c in answer.citations])
    html = render.answer_section(1, fake, answer.question)
    assert "weakly supported by this passage" in html

    class NotedRAG:
        def __init__(self, inner):
            self.inner, self.config = inner, inner.config

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def stream_events(self, *a, **kw):
            for event in self.inner.stream_events(*a, **kw):
                if event.kind == "done":
                    event = SimpleNamespace(
                        kind="done", answer=replace(event.answer, notes=["extractive answer: <b>model down</b>"])
                    )
                yield event

    ui = ChatUI(NotedRAG(rag))
    _, chat, _, _ = run(ui, "How much did Nvidia shares fall?")
    how = chat[-1]["content"].split('<details class="rag-how">', 1)[1]
    assert "<li>extractive answer: &lt;b&gt;model down&lt;/b&gt;</li>" in how


def test_unsafe_urls_are_not_linked():
    assert render._safe_url("javascript:alert(1)") is None
    assert render._safe_url("https://example.com/a") == "https://example.com/a"


def test_sources_panel_puts_latest_first_and_collapses_earlier():
    panel = render.sources_panel([("first <q>?", "<section>one</section>"), ("second?", "<section>two</section>")])
    assert panel.index("two") < panel.index("one")
    assert '<details class="rag-earlier"><summary>Earlier: first &lt;q&gt;?</summary><section>one' in panel
    assert render.sources_panel([]) == render.SOURCES_PLACEHOLDER


# -- chat ------------------------------------------------------------------------------
def test_the_answer_is_shown_once_checked_and_never_taken_back(tmp_path):
    """While the model writes, the answer's place says "checking"; then the checked answer (lead, the articles'
    quotes under it, how it was made collapsed) replaces that line, and nothing of the draft was ever shown."""
    ui = ChatUI(make_rag(tmp_path, generator=FakeGenerator(nvidia_reply, piece=4)))
    question = "How much did Nvidia shares fall on 27 January 2025?"
    # The chat list is updated in place: read what each step shows as it is yielded.
    answers = [
        step[0][-1]["content"]
        for step in ui.respond(question, None, None, 3, 0.0, 64)
        if step[0][-1]["role"] == "assistant"
    ]
    shown = list(dict.fromkeys(answers))
    steps, chat, session, sources = run(ui, question)
    assert shown[0] == render.CHECKING and len(shown) == 2, shown
    assert texts(chat)[0] == "How much did Nvidia shares fall on 27 January 2025?"
    final = chat[-1]["content"]
    assert (
        final.index("**")
        < final.index('<span class="rag-quotes">From the articles:')
        < final.index('<details class="rag-how">')
    )
    assert "17 percent" in final and re.search(r"\(#src-1-\d\)", final)
    n = re.search(r"#src-1-(\d)", final).group(1)
    cited = re.search(rf'<li class="rag-source" id="src-1-{n}".*?</li>', sources, re.S).group(0)
    assert "Nvidia shares plunge after the DeepSeek launch" in cited
    assert "markets/nvidia.txt" in cited and "2025-01-27" in cited and re.search(r"relevance (0\.\d\d|1\.00)<", cited)
    assert '<details class="rag-uncited"><summary>Retrieved but not cited (2)</summary>' in sources
    assert session["turns"][0].question.startswith("How much did Nvidia")


def test_sources_show_retrieved_passages_while_streaming(tmp_path):
    ui = ChatUI(make_rag(tmp_path))
    steps, *_ = run(ui, "How much did Nvidia shares fall?")
    assert any("Retrieved passages (answer in progress)" in s[2] for s in steps)


def test_follow_up_shows_the_rewritten_query(tmp_path):
    gen = FakeGenerator(nvidia_reply)
    ui = ChatUI(make_rag(tmp_path, generator=gen))
    _, chat, session, _ = run(ui, "How much did Nvidia shares fall on 27 January 2025?")
    _, chat, session, sources = run(ui, "and why did it fall?", chat, session)
    shown = [t for t in texts(chat) if "searched for" in t]
    assert len(shown) == 1 and "Why did Nvidia fall?" in shown[0]
    assert session["turns"][1].query == "Why did Nvidia fall?"
    assert "searched for: <em>Why did Nvidia fall?</em>" in sources
    # Evidence-first: the model sees the standalone question the evidence was chosen for.
    assert "Question: Why did Nvidia fall?" in gen.calls[-1][-1]["content"]
    assert sources.count('class="rag-earlier"') == 1


def test_first_question_shows_no_rewrite(tmp_path):
    ui = ChatUI(make_rag(tmp_path))
    _, chat, _, _ = run(ui, "and why did it fall?")
    assert not any("searched for" in t for t in texts(chat))


def test_reasoning_goes_to_a_collapsed_accordion_not_the_answer(tmp_path):
    gen = FakeGenerator(lambda m: "<think>Passage about Nvidia says 17 percent.</think>" + nvidia_reply(m), piece=5)
    ui = ChatUI(make_rag(tmp_path, generator=gen))
    steps, chat, _, _ = run(ui, "How much did Nvidia shares fall?")
    thought = [m for m in chat if m.get("metadata")]
    assert len(thought) == 1
    assert thought[0]["metadata"]["title"] == "Reasoning" and thought[0]["metadata"]["status"] == "done"
    assert "17 percent" in thought[0]["content"]
    assert "Passage about" not in chat[-1]["content"] and "think" not in chat[-1]["content"]
    streaming = [m for s in steps for m in s[0] if m.get("metadata")]
    assert all(m["metadata"]["status"] == "done" for m in streaming), "must stay collapsed while streaming"


def test_clear_starts_a_fresh_conversation(tmp_path):
    ui = ChatUI(make_rag(tmp_path))
    chat, session, sources, box = ui.clear()
    assert chat == [] and session["turns"] == [] and sources == render.SOURCES_PLACEHOLDER and box == ""


def test_unsupported_draft_shows_the_evidence_and_says_why(tmp_path):
    ui = ChatUI(make_rag(tmp_path, generator=FakeGenerator("Bananas are yellow and grow in bunches [1].")))
    _, chat, _, sources = run(ui, "How much did Nvidia shares fall?")
    answer, note = chat[-1]["content"].split("draft was not used", 1)
    assert answer.startswith("On 27 January 2025") and "Bananas" not in answer
    assert "Bananas" in note  # the note names what the passage lacks


# -- failures ----------------------------------------------------------------------------
def test_empty_index_is_a_chat_message(tmp_path):
    """No index yet: a readable message in the chat, not an exception."""
    ui = ChatUI(make_rag(tmp_path, build=False))
    _, chat, _, _ = run(ui, "How much did Nvidia shares fall?")
    assert "There is no index yet" in chat[-1]["content"] and "Rebuild index from folder" in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"]
    assert "no index at" in ui.status().lower()


def test_generator_crash_is_a_chat_message_and_the_next_question_works(tmp_path):
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return nvidia_reply(messages)

    ui = ChatUI(make_rag(tmp_path, generator=FakeGenerator(flaky)))
    _, chat, session, _ = run(ui, "How much did Nvidia shares fall?")
    assert "Something went wrong while answering (RuntimeError: CUDA out of memory (simulated))" in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"]
    _, chat, _, _ = run(ui, "How much did Nvidia shares fall?", chat, session)
    assert "17 percent" in chat[-1]["content"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ((0, 0.0, 64), "top-k must be a whole number from 1 to 20, got 0"),
        ((3, 2.5, 64), "temperature must be a number from 0 to 2.0, got 2.5"),
        ((3, 0.0, 99999), "max new tokens must be a whole number from 1 to 1024, got 99999"),
        ((2.5, 0.0, 64), "top-k must be a whole number from 1 to 20, got 2.5"),
    ],
)
def test_bad_settings_are_chat_messages(tmp_path, settings, message):
    ui = ChatUI(make_rag(tmp_path, build=False))
    _, chat, _, _ = run(ui, "Why did Nvidia fall?", None, None, *settings)
    assert message in chat[-1]["content"]


def test_the_cautious_box_declines_what_balanced_answers(tmp_path, monkeypatch):
    """The side panel's Cautious box reaches the pipeline as evidence.abstention for that question."""
    from rag.config import CALIBRATED_ANSWERABILITY
    from rag.answering.prompting import NOT_FOUND

    rag = make_rag(tmp_path)
    monkeypatch.setitem(CALIBRATED_ANSWERABILITY, rag.embedder.name, {"balanced": 0.0, "cautious": 0.999})
    ui = ChatUI(rag)
    _, chat, _, _ = run(ui, "How much did Nvidia shares fall?")
    assert "17 percent" in texts(chat)[-1]
    *_, (chat, _, _, _) = ui.respond("How much did Nvidia shares fall?", None, None, 3, 0.0, 64, True)
    assert NOT_FOUND in texts(chat)[-1]
    *_, (chat, _, _, _) = ui.respond("How much did Nvidia shares fall?", None, None, 3, 0.0, 64, "yes")
    assert "cautious must be true or false, got &#x27;yes&#x27;" in texts(chat)[-1]


def test_too_long_question_is_refused(tmp_path):
    ui = ChatUI(make_rag(tmp_path, build=False, max_question_chars=50))
    _, chat, _, _ = run(ui, "x" * 51)
    assert "the limit is 50 (ui.max_question_chars)" in chat[-1]["content"]


def test_empty_message_changes_nothing(tmp_path):
    ui = ChatUI(make_rag(tmp_path, build=False))
    steps, chat, _, _ = run(ui, "   ")
    assert chat == [] and len(steps) == 1


def test_friendly_error_never_includes_a_traceback():
    try:
        raise KeyError("x" * 1000)
    except KeyError as exc:
        msg = friendly_error(exc)
    assert "Traceback" not in msg and len(msg) < 500 and msg.startswith("Something went wrong")


def test_check_settings_accepts_slider_floats():
    assert check_settings(4.0, "0.5", 128.0, max_top_k=20, max_tokens=1024) == (4, 0.5, 128)


class CountingPart:
    """A model stand-in whose warm_up records how many loads run at once."""

    def __init__(self, state):
        self.state = state
        self.name = "part"

    def warm_up(self):
        with self.state["lock"]:
            self.state["now"] += 1
            self.state["max"] = max(self.state["max"], self.state["now"])
            self.state["loads"] += 1
        time.sleep(0.05)
        with self.state["lock"]:
            self.state["now"] -= 1


def test_models_load_once_and_never_at_the_same_time(tmp_path):
    """Concurrent transformers loads corrupted SmolLM2's tied embeddings: loads must be serial."""
    state = {"lock": threading.Lock(), "now": 0, "max": 0, "loads": 0}
    embedder = FakeEmbedder()
    embedder.warm_up = CountingPart(state).warm_up
    ui = ChatUI(make_rag(tmp_path, generator=CountingPart(state), embedder=embedder, build=False))
    threads = [threading.Thread(target=ui.ensure_loaded) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max"] == 1 and state["loads"] == 2


# -- rebuild -------------------------------------------------------------------------------
@pytest.fixture
def roots(tmp_path):
    allowed = tmp_path / "allowed"
    write_articles(allowed / "articles")
    outside = write_articles(tmp_path / "outside")
    return allowed, outside


def test_rebuild_folder_inside_allowed_root_is_accepted(roots):
    allowed, _ = roots
    assert resolve_rebuild_folder("articles", [allowed], base=allowed) == (allowed / "articles").resolve()
    assert resolve_rebuild_folder(str(allowed), [allowed]) == allowed.resolve()


@pytest.mark.parametrize(
    "typed, message",
    [
        ("missing", "does not exist"),
        ("../outside", "is outside the allowed folders"),
        ("articles/../../outside", "is outside the allowed folders"),
        ("/etc", "is outside the allowed folders"),
        ("", "enter the folder of articles"),
        ("articles/r1.md", "is a file, not a folder"),
    ],
)
def test_rebuild_folder_rejections(roots, typed, message):
    allowed, _ = roots
    with pytest.raises(ValueError, match=message):
        resolve_rebuild_folder(typed, [allowed.resolve()], base=allowed)


def test_symlink_pointing_outside_is_rejected(roots):
    """A link inside the allowed root must not lead the rebuild outside it."""
    allowed, outside = roots
    (allowed / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="through a symbolic link"):
        resolve_rebuild_folder("sneaky", [allowed.resolve()], base=allowed)


def test_outside_paths_are_refused_before_looking_them_up(roots):
    """The message for an outside path must not reveal whether it exists."""
    allowed, _ = roots
    with pytest.raises(ValueError) as a:
        resolve_rebuild_folder("/definitely/not/here", [allowed.resolve()])
    with pytest.raises(ValueError) as b:
        resolve_rebuild_folder("/etc", [allowed.resolve()])
    assert "outside" in str(a.value) and "outside" in str(b.value)


def test_rebuild_rejection_is_shown_and_keeps_the_index(tmp_path, roots):
    allowed, outside = roots
    rag = make_rag(tmp_path)
    before = rag.info()["built_at"]
    ui = ChatUI(rag, allowed_roots=[allowed])
    msg, status = ui.rebuild(str(outside))
    assert "outside the allowed folders" in msg and "Error:" in msg
    assert rag.info()["built_at"] == before and "Articles" in status


def test_rebuild_switches_index_and_reports(tmp_path, roots):
    allowed, _ = roots
    rag = make_rag(tmp_path)
    write_articles(allowed / "more", {"extra.md": "# Extra article\n\nSomething new about Nvidia and 17 percent.\n"})
    ui = ChatUI(rag, allowed_roots=[allowed])
    msg, status = ui.rebuild(str(allowed))
    assert "Indexed 4 articles" in msg and "<td>4</td>" in status


class SlowEmbedder(FakeEmbedder):
    """Blocks encode() in the thread named "rebuild" until released, to hold a rebuild mid-way."""

    def __init__(self):
        super().__init__()
        self.block = threading.Event()
        self.entered = threading.Event()

    def encode(self, texts, show_progress=False):
        if threading.current_thread().name == "rebuild":
            self.entered.set()
            self.block.wait(30)
        return super().encode(texts, show_progress)


def test_chat_keeps_working_during_a_rebuild(tmp_path, roots):
    allowed, _ = roots
    emb = SlowEmbedder()
    rag = make_rag(tmp_path, embedder=emb)
    ui = ChatUI(rag, allowed_roots=[allowed])
    # New text, so the (incremental) build has something to embed.
    write_articles(
        allowed / "fresh", {"new.md": "# A new article\n\nNvidia shares recovered part of the loss the next day.\n"}
    )
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", ui.rebuild(str(allowed))), name="rebuild")
    t.start()
    assert emb.entered.wait(10)
    try:
        assert "Rebuilding" in ui.status()
        msg, _ = ui.rebuild(str(allowed))
        assert "already running" in msg
        _, chat, _, _ = run(ui, "How much did Nvidia shares fall?")
        assert "17 percent" in chat[-1]["content"]
    finally:
        emb.block.set()
        t.join(30)
    assert "Indexed" in result["r"][0]


# -- safe defaults -------------------------------------------------------------------------
def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_parse_auth():
    assert parse_auth("alice:pa:ss") == ("alice", "pa:ss")
    assert parse_auth(None) is None
    with pytest.raises(ValueError, match="USER:PASSWORD"):
        parse_auth("alice")


def test_public_host_without_auth_refuses_to_start(monkeypatch, capsys):
    monkeypatch.delenv("RAG_UI_AUTH", raising=False)
    assert serve(host="0.0.0.0") == 2
    err = capsys.readouterr().err
    assert "refusing to serve on '0.0.0.0' without authentication" in err and "RAG_UI_AUTH" in err


def test_bad_auth_refuses_to_start(monkeypatch, capsys):
    monkeypatch.setenv("RAG_UI_AUTH", "nopassword")
    assert serve(host="0.0.0.0") == 2
    assert "USER:PASSWORD" in capsys.readouterr().err


def test_analytics_are_off():
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_serve_help_mentions_auth_for_other_hosts():
    from rag.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["serve"]
    text = sub.format_help()
    assert "127.0.0.1" in text and "RAG_UI_AUTH" in text and "--auth" in text


# -- the API endpoint through gradio_client --------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """The real Gradio app over fakes, listening on a free loopback port."""
    calls = {"n": 0}

    def reply(messages):
        calls["n"] += 1
        if "CRASH" in messages[-1]["content"]:
            raise RuntimeError("simulated crash")
        return nvidia_reply(messages)

    ui = ChatUI(make_rag(tmp_path, generator=FakeGenerator(reply)), allowed_roots=[tmp_path / "articles"])
    demo = build_app(ui).queue()
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False, ssr_mode=False
    )
    try:
        yield f"http://127.0.0.1:{port}/", ui
    finally:
        demo.close()


def test_api_ask_returns_answer_and_citations_as_json(served):
    from gradio_client import Client

    url, ui = served
    client = Client(url, verbose=False)
    result = client.predict("How much did Nvidia shares fall on 27 January 2025?", api_name="/ask")
    assert set(result) >= {
        "question",
        "answer",
        "citations",
        "passages",
        "query",
        "reasoning",
        "rewritten",
        "lead",
        "lead_span",
    }
    assert "17 percent" in result["answer"] and re.search(r"\[\d\]", result["answer"])
    a, b = result["lead_span"]
    assert result["answer"].startswith(result["lead"]) and result["lead"][a:b] == "17 percent"
    cite = result["citations"][0]
    assert set(cite) >= {"n", "title", "source", "snippet", "date"}
    assert cite["title"] == "Nvidia shares plunge after the DeepSeek launch"
    assert all(set(p) >= {"n", "title", "source", "score", "text"} for p in result["passages"])
    follow = client.predict(
        "and why did it fall?", api_name="/ask", history=[{"question": result["question"], "answer": result["answer"]}]
    )
    assert follow["rewritten"] is True and follow["query"] == "Why did Nvidia fall?"
    # The API's cautious flag: the fakes' calibration declines everything when cautious.
    from rag.config import CALIBRATED_ANSWERABILITY

    CALIBRATED_ANSWERABILITY[ui.rag.embedder.name] = {"balanced": 0.0, "cautious": 0.999}
    try:
        assert client.predict("How much did Nvidia shares fall?", cautious=True, api_name="/ask")["mode"] == "declined"
        assert client.predict("How much did Nvidia shares fall?", cautious=False, api_name="/ask")["mode"] != "declined"
    finally:
        del CALIBRATED_ANSWERABILITY[ui.rag.embedder.name]


def test_api_errors_are_messages_and_the_server_keeps_answering(served):
    from gradio_client import Client

    url, _ = served
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="simulated crash") as info:
        client.predict("CRASH please", api_name="/ask")
    assert "Traceback" not in str(info.value)
    with pytest.raises(Exception, match="top-k must be a whole number"):
        client.predict("Why did Nvidia fall?", top_k=0, api_name="/ask")
    chat, sources, _ = client.predict("CRASH again", api_name="/chat")
    assert "Something went wrong" in str(chat[-1]["content"])
    assert "17 percent" in client.predict("How much did Nvidia shares fall?", api_name="/ask")["answer"]


def test_api_rebuild_outside_allowed_roots_is_refused(served, tmp_path):
    from gradio_client import Client

    url, _ = served
    client = Client(url, verbose=False)
    message, status = client.predict("/etc", api_name="/rebuild")
    assert "outside the allowed folders" in message
    assert "<td>3</td>" in status


def test_rag_serve_refuses_public_host_without_auth(tmp_path):
    """Through the real command line: exit status 2 and a message, no server."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAG_UI_AUTH"}
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--host", "0.0.0.0", "--index", str(tmp_path / "idx")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "without authentication" in proc.stderr and "RAG_UI_AUTH=user:password" in proc.stderr


def test_rag_serve_with_auth_requires_the_login(tmp_path):
    """RAG_UI_AUTH is enforced: the API answers with the login and refuses without it."""
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "RAG_UI_AUTH": "alice:s3cret"}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--index", str(tmp_path / "idx")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        status = Client(url, auth=("alice", "s3cret"), verbose=False).predict(api_name="/status")
        assert "no index at" in status
        # Without a login the app's config is refused, so the client cannot even connect.
        with pytest.raises(
            ValueError, match=r"Could not load http://127\.0\.0\.1:\d+/ as credentials were not provided"
        ):
            Client(url, verbose=False).predict(api_name="/status")
        with pytest.raises(ValueError, match=r"^Could not login to http://127\.0\.0\.1:\d+/\.$"):
            Client(url, auth=("alice", "wrong"), verbose=False)
        import httpx

        assert (
            httpx.post(url + "login", data={"username": "alice", "password": "wrong"}).text
            == '{"detail":"Incorrect credentials."}'
        )
        assert httpx.post(url + "login", data={"username": "alice", "password": "s3cret"}).status_code == 200
        forbidden = urllib.request.Request(url + "gradio_api/info")
        with pytest.raises(urllib.error.HTTPError, match="HTTP Error 401"):
            urllib.request.urlopen(forbidden, timeout=5)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


# -- odd rebuild paths and what the page is shown (issue 16) ----------------------------------
@pytest.mark.parametrize(
    "typed, message",
    [
        ("n" * 300, r"cannot be opened \(File name too long\)"),
        ("d/" * 1500, r"… \(3000 characters\) does not exist"),
        ("d/" * 3000, r"the folder is 6000 characters long; the limit is 4096"),
        ("a\ud800b", r"the folder holds an invalid character \('\\ud800' at position 1"),
        (None, "enter the folder of articles"),
        (12, "the folder must be text, got int"),
    ],
)
def test_odd_rebuild_folders_are_messages(roots, typed, message):
    """A 300-character name, 3,000 levels or a surrogate raised OSError/UnicodeEncodeError; now each is an InputError."""
    from rag import InputError

    allowed, _ = roots
    with pytest.raises(InputError, match=message) as info:
        resolve_rebuild_folder(typed, [allowed.resolve()], base=allowed)
    assert len(str(info.value)) < 600, "a refused name is cut, not echoed whole"


def test_unreadable_link_in_the_root_is_a_message(roots, monkeypatch):
    """A link the server may not read (/proc/1/root as a user) raised PermissionError from realpath."""
    from rag import InputError

    allowed = roots[0].resolve()

    def denied(path, *a, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("ui.folders.os.path.realpath", denied)
    with pytest.raises(InputError, match=r"cannot be opened \(Permission denied\)"):
        resolve_rebuild_folder("articles", [allowed], base=allowed)


def test_page_messages_name_folders_relative_to_the_start_folder(tmp_path):
    from ui.folders import PathDisplay

    display = PathDisplay(tmp_path / "work", [tmp_path / "store" / "index"])
    assert display.show(tmp_path / "work" / "data" / "articles") == "data/articles"
    assert display.show(tmp_path / "store" / "index" / "gen-1" / "chunks.sqlite") == "…/index/gen-1/chunks.sqlite"
    assert display.show(tmp_path / "elsewhere" / "x") == "…/x"
    msg = display.redact(f"no index at '{tmp_path / 'store' / 'index'}'; look in {tmp_path / 'work' / 'data'}")
    assert msg == "no index at '…/index'; look in data" and str(tmp_path) not in msg


def test_every_user_facing_error_of_rag_is_a_rag_error():
    """The UI and the CLI show RagError messages as they are; each of rag's own errors must be one."""
    from rag import (
        BuildError,
        ConfigError,
        GeneratorError,
        IndexCorruptError,
        IndexMismatchError,
        IndexNotFoundError,
        InputError,
        RagError,
    )
    from rag.indexing.errors import BuildLockedError, DiskFullError
    from rag.retrieval.keyword import KeywordIndexError
    from rag.evaluation.qa import QAFormatError
    from ui.errors import friendly_error

    for cls in (
        BuildError,
        BuildLockedError,
        ConfigError,
        DiskFullError,
        GeneratorError,
        IndexCorruptError,
        IndexMismatchError,
        IndexNotFoundError,
        InputError,
        KeywordIndexError,
        QAFormatError,
    ):
        assert issubclass(cls, RagError), cls
    assert issubclass(ConfigError, ValueError) and issubclass(IndexNotFoundError, FileNotFoundError)
    assert (
        friendly_error(QAFormatError("line 3 of qa.jsonl is not JSON; fix the line"))
        == "line 3 of qa.jsonl is not JSON; fix the line"
    )


def test_status_and_page_name_the_model_and_warn_once_for_the_135m_fallback(served):
    """The real server: /status names the model; the page says once, in plain words, that the 135M model mostly quotes."""
    import httpx
    from gradio_client import Client

    from rag import FALLBACK_WARNING

    url, _ = served
    assert "SmolLM2-135M-Instruct (packaged" in Client(url, verbose=False).predict(api_name="/status")
    page = httpx.get(url).text
    assert (
        page.count("answers are mostly quoted from the articles") == 1
        and "rag model pull qwen2.5-1.5b" in FALLBACK_WARNING
    )


def test_no_fallback_warning_for_a_real_model(tmp_path):
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "generation.model": "qwen2.5-1.5b"}),
        embedder=FakeEmbedder(),
        generator=FakeGenerator(nvidia_reply),
    )
    rag.build(write_articles(tmp_path / "articles"))
    ui = ChatUI(rag)
    assert ui.model.warning == "" and "qwen2.5-1.5b (Qwen2.5-1.5B-Instruct-Q4_K_M.gguf" in ui.status()
    assert "model-warning" not in str(build_app(ui).config)
