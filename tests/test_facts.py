"""Tests for rag/answering/facts.py: names and numbers a cited passage must contain."""

from __future__ import annotations

import pytest

from rag.answering.facts import missing_facts, names_in, numbers_in, unmentioned_years

DEEPSEEK = "DeepSeek released DeepSeek-R1, a reasoning model that rivals OpenAI's o1, on 20 January 2025 under the MIT licence."
NVIDIA = "On 27 January 2025 the share price of Nvidia fell about 17 percent, wiping $589 billion (2,048 GPUs aside) from its value."


def test_deepmind_is_not_deepseek():
    """Word overlap and embeddings let 'DeepMind' pass for 'DeepSeek'; the name check does not."""
    assert missing_facts(
        "DeepSeek-R1 is a product of DeepMind, a subsidiary of the AI Research Foundation [2].", DEEPSEEK
    ) == ("DeepMind", "AI", "Research", "Foundation")


def test_added_precision_is_a_missing_number():
    assert missing_facts("The share price fell 17.7% [1].", NVIDIA) == ("17.7",)


@pytest.mark.parametrize(
    "sentence",
    [
        "Nvidia's share price fell 17% on 27 January 2025 [1].",
        "Nvidia's share price fell seventeen percent [1].",
        "Nvidia lost $589bn on January 27, 2025 [1].",
        "A cluster of 2048 GPUs is mentioned [1].",
        "The fall wiped out 589 billion dollars [1].",
    ],
)
def test_formatting_and_inflection_are_allowed(sentence):
    assert missing_facts(sentence, NVIDIA) == ()


def test_demonyms_and_country_names_match():
    assert (
        missing_facts(
            "It was the biggest loss in American history [1].", "the largest loss for any company in US history"
        )
        == ()
    )
    assert missing_facts("Chinese researchers built it [1].", "researchers in China built it") == ()


def test_names_from_the_question_count_as_present():
    assert missing_facts(
        "Safe Haven was filmed in Southport [1].", "Filming took place in Southport, North Carolina."
    ) == ("Safe", "Haven")
    assert (
        missing_facts(
            "Safe Haven was filmed in Southport [1].",
            "Filming took place in Southport.",
            ["Where was Safe Haven filmed?"],
        )
        == ()
    )


def test_sentence_openers_are_not_names():
    assert names_in("The first king was Athelstan. However, Edward I followed [1].") == ["Athelstan", "Edward"]
    assert numbers_in("two GPUs, 2,048 more and 17.5%") == {2.0, 2048.0, 17.5}


def test_a_near_miss_spelling_is_a_different_name():
    """SmolLM2 wrote 'China's DeepSea' for DeepSeek: a shared prefix is not inflection."""
    assert missing_facts(
        "DeepSeek-R1 was released by China's DeepSea [1].", DEEPSEEK + " The Chinese company DeepSeek."
    ) == ("DeepSea",)


def test_dropped_facts_lists_what_a_draft_leaves_out_of_the_evidence():
    from rag.answering.facts import dropped_facts

    source = (
        "On 27 January 2025 the share price of Nvidia fell about 17 percent, wiping 600 billion dollars off its value."
    )
    facts, missing = dropped_facts(
        source, "Nvidia shares fell about 17 percent [1].", "How much did Nvidia shares fall?"
    )
    assert set(facts) == {"27", "January", "2025", "17", "600"}  # Nvidia is in the question
    assert missing == ("27", "2025", "600", "January")
    assert (
        dropped_facts(
            source, "Nvidia fell 17% on 27 January 2025, about 600 billion dollars [1].", "How much did Nvidia fall?"
        )[1]
        == ()
    )


@pytest.mark.parametrize(
    ("question", "texts", "expected"),
    [
        ("Who won the 2019 Rugby World Cup?", ["Rugby union grew in popularity after 2007."], ("2019",)),
        ("Who won the 2019 Rugby World Cup?", ["In 2019, South Africa won the Rugby World Cup."], ()),
        ("liberia ebola deaths 2014 2015", ["The outbreak peaked in 2014."], ("2015",)),
        # a decade, a count, a version and a range are not years the passages must write
        ("Who showed in the 1840s that work produces heat?", ["Joule's experiments."], ()),
        ("How many of 1,500 samples failed?", ["x"], ()),
        ("What changed in release 2019.1?", ["x"], ()),
        ("What happened in 1999-2001?", ["x"], ()),
    ],
)
def test_unmentioned_years_are_the_questions_years_no_passage_writes(question, texts, expected):
    assert unmentioned_years(question, texts) == expected
