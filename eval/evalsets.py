"""The development QA sets, where their articles are, and article subsets as folders.

Each set is a QA JSONL file (format: ``../shared/README.md`` and :mod:`rag.evaluation`) plus
the folder its ``sources`` are relative to. Two sets use only part of a larger corpus, listed
one file name per line (``eval/squad-articles.txt``, ``eval/searchbox-articles.txt``):
:func:`subset_folder` makes a folder of copies of just those files, under the temp folder,
so ``rag eval`` (and :func:`rag.evaluation.ensure_index`) index exactly that subset::

    python -c "from eval import evalsets; print(evalsets.SETS['squad'].articles_dir())"
    rag eval eval/squad-qa.jsonl --articles <that folder> --retrieval-only

The rare-term set adds made-up sentences (``eval/rare-additions.jsonl``) to copies of some
listed articles: :func:`augmented_folder` writes that folder, keyed by a hash of the additions,
so a changed addition gets a new folder and a new cached index.

Used by ``eval/run_all.py`` and ``eval/check_sets.py``.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
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
        folder_label: names the subset folder (default: ``name``); sets over the same list that
            share a label share the folder, and with it the cached index.
        additions: a JSONL of sentences added to copies of listed articles (:func:`read_additions`);
            None for plain copies.
    """

    name: str
    qa_file: Path
    articles: Path
    article_list: Path | None = None
    description: str = ""
    hint: str = ""
    folder_label: str = ""
    additions: Path | None = None

    def unavailable(self) -> str | None:
        """Why the set cannot be run here (a missing file or folder), or None."""
        paths = (
            ("QA file", self.qa_file),
            ("articles folder", self.articles),
            ("article list", self.article_list),
            ("additions file", self.additions),
        )
        for what, path in paths:
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
        label = self.folder_label or self.name
        if self.additions is not None:
            return augmented_folder(self.articles, names, read_additions(self.additions), label, cache=cache)
        return subset_folder(self.articles, names, label, cache=cache)


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
            raise ValueError(
                f"{path}:{lineno}: {name!r} is not a plain file name; list files of the corpus folder, one per line"
            )
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


@dataclass(frozen=True)
class Addition:
    """A made-up sentence added to one article of a subset.

    Attributes:
        article: the file name it is added to.
        sentence: the text added, as its own paragraph.
        after_paragraph: 1-based number of the (non-blank) paragraph of the original it follows;
            None to append it at the end.
        names: the made-up terms of the sentence, which no article of the corpus may contain
            (``eval/check_sets.py`` checks).
    """

    article: str
    sentence: str
    after_paragraph: int | None = None
    names: tuple[str, ...] = ()


def read_additions(path: Path) -> list[Addition]:
    """The additions of a JSONL file: one ``{"article", "sentence", "after_paragraph"?, "names"?}`` object a line.

    Raises:
        ValueError: a line is not such an object.
    """
    additions: list[Addition] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc.msg}); write one object per line") from exc
        if not (isinstance(obj, dict) and isinstance(obj.get("article"), str) and str(obj.get("sentence", "")).strip()):
            raise ValueError(f"{where}: needs \"article\" (a file name) and a non-empty \"sentence\"")
        after = obj.get("after_paragraph")
        if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 1):
            raise ValueError(f"{where}: after_paragraph {after!r} must be a paragraph number from 1 (absent: append)")
        names = obj.get("names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"{where}: names must be a list of non-empty strings")
        additions.append(Addition(obj["article"], obj["sentence"].strip(), after, tuple(names)))
    return additions


def apply_additions(text: str, additions: list[Addition]) -> str:
    """``text`` with each addition inserted as a paragraph after its paragraph (or at the end).

    Paragraph numbers count the non-blank lines of the original, so additions do not shift each
    other; the rest of the text is kept as it is (a blank line separates the new paragraph where
    the article separates its paragraphs so).

    Raises:
        ValueError: an addition's paragraph is not before the last one (append it instead).
    """
    lines = text.splitlines(keepends=True)
    count = sum(1 for line in lines if line.strip())
    sep = "\n\n" if "\n\n" in text else "\n"
    after: dict[int, list[str]] = {}
    for add in additions:
        n = count if add.after_paragraph is None else add.after_paragraph
        if add.after_paragraph is not None and n >= count:
            raise ValueError(
                f"{add.article} has {count} paragraphs; after_paragraph {n} is not in the middle, "
                "leave it out to append at the end"
            )
        after.setdefault(n, []).append(add.sentence)
    out: list[str] = []
    seen = 0
    for line in lines:
        out.append(line)
        if line.strip():
            seen += 1
            if seen in after and seen < count:
                out += [f"{sep[1:]}{sentence}\n" for sentence in after[seen]]
    if count in after:
        out = ["".join(out).rstrip("\n"), *(f"{sep}{sentence}" for sentence in after[count]), "\n"]
    return "".join(out)


def augmented_folder(
    corpus: Path, names: list[str], additions: list[Addition], label: str, cache: Path | None = None
) -> Path:
    """Like :func:`subset_folder`, with ``additions`` applied to the copies of their articles.

    The folder is named by ``label`` and a hash of the corpus path, the names and the additions,
    so a changed addition gets a new folder (and index). Files are written whole, then renamed.

    Raises:
        FileNotFoundError: a listed file is not in ``corpus``.
        ValueError: an addition names an article that is not listed, or a paragraph past the middle.
    """
    corpus = corpus.resolve()
    missing = [n for n in names if not (corpus / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed article(s) are not files in {corpus}: {', '.join(missing[:5])}")
    unlisted = sorted({a.article for a in additions} - set(names))
    if unlisted:
        raise ValueError(
            f"additions name {len(unlisted)} article(s) not in the article list: {', '.join(unlisted[:5])}; list them"
        )
    spec = json.dumps([str(corpus), sorted(names), [vars(a) for a in additions]], sort_keys=True)
    key = hashlib.sha256(spec.encode()).hexdigest()[:10]
    folder = (cache or Path(tempfile.gettempdir()) / "rag-eval" / "subsets") / f"{label}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name not in names or entry.is_symlink():
            entry.unlink()
    for name in names:
        own = [a for a in additions if a.article == name]
        text = (corpus / name).read_text(encoding="utf-8")
        data = (apply_additions(text, own) if own else text).encode("utf-8")
        copy = folder / name
        if copy.is_file() and copy.read_bytes() == data:
            continue
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, copy)
    return folder


def eval_sets(shared: Path = DEFAULT_SHARED) -> dict[str, EvalSet]:
    """The sets by name, in the order ``eval/run_all.py`` runs them."""
    squad = shared / "corpora" / "squad-articles"
    hint = f"the shared data folder is not at {shared} (pass --shared DIR)" if not shared.is_dir() else ""
    sets = [
        EvalSet(
            "rgb-en-fact",
            shared / "eval" / "rgb-en-fact" / "qa.jsonl",
            shared / "eval" / "rgb-en-fact" / "articles",
            description="100 news questions over 969 snippets (../shared; noisy labels)",
            hint=hint,
        ),
        EvalSet(
            "squad",
            EVAL / "squad-qa.jsonl",
            squad,
            EVAL / "squad-articles.txt",
            description="49 paraphrased questions over 82 squad articles",
            hint=hint,
        ),
        EvalSet(
            "searchbox",
            EVAL / "searchbox-qa.jsonl",
            squad,
            EVAL / "searchbox-articles.txt",
            description="120 search-box queries (39 unanswerable) over 93 other squad articles (31 of them topical distractors)",
            hint=hint,
        ),
        EvalSet(
            "sample",
            EVAL / "sample-qa.jsonl",
            ROOT / "data" / "articles",
            description="56 questions (26 unanswerable) over the sample articles",
        ),
        EvalSet(
            "pdf",
            EVAL / "pdf-qa.jsonl",
            EVAL / "pdfs" / "articles",
            description="42 questions (10 unanswerable) over 5 multi-page PDFs, with gold pages",
        ),
        EvalSet(
            "users",
            EVAL / "users-qa.jsonl",
            ROOT / "data" / "articles",
            description="51 short questions a new user would type (11 unanswerable) over the sample articles",
        ),
        EvalSet(
            "compound",
            EVAL / "compound-qa.jsonl",
            ROOT / "data" / "articles",
            description="13 two-part questions ('Who founded DeepSeek and when?'; 2 unanswerable) over the sample articles",
        ),
        EvalSet(
            "offtopic",
            EVAL / "offtopic-qa.jsonl",
            ROOT / "data" / "articles",
            description="40 off-topic questions over the sample articles, all unanswerable",
        ),
        EvalSet(
            "offtopic-squad",
            EVAL / "offtopic-squad-qa.jsonl",
            squad,
            EVAL / "squad-articles.txt",
            folder_label="squad",
            hint=hint,
            description="40 off-topic questions over the squad set's 82 articles, all unanswerable",
        ),
        EvalSet(
            "rare",
            EVAL / "rare-qa.jsonl",
            squad,
            EVAL / "rare-articles.txt",
            additions=EVAL / "rare-additions.jsonl",
            hint=hint,
            description="50 questions on made-up names and facts added to 35 of 95 squad articles",
        ),
    ]
    return {s.name: s for s in sets}


SETS = eval_sets()
