"""Loading articles: each kind of bad input is skipped with a reason or read correctly, never fatal.

The unit tests call the loader directly; the slow test builds a real index (real embedder,
real FAISS files) from a folder holding every bad-input kind at once, and checks the good
articles answer, each bad file is named with its reason, and no source file changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag import RAG, Config, ConfigError
from rag.documents import LINK_OUTSIDE, decode_bytes, load_documents, make_document

# -- helpers -----------------------------------------------------------------------------


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF showing ``text`` in Helvetica (pypdf extracts it back)."""
    return make_pdf_pages([[text]])


def make_pdf_pages(pages: list[list[str]]) -> bytes:
    """A PDF with one page per item of ``pages``, each showing its lines (an empty list: a blank page)."""
    n = len(pages)
    font = 3 + 2 * n
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{3 + 2 * i} 0 R".encode() for i in range(n))
        + f"] /Count {n} >>".encode(),
    ]
    for i, lines in enumerate(pages):
        content = ("BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({line}) Tj T*" for line in lines) + " ET").encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf(text: str, password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(make_pdf(text))).pages[0])
    writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


LATIN1_TEXT = (
    "Café in Zürich\n\nLe café était très animé. Les habitués déjà assis près de la fenêtre parlaient de l'été à Genève, "
    "où la fête du lac avait attiré des milliers de visiteurs. "
) * 3


def bad_input_folder(root: Path) -> dict[str, str | None]:
    """Write one file per bad-input kind (plus good ones) under ``root``.

    Returns ``{source: expected skip-reason substring, or None when it must load}``.
    """
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str | None] = {}

    def put(name: str | bytes, data: bytes, reason: str | None) -> None:
        path = os.path.join(os.fsencode(str(root)), os.fsencode(name) if isinstance(name, str) else name)
        with open(path, "wb") as fh:
            fh.write(data)
        expect[name if isinstance(name, str) else name.decode("utf-8", errors="backslashreplace")] = reason

    put(
        "good.md",
        b"# Sourdough starters\n\nA sourdough starter of flour and water ferments for several days before baking.\n",
        None,
    )
    put("empty.txt", b"", "empty file")
    put("blank.md", b"  \n\n \t\n", "empty file")
    put("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "binary file")
    put("huge.txt", b"Too big to read.\n\n" + b"filler words here " * 4000, "over the 0.05 MB limit")
    put("latin1.txt", LATIN1_TEXT.encode("latin-1"), None)
    put(
        "cp1252.txt",
        ("Smart quotes\n\n\u201cHello,\u201d she said \u2013 it\u2019s a fine day in the harbour. " * 5).encode(
            "cp1252"
        ),
        None,
    )
    put(
        "utf16.txt", "Unicode sixteen\n\nThis file is UTF-16 with a byte-order mark: naïve café.".encode("utf-16"), None
    )
    put(
        "bad-utf8.txt",
        "Mostly UTF-8 \u2014 one stray byte: X and the lighthouse keeper kept writing. ".encode().replace(b"X", b"\xff")
        * 3,
        None,
    )
    put(
        "truncated.html",
        b"<html><head><title>Harbour lights</title></head><body><p>The lighthouse was built in 1852.</p><p>Its lamp burns wha",
        None,
    )
    put("truncated.json", b'{"title": "Cut", "text": "This record was cut off in the mid', "invalid JSON")
    put(
        "records.jsonl",
        b'{"title": "Whole", "text": "The first record of the feed is complete."}\n{"title": "Cut", "text": "The second is cu',
        None,
    )
    expect["records.jsonl#1"] = "invalid JSON line 2"
    expect["records.jsonl#0"] = expect.pop("records.jsonl")
    put("locked.pdf", encrypted_pdf("Secret harbour accounts."), "encrypted PDF")
    put("corrupt.pdf", make_pdf("Half a document")[:150], "corrupt PDF")
    put("ok.pdf", make_pdf("The harbour master keeps a ledger of every ship."), None)
    put("Zürich café.txt", "Zurich\n\nA file name with non-ASCII letters and a space.".encode(), None)
    put("caf%C3%A9%20news.txt", b"Percent\n\nThis file name is percent-encoded and must be kept as written.", None)
    put("日本語.md", "# 日本語の記事\n\nこれは日本語の記事です。港の灯台について。".encode(), None)
    put(b"latin1-name-\xe9.txt", b"Bytes\n\nThis file name is not valid UTF-8 on disk.", None)
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "loop")  # a folder loop: sub/loop -> the folder itself
    expect["sub/loop"] = "symlink loop"
    os.symlink("..", root / "up")  # the folder's parent: outside, never walked
    expect["up"] = LINK_OUTSIDE
    os.symlink("self.txt", root / "self.txt")
    expect["self.txt"] = "symlink loop"
    os.symlink("missing.txt", root / "dangling.txt")
    expect["dangling.txt"] = "broken symlink"
    return expect


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, mtime and mode of every file under ``folder`` (symlinks not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = (
                hashlib.sha256(p.read_bytes()).hexdigest()
                if p.is_file() and not p.is_symlink()
                else os.readlink(p)
                if p.is_symlink()
                else ""
            )
            out[str(p)] = (digest, st.st_mtime_ns, st.st_mode)
    return out


# -- unit tests ------------------------------------------------------------------------------


@pytest.fixture
def bad_folder(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    parent = tmp_path / "parent"
    folder = parent / "articles"
    return folder, bad_input_folder(folder)


def test_each_bad_input_kind_is_skipped_with_its_reason_or_read(bad_folder) -> None:
    """Guards against a bad file aborting the load, being dropped silently, or losing its neighbours."""
    folder, expect = bad_folder
    result = load_documents(folder, max_file_mb=0.05)
    loaded = {d.source for d in result.documents}
    skipped = {s.source: s.reason for s in result.skipped}
    for source, reason in expect.items():
        if reason is None:
            assert source in loaded, f"{source} should load; skipped: {skipped.get(source)}"
        else:
            assert source in skipped, f"{source} should be skipped ({reason}); loaded: {source in loaded}"
            assert reason in skipped[source], f"{source}: {skipped[source]!r} does not mention {reason!r}"
    assert loaded | set(skipped) == set(expect)


def test_legacy_encodings_decode_to_the_right_letters(bad_folder) -> None:
    """Guards against Latin-1 articles read as a Baltic code page (è as č) and UTF-8 with one bad byte read as Mac Roman."""
    folder, _ = bad_folder
    docs = {d.source: d.text for d in load_documents(folder, max_file_mb=0.05).documents}
    assert "très animé" in docs["latin1.txt"] and "déjà" in docs["latin1.txt"]
    assert "\u201cHello,\u201d she said \u2013 it\u2019s" in docs["cp1252.txt"]
    assert "naïve café" in docs["utf16.txt"]
    assert "Mostly UTF-8 \u2014 one stray byte: \ufffd and the lighthouse" in docs["bad-utf8.txt"]


def test_truncated_html_keeps_the_text_it_has(bad_folder) -> None:
    """Guards against losing a whole article because its HTML was cut off mid-tag."""
    folder, _ = bad_folder
    docs = {d.source: d for d in load_documents(folder, max_file_mb=0.05).documents}
    assert docs["truncated.html"].title == "Harbour lights"
    assert "The lighthouse was built in 1852." in docs["truncated.html"].text
    assert "Its lamp burns wha" in docs["truncated.html"].text
    assert docs["records.jsonl#0"].text == "The first record of the feed is complete."


def test_file_names_are_kept_as_written(bad_folder) -> None:
    """Guards against percent-decoding names, and against names that are not UTF-8 breaking the JSON manifest or SQLite."""
    folder, _ = bad_folder
    sources = {d.source for d in load_documents(folder, max_file_mb=0.05).documents}
    assert {"Zürich café.txt", "caf%C3%A9%20news.txt", "日本語.md", "latin1-name-\\xe9.txt"} <= sources
    for s in sources:
        s.encode("utf-8")  # raises on surrogate escapes
    json.dumps(sorted(sources), ensure_ascii=False).encode("utf-8")


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    """Guards against a fixed size limit: loader.max_file_mb decides, and the reason says how to raise it."""
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "big.txt").write_text("Big\n\n" + "many words here " * 5000, encoding="utf-8")
    assert load_documents(folder, max_file_mb=1).documents
    skipped = load_documents(folder, max_file_mb=0.01).skipped
    assert skipped and "raise loader.max_file_mb" in skipped[0].reason


def test_unreadable_permissions_are_skipped(tmp_path: Path) -> None:
    """Guards against a file or folder without read permission aborting the load.

    Root reads anything, so as root the loader runs in a child without the capabilities
    that bypass file permissions (``setpriv``), which is how an ordinary user runs it.
    """
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "open.txt").write_text("Open\n\nAnyone can read this article.", encoding="utf-8")
    (folder / "secret.txt").write_text("Secret\n\nNobody may read this article.", encoding="utf-8")
    (folder / "closed").mkdir()
    (folder / "closed" / "inner.txt").write_text("Inner\n\nHidden in a closed folder.", encoding="utf-8")
    os.chmod(folder / "secret.txt", 0o000)
    os.chmod(folder / "closed", 0o000)
    try:
        code = (
            "import json, sys; from rag.documents import load_documents; r = load_documents(sys.argv[1]); "
            "print(json.dumps({'docs': [d.source for d in r.documents], 'skipped': {s.source: s.reason for s in r.skipped}}))"
        )
        cmd = [sys.executable, "-c", code, str(folder)]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot take away the capability to read any file")
            cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["docs"] == ["open.txt"]
        assert out["skipped"]["secret.txt"] == "permission denied"
        assert out["skipped"]["closed"] == "cannot list folder: Permission denied"
        assert os.stat(folder / "secret.txt").st_mode & 0o777 == 0  # the tool changed nothing
    finally:
        os.chmod(folder / "secret.txt", 0o644)
        os.chmod(folder / "closed", 0o755)


def test_decode_bytes_rejects_binary_without_nul_bytes() -> None:
    """Guards against random binary data (no NUL byte) being indexed as text."""
    import random

    rng = random.Random(1)
    data = bytes(b for b in (rng.randrange(1, 256) for _ in range(4000)))
    from rag.documents import UnreadableFile

    with pytest.raises(UnreadableFile, match="binary"):
        decode_bytes(data)


def links_out_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Articles holding links out of the folder (issue 16) and links that stay inside.

    Returns the folder and ``{link: what it points at}`` for the links out.
    """
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "creds.txt").write_text("Credentials\n\nThe admin password is hunter2-OUTSIDE-SECRET.", encoding="utf-8")
    (outside / "private" / "diary.md").write_text(
        "# Diary\n\nOUTSIDE-DIARY entries about the lighthouse.", encoding="utf-8"
    )
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.txt").write_text(
        "Lighthouse\n\nThe lighthouse keeper lit the lamp at dusk every day.", encoding="utf-8"
    )
    (folder / "sub" / "tides.md").write_text("# Tides\n\nThe tide tables are printed every Monday.", encoding="utf-8")
    links = {
        "creds.txt": str(outside / "creds.txt"),
        "outside-dir": str(outside),
        "hostname.txt": "/etc/hostname",
        "rootlink": "/",
        "sub/gone.txt": str(outside / "no-such-file.txt"),
        "sub/up": "../..",
    }
    for name, target in links.items():
        os.symlink(target, folder / name)
    os.symlink("real.txt", folder / "alias.txt")  # inside: still read
    return folder, links


def test_links_out_of_the_folder_are_skipped_with_one_message(tmp_path: Path) -> None:
    """Guards against a link in the articles folder (to a file, a folder or /) indexing files from anywhere on the disk.

    A dangling link out reads exactly like one whose target exists: the message never tells
    what lies outside the folder.
    """
    folder, links = links_out_folder(tmp_path)
    result = load_documents(folder)
    assert {s.source: s.reason for s in result.skipped} == {name: LINK_OUTSIDE for name in links}
    assert sorted(d.source for d in result.documents) == ["alias.txt", "real.txt", "sub/tides.md"]
    assert not any("OUTSIDE" in d.text for d in result.documents)


def test_html_drops_scripts_styles_navigation_iframes_and_forms(articles_dir: Path, tmp_path: Path) -> None:
    """Guards against page chrome and code (scripts, styles, nav, iframes, forms) being indexed as article text."""
    page = (
        "<html><head><title>Harbour news</title><style>.lead{color:STYLE_TEXT}</style></head><body>"
        "<header>HEADER_TEXT</header><nav><a href='/'>NAV_TEXT</a></nav>"
        "<iframe src='x'>IFRAME_TEXT</iframe><noscript>NOSCRIPT_TEXT</noscript>"
        "<p>The harbour reopened on Monday.</p><script>var s = 'SCRIPT_TEXT';</script>"
        "<form><label>FORM_TEXT</label><input value='x'><button>BUTTON_TEXT</button></form>"
        "<div hidden>HIDDEN_TEXT</div><aside>ASIDE_TEXT</aside><p>Ferries run every hour.</p>"
        "<footer>FOOTER_TEXT</footer></body></html>"
    )
    (articles_dir / "news.html").write_text(page, encoding="utf-8")
    docs = {d.source: d for d in load_documents(articles_dir).documents}
    planted = ("STYLE", "HEADER", "NAV", "IFRAME", "NOSCRIPT", "SCRIPT", "FORM", "BUTTON", "HIDDEN", "ASIDE", "FOOTER")
    leaked = [word for word in planted for d in ("news.html", "bread.html") if f"{word}_TEXT" in docs[d].text]
    assert leaked == []
    assert docs["news.html"].text == "The harbour reopened on Monday.\n\nFerries run every hour."
    assert docs["news.html"].title == "Harbour news"
    assert (
        "Bake the loaf at 230 degrees Celsius for 40 minutes." in docs["bread.html"].text
    )  # conftest's page: body kept


PDF_PAGES = [
    ["The harbour ledger, page one.", "Ships arrived from Lisbon in spring."],
    [],  # a blank page still counts
    ["The lighthouse was repainted in 1901.", "Its lamp burns paraffin oil."],
    ["The ferry timetable changed in 1923."],
]


def test_pdf_keeps_where_each_page_starts(tmp_path: Path) -> None:
    """Guards against PDF pages being joined into one text with no way back to the page a passage came from."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ledger.pdf").write_bytes(make_pdf_pages(PDF_PAGES))
    doc = load_documents(tmp_path / "a").documents[0]
    assert len(doc.page_starts) == 4
    first, blank, third, fourth = doc.page_starts
    assert doc.text[first:blank].startswith("The harbour ledger") and "Lisbon" in doc.text[first:blank]
    assert (
        blank == third and doc.text[third:fourth].startswith("The lighthouse") and "paraffin" in doc.text[third:fourth]
    )
    assert doc.text[fourth:] == "The ferry timetable changed in 1923."
    assert doc.pages_of(doc.text.index("Lisbon"), doc.text.index("repainted")) == (1, 3)  # the blank page spans nothing
    assert doc.pages_of(doc.text.index("ferry"), len(doc.text)) == (4,)


def test_words_a_pdf_hyphenates_at_line_ends_are_whole_again(tmp_path: Path) -> None:
    """A justified PDF splits words over lines ("environ-" / "mental"): search and quotes need the word.
    The document decides compounds: "well-known" is written elsewhere, so "well-" / "known" keeps it."""
    (tmp_path / "a").mkdir()
    lines = [
        [
            "The plant environ-",
            "mental permit was renewed in 2021 by a well-",
            "known engineer.",
            "A well-known auditor checked the infor-",
        ],
        ["mation on the second page."],
    ]
    (tmp_path / "a" / "permit.pdf").write_bytes(make_pdf_pages(lines))
    doc = load_documents(tmp_path / "a").documents[0]
    assert "The plant environmental permit was renewed in 2021 by a well-known engineer." in " ".join(doc.text.split())
    assert "infor-" in doc.text  # a word split over two pages stays split: each page is read on its own
    second = doc.page_starts[1]
    assert doc.text[second:].startswith("mation on the second page.") and doc.pages_of(
        doc.text.index("environmental"), second
    ) == (1,)


def test_typographic_ligatures_become_letters(tmp_path: Path) -> None:
    """PDFs often set "fi", "ff", "ffi" as one glyph; "\ufb01nancial" must be found by "financial"."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.txt").write_text(
        "The \ufb01nancial e\ufb00ect on the o\ufb03ce was \ufb02at.", encoding="utf-8"
    )
    assert load_documents(tmp_path / "a").documents[0].text == "The financial effect on the office was flat."


def test_chunks_of_a_pdf_carry_their_pages(tmp_path: Path) -> None:
    """Guards against chunks of a PDF losing their page numbers (a citation must be able to say "p. N")."""
    from rag.chunking import Chunker

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ledger.pdf").write_bytes(make_pdf_pages(PDF_PAGES))
    doc = load_documents(tmp_path / "a").documents[0]
    assert [c.pages for c in Chunker().split(doc)] == [(1, 3, 4)]  # one chunk over every page with text
    chunks = Chunker(chunk_tokens=16, overlap_tokens=0).split(doc)
    assert len(chunks) >= 3
    for c in chunks:
        expected = tuple(i + 1 for i, text in enumerate(PDF_PAGES) if any(line[:12] in c.text for line in text))
        assert c.pages and set(expected) <= set(c.pages), (c.text, c.pages)
    assert [c.pages for c in chunks][-1] == (4,)
    md = make_document("# Title\n\nNo pages here.", "", "a.md")
    assert all(c.pages == () for c in Chunker().split(md))


HEADED_MD = """# Harbour guide

The harbour has served the town since 1850.

## Ferries

Ferries leave every hour from the north quay.

### Night service

After midnight a single boat runs to the island.

```
# not a heading: a comment in a code block
```

## Markets

The fish market opens at dawn on weekdays.
"""


def _chunk_at(chunks, words: str):
    return next(c for c in chunks if words in c.text)


def test_markdown_chunks_carry_their_heading_path(tmp_path: Path) -> None:
    """Guards against chunks losing the section they sit in (issue 12): what is embedded starts with title and headings."""
    from rag.chunking import Chunker

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "guide.md").write_text(HEADED_MD, encoding="utf-8")
    doc = load_documents(tmp_path / "a").documents[0]
    assert [(level, name) for _, level, name in doc.headings] == [
        (1, "Harbour guide"),
        (2, "Ferries"),
        (3, "Night service"),
        (2, "Markets"),
    ]
    assert all(doc.text[at:].startswith("#" * level + " " + name) for at, level, name in doc.headings)
    chunks = Chunker(chunk_tokens=16, overlap_tokens=0).split(doc)
    assert _chunk_at(chunks, "since 1850").headings == ()  # under the title only: not repeated
    assert _chunk_at(chunks, "every hour").headings == ("Ferries",)
    assert _chunk_at(chunks, "single boat").headings == ("Ferries", "Night service")
    fish = _chunk_at(chunks, "fish market")
    assert fish.headings == ("Markets",)
    assert fish.indexed_text == "Harbour guide — Markets\n" + fish.text and fish.text == doc.text[fish.start : fish.end]


def test_html_chunks_carry_their_h1_h3_path(tmp_path: Path) -> None:
    """Guards against HTML sections being lost, or page chrome headings (nav) counted as sections."""
    from rag.chunking import Chunker

    page = (
        "<html><head><title>Harbour guide</title></head><body><nav><h2>Menu</h2></nav><h1>Harbour guide</h1>"
        "<p>The harbour has served the town since 1850.</p><h2>Ferries</h2><p>Ferries leave every hour from the north quay.</p>"
        "<h3>Night   service</h3><p>After midnight a single boat runs to the island.</p><h4>Fares</h4><p>A ticket costs two euros.</p>"
        "<h2>Markets</h2><p>The fish market opens at dawn on weekdays.</p></body></html>"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "guide.html").write_text(page, encoding="utf-8")
    doc = load_documents(tmp_path / "a").documents[0]
    assert [(level, name) for _, level, name in doc.headings] == [
        (1, "Harbour guide"),
        (2, "Ferries"),
        (3, "Night service"),
        (2, "Markets"),
    ]
    assert all(doc.text[at : at + len(name)] == name for at, _, name in doc.headings)
    chunks = Chunker(chunk_tokens=16, overlap_tokens=0).split(doc)
    assert _chunk_at(chunks, "single boat").headings == ("Ferries", "Night service")
    assert _chunk_at(chunks, "two euros").headings == ("Ferries", "Night service")  # h4 is not a section
    assert _chunk_at(chunks, "fish market").headings == ("Markets",)
    assert all(c.headings == () for c in Chunker().split(make_document("Plain\n\nNo headings here.", "", "a.txt")))


def test_a_toy_loader_registered_in_one_place_is_built_and_answers(tmp_path: Path, monkeypatch) -> None:
    """Guards against a new file type needing more than one function and one registry line (CONTRIBUTING.md's example)."""
    import csv

    from fakes import FakeEmbedder

    from rag import documents
    from rag.documents import UnreadableFile, loader

    monkeypatch.setattr(documents, "LOADERS", dict(documents.LOADERS))  # the registration ends with the test
    monkeypatch.setattr(documents.base, "LOADERS", documents.LOADERS)

    @loader(".csv")  # as in CONTRIBUTING.md
    def load_csv(raw: bytes, source: str) -> list:
        rows = list(csv.DictReader(io.StringIO(decode_bytes(raw))))
        if rows and "text" not in rows[0]:
            raise UnreadableFile("CSV has no 'text' column; name the article column 'text'")
        return [make_document(row["text"], row.get("title", ""), f"{source}#{i}") for i, row in enumerate(rows)]

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "ports.csv").write_text(
        "title,text\nRotterdam,Rotterdam is the largest port in Europe.\n"
        "Lighthouses,The lighthouse keeper lit the lamp at dusk.\n",
        encoding="utf-8",
    )
    (folder / "notes.txt").write_text("Notes\n\nThe ferry runs hourly.", encoding="utf-8")
    (folder / "data.xyz").write_text("not an article", encoding="utf-8")
    (folder / "bad.csv").write_text("name,body\nx,y\n", encoding="utf-8")
    # The registered suffix is loaded with no config change (loader.extensions: null = every loader) ...
    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index")}), embedder=FakeEmbedder())
    summary = rag.build(folder)
    assert summary.articles == 3
    assert {s.source: s.reason for s in summary.skipped} == {
        "bad.csv": "CSV has no 'text' column; name the article column 'text'"
    }
    # ... and a suffix with no loader is refused when the config is loaded, naming the choices.
    with pytest.raises(
        ConfigError,
        match=r"loader\.extensions has no loader for \['\.xyz'\]; choose from \.csv, \.htm, .*CONTRIBUTING\.md",
    ):
        Config.load(None, {"loader.extensions": [".txt", ".csv", ".xyz"]})
    top = rag.retrieve("largest port in Europe", 1)[0]
    assert (top.chunk.source, top.chunk.title) == ("ports.csv#0", "Rotterdam")


# -- through the real path -------------------------------------------------------------------


@pytest.mark.slow
def test_real_build_over_every_bad_input_kind(bad_folder, tmp_path: Path, real_embedder) -> None:
    """A real build over all bad-input kinds at once: good articles answer, each bad file is named, nothing is modified."""
    folder, expect = bad_folder
    before = snapshot(folder.parent)
    rag = RAG(
        Config.load(None, {"index.path": str(tmp_path / "index"), "loader.max_file_mb": 0.05}), embedder=real_embedder
    )
    summary = rag.build(folder)
    skipped = {s.source: s.reason for s in summary.skipped}
    for source, reason in expect.items():
        if reason is not None:
            assert reason in skipped.get(source, ""), f"{source}: expected {reason!r}, got {skipped.get(source)!r}"
    assert summary.articles == sum(1 for r in expect.values() if r is None)
    listed = rag.store.read_manifest()
    assert {s["source"] for s in listed["skipped"]} == set(skipped)
    top = rag.retrieve("Who keeps a ledger of every ship in the harbour?", 1)[0]
    assert top.chunk.source == "ok.pdf"
    top = rag.retrieve("café était très animé Genève fête du lac", 1)[0]
    assert top.chunk.source == "latin1.txt" and "très" in top.chunk.text
    sources = {c.source for c in rag.index().iter_chunks()}
    assert {"Zürich café.txt", "caf%C3%A9%20news.txt", "日本語.md", "latin1-name-\\xe9.txt"} <= sources
    assert snapshot(folder.parent) == before
    # An incremental rebuild over the same folder changes nothing and still names the bad files.
    again = rag.build(folder)
    assert again.mode == "unchanged" and {s.source for s in again.skipped} == set(skipped)
    assert snapshot(folder.parent) == before


def _rag_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_real_build_never_follows_links_out_of_the_folder(tmp_path: Path) -> None:
    """Issue 16: `rag build` over a folder holding creds.txt -> /tmp/.../creds.txt, outside-dir, /etc/hostname and rootlink -> /.

    None of them is indexed, each is reported by its name in the folder, and a link to a
    file inside the folder still works.
    """
    folder, links = links_out_folder(tmp_path)
    index = tmp_path / "index"
    proc = _rag_cli("build", str(folder), "--index", str(index), "--quiet", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {s["source"]: s["reason"] for s in summary["skipped"]} == {name: LINK_OUTSIDE for name in links}
    assert summary["articles"] == 2 and summary["duplicates"] == [{"source": "real.txt", "duplicate_of": "alias.txt"}]
    from rag.store import IndexStore

    loaded = IndexStore(index).load()
    try:
        texts = [c.text for c in loaded.iter_chunks()]
    finally:
        loaded.close()
    assert any("lighthouse keeper" in t for t in texts) and not any("OUTSIDE" in t or "hunter2" in t for t in texts)
    assert str(tmp_path / "outside") not in proc.stdout + proc.stderr  # where the links lead is never printed


@pytest.mark.slow
def test_real_pdf_passages_carry_their_page_numbers(tmp_path: Path) -> None:
    """Issue 15: a real `rag build` of a multi-page PDF, then `rag ask --json`: the passage from page 3 says page 3."""
    topics = [
        ("harbour ledger", "ships from Lisbon"),
        ("customs house", "tea and spices"),
        ("lighthouse", "paraffin lamp"),
        ("ferry service", "timetable of 1923"),
    ]
    pages = [
        [f"Page {i + 1}. The {a} records line {j}: {b} were noted by clerk number {i * 10 + j}." for j in range(8)]
        for i, (a, b) in enumerate(topics)
    ]
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "ledger.pdf").write_bytes(make_pdf_pages(pages))
    (folder / "other.md").write_text("# Bread\n\nSourdough needs a starter.", encoding="utf-8")
    index = tmp_path / "index"
    (tmp_path / "cfg.yaml").write_text(f"index:\n  path: {index}\ngeneration:\n  backend: none\n", encoding="utf-8")
    proc = _rag_cli("build", str(folder), "--config", "cfg.yaml", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _rag_cli(
        "ask",
        "What did the lighthouse records say about the paraffin lamp?",
        "--config",
        "cfg.yaml",
        "--json",
        "--retriever",
        "dense",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    passages = json.loads(proc.stdout)["passages"]
    top = passages[0]
    assert top["source"] == "ledger.pdf" and "lighthouse" in top["text"]
    assert 3 in top["pages"] and 1 not in top["pages"], top
    assert all(p["pages"] == [] for p in passages if p["source"] == "other.md")
