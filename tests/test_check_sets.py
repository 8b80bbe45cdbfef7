"""Tests for eval/check_sets.py: the rare-term set's additions checks, and the repository's sets passing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

from eval import check_sets, evalsets

SHARED = evalsets.DEFAULT_SHARED / "corpora" / "squad-articles"
ADDED = "The Zebrovian council met in Quillmoor in 1847."


def _rare_set(tmp_path: Path, additions: list[dict], questions: list[dict]) -> evalsets.EvalSet:
    corpus = tmp_path / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "river.txt").write_text("The river is long.\nIt has many bridges.\nBoats use it.")
    (corpus / "city.txt").write_text("The city holds the Quorn festival.\nIt is old.")
    (tmp_path / "list.txt").write_text("river.txt\ncity.txt\n")
    (tmp_path / "add.jsonl").write_text("".join(json.dumps(a) + "\n" for a in additions))
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return evalsets.EvalSet(
        "rare", tmp_path / "qa.jsonl", corpus, tmp_path / "list.txt", additions=tmp_path / "add.jsonl"
    )


def test_check_additions_wants_names_absent_from_the_corpus(tmp_path, monkeypatch):
    """A made-up name that an article already holds, or that is not in its sentence, is reported."""
    monkeypatch.setattr(evalsets.tempfile, "tempdir", str(tmp_path / "tmp"))
    good = {"article": "river.txt", "sentence": ADDED, "after_paragraph": 1, "names": ["Zebrovian", "Quillmoor"]}
    problems, summary = check_sets.check_additions(_rare_set(tmp_path, [good], []))
    assert problems == []
    assert summary.startswith("1 additions to 1 articles of set rare (1 in the middle, 0 at the end)")
    bad = [
        dict(good, names=["Zebrovian", "quorn"]),
        {"article": "city.txt", "sentence": "It is old.", "names": ["Velk"]},
    ]
    problems, _ = check_sets.check_additions(_rare_set(tmp_path / "b", bad, []))
    corpus = tmp_path / "b" / "corpus"
    assert problems == [
        "addition 1 (river.txt): name 'quorn' is not in its sentence",
        f"addition 1 (river.txt): name 'quorn' occurs in 1 file(s) of {corpus}; invent a rarer one",
        "addition 2 (city.txt): the sentence is already in the article; write a made-up one",
        "addition 2 (city.txt): name 'Velk' is not in its sentence",
    ]


def test_check_set_wants_questions_about_the_added_facts(tmp_path, monkeypatch):
    """Answers are looked up in the modified copies, and must come from an added sentence, not the original text."""
    monkeypatch.setattr(evalsets.tempfile, "tempdir", str(tmp_path / "tmp"))
    add = {"article": "river.txt", "sentence": ADDED, "names": ["Zebrovian"]}
    questions = [
        {
            "id": "rt1",
            "question": "When did the Zebrovian council meet?",
            "answers": ["1847"],
            "sources": ["river.txt"],
            "answerable": True,
        },
        {
            "id": "rt2",
            "question": "what do boats use",
            "answers": ["Boats use it"],
            "sources": ["river.txt"],
            "answerable": True,
        },
    ]
    eval_set = _rare_set(tmp_path, [add], questions)
    problems, summary = check_sets.check_set(eval_set.qa_file, eval_set)
    assert problems == [
        "id rt2: no accepted answer occurs in a sentence added to river.txt; "
        "ask about the made-up fact, or add it to add.jsonl"
    ]
    assert summary == "2 questions, 2 answerable, 0 unanswerable; 2 listed articles"


def test_new_sets_pass_check_sets(capsys):
    """The users, off-topic and rare-term sets pass every check (the squad-based ones need ../shared)."""
    names = ["users-qa.jsonl", "offtopic-qa.jsonl"]
    if SHARED.is_dir():
        names += ["offtopic-squad-qa.jsonl", "rare-additions.jsonl", "rare-qa.jsonl"]
    code = check_sets.main([str(ROOT / "eval" / name) for name in names])
    out = capsys.readouterr().out
    assert code == 0, out
    assert [line.split(":")[0] for line in out.splitlines()] == [f"ok   {name}" for name in names]
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the squad-based sets (offtopic-squad, rare) were not checked")
