"""Tests for eval/run_all.py (every dev set, one table) and its set registry eval/evalsets.py."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

from eval import evalsets, run_all


def test_subset_folder_copies_exactly_the_listed_files(tmp_path):
    """The folder holds one copy per listed article and nothing else, even after the list changes.

    Copies, not links: a build skips links leading out of the folder it builds."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text(name)
    folder = evalsets.subset_folder(corpus, ["a.txt", "b.txt"], "demo", cache=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]
    assert not (folder / "a.txt").is_symlink() and (folder / "a.txt").read_text() == "a.txt"
    assert (
        evalsets.subset_folder(corpus, ["a.txt", "b.txt"], "demo", cache=tmp_path / "cache") == folder
    )  # same list, same folder
    (folder / "stray.txt").write_text("x")
    evalsets.subset_folder(corpus, ["a.txt", "b.txt"], "demo", cache=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]  # brought back in line
    other = evalsets.subset_folder(corpus, ["c.txt"], "demo", cache=tmp_path / "cache")
    assert other != folder and [p.name for p in other.iterdir()] == ["c.txt"]
    with pytest.raises(FileNotFoundError, match="1 listed article"):
        evalsets.subset_folder(corpus, ["missing.txt"], "demo", cache=tmp_path / "cache")


def test_article_list_rejects_paths_and_repeats(tmp_path):
    """A typo in an article list (a repeat, a path) is an error naming the line, not a silently different subset."""
    listing = tmp_path / "list.txt"
    listing.write_text("a.txt\n\n# comment\nb.txt\n")
    assert evalsets.read_article_list(listing) == ["a.txt", "b.txt"]
    listing.write_text("a.txt\na.txt\n")
    with pytest.raises(ValueError, match=r"list.txt:2: 'a.txt' is listed twice"):
        evalsets.read_article_list(listing)
    listing.write_text("sub/a.txt\n")
    with pytest.raises(ValueError, match="not a plain file name"):
        evalsets.read_article_list(listing)


def test_registered_sets_point_at_files_of_this_repository():
    """Every set in eval/ is registered, and the repository's own sets are all present."""
    sets = evalsets.eval_sets(Path("/nonexistent-shared"))
    assert list(sets) == [
        "rgb-en-fact",
        "squad",
        "searchbox",
        "sample",
        "pdf",
        "users",
        "compound",
        "offtopic",
        "offtopic-squad",
        "rare",
    ]
    registered = {s.qa_file.resolve() for s in sets.values()}
    registered |= {s.additions.resolve() for s in sets.values() if s.additions}
    assert all(p.resolve() in registered for p in (ROOT / "eval").glob("*.jsonl"))
    for name in ("sample", "pdf", "users", "compound", "offtopic"):
        assert sets[name].unavailable() is None
    for name in ("rgb-en-fact", "offtopic-squad", "rare"):
        assert "pass --shared DIR" in sets[name].unavailable()
    # offtopic-squad shares the squad set's folder of copies (and so its cached index)
    assert sets["offtopic-squad"].article_list == sets["squad"].article_list
    assert sets["offtopic-squad"].folder_label == "squad"


def test_apply_additions_inserts_after_a_paragraph_or_at_the_end():
    """Paragraph numbers count the original's non-blank lines; the rest of the text is kept, blank lines included."""
    add = evalsets.Addition
    three = [add("x", "E"), add("x", "M2", 2), add("x", "M1", 1)]
    assert evalsets.apply_additions("p1\np2\np3", three) == "p1\nM1\np2\nM2\np3\nE\n"
    blank = "# T\n\np1\n\np2\n"
    assert evalsets.apply_additions(blank, [add("x", "M", 2), add("x", "E")]) == "# T\n\np1\n\nM\n\np2\n\nE\n"
    with pytest.raises(ValueError, match="has 3 paragraphs; after_paragraph 3 is not in the middle"):
        evalsets.apply_additions("p1\np2\np3", [add("x.txt", "M", 3)])


def test_read_additions_names_the_bad_line(tmp_path):
    """A malformed addition is an error naming the file and line and what the line needs."""
    path = tmp_path / "add.jsonl"
    path.write_text(
        '{"article": "a.txt", "sentence": "S", "after_paragraph": 2, "names": ["Zorb"]}\n\n'
        '{"article": "b.txt", "sentence": "T"}\n'
    )
    assert evalsets.read_additions(path) == [
        evalsets.Addition("a.txt", "S", 2, ("Zorb",)),
        evalsets.Addition("b.txt", "T"),
    ]
    bad = [
        ('{"article": "a.txt"}', 'needs "article"'),
        ('{"article": "a.txt", "sentence": "S", "after_paragraph": 0}', "after_paragraph 0"),
        ('{"article": "a.txt", "sentence": "S", "names": "Zorb"}', "names must be a list"),
        ("nope", "not JSON"),
    ]
    for line, message in bad:
        path.write_text(line + "\n")
        with pytest.raises(ValueError, match=f"add.jsonl:1: .*{message}"):
            evalsets.read_additions(path)


def test_augmented_folder_applies_additions_and_changes_folder_with_them(tmp_path):
    """Listed articles are copied, those with additions modified; other additions get another folder (and index)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text(f"{name} one\n{name} two")
    cache = tmp_path / "cache"
    adds = [evalsets.Addition("a.txt", "The Zorbish council met in 1847.", 1)]
    folder = evalsets.augmented_folder(corpus, ["a.txt", "b.txt"], adds, "rare", cache=cache)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]
    assert (folder / "a.txt").read_text() == "a.txt one\nThe Zorbish council met in 1847.\na.txt two"
    assert (folder / "b.txt").read_text() == (corpus / "b.txt").read_text()
    assert (corpus / "a.txt").read_text() == "a.txt one\na.txt two"  # the corpus itself is untouched
    assert evalsets.augmented_folder(corpus, ["a.txt", "b.txt"], adds, "rare", cache=cache) == folder
    changed = evalsets.augmented_folder(
        corpus, ["a.txt", "b.txt"], [evalsets.Addition("a.txt", "Other.")], "rare", cache=cache
    )
    assert changed != folder and (changed / "a.txt").read_text().endswith("a.txt two\nOther.\n")
    with pytest.raises(ValueError, match="not in the article list: c.txt"):
        evalsets.augmented_folder(corpus, ["a.txt"], [evalsets.Addition("c.txt", "X")], "rare", cache=cache)


def test_format_summary_table_rows_and_skips():
    """One row per set and variant with "-" for what was not measured; skipped sets are listed with the reason."""
    runs = [
        run_all.SetRun(
            "sample",
            [
                {
                    "set": "sample",
                    "variant": "hybrid",
                    "questions": 2,
                    "hit@1": 1.0,
                    "hit@5": 1.0,
                    "mrr@10": 1.0,
                    "token_f1": None,
                    "answer_containment": None,
                    "abstention_precision": None,
                    "abstention_recall": 0.5,
                    "page_hit@5": None,
                    "modes": {"generated": 1, "evidence": 0, "declined": 1},
                }
            ],
        ),
        run_all.SetRun("rgb-en-fact", skipped="QA file x is absent"),
    ]
    lines = run_all.format_summary_table(runs).splitlines()
    assert lines[0] == (
        "| set | variant | q | hit@1 | hit@5 | MRR@10 | lead F1 | lead contains | contains answer | token F1 | generated share | "
        "answerable declined | abstain P | abstain R | page hit@5 | modes |"
    )
    assert (
        lines[2]
        == "| sample | hybrid | 2 | 1.000 | 1.000 | 1.000 | - | - | - | - | - | - | - | 0.500 | - | generated 1, declined 1 |"
    )
    assert lines[-1] == "skipped rgb-en-fact: QA file x is absent"


def test_bad_arguments_are_usage_errors(capsys):
    """An unknown set or a bad --limit stops before any model loads, with the valid choices."""
    with pytest.raises(SystemExit) as exc:
        run_all.main(["--sets", "sample,nope"])
    assert exc.value.code == 2 and "unknown set(s) ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_all.main(["--limit", "0"])
    assert "--limit must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_run_all_retrieval_only_on_the_sample_set(tmp_path, monkeypatch, capsys):
    """End to end with the packaged embedder: two variants on two questions, one table row each, results on disk."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the eval index cache goes under the test's folder
    out = tmp_path / "out"
    code = run_all.main(
        [
            "--retrieval-only",
            "--limit",
            "2",
            "--sets",
            "sample,rgb-en-fact",
            "--retriever",
            "bm25,hybrid",
            "--shared",
            str(tmp_path / "no-shared"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| sample |")]
    assert [row.split(" | ")[1:3] for row in rows] == [["bm25", "2"], ["hybrid", "2"]]
    assert all(row.endswith("| - | - |") for row in rows)  # no page numbers, no answers in retrieval-only runs
    assert "skipped rgb-en-fact:" in printed and "pass --shared DIR" in printed
    summaries = json.loads((out / "summary.json").read_text())
    assert [(s["set"], s["variant"], s["questions"]) for s in summaries] == [
        ("sample", "bm25", 2),
        ("sample", "hybrid", 2),
    ]
    # the first two sample questions' gold articles are found first by both retrievers
    assert all(s["hit@1"] == 1.0 and s["retrieval_only"] and s["modes"] is None for s in summaries)
    lines = [json.loads(line) for line in (out / "sample.jsonl").read_text().splitlines()]
    assert [(line["id"], line["retriever"]) for line in lines] == [
        ("s1", "bm25"),
        ("s2", "bm25"),
        ("s1", "hybrid"),
        ("s2", "hybrid"),
    ]
    assert (out / "table.md").read_text().count("| sample |") == 2
