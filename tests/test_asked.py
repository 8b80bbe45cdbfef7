"""Tests for rag/answering/asked.py: what a question asks for, and the phrase of a sentence that gives it."""

from __future__ import annotations

import pytest

from rag.answering.asked import asked_kinds, answer_phrase, answer_type, has_type


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How many parameters does DeepSeek-V3 have?", "number"),
        ("What was Tesla's revenue in Q1 2021?", "number"),
        ("When was DeepSeek founded?", "date"),
        ("What is the release date of The Last of Us Part II?", "date"),
        ("union of utrecht year", "date"),
        ("Who founded DeepSeek?", "name"),
        ("Where is DeepSeek based?", "place"),
        ("Which country won the most medals?", "place"),
        ("what does GRPO stand for", "expansion"),
        ("What is the H20?", "definition"),
        ("What pass@1 score did DeepSeek-R1 achieve on AIME 2024?", "number"),
        ("What rental price per GPU hour did DeepSeek assume?", "number"),
        ("Which South Korean agency suspended new downloads of the DeepSeek app?", "name"),
        ("At which university did Liang Wenfeng study?", "name"),
        ("What nickname did local media give DeepSeek?", "name"),
        ("what percent of heart attack patients have atypical symptoms", "number"),
        ("What is the context window of DeepSeek-V3?", "other"),  # an attribute of something, not what a term is
        ("Why did Nvidia shares fall?", "other"),
        ("What is the capital city of the country where DeepSeek is based?", "place"),
        # search-box queries naming a measured quantity ask for a number
        ("beidou satellite weight kg", "number"),
        ("goodison park capacity", "number"),
        ("appalachian trail length miles", "number"),
        ("area 51 location", "other"),  # a place word: not a number
        ("first web browser name", "other"),
        ("Why is the weight of gold given in troy ounces?", "other"),  # a question: its own rules decide
        ("Who was named the 2021 National Teacher of the Year?", "name"),  # "who" asks for a person, not a year
    ],
)
def test_answer_type_names_the_kind_asked_for(question, kind):
    assert answer_type(question) == kind


@pytest.mark.parametrize(
    "sentence, question, phrase",
    [
        (
            "DeepSeek-V3 is a mixture-of-experts model with 671 billion parameters, of which 37 billion are active.",
            "How many parameters does DeepSeek-V3 have?",
            "671 billion parameters",
        ),
        ("On 27 January 2025 Nvidia shares fell about 17 percent.", "How much did Nvidia shares fall?", "17 percent"),
        (
            "Nvidia lost $589 billion of market value on 27 January 2025.",
            "How much market value did Nvidia lose?",
            "$589 billion",
        ),
        (
            "Nvidia shares fell about 17% on Monday, 27 January 2025, wiping roughly $589 billion off the chipmaker's market value.",
            "How much market value did Nvidia lose on 27 January 2025?",
            "$589 billion",
        ),
        ("DeepSeek was founded in July 2023 by Liang Wenfeng.", "When was DeepSeek founded?", "July 2023"),
        ("DeepSeek was founded in July 2023 by Liang Wenfeng.", "Who founded DeepSeek?", "Liang Wenfeng"),
        ("DeepSeek is a Chinese AI company based in Hangzhou, Zhejiang.", "Where is DeepSeek based?", "Hangzhou"),
        (
            "GRPO (Group Relative Policy Optimization) removes the critic model.",
            "what does GRPO stand for",
            "Group Relative Policy Optimization",
        ),
        (
            "The Crown season 3 premieres Sunday, November 17 on Netflix.",
            "When does season 3 of The Crown premiere?",
            "November 17",
        ),
        (
            "In an MoE (mixture-of-experts) model each layer holds many experts.",
            "What does MoE stand for?",
            "mixture-of-experts",
        ),
        (
            "The second key ingredient is multi-head latent attention, usually shortened to MLA.",
            "what does MLA stand for",
            "multi-head latent attention",
        ),  # a hyphenated word gives one letter
        (
            "Its main new China product was the H20, a Hopper-generation chip with far less power.",
            "What is the H20?",
            "a Hopper-generation chip with far less power",
        ),
        ("FP8 is an 8-bit floating-point number format.", "what is FP8", "an 8-bit floating-point number format"),
        # "when" is answered by a recurring time as much as by a date
        (
            "The board of directors meets on the second Tuesday of each month at 6:30 pm.",
            "When does the water authority's board meet?",
            "second Tuesday of each month",
        ),
        (
            "The Lantern Festival takes place on the last weekend of August.",
            "When is the Brennhaven Lantern Festival?",
            "the last weekend of August",
        ),
    ],
)
def test_answer_phrase_finds_what_is_asked_and_not_what_the_question_gives(sentence, question, phrase):
    span = answer_phrase(sentence, question)
    assert span is not None and sentence[span[0] : span[1]] == phrase


def test_no_phrase_where_the_sentence_only_repeats_the_question():
    """The day of a date is no count, a year is no count, and the question's own names are no answer."""
    assert answer_phrase("On 27 January 2025 Nvidia shares fell sharply.", "How much did Nvidia shares fall?") is None
    assert answer_phrase("DeepSeek is a company.", "Who founded DeepSeek?") is None
    assert answer_phrase("GRPO removes the critic.", "what does GRPO stand for") is None
    assert answer_phrase("Nvidia fell for three reasons.", "Why did Nvidia fall?") is None  # "other": no phrase to mark
    # a name that is mostly the question's own ("FIFA World Cup" for "the World Cup") names no winner
    assert answer_phrase("The 2014 FIFA World Cup has come to an end.", "Who won the World Cup Final in 2014?") is None


def test_has_type_is_unchanged_for_the_answerability_features():
    """The calibrated answerability weights read has_type: a "where" question scores a place like a name did."""
    assert has_type("DeepSeek is based in Hangzhou.", "place", "Where is DeepSeek based?") == 1.0
    assert has_type("It has 671 billion parameters.", "number", "How many parameters does it have?") == 1.0
    assert has_type("It was founded in 2023.", "number", "How many parameters does it have?") == 0.0


def test_a_definition_cut_by_its_length_limit_ends_at_a_whole_word():
    sentence = (
        "High-Flyer is a quantitative hedge fund that relies on computer models rather than human stock pickers "
        "to decide its trades."
    )
    span = answer_phrase(sentence, "What is High-Flyer?")
    assert span is not None and sentence[span[0] : span[1]].endswith("human stock")


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("Who founded DeepSeek and when?", ("name", "date")),
        ("When was R1 released and where?", ("date", "place")),
        ("Who founded DeepSeek?", ("name",)),
        ("Who developed DeepSeek-R1 and what does it rival?", ("name",)),  # "what does it rival": no kind of its own
        ("When and when again?", ("date",)),
    ],
)
def test_asked_kinds_adds_a_second_thing_asked_after_and(question, kinds):
    assert asked_kinds(question) == kinds
