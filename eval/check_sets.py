"""Validate every QA set in eval/: shape, ids, sources, and that each answer is in its source.

Usage:
    python -m eval.check_sets                      # every eval/*.jsonl
    python -m eval.check_sets eval/pdf-qa.jsonl    # just these
    python -m eval.check_sets --shared /path/to/shared

Checks, per set (the set's articles folder comes from ``eval/evalsets.py``):

- the file loads with :func:`rag.evaluation.load_qa` (JSON objects of the documented shape,
  unique ids, a well-formed optional ``pages`` field);
- no question is asked twice;
- an answerable question has at least one answer and one source;
- every source is a file of the set's articles folder (and of its article list, if any);
- for an answerable question, at least one accepted answer occurs verbatim in one of its
  sources (whitespace runs count as one space; PDFs are read with pypdf, as the loader does);
- with ``pages``, the answer occurs on one of the listed pages, and those pages exist;
- for a set with additions (the rare-term set), answers are looked up in the folder with the
  additions applied, and each answerable question must be about an added sentence (an accepted
  answer occurs in a sentence added to one of its sources). The additions file itself is checked
  too: each addition's article is listed, its ``names`` occur in its sentence and in no file of
  the corpus (so they are truly rare), and the paragraph it follows exists.

Exits 1 when anything is wrong, listing each problem with the set, line id and fix.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from eval.evalsets import DEFAULT_SHARED, EvalSet, eval_sets, read_additions

from rag.evaluation import QAFormatError, QAItem, load_qa, source_file


def squash(text: str) -> str:
    """Collapse whitespace runs to one space (PDF extraction breaks lines where the layout does)."""
    return re.sub(r"\s+", " ", text).strip()


@cache
def pdf_pages(path: Path) -> tuple[str, ...]:
    """The text of each page of a PDF, whitespace-collapsed."""
    from pypdf import PdfReader

    return tuple(squash(page.extract_text() or "") for page in PdfReader(str(path)).pages)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@cache
def source_text(path: Path) -> str:
    """A source file's text, whitespace-collapsed: all pages of a PDF, the decoded strings of JSON records."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return " ".join(pdf_pages(path))
    raw = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".json", ".jsonl"):
        lines = [raw] if suffix == ".json" else [line for line in raw.splitlines() if line.strip()]
        return squash(" ".join(s for line in lines for s in _strings(json.loads(line))))
    return squash(raw)


def check_item(item: QAItem, folder: Path, listed: set[str] | None) -> list[str]:
    """Problems with one question (empty when it is fine)."""
    problems: list[str] = []
    if item.answerable and (not item.answers or not item.sources):
        problems.append("answerable but has no answers or no sources; add them or set answerable: false")
    found_sources = []
    for source in map(source_file, item.sources):  # "feed.jsonl#3" is a record of feed.jsonl
        if listed is not None and source not in listed:
            problems.append(f"source {source!r} is not in the set's article list; add it there")
        elif not (folder / source).is_file():
            problems.append(f"source {source!r} is not a file under {folder}")
        else:
            found_sources.append(source)
    if not item.answerable or not item.answers or len(found_sources) != len(item.sources):
        return problems
    answers = [squash(a) for a in item.answers if a.strip()]
    if not any(a in source_text(folder / s) for a in answers for s in found_sources):
        problems.append(
            f"no accepted answer occurs verbatim in {', '.join(found_sources)}; copy the span from the article"
        )
        return problems
    for source, numbers in item.pages.items():
        if not source.lower().endswith(".pdf"):
            problems.append(f"'pages' given for {source!r}, which is not a PDF")
            continue
        pages = pdf_pages(folder / source)
        bad = [n for n in numbers if n > len(pages)]
        if bad:
            problems.append(f"{source!r} has {len(pages)} pages, but 'pages' lists {bad}")
            continue
        if not any(a in pages[n - 1] for a in answers for n in numbers):
            holding = [i + 1 for i, text in enumerate(pages) if any(a in text for a in answers)]
            problems.append(
                f"no accepted answer is on page(s) {list(numbers)} of {source!r} (found on {holding or 'no page'})"
            )
    return problems


def check_set(qa_file: Path, eval_set: EvalSet | None) -> tuple[list[str], str]:
    """Problems with one QA file, and a one-line summary."""
    if eval_set is None:
        return [f"{qa_file.name} is not a registered set; add it to eval_sets() in eval/evalsets.py"], ""
    reason = eval_set.unavailable()
    if reason:
        return [f"cannot check: {reason}"], ""
    try:
        items = load_qa(qa_file)
    except QAFormatError as exc:
        return [str(exc)], ""
    listed = set(eval_set.article_names()) if eval_set.article_list is not None else None
    if listed is not None:
        absent = sorted(n for n in listed if not (eval_set.articles / n).is_file())
        if absent:
            return [f"article list names {len(absent)} file(s) not in {eval_set.articles}: {', '.join(absent[:5])}"], ""
    folder = eval_set.articles
    problems: list[str] = []
    if eval_set.additions is not None:
        try:
            folder = eval_set.articles_dir()
        except ValueError as exc:
            return [f"cannot apply {eval_set.additions.name}: {exc}"], ""
        added: dict[str, str] = {}
        for add in read_additions(eval_set.additions):
            added[add.article] = added.get(add.article, "") + " " + squash(add.sentence)
        problems += [
            f"id {it.id}: no accepted answer occurs in a sentence added to {', '.join(it.sources)}; "
            f"ask about the made-up fact, or add it to {eval_set.additions.name}"
            for it in items
            if it.answerable
            and not any(squash(a) in added.get(source_file(s), "") for a in it.answers if a.strip() for s in it.sources)
        ]
    seen: dict[str, str] = {}
    for item in items:
        key = " ".join(item.question.lower().split())
        if key in seen:
            problems.append(f"id {item.id}: same question as id {seen[key]}")
        seen[key] = item.id
        problems += [f"id {item.id}: {p}" for p in check_item(item, folder, listed)]
    answerable = sum(it.answerable for it in items)
    paged = sum(bool(it.pages) for it in items)
    summary = (
        f"{len(items)} questions, {answerable} answerable, {len(items) - answerable} unanswerable"
        + (f", {paged} with pages" if paged else "")
        + (f"; {len(listed)} listed articles" if listed is not None else "")
    )
    return problems, summary


def check_additions(eval_set: EvalSet) -> tuple[list[str], str]:
    """Problems with a set's additions file (see the module docstring), and a one-line summary."""
    assert eval_set.additions is not None
    reason = eval_set.unavailable()
    if reason:
        return [f"cannot check: {reason}"], ""
    try:
        additions = read_additions(eval_set.additions)
        eval_set.articles_dir()  # applies them: a paragraph past the middle or an unlisted article fails here
    except (ValueError, FileNotFoundError) as exc:
        return [str(exc)], ""
    corpus = [
        squash(p.read_text(encoding="utf-8", errors="replace")).lower()
        for p in sorted(eval_set.articles.iterdir())
        if p.is_file()
    ]
    problems: list[str] = []
    for n, add in enumerate(additions, start=1):
        where = f"addition {n} ({add.article})"
        if not add.names:
            problems.append(f"{where}: lists no made-up names; add them under \"names\"")
        original = squash((eval_set.articles / add.article).read_text(encoding="utf-8", errors="replace"))
        if squash(add.sentence) in original:
            problems.append(f"{where}: the sentence is already in the article; write a made-up one")
        for name in add.names:
            if name.lower() not in add.sentence.lower():
                problems.append(f"{where}: name {name!r} is not in its sentence")
            hits = sum(name.lower() in text for text in corpus)
            if hits:
                problems.append(
                    f"{where}: name {name!r} occurs in {hits} file(s) of {eval_set.articles}; invent a rarer one"
                )
    middle = sum(a.after_paragraph is not None for a in additions)
    summary = (
        f"{len(additions)} additions to {len({a.article for a in additions})} articles of set {eval_set.name} "
        f"({middle} in the middle, {len(additions) - middle} at the end); "
        f"{sum(len(a.names) for a in additions)} names absent from the corpus"
    )
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    """Check the given QA files (default: every eval/*.jsonl); returns 1 when any has a problem."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Each set's articles folder is defined in eval/evalsets.py.",
    )
    ap.add_argument("files", nargs="*", type=Path, help="QA files to check (default: every eval/*.jsonl)")
    ap.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        metavar="DIR",
        help=f"the shared data folder with corpora/squad-articles (default: {DEFAULT_SHARED})",
    )
    args = ap.parse_args(argv)
    by_file = {s.qa_file.resolve(): s for s in eval_sets(args.shared).values()}
    by_additions = {s.additions.resolve(): s for s in eval_sets(args.shared).values() if s.additions is not None}
    files = args.files or sorted((ROOT / "eval").glob("*.jsonl"))
    failed = 0
    for path in files:
        if path.resolve() in by_additions:
            problems, summary = check_additions(by_additions[path.resolve()])
        else:
            problems, summary = check_set(path, by_file.get(path.resolve()))
        if problems:
            failed += 1
            print(f"FAIL {path.name}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"ok   {path.name}: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
