"""rag/feedback.py: ratings appended as whole JSON lines, and the disliked ones exported as a QA file."""

from __future__ import annotations

import json
import threading

from rag import FeedbackLog
from rag.cli import main
from rag.feedback import export_disliked, feedback_record, latest_ratings, qa_skeleton
from rag.evaluation.qa import load_qa


def test_record_keeps_what_was_rated():
    r = feedback_record(
        question="Q",
        answer="A [1].",
        liked=False,
        mode="generated",
        query="Q?",
        citations=[{"n": 1, "title": "T", "source": "a.pdf", "pages": [2], "snippet": "not kept"}],
        generation="gen-1",
        comment=" no ",
    )
    assert (r["rating"], r["comment"], r["mode"], r["index_generation"]) == ("down", "no", "generated", "gen-1")
    assert r["citations"] == [{"n": 1, "title": "T", "source": "a.pdf", "pages": [2]}]


def test_skeleton_is_a_valid_qa_file_to_fill_in(tmp_path):
    items = qa_skeleton([feedback_record(question="Who won?", answer="Nobody [1].", liked=False, comment="wrong")])
    assert items[0]["answers"] == [] and items[0]["sources"] == [] and items[0]["answerable"] is True
    assert items[0]["feedback"]["answer"] == "Nobody [1]." and items[0]["id"].startswith("feedback-")
    path = tmp_path / "qa.jsonl"
    export_disliked([feedback_record(question="Who won?", answer="Nobody [1].", liked=False)], path)
    assert load_qa(path)[0].question == "Who won?"


def test_a_later_thumbs_up_takes_the_answer_out_of_the_export(tmp_path):
    log = FeedbackLog(tmp_path / "f.jsonl")
    log.append(feedback_record(question="Q1", answer="A1", liked=False))
    log.append(feedback_record(question="Q2", answer="A2", liked=False))
    log.append(feedback_record(question="Q1", answer="A1", liked=True))
    assert [r["question"] for r in latest_ratings(log.read())] == ["Q2", "Q1"]
    assert export_disliked(log.read(), tmp_path / "out.jsonl") == 1
    assert load_qa(tmp_path / "out.jsonl")[0].question == "Q2"


def test_concurrent_ratings_never_interleave(tmp_path):
    log = FeedbackLog(tmp_path / "f.jsonl")
    threads = [
        threading.Thread(
            target=lambda i=i: [
                log.append(feedback_record(question=f"Q{i}", answer="x" * 5000, liked=False)) for _ in range(20)
            ]
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "f.jsonl").read_text().splitlines()
    assert len(lines) == 80 and all(json.loads(line)["answer"] == "x" * 5000 for line in lines)


def test_feedback_export_without_a_file_says_what_to_do(tmp_path, capsys):
    assert main(["feedback", "export", "--feedback", str(tmp_path / "none.jsonl")]) == 1
    assert "no feedback file" in capsys.readouterr().err
