"""Tests for rag/conversation.py: follow-up questions rewritten into standalone queries."""

from __future__ import annotations

import pytest
from fakes import FakeGenerator

from rag import QueryRewriter, Rewrite, Turn, heuristic_rewrite, is_follow_up
from rag.conversation import accept_model_rewrite, names_in, rewrite_messages, subject_of

R1 = Turn("When did DeepSeek release R1, and under which licence?", "DeepSeek released R1 on 20 January 2025 under the MIT licence [1].")
NVIDIA = Turn("How much market value did Nvidia lose on 27 January 2025?", "Nvidia lost $589 billion in a single session [1].")
V3 = Turn("What did the DeepSeek-V3 technical report say the final training run cost?", "The report said $5.6 million [1].")


@pytest.mark.parametrize(
    "question",
    ["and how much did it cost?", "What about V3?", "why did its shares fall?", "Did they recover?", "Why?", "how about the licence?"],
)
def test_follow_ups_are_detected(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    ["How much market value did Nvidia lose?", "Who is Liang Wenfeng?", "When did DeepSeek release R1?", "What is GRPO in DeepSeek-R1 training?"],
)
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert QueryRewriter(mode="heuristic").rewrite(question, [R1]) == Rewrite(question, "unchanged")


def test_names_in_joins_adjacent_names_and_splits_possessives():
    assert names_in("Liang Wenfeng founded High-Flyer in Hangzhou; DeepSeek's H800 GPUs") == ["Liang Wenfeng", "High-Flyer", "Hangzhou", "DeepSeek", "H800 GPUs"]
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
    assert QueryRewriter(gen, mode="auto").rewrite("and how much did it cost?", [V3]) == Rewrite("How much did DeepSeek-V3 cost?", "heuristic")
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
    result = QueryRewriter(FakeGenerator(fail=RuntimeError("boom")), mode="auto").rewrite("who founded the company?", [R1])
    assert result == FOUNDER_FALLBACK


def test_heuristic_and_off_modes_never_call_the_model():
    gen = FakeGenerator("Who founded DeepSeek?")
    assert QueryRewriter(gen, mode="heuristic").rewrite("who founded the company?", [R1]) == FOUNDER_FALLBACK
    assert QueryRewriter(gen, mode="off").rewrite("who founded the company?", [R1]) == Rewrite("who founded the company?", "unchanged")
    assert gen.calls == []


def test_bad_mode_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"rewrite mode must be one of \['auto', 'heuristic', 'off'\], got 'smart'"):
        QueryRewriter(mode="smart")


def test_accept_strips_labels_and_quotes():
    assert accept_model_rewrite('Standalone question: "Did Nvidia recover?"', "did it recover?", [NVIDIA]) == "Did Nvidia recover?"
    assert accept_model_rewrite("Did Nvidia recover [1]?", "did it recover?", [NVIDIA]) is None


def test_rewrite_prompt_uses_last_two_turns_without_markers():
    turns = [R1, NVIDIA, V3]
    content = rewrite_messages("and how much did it cost?", turns)[-1]["content"]
    assert R1.question not in content and NVIDIA.question in content and V3.question in content
    assert "[1]" not in content


@pytest.mark.slow
def test_real_model_rewrite_names_the_subject(real_generator):
    """Through SmolLM2: whichever path wins, the query retrieved with names the subject."""
    result = QueryRewriter(real_generator, mode="auto").rewrite("who founded the company?", [R1])
    assert result.method in ("model", "heuristic")
    assert "DeepSeek" in result.query and "found" in result.query.lower()
