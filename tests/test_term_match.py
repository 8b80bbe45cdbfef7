"""Tests for rag/retrieval/term_match.py: the number and date match bonuses of fused candidates."""

from __future__ import annotations

import pytest

from rag.retrieval.term_match import (
    date_match,
    match_bonus,
    number_match,
    question_numbers,
    text_numbers,
)


def test_question_numbers_are_numbers_and_codes():
    assert question_numbers("What was Tesla's revenue in Q1 2021?") == {"q1", "2021"}
    assert question_numbers("Who won Best Director at the 93rd Academy Awards?") == {"93"}
    assert question_numbers("Who founded DeepSeek?") == set()


def test_text_numbers_read_number_words_and_ordinals():
    toks = text_numbers("The fourth season premiered on 15 November; the 93rd ceremony, Q1-2021.")
    assert {"4", "15", "93", "q1", "2021"} <= toks
    assert "11" in text_numbers("the eleventh and final season")


def test_number_match_hand_worked_example():
    """Question numbers {q1, 2021}: the first text holds both (1.0), the second only q1 (0.5),
    the third neither (0.0); a question without numbers gives every text 0."""
    texts = ["Revenue was $10.4 billion in Q1 2021.", "Q1 2023 revenue reached $23.3 billion.", "Tesla delivered cars."]
    assert number_match("What was Tesla's revenue in Q1 2021?", texts) == [1.0, 0.5, 0.0]
    assert number_match("Who leads Tesla?", texts) == [0.0, 0.0, 0.0]


def test_date_match_wants_a_full_date_past_the_dateline_and_a_when_question():
    texts = [
        "Nov 21, 2022 ... Valhalla arrives on Steam on December 6th.",  # only a dateline and a date without year
        "Valhalla was released on November 10, 2020, for PlayStation 4.",
        "It was released in Japan on 21 November 1998.",
        "Released in 2020.",  # a year alone is no full date
    ]
    assert date_match("When was Assassin's Creed Valhalla released?", texts) == [0.0, 1.0, 1.0, 0.0]
    assert date_match("What is the release date of Cyberpunk 2077?", texts) == [0.0, 1.0, 1.0, 0.0]
    assert date_match("Who developed Valhalla?", texts) == [0.0, 0.0, 0.0, 0.0]


def test_match_bonus_weights_and_sums_the_features():
    """Q1 2021, asked when: text 1 holds both numbers (0.3 * 1) and a full date (0.2 * 1) = 0.5;
    text 2 holds 2021 only and no date: 0.3 * 0.5 = 0.15."""
    texts = ["In Q1 2021, on April 26, 2021, Tesla reported.", "Tesla's 2021 report."]
    assert match_bonus("When did Tesla report Q1 2021?", texts, 0.3, 0.2) == pytest.approx([0.5, 0.15])
    assert match_bonus("When did Tesla report Q1 2021?", texts, 0.0, 0.0) == [0.0, 0.0]
