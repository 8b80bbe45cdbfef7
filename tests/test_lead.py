"""Tests for rag/answering/lead.py: a faithful draft leads only when it answers (responsiveness per question kind)."""

from __future__ import annotations

import pytest

from fakes import FakeEmbedder
from rag.answering.evidence import SUPPORT_LABEL, select_evidence
from rag.answering.lead import compose, evidence_lead, lead_span, unresponsive
from rag.records import Chunk, Passage


def passage(n, text):
    return Passage(
        n=n,
        chunk=Chunk(id=f"c{n}", doc_id=f"d{n}", title="T", source=f"s{n}.txt", text=text, start=0, end=len(text)),
        score=0.9,
        relevance=0.8,
    )


PASSAGES = [
    passage(
        1,
        "DeepSeek-V3 is a mixture-of-experts model with 671 billion parameters. It was trained on 2,048 Nvidia H800 GPUs.",
    ),
    passage(
        2, "DeepSeek was founded in July 2023 by Liang Wenfeng. DeepSeek is based in Hangzhou, a city in eastern China."
    ),
    passage(3, "GRPO (Group Relative Policy Optimization) removes the critic model that PPO needs."),
    passage(
        4,
        "High-Flyer is a quantitative hedge fund that relies on computer models to pick stocks. DeepSeek-R1 is released "
        "under the MIT licence.",
    ),
]


def evidence(question):
    return select_evidence(question, PASSAGES, FakeEmbedder(), max_sentences=3, max_passages=4)


@pytest.mark.parametrize(
    "question, draft",
    [
        ("How many parameters does DeepSeek-V3 have?", "DeepSeek-V3 has 671 billion parameters [1]."),
        ("When was DeepSeek founded?", "DeepSeek was founded in July 2023 [2]."),
        ("Who founded DeepSeek?", "Liang Wenfeng founded DeepSeek [2]."),
        ("Where is DeepSeek based?", "DeepSeek is based in Hangzhou [2]."),
        ("what does GRPO stand for", "GRPO stands for Group Relative Policy Optimization [3]."),
        ("Why does GRPO need no critic model?", "GRPO removes the critic model that PPO needs [3]."),
        ("How many GPUs trained DeepSeek-V3?", "DeepSeek-V3 was trained on 2048 GPUs [1]."),  # "2048" = "2,048"
        # One of the question's names is enough ("PPO" is left out): the draft is about what was asked.
        ("Why does GRPO drop the critic that PPO needs?", "GRPO removes the critic model to save memory [3]."),
        (
            "Under which licence did DeepSeek-R1 ship?",
            "R1 is released under the MIT licence [4].",
        ),  # "R1" names DeepSeek-R1
        (
            "What is High-Flyer?",
            "High-Flyer is a hedge fund that relies on computer models [4].",
        ),  # a definition in fewer words
        ("Who founded DeepSeek and when?", "Liang Wenfeng founded DeepSeek in July 2023 [2]."),
    ],
)
def test_a_correct_short_draft_answers(question, draft):
    """The drafts the old completeness rules threw away ("it left out what the evidence says: PPO's, KL") now lead."""
    assert unresponsive(draft, question, evidence(question)) == ""


@pytest.mark.parametrize(
    "question, draft, why",
    [
        (
            "How many parameters does DeepSeek-V3 have?",
            "DeepSeek-V3 parameters how many [1].",
            "it only repeats the question",
        ),
        (
            "How many parameters does DeepSeek-V3 have?",
            "DeepSeek-V3 is a mixture-of-experts model [1].",
            "it gives no number",
        ),
        (
            "How many parameters does DeepSeek-V3 have?",
            "DeepSeek-V3 has 10 parameters [1].",
            "its number (10 parameters) is not in the evidence",
        ),
        ("When was DeepSeek founded?", "DeepSeek was founded by Liang Wenfeng [2].", "it gives no date"),
        ("Who founded DeepSeek?", "DeepSeek was founded in July 2023 [2].", "it gives no name"),
        ("Where is DeepSeek based?", "DeepSeek is based in Beijing [2].", "its place (Beijing) is not in the evidence"),
        ("what does GRPO stand for", "GRPO removes the critic [3].", "it gives no expansion"),
        ("Why does GRPO need no critic model?", "GRPO needs no critic model [3].", "it only repeats the question"),
        (
            "Why does GRPO need no critic model?",
            "GRPO needs no critic model, unlike PPO [3].",
            "it says too little beyond the question",
        ),
        (
            "Why does GRPO drop the critic that PPO needs?",
            "It removes the critic model to save memory [3].",
            "it does not mention grpo, ppo",
        ),
        (
            "What score does the GRPO critic get?",
            "GRPO removes the critic model [3].",
            "it gives no number",
        ),  # "what score" asks for one
        (
            "What is High-Flyer?",
            "High-Flyer is a Beijing bank owned by the state [4].",
            "its definition (a Beijing bank owned by the state",
        ),
        (
            "Who founded DeepSeek and when?",
            "Liang Wenfeng founded DeepSeek [2].",
            "it gives no date, which the question also asks for and the evidence gives",
        ),  # a compound question: both things, where the evidence has both
    ],
)
def test_an_echo_or_a_wrong_kind_or_value_is_refused(question, draft, why):
    assert unresponsive(draft, question, evidence(question)).startswith(why)


def test_the_evidence_lead_is_the_answer_bearing_sentence_and_the_quotes_follow():
    """Asked "how many GPUs", the sentence with 2,048 leads, not the one that only names the model."""
    ev = evidence("How many GPUs was DeepSeek-V3 trained on?")
    lead = evidence_lead(ev)
    assert lead == "It was trained on 2,048 Nvidia H800 GPUs [1]." or lead.endswith("2,048 Nvidia H800 GPUs [1].")
    span = lead_span(lead, "How many GPUs was DeepSeek-V3 trained on?")
    assert lead[span[0] : span[1]] == "2,048 Nvidia H800 GPUs"
    text = compose(lead, ev.sentences[1:])
    assert text == lead or text.startswith(f"{lead}\n\n{SUPPORT_LABEL} ")


def test_lead_span_skips_the_citation_marker():
    lead = "DeepSeek was founded in July 2023 [2]."
    a, b = lead_span(lead, "When was DeepSeek founded?")
    assert lead[a:b] == "July 2023"


def test_a_draft_answering_from_a_worse_line_disagrees_with_the_best_sentence():
    """Seen on rgb-en-fact with SmolLM2: "Bianca Andreescu won ... in 2019 [2]" beside the best sentence naming Simona Halep."""
    from rag.answering.lead import disagrees

    ps = [
        passage(1, "Simona Halep defeated Serena Williams to win the 2019 Wimbledon title."),
        passage(2, "Bianca Andreescu defeated Serena Williams in the US Open final."),
    ]
    ev = select_evidence("Who won the women's singles Wimbledon in 2019?", ps, FakeEmbedder(), max_sentences=2)
    assert ev.sentences[0].n == 1
    q = "Who won the women's singles Wimbledon in 2019?"
    assert (
        disagrees("Bianca Andreescu won Wimbledon in 2019 [2].", q, ev)
        == "its name is not the one the best evidence sentence gives"
    )
    assert disagrees("Simona Halep won Wimbledon in 2019 [1].", q, ev) == ""
    assert disagrees("It was a final [1].", "Why was it a final?", ev) == ""  # "other" questions: nothing to compare
