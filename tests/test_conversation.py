"""Tests for rag/conversation.py and rag/rewriting.py: follow-ups rewritten into standalone queries, and the Conversation that uses them."""

from __future__ import annotations

import pytest
from fakes import FakeGenerator

from rag import QueryRewriter, Rewrite, Turn, heuristic_rewrite, is_follow_up
from rag.conversation import accept_model_rewrite, names_in, rewrite_messages, subject_of

R1 = Turn(
    "When did DeepSeek release R1, and under which licence?",
    "DeepSeek released R1 on 20 January 2025 under the MIT licence [1].",
)
NVIDIA = Turn(
    "How much market value did Nvidia lose on 27 January 2025?", "Nvidia lost $589 billion in a single session [1]."
)
V3 = Turn(
    "What did the DeepSeek-V3 technical report say the final training run cost?", "The report said $5.6 million [1]."
)


@pytest.mark.parametrize(
    "question",
    [
        "and how much did it cost?",
        "What about V3?",
        "why did its shares fall?",
        "Did they recover?",
        "Why?",
        "how about the licence?",
    ],
)
def test_follow_ups_are_detected(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "How much market value did Nvidia lose?",
        "Who is Liang Wenfeng?",
        "When did DeepSeek release R1?",
        "What is GRPO in DeepSeek-R1 training?",
    ],
)
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert QueryRewriter(mode="heuristic").rewrite(question, [R1]) == Rewrite(question, "unchanged")


def test_names_in_joins_adjacent_names_and_splits_possessives():
    assert names_in("Liang Wenfeng founded High-Flyer in Hangzhou; DeepSeek's H800 GPUs") == [
        "Liang Wenfeng",
        "High-Flyer",
        "Hangzhou",
        "DeepSeek",
        "H800 GPUs",
    ]
    assert names_in("When did it happen?") == []


def test_it_is_resolved_to_the_previous_subject():
    assert heuristic_rewrite("and how much did it cost?", [V3]) == "How much did DeepSeek-V3 cost?"
    assert heuristic_rewrite("why did its shares fall?", [NVIDIA]) == "Why did Nvidia's shares fall?"


def test_subject_skips_dates():
    """A date is not what "it" refers to: "27 January 2025" must not become the subject."""
    assert subject_of([NVIDIA]) == ["Nvidia"]
    assert heuristic_rewrite("did it recover?", [NVIDIA]) == "Did Nvidia recover?"


def test_what_about_swaps_the_subject():
    assert heuristic_rewrite("What about V3?", [R1]) == "When did DeepSeek release V3, and under which licence?"
    assert heuristic_rewrite("what about AMD?", [NVIDIA]) == "How much market value did AMD lose on 27 January 2025?"


def test_unresolvable_follow_up_gets_context_appended():
    assert heuristic_rewrite("who founded the company?", [R1]) == "Who founded the company? (context: DeepSeek, R1)"
    assert heuristic_rewrite("Did they recover later?", [NVIDIA]) == "Did they recover later? (context: Nvidia)"


def test_subject_comes_from_the_latest_standalone_query():
    """A second follow-up must build on the rewritten query, not on the bare follow-up text."""
    second = Turn("and how much did it cost?", "About $5.6 million [2].", query="How much did DeepSeek-V3 cost?")
    assert heuristic_rewrite("was it open source?", [V3, second]) == "Was DeepSeek-V3 open source?"


def test_subject_falls_back_to_the_answer():
    turn = Turn("who founded the lab?", "Liang Wenfeng founded it in 2023 [1].")
    assert subject_of([turn]) == ["Liang Wenfeng"]


def test_no_history_means_no_rewrite():
    rewriter = QueryRewriter(FakeGenerator("Should not be called?"))
    assert rewriter.rewrite("and how much did it cost?", []) == Rewrite("and how much did it cost?", "unchanged")
    assert rewriter.generator.calls == []


FOUNDER_FALLBACK = Rewrite("Who founded the company? (context: DeepSeek, R1)", "heuristic")


def test_model_rewrite_is_used_when_no_rule_applies_and_it_checks_out():
    gen = FakeGenerator("Who founded DeepSeek?\nExtra line")
    result = QueryRewriter(gen, mode="auto").rewrite("who founded the company?", [R1])
    assert result == Rewrite("Who founded DeepSeek?", "model")
    prompt = gen.calls[0][-1]["content"]
    assert "Follow-up: who founded the company?" in prompt and "DeepSeek" in prompt


def test_model_is_not_asked_when_a_rule_resolves_the_reference():
    """A rewrite costs a whole generation; "it" -> the subject needs none."""
    gen = FakeGenerator("How much did the DeepSeek-V3 final training run cost?")
    assert QueryRewriter(gen, mode="auto").rewrite("and how much did it cost?", [V3]) == Rewrite(
        "How much did DeepSeek-V3 cost?", "heuristic"
    )
    assert gen.calls == []


@pytest.mark.parametrize(
    "reply",
    [
        "Who founded the company?",  # echo: names nothing from the conversation
        "What a great question! Let's dive in.",  # chatter: no word of the follow-up
        "When did DeepSeek release R1, and under which licence?",  # the previous question again
        "DeepSeek was founded by Liang Wenfeng.",  # an answer, not a question
        "When was DeepSeek founded?",  # asks "when" for a "who" question
        "",
    ],
)
def test_bad_model_rewrites_fall_back_to_the_heuristic(reply):
    result = QueryRewriter(FakeGenerator(reply), mode="auto").rewrite("who founded the company?", [R1])
    assert result == FOUNDER_FALLBACK


def test_failing_model_falls_back_to_the_heuristic():
    """A crashing rewrite must not cost the user the answer."""
    result = QueryRewriter(FakeGenerator(fail=RuntimeError("boom")), mode="auto").rewrite(
        "who founded the company?", [R1]
    )
    assert result == FOUNDER_FALLBACK


def test_heuristic_and_off_modes_never_call_the_model():
    gen = FakeGenerator("Who founded DeepSeek?")
    assert QueryRewriter(gen, mode="heuristic").rewrite("who founded the company?", [R1]) == FOUNDER_FALLBACK
    assert QueryRewriter(gen, mode="off").rewrite("who founded the company?", [R1]) == Rewrite(
        "who founded the company?", "unchanged"
    )
    assert gen.calls == []


def test_bad_mode_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"rewrite mode must be one of \['auto', 'heuristic', 'off'\], got 'smart'"):
        QueryRewriter(mode="smart")


def test_accept_strips_labels_and_quotes():
    assert (
        accept_model_rewrite('Standalone question: "Did Nvidia recover?"', "did it recover?", [NVIDIA])
        == "Did Nvidia recover?"
    )
    assert accept_model_rewrite("Did Nvidia recover [1]?", "did it recover?", [NVIDIA]) is None


def test_rewrite_prompt_uses_last_two_turns_without_markers():
    turns = [R1, NVIDIA, V3]
    content = rewrite_messages("and how much did it cost?", turns)[-1]["content"]
    assert R1.question not in content and NVIDIA.question in content and V3.question in content
    assert "[1]" not in content


@pytest.mark.slow
def test_real_model_rewrite_names_the_subject(real_generator):
    """Through SmolLM2 (greedy, so deterministic): the model's rewrite is accepted and names the subject.

    The heuristic fallback ("Who founded the company? (context: DeepSeek, R1)") also names
    DeepSeek, so the method and the exact query are what tell a model rewrite from it.
    """
    result = QueryRewriter(real_generator, mode="auto").rewrite("who founded the company?", [R1])
    assert result != FOUNDER_FALLBACK, "the model's rewrite was rejected; the heuristic answered"
    assert result == Rewrite("Who founded DeepSeek?", "model")


# -- Conversation: the library object the UI, rag chat and Python callers share --------------------
NVIDIA_Q = "How much did Nvidia shares fall on 27 January 2025?"


def nvidia_reply(messages) -> str:
    import re

    m = re.search(r'<passage n="(\d+)" title="Nvidia', messages[-1]["content"])
    return f"On 27 January 2025 the share price of Nvidia fell about 17 percent [{m.group(1) if m else 1}]."


@pytest.fixture
def rag_over_articles(tmp_path):
    from conftest import write_articles
    from fakes import FakeEmbedder

    from rag import RAG, Config

    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "ui.rewrite": "heuristic"}),
        embedder=FakeEmbedder(),
        generator=FakeGenerator(nvidia_reply),
    )
    rag.build(write_articles(tmp_path / "articles"))
    return rag


def test_conversation_rewrites_a_follow_up_then_answers_the_standalone_question(rag_over_articles):
    from rag import Conversation

    chat = Conversation(rag_over_articles)
    first = chat.ask(NVIDIA_Q)
    assert "17 percent" in first.text and first.query == NVIDIA_Q
    events = list(chat.stream_events("and why did it fall?", top_k=3))
    assert [e.kind for e in events][:2] == ["rewritten", "retrieved"] and events[0].text == "Why did Nvidia fall?"
    follow = events[-1].answer
    assert follow.query == "Why did Nvidia fall?" and follow.question == "and why did it fall?"
    # Evidence-first: the model answers the standalone question the evidence was chosen for.
    assert "Question: Why did Nvidia fall?" in rag_over_articles.generator.calls[-1][-1]["content"]
    assert [t.query for t in chat.turns] == ["", "Why did Nvidia fall?"]
    chat.clear()
    assert chat.ask("and why did it fall?").query == "and why did it fall?", (
        "a cleared conversation has nothing to lean on"
    )


def test_conversation_records_a_turn_only_when_the_answer_finished(rag_over_articles):
    """A stream closed early (the browser went away) must not leave a half turn in the history."""
    from rag import Conversation

    chat = Conversation(rag_over_articles)
    stream = chat.stream_events(NVIDIA_Q)
    next(stream)
    stream.close()
    assert chat.turns == []


def test_python_api_and_the_ui_answer_a_follow_up_the_same_way(rag_over_articles):
    from rag import Conversation
    from ui.chat import ChatUI

    chat = Conversation(rag_over_articles)
    chat.ask(NVIDIA_Q)
    api = chat.ask("and why did it fall?", top_k=3)
    ui = ChatUI(rag_over_articles)
    _, session, _, _ = list(ui.respond(NVIDIA_Q, None, None, 3, 0.0, 64))[-1]
    page_chat, session, _, _ = list(ui.respond("and why did it fall?", None, session, 3, 0.0, 64))[-1]
    endpoint = ui.ask("and why did it fall?", top_k=3, history=[{"question": NVIDIA_Q, "answer": api.text}])
    assert session["turns"][-1].query == api.query == endpoint["query"] == "Why did Nvidia fall?"
    assert endpoint["answer"] == api.text and endpoint["rewritten"] is True
    assert "searched for: <em>Why did Nvidia fall?</em>" in str(page_chat)


@pytest.mark.parametrize(
    "question, message",
    [
        ("   ", "the question is empty"),
        ("x" * 2001, r"the question is 2001 characters long; the limit is 2000 \(ui.max_question_chars\)"),
        ("Why\ud800?", r"the question holds an invalid character \('\\ud800' at position 3"),
        (None, "the question is empty"),
    ],
)
def test_conversation_refuses_bad_questions_before_rewriting(rag_over_articles, question, message):
    from rag import Conversation, InputError, RagError

    chat = Conversation(rag_over_articles, turns=[NVIDIA])
    calls = len(rag_over_articles.generator.calls)
    with pytest.raises(InputError, match=message) as info:
        chat.ask(question)
    assert isinstance(info.value, RagError) and isinstance(info.value, ValueError)
    assert len(rag_over_articles.generator.calls) == calls


@pytest.mark.parametrize(
    "history, message",
    [
        (
            [{"question": "q" * 2001, "answer": "a"}],
            r"history\[0\]\.question is 2001 characters long; the limit is 2000",
        ),
        (
            [{"question": "q", "answer": "a" * 20_001}],
            r"history\[0\]\.answer is 20001 characters long; the limit is 20000",
        ),
        ([{"question": "q", "answer": "a"}] * 21, "history has 21 turns; the limit is 20"),
        ("not a list", "history must be a list"),
        ([["q", "a"]], r"history\[0\] must be an object"),
        ([{"question": 5}], r"history\[0\]\.question must be text, got int"),
        ([{"question": "q\udfff"}], r"history\[0\]\.question holds an invalid character"),
    ],
)
def test_history_from_callers_is_checked(history, message):
    """A 20,814-character history question went through /ask to the rewriter (issue 16)."""
    from rag import InputError
    from rag.conversation import turns_from_history

    with pytest.raises(InputError, match=message):
        turns_from_history(history, max_question_chars=2000)


def test_history_keeps_turns_with_a_question():
    from rag.conversation import turns_from_history

    turns = turns_from_history(
        [{"question": " Q ", "answer": "A", "query": "S", "extra": 1}, {"answer": "orphan"}], max_question_chars=50
    )
    assert turns == [Turn("Q", "A", "S")]


@pytest.mark.slow
def test_rag_chat_answers_a_follow_up_the_way_the_api_does(tmp_path, real_embedder):
    """Through the real command line (`rag chat --json`, piped), against the Python API on the same index."""
    import json
    import subprocess
    import sys

    from conftest import ROOT, write_articles
    from ui_launcher import ScriptedGenerator

    from rag import RAG, Config, Conversation

    config = tmp_path / "config.yaml"
    config.write_text("generation:\n  backend: ui-test\nui:\n  rewrite: auto\n", encoding="utf-8")
    index = tmp_path / "index"
    RAG(Config.load(config, {"index.path": str(index)}), embedder=real_embedder).build(
        write_articles(tmp_path / "articles")
    )
    launcher = [sys.executable, str(ROOT / "tests" / "ui_launcher.py")]
    proc = subprocess.run(
        [*launcher, "chat", "--json", "--config", str(config), "--index", str(index)],
        cwd=ROOT,
        input=f"{NVIDIA_Q}\n\nand why did it fall?\n" + "x" * 2001 + "\n/clear\nand why did it fall?\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["rewritten"] for r in lines] == [False, True, False], "after /clear nothing is rewritten"
    assert "error: the question is 2001 characters long; the limit is 2000 (ui.max_question_chars)" in proc.stderr

    chat = Conversation(
        RAG(Config.load(config, {"index.path": str(index)}), embedder=real_embedder, generator=ScriptedGenerator())
    )
    chat.ask(NVIDIA_Q)
    api = chat.ask("and why did it fall?")
    assert lines[1]["query"] == api.query == "Why did Nvidia fall?"
    assert lines[1]["answer"] == api.text and "17 percent" in api.text
    assert [c["source"] for c in lines[1]["citations"]] == [c.source for c in api.citations]
