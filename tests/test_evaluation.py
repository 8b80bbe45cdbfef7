"""Tests for rag/evaluation/ and `rag eval`: every metric against a hand-computed value."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fakes import FakeEmbedder
from rag import NOT_FOUND, Config
from rag.records import Chunk
from rag.answering.citations import resolve_citations
from rag.records import Answer
from rag.cli import main
from rag.evaluation import (
    answer_metrics,
    QAFormatError,
    choose_threshold,
    contains_answer,
    evaluate,
    format_table,
    is_abstention,
    load_qa,
    missing_sources,
    normalize_answer,
    page_hit,
    retrieval_metrics,
    token_f1,
)
from rag.records import Passage
from rag.retrieval import not_covered_text


# -- pure metric functions ---------------------------------------------------------------------
def test_retrieval_metrics_hand_computed():
    assert retrieval_metrics(["b.txt", "a.txt", "c.txt"], ["a.txt"]) == {
        "hit@1": 0.0,
        "hit@5": 1.0,
        "hit@10": 1.0,
        "mrr@10": 0.5,
    }
    ranked = [f"x{i}.txt" for i in range(6)] + ["gold.jsonl#4"]
    assert retrieval_metrics(ranked, ["gold.jsonl"]) == {
        "hit@1": 0.0,
        "hit@5": 0.0,
        "hit@10": 1.0,
        "mrr@10": pytest.approx(1 / 7),
    }
    assert retrieval_metrics([f"x{i}" for i in range(10)] + ["a"], ["a"])["mrr@10"] == 0.0  # rank 11 is past the cut


def test_answer_normalisation_containment_and_f1():
    assert normalize_answer("The  Eiffel-Tower, [1] in Paris!") == "eiffel tower in paris"
    assert contains_answer("It was built in 1889 [2].", ["1889"])
    assert not contains_answer("It was built in 18890.", ["1889"])  # whole words only
    assert contains_answer("Tampa, Florida hosted it", ["tampa florida"])
    # pred [capital, is, paris] vs gold [paris]: P = 1/3, R = 1, F1 = 2*(1/3)/(4/3) = 0.5
    assert token_f1("The capital is Paris [1].", ["Paris", "Lyon"]) == pytest.approx(0.5)
    assert token_f1("", ["Paris"]) == 0.0 and token_f1("Paris", []) == 0.0


def test_abstention_detection():
    assert is_abstention(NOT_FOUND) and is_abstention(not_covered_text([]))
    assert not is_abstention("Paris [1].")


def test_load_qa_errors_name_file_line_and_fix(tmp_path):
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "1", "question": "Q?", "answers": ["a"], "sources": [], "answerable": true}\nnot json\n')
    with pytest.raises(QAFormatError, match=r"qa.jsonl:2 is not valid JSON"):
        load_qa(bad)
    bad.write_text('{"id": "1", "question": "Q?", "answers": "a"}\n')
    with pytest.raises(QAFormatError, match=r"qa.jsonl:1: 'answers' must be a list of strings"):
        load_qa(bad)
    bad.write_text('{"id": "1", "question": "Q?"}\n{"id": "1", "question": "R?"}\n')
    with pytest.raises(QAFormatError, match="id '1' is used twice"):
        load_qa(bad)
    with pytest.raises(FileNotFoundError, match="QA file"):
        load_qa(tmp_path / "missing.jsonl")


# -- evaluate() on a scripted pipeline: every metric by hand ------------------------------------
def _passage(n: int, source: str, text: str, relevance: float, pages: tuple[int, ...] = ()) -> Passage:
    chunk = Chunk(
        id=f"{source}-{n}", doc_id=source, title=source, source=source, text=text, start=0, end=len(text), pages=pages
    )
    return Passage(n=n, chunk=chunk, score=relevance, relevance=relevance)


QA = [
    {"id": "q1", "question": "Capital of France?", "answers": ["Paris"], "sources": ["a.txt"], "answerable": True},
    {"id": "q2", "question": "The answer?", "answers": ["42"], "sources": ["d.txt"], "answerable": True},
    {"id": "q3", "question": "Largest animal?", "answers": ["blue whale"], "sources": ["e.txt"], "answerable": True},
    {"id": "q4", "question": "Moon cheese?", "answers": [], "sources": [], "answerable": False},
    {"id": "q5", "question": "Mars pizza?", "answers": [], "sources": [], "answerable": False},
]

# question -> (retrieved passages best first, answer text)
SCRIPT = {
    # gold a.txt at rank 2: hit@1 0, hit@5 1, rr 1/2. Cites [1] (b.txt, holds "Paris": correct) and [2] (gold: correct).
    "Capital of France?": (
        [
            _passage(1, "b.txt", "Paris is large.", 0.9),
            _passage(2, "a.txt", "France's capital.", 0.7),
            _passage(3, "c.txt", "x", 0.1),
        ],
        "The capital is Paris [1][2].",
    ),
    # no gold in the top 10: all 0. Cites [1] (x0.txt, no "42": wrong). Answer "41": containment 0, F1 0.
    "The answer?": (
        [_passage(i + 1, f"x{i}.txt", "no number here", 0.4 if i == 0 else 0.1) for i in range(10)]
        + [_passage(11, "d.txt", "42", 0.05)],
        "It is 41 [1].",
    ),
    # gold at rank 1, but the answer declines: abstained answerable question, containment 0.
    "Largest animal?": ([_passage(1, "e.txt", "The blue whale.", 0.8)], NOT_FOUND),
    # unanswerable, declined by the threshold reply.
    "Moon cheese?": ([_passage(1, "m.txt", "moon", 0.2)], "NOT_COVERED"),
    # unanswerable, answered anyway (with a citation that does not count: not an answerable question).
    "Mars pizza?": ([_passage(1, "p.txt", "pizza", 0.6)], "Mars has pizza [1]."),
}


class ScriptedRAG:
    """Just enough of RAG for evaluate(): config, retrieve, ask, relevance_threshold."""

    def __init__(self):
        self.config = Config.load(
            None, {"retrieval.top_k": 2, "retrieval.retriever": "dense", "retrieval.min_relevance_dense": 0.5}
        )
        self.embedder = FakeEmbedder()
        self.asked = []

    def retrieve(self, question, top_k=None, **_):
        return SCRIPT[question][0][:top_k]

    def relevance_threshold(self, retriever=None):
        return self.config.retrieval.threshold_source(retriever, embedder=self.embedder.name)

    def ask(self, question, *, top_k=None, max_new_tokens=None):
        self.asked.append(question)
        passages, text = SCRIPT[question]
        passages = passages[:top_k]
        if text == "NOT_COVERED":
            return Answer(question=question, text=not_covered_text(passages), passages=passages)
        return Answer(question=question, text=text, citations=resolve_citations(text, passages), passages=passages)


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QA), encoding="utf-8")
    return path


def test_evaluate_full_metrics_hand_computed(qa_file):
    run = evaluate(ScriptedRAG(), load_qa(qa_file), progress=False)
    s = run.summary
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (5, 3, 2)
    assert s["hit@1"] == pytest.approx(1 / 3)  # q3 only
    assert s["hit@5"] == pytest.approx(2 / 3) and s["hit@10"] == pytest.approx(2 / 3)  # q1, q3
    assert s["mrr@10"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert s["answer_containment"] == pytest.approx(1 / 3)  # q1
    assert s["token_f1"] == pytest.approx(0.5 / 3)  # q1's 0.5
    assert s["citation_precision"] == pytest.approx(2 / 3)  # q1: 2 right, q2: 1 wrong
    assert s["abstention_precision"] == pytest.approx(1 / 2)  # declined q3 (answerable) and q4
    assert s["abstention_recall"] == pytest.approx(1 / 2)  # q4 of q4, q5
    assert s["declined_answerable"] == 1
    line = run.results[0].to_dict()
    assert line["retrieved"][1] == {"n": 2, "source": "a.txt", "score": 0.7, "relevance": 0.7}
    assert line["citations"] == [
        {"n": 1, "source": "b.txt", "correct": True},
        {"n": 2, "source": "a.txt", "correct": True},
    ]
    assert line["metrics"] == {
        "hit@1": 0.0,
        "hit@5": 1.0,
        "hit@10": 1.0,
        "mrr@10": 0.5,
        "answer_containment": 1.0,
        "token_f1": 0.5,
        "lead_containment": 0.0,
        "lead_token_f1": 0.0,
        "lead_misses_evidence": 0.0,
    }  # scripted answers have no lead
    assert line["abstained"] is False and run.results[3].to_dict()["abstained"] is True


def test_evaluate_retrieval_only_uses_the_threshold_and_never_asks(qa_file):
    rag = ScriptedRAG()
    run = evaluate(rag, load_qa(qa_file), retrieval_only=True, progress=False)
    assert rag.asked == []
    s = run.summary
    assert s["answer_containment"] is None and s["citation_precision"] is None
    # top-2 best relevance: q1 0.9, q2 0.4, q3 0.8, q4 0.2, q5 0.6; threshold 0.5 declines q2 and q4.
    assert [r.abstained for r in run.results] == [False, True, False, True, False]
    assert s["abstention_precision"] == pytest.approx(1 / 2) and s["abstention_recall"] == pytest.approx(1 / 2)
    assert s["hit@5"] == pytest.approx(2 / 3)  # the top 10 are still retrieved for the metrics
    # At most 34% of 3 answerable = 1 may be declined: threshold = 2nd lowest answerable relevance, 0.8.
    assert choose_threshold(run.results, 0.34) == {
        "threshold": 0.8,
        "answerable": 3,
        "declined_answerable": 1,
        "unanswerable": 2,
        "declined_unanswerable": 2,
    }


def test_format_table_and_missing_sources(qa_file, tmp_path):
    run = evaluate(ScriptedRAG(), load_qa(qa_file), retrieval_only=True, progress=False)
    table = format_table([{**run.summary, "retriever": "dense"}])
    assert table.splitlines()[0].startswith("| retriever | hit@1 | hit@5 |")
    assert "| dense | 0.333 | 0.667 | 0.667 | 0.500 | - |" in table
    (tmp_path / "a.txt").write_text("x")
    assert missing_sources(load_qa(qa_file), tmp_path) == ["d.txt", "e.txt"]


# -- answer modes ---------------------------------------------------------------------------------
MODES = {
    "Capital of France?": "generated",
    "The answer?": "evidence",
    "Largest animal?": "declined",
    "Moon cheese?": "declined",
    "Mars pizza?": "generated",
}


class ModeRAG(ScriptedRAG):
    """ScriptedRAG whose answers carry the mode given per question."""

    def __init__(self, modes=None):
        super().__init__()
        self.modes = modes or MODES

    def ask(self, question, *, top_k=None, max_new_tokens=None):
        return dataclasses.replace(
            super().ask(question, top_k=top_k, max_new_tokens=max_new_tokens), mode=self.modes[question]
        )


def _core(mode: dict) -> dict:
    return {k: mode[k] for k in ("questions", "answerable", "token_f1", "answer_containment")}


def test_lead_metrics_read_the_first_sentence_and_flag_a_buried_answer():
    """lead_* score what a reader sees first; lead_misses_evidence is 1 when the quotes under the lead hold the gold answer it lacks."""
    m = answer_metrics(
        "It rose. From the articles: Paris is the capital [1].", "It rose.", "Paris is the capital", ["Paris"], False
    )
    assert (m["lead_containment"], m["lead_token_f1"], m["answer_containment"], m["lead_misses_evidence"]) == (
        0.0,
        0.0,
        1.0,
        1.0,
    )
    m = answer_metrics("Paris [1].", "Paris [1].", "Paris is the capital", ["Paris"], False)
    assert (m["lead_containment"], m["lead_token_f1"], m["lead_misses_evidence"]) == (1.0, 1.0, 0.0)
    assert set(answer_metrics("x", "x", "x", ["Paris"], True).values()) == {0.0}


def test_summary_breaks_answers_down_by_mode(qa_file):
    """Counts per mode over all questions; F1 and containment per mode over its answerable questions only."""
    run = evaluate(ModeRAG(), load_qa(qa_file), progress=False)
    s = run.summary
    assert s["modes"] == {"generated": 2, "evidence": 1, "declined": 2}
    # generated: q1 (answerable: contains "Paris", F1 0.5) and q5 (unanswerable, not scored)
    assert _core(s["by_mode"]["generated"]) == {
        "questions": 2,
        "answerable": 1,
        "token_f1": 0.5,
        "answer_containment": 1.0,
    }
    # evidence: q2 answered "It is 41", gold "42"
    assert _core(s["by_mode"]["evidence"]) == {
        "questions": 1,
        "answerable": 1,
        "token_f1": 0.0,
        "answer_containment": 0.0,
    }
    # declined: q3 (answerable, scores 0) and q4 (unanswerable)
    assert _core(s["by_mode"]["declined"]) == {
        "questions": 2,
        "answerable": 1,
        "token_f1": 0.0,
        "answer_containment": 0.0,
    }
    # the overall figures are unchanged by the breakdown
    assert s["token_f1"] == pytest.approx(0.5 / 3) and s["answer_containment"] == pytest.approx(1 / 3)
    assert [r.to_dict()["mode"] for r in run.results] == ["generated", "evidence", "declined", "declined", "generated"]
    table = format_table([s])
    assert table.splitlines()[0].endswith("| abstain R | modes |")
    assert "| generated 2, evidence 1, declined 2 |" in table.splitlines()[2]
    # mode, answers, answerable, lead contains, lead F1, lead misses evidence, contains answer, token F1 (scripted answers: no lead)
    assert "| dense | evidence | 1 | 1 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 |" in table
    assert "| dense | generated | 2 | 1 | 0.000 | 0.000 | 0.000 | 1.000 | 0.500 |" in table


def test_mode_breakdown_absent_in_retrieval_only_and_unknown_modes_kept(qa_file):
    """Retrieval-only runs have no answers, so no modes; a mode outside MODES is counted under its own name."""
    s = evaluate(ScriptedRAG(), load_qa(qa_file), retrieval_only=True, progress=False).summary
    assert s["modes"] is None and s["by_mode"] is None
    assert "modes" not in format_table([s]).splitlines()[0]
    s = evaluate(ModeRAG({**MODES, "Mars pizza?": "extractive"}), load_qa(qa_file), progress=False).summary
    assert s["modes"] == {"generated": 1, "evidence": 1, "declined": 2, "extractive": 1}
    assert _core(s["by_mode"]["extractive"]) == {
        "questions": 1,
        "answerable": 0,
        "token_f1": None,
        "answer_containment": None,
    }


# -- pages: the optional field and page_hit@5 --------------------------------------------------------
def _qa_line(**extra) -> str:
    return (
        json.dumps({"id": "p1", "question": "Q?", "answers": ["a"], "sources": ["r.pdf"], "answerable": True, **extra})
        + "\n"
    )


def test_load_qa_pages(tmp_path):
    """pages maps a source to its gold page numbers, kept as tuples; items without it get {}."""
    path = tmp_path / "qa.jsonl"
    path.write_text(_qa_line(pages={"r.pdf": [3, 4]}) + json.dumps({"id": "p2", "question": "R?"}) + "\n")
    items = load_qa(path)
    assert items[0].pages == {"r.pdf": (3, 4)} and items[1].pages == {}


@pytest.mark.parametrize(
    "pages, message",
    [
        (["r.pdf", 3], r"qa.jsonl:2: 'pages' must be an object mapping a source file"),
        ({"other.pdf": [3]}, r"qa.jsonl:2: 'pages' names 'other.pdf', which is not in 'sources'"),
        ({"r.pdf": 3}, r"qa.jsonl:2: 'pages' for 'r.pdf' must be a non-empty list of page numbers >= 1, got 3"),
        ({"r.pdf": []}, r"qa.jsonl:2: 'pages' for 'r.pdf' must be a non-empty list"),
        ({"r.pdf": [0]}, r"qa.jsonl:2: 'pages' for 'r.pdf' must be a non-empty list of page numbers >= 1, got \[0\]"),
        ({"r.pdf": ["3"]}, r"qa.jsonl:2: 'pages' for 'r.pdf'"),
        ({"r.pdf": [True]}, r"qa.jsonl:2: 'pages' for 'r.pdf'"),
        ({"r.pdf": [2.0]}, r"qa.jsonl:2: 'pages' for 'r.pdf'"),
    ],
)
def test_load_qa_rejects_bad_pages_naming_the_line(tmp_path, pages, message):
    """A malformed pages field is a QAFormatError naming file and line, never a crash later in scoring."""
    path = tmp_path / "qa.jsonl"
    path.write_text(_qa_line() + _qa_line(pages=pages).replace('"p1"', '"p2"'))
    with pytest.raises(QAFormatError, match=message):
        load_qa(path)


def test_page_hit_hand_computed():
    """Hit when a top-5 passage of the gold file covers a gold page; None (not 0) when the passages carry no pages."""
    gold = {"r.pdf": (4,)}
    assert page_hit([_passage(1, "x.txt", "", 0.9), _passage(2, "r.pdf", "", 0.8, pages=(3, 4))], gold) == 1.0
    assert page_hit([_passage(1, "r.pdf", "", 0.9, pages=(1, 2))], gold) == 0.0  # right file, wrong page
    ranked = [_passage(i + 1, f"x{i}.txt", "", 0.5) for i in range(5)] + [_passage(6, "r.pdf", "", 0.1, pages=(4,))]
    assert page_hit(ranked, gold) == 0.0  # the right page at rank 6 is past the cut
    assert page_hit([_passage(1, "r.pdf", "", 0.9)], gold) is None  # no page numbers: cannot be scored
    assert page_hit([_passage(1, "r.pdf", "", 0.9), _passage(2, "r.pdf", "", 0.8, pages=(4,))], gold) == 1.0


PAGED = {
    "Where is A?": [
        _passage(1, "x.txt", "", 0.9),
        _passage(2, "r.pdf", "", 0.8, pages=(2, 3)),
    ],  # gold page 3 at rank 2: hit
    "Where is B?": [_passage(1, "r.pdf", "", 0.9, pages=(1,))],  # gold page 5: miss
    "Where is C?": [_passage(1, "r.pdf", "", 0.9)],  # no page numbers: not scored
    "Where is D?": [_passage(1, "x.txt", "", 0.9)],  # no pages field: not scored
}


class PagedRAG(ScriptedRAG):
    """ScriptedRAG retrieving the PAGED passages."""

    def retrieve(self, question, top_k=None, **_):
        return PAGED[question][:top_k]


def test_evaluate_page_hit_at_5(tmp_path, qa_file):
    """page_hit@5 averages the questions with pages whose passages carry page numbers, and shows in the table."""
    path = tmp_path / "paged.jsonl"
    rows = [
        {"id": "a", "question": "Where is A?", "answers": ["a"], "sources": ["r.pdf"], "pages": {"r.pdf": [3]}},
        {"id": "b", "question": "Where is B?", "answers": ["b"], "sources": ["r.pdf"], "pages": {"r.pdf": [5]}},
        {"id": "c", "question": "Where is C?", "answers": ["c"], "sources": ["r.pdf"], "pages": {"r.pdf": [1]}},
        {"id": "d", "question": "Where is D?", "answers": ["d"], "sources": ["x.txt"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = evaluate(PagedRAG(), load_qa(path), retrieval_only=True, progress=False)
    assert [r.metrics.get("page_hit@5") for r in run.results] == [1.0, 0.0, None, None]
    assert run.summary["page_hit@5"] == pytest.approx(0.5)
    assert run.results[0].to_dict()["metrics"]["page_hit@5"] == 1.0
    table = format_table([run.summary])
    assert table.splitlines()[0].endswith("| abstain R | page hit@5 |") and table.splitlines()[2].endswith("| 0.500 |")
    # without any page numbers the metric is None and the column is not shown
    summary = evaluate(ScriptedRAG(), load_qa(qa_file), retrieval_only=True, progress=False).summary
    assert summary["page_hit@5"] is None and "page hit" not in format_table([summary])


# -- rag eval, real path: packaged MiniLM, real index on disk ------------------------------
@pytest.fixture
def tiny_qa(tmp_path):
    path = tmp_path / "tiny.jsonl"
    rows = [
        {
            "id": "1",
            "question": "By how much did Nvidia shares fall?",
            "answers": ["17 percent"],
            "sources": ["markets/nvidia.txt"],
            "answerable": True,
        },
        {
            "id": "2",
            "question": "At what temperature should sourdough be baked?",
            "answers": ["230 degrees Celsius"],
            "sources": ["bread.html"],
            "answerable": True,
        },
        {
            "id": "3",
            "question": "Who won the 1998 football World Cup?",
            "answers": [],
            "sources": [],
            "answerable": False,
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_rag_eval_cli_retrieval_only_compares_retrievers(tmp_path, articles_dir, tiny_qa, capsys):
    out = tmp_path / "results.jsonl"
    code = main(
        [
            "eval",
            str(tiny_qa),
            "--articles",
            str(articles_dir),
            "--index",
            str(tmp_path / "idx"),
            "--retrieval-only",
            "--retriever",
            "dense,bm25,hybrid",
            "--out",
            str(out),
            "--quiet",
            "--calibrate",
            "0.5",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        "| dense | 1.000 |" in printed and "| hybrid | 1.000 |" in printed and "suggested min_relevance_bm25" in printed
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 9 and {line["retriever"] for line in lines} == {"dense", "bm25", "hybrid"}
    summaries = json.loads((tmp_path / "results.jsonl.summary.json").read_text())
    assert [s["retriever"] for s in summaries] == ["dense", "bm25", "hybrid"]
    assert all(s["hit@1"] == 1.0 and s["answerable"] == 2 for s in summaries)
    # The second run reuses the index instead of rebuilding it.
    gen = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("gen-"))
    assert (
        main(
            [
                "eval",
                str(tiny_qa),
                "--articles",
                str(articles_dir),
                "--index",
                str(tmp_path / "idx"),
                "--retrieval-only",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("gen-")) == gen
    assert json.loads(capsys.readouterr().out)[0]["questions"] == 3


@pytest.mark.slow
def test_rag_eval_cli_with_generation(tmp_path, articles_dir, tiny_qa, capsys):
    """The whole pipeline on a tiny set: answers, citations and abstention are recorded per question."""
    out = tmp_path / "full.jsonl"
    code = main(
        [
            "eval",
            str(tiny_qa),
            "--articles",
            str(articles_dir),
            "--index",
            str(tmp_path / "idx"),
            "--out",
            str(out),
            "--quiet",
            "--max-new-tokens",
            "48",
            "--limit",
            "2",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and all(isinstance(line["answer"], str) and line["answer"] for line in lines)
    assert all(c["source"] for line in lines for c in line["citations"])
    summary = json.loads((tmp_path / "full.jsonl.summary.json").read_text())[0]
    # Exactly the mean over the recorded answers (a declined answer scores 0): the summary is
    # computed from what was answered, not just some value in [0, 1]. (0.0 with SmolLM2-135M today.)
    expected = [
        0.0 if line["abstained"] else float(contains_answer(line["answer"], line["gold_answers"])) for line in lines
    ]
    assert summary["answer_containment"] == pytest.approx(sum(expected) / len(expected))
    assert summary["token_f1"] == pytest.approx(
        sum(0.0 if line["abstained"] else token_f1(line["answer"], line["gold_answers"]) for line in lines) / 2
    )
    assert summary["hit@1"] == 1.0


def test_rag_eval_cli_errors(tmp_path, articles_dir, tiny_qa, capsys):
    assert main(["eval", str(tiny_qa), "--articles", str(articles_dir), "--retriever", "dense,colbert"]) == 1
    assert "unknown retriever 'colbert'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "none.jsonl"), "--articles", str(articles_dir)]) == 1
    assert "QA file" in capsys.readouterr().err


def test_ensure_index_brings_an_index_of_an_older_format_up_to_date(tmp_path, articles_dir, monkeypatch):
    """The eval cache outlives code changes: an index of another format is rebuilt, not measured as it is."""
    import rag.evaluation as evaluation
    from rag import RAG
    from rag.evaluation import prepare

    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=FakeEmbedder())
    logs: list[str] = []
    assert evaluation.ensure_index(rag, articles_dir, progress=False, log=logs.append) is True
    assert evaluation.ensure_index(rag, articles_dir, progress=False, log=logs.append) is False  # same format: reused
    monkeypatch.setattr(prepare, "FORMAT_VERSION", prepare.FORMAT_VERSION + 1)  # as if the code moved on
    assert evaluation.ensure_index(rag, articles_dir, progress=False, log=logs.append) is True
    assert any("older format; updating it" in m for m in logs)
