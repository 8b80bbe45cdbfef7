"""ui/openai_request.py: an OpenAI chat request body to a question, earlier turns and settings (no server)."""

from __future__ import annotations

import pytest

from ui.openai_request import APIError, cut_at_stop, parse_chat_request


def parse(messages, **extra):
    return parse_chat_request(
        {"model": "rag", "messages": messages, **extra}, models=("rag",), max_question_chars=2000, max_tokens_limit=1024
    )


def test_turns_pair_each_user_message_with_the_answer_after_it():
    """System messages are left out; an answer sent back loses the Sources list the API appended."""
    req = parse(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How much did Nvidia fall?"},
            {"role": "assistant", "content": "It fell 17% [1].\n\nSources:\n[1] Nvidia (news/nvidia.md)"},
            {"role": "user", "content": "Who founded DeepSeek?"},  # never answered (e.g. the client stopped it)
            {
                "role": "user",
                "content": [{"type": "text", "text": "and why did it"}, {"type": "text", "text": "fall?"}],
            },
        ]
    )
    assert req.question == "and why did it\nfall?"
    assert [(t.question, t.answer) for t in req.turns] == [
        ("How much did Nvidia fall?", "It fell 17% [1]."),
        ("Who founded DeepSeek?", ""),
    ]
    assert "Be brief." in req.sent_text and req.stream is False and req.stop == ()


def test_a_long_chat_keeps_its_last_twenty_turns():
    """A long conversation in a chat client must still be answered (the oldest turns are dropped, not refused)."""
    messages = []
    for i in range(30):
        messages += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    req = parse([*messages, {"role": "user", "content": "last"}])
    assert len(req.turns) == 20 and req.turns[0].question == "question 10" and req.turns[-1].answer == "answer 29"


def test_a_very_long_earlier_answer_is_cut_not_refused():
    req = parse(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a" * 50_000},
            {"role": "user", "content": "more?"},
        ]
    )
    assert len(req.turns[0].answer) == 20_000


def test_settings_are_read_and_capped():
    req = parse(
        [{"role": "user", "content": "q"}],
        temperature=0.7,
        max_tokens=5000,
        stop="END",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert (req.temperature, req.max_tokens, req.stop, req.stream, req.include_usage) == (
        0.7,
        1024,
        ("END",),
        True,
        True,
    )
    assert parse([{"role": "user", "content": "q"}], max_completion_tokens=12, max_tokens=99).max_tokens == 12


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"temperature": True}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"stop": ["ok", ""]}, "stop"),
        ({"stream_options": "yes"}, "stream_options"),
    ],
)
def test_bad_values_name_their_field(extra, param):
    with pytest.raises(APIError, match=param) as info:
        parse([{"role": "user", "content": "q"}], **extra)
    assert (
        info.value.status == 400
        and info.value.param == param
        and set(info.value.body()["error"]) == {"message", "type", "param", "code"}
    )


def test_a_lone_surrogate_in_the_question_is_a_400():
    with pytest.raises(APIError, match=r"holds an invalid character") as info:
        parse([{"role": "user", "content": "Why \ud800 did it fall?"}])
    assert info.value.param == "messages"


def test_cut_at_stop_takes_the_earliest_stop():
    assert cut_at_stop("a b STOP c END d", ("END", "STOP")) == "a b " and cut_at_stop("abc", ("x",)) == "abc"
