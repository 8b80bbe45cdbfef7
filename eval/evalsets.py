"""The development QA sets, where their articles are, and article subsets as folders.

Each set is a QA JSONL file (format: ``../shared/README.md`` and :mod:`rag.evaluation`) plus
the folder its ``sources`` are relative to. Two sets use only part of a larger corpus, listed
one file name per line (``eval/squad-articles.txt``, ``eval/searchbox-articles.txt``):
:func:`subset_folder` makes a folder of copies of just those files, under the temp folder,
so ``rag eval`` (and :func:`rag.evaluation.ensure_index`) index exactly that subset::

    python -c "import sys; sys.path.insert(0, 'eval'); import evalsets; print(evalsets.SETS['squad'].articles_dir())"
    rag eval eval/squad-qa.jsonl --articles <that folder> --retrieval-only

Used by ``eval/run_all.py`` and ``eval/check_sets.py``.
"""

from __future__ import annotations

import filecmp
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "eval"
DEFAULT_SHARED = ROOT.parent / "shared"


@dataclass(frozen=True)
class EvalSet:
    """One development set.

    Attributes:
        name: short name (``--sets``).
        qa_file: the QA JSONL file.
        articles: the folder the sources are relative to (for a subset: the whole corpus).
        article_list: a file listing the articles of ``articles`` the set is measured on, one
            file name per line; None for the whole folder.
        description: one line for tables and ``--help``.
        hint: what to do when the set's files are absent.
    """

    name: str
    qa_file: Path
    articles: Path
    article_list: Path | None = None
    description: str = ""
    hint: str = ""

    def unavailable(self) -> str | None:
        """Why the set cannot be run here (a missing file or folder), or None."""
        for what, path in (("QA file", self.qa_file), ("articles folder", self.articles), ("article list", self.article_list)):
            if path is not None and not path.exists():
                return f"{what} {path} is absent" + (f"; {self.hint}" if self.hint else "")
        return None

    def article_names(self) -> list[str] | None:
        """The file names of ``article_list`` (None when the set uses the whole folder)."""
        if self.article_list is None:
            return None
        return read_article_list(self.article_list)

    def articles_dir(self, cache: Path | None = None) -> Path:
        """The folder to index: ``articles`` itself, or a folder of copies of the listed subset."""
        names = self.article_names()
        if names is None:
            return self.articles
        return subset_folder(self.articles, names, self.name, cache=cache)


def read_article_list(path: Path) -> list[str]:
    """File names listed one per line (blank lines and ``#`` comments ignored).

    Raises:
        ValueError: a name is listed twice or is a path rather than a file name.
    """
    names: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if "/" in name or name in (".", ".."):
            raise ValueError(f"{path}:{lineno}: {name!r} is not a plain file name; list files of the corpus folder, one per line")
        if name in names:
            raise ValueError(f"{path}:{lineno}: {name!r} is listed twice")
        names.append(name)
    return names


def subset_folder(corpus: Path, names: list[str], label: str, cache: Path | None = None) -> Path:
    """A folder holding a copy of ``corpus / name`` for each of ``names`` (and nothing else).

    Copies, not links: builds skip links that lead out of the folder being built (SECURITY.md).

    The folder sits under ``cache`` (default ``<temp>/rag-eval/subsets``), named by ``label``
    and a hash of the corpus path and the names, so a changed list gets a new folder and with
    it a new cached index. Existing folders are brought back in line with the list.

    Raises:
        FileNotFoundError: a listed file is not in ``corpus``.
    """
    corpus = corpus.resolve()
    missing = [n for n in names if not (corpus / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed article(s) are not files in {corpus}: {', '.join(missing[:5])}")
    key = hashlib.sha256("\n".join([str(corpus), *sorted(names)]).encode()).hexdigest()[:10]
    folder = (cache or Path(tempfile.gettempdir()) / "rag-eval" / "subsets") / f"{label}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(names)
    for entry in folder.iterdir():
        if entry.name not in wanted or entry.is_symlink() or not filecmp.cmp(entry, corpus / entry.name, shallow=False):
            entry.unlink()
    for name in names:
        copy = folder / name
        if not copy.exists():
            shutil.copyfile(corpus / name, copy)
    return folder


def eval_sets(shared: Path = DEFAULT_SHARED) -> dict[str, EvalSet]:
    """The sets by name, in the order ``eval/run_all.py`` runs them."""
    squad = shared / "corpora" / "squad-articles"
    hint = f"the shared data folder is not at {shared} (pass --shared DIR)" if not shared.is_dir() else ""
    sets = [
        EvalSet("rgb-en-fact", shared / "eval" / "rgb-en-fact" / "qa.jsonl", shared / "eval" / "rgb-en-fact" / "articles",
                description="100 news questions over 969 snippets (../shared; noisy labels)", hint=hint),
        EvalSet("squad", EVAL / "squad-qa.jsonl", squad, EVAL / "squad-articles.txt",
                description="49 paraphrased questions over 82 squad articles", hint=hint),
        EvalSet("searchbox", EVAL / "searchbox-qa.jsonl", squad, EVAL / "searchbox-articles.txt",
                description="120 search-box queries (39 unanswerable) over 93 other squad articles (31 of them topical distractors)", hint=hint),
        EvalSet("sample", EVAL / "sample-qa.jsonl", ROOT / "data" / "articles",
                description="56 questions (26 unanswerable) over the sample articles"),
        EvalSet("pdf", EVAL / "pdf-qa.jsonl", EVAL / "pdfs" / "articles",
                description="42 questions (10 unanswerable) over 5 multi-page PDFs, with gold pages"),
    ]
    return {s.name: s for s in sets}


SETS = eval_sets()
