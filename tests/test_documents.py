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

from rag import RAG, Config
from rag.documents import decode_bytes, load_documents

# -- helpers -----------------------------------------------------------------------------


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF showing ``text`` in Helvetica (pypdf extracts it back)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
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


LATIN1_TEXT = ("Café in Zürich\n\nLe café était très animé. Les habitués déjà assis près de la fenêtre parlaient de l'été à Genève, "
               "où la fête du lac avait attiré des milliers de visiteurs. ") * 3


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

    put("good.md", b"# Sourdough starters\n\nA sourdough starter of flour and water ferments for several days before baking.\n", None)
    put("empty.txt", b"", "empty file")
    put("blank.md", b"  \n\n \t\n", "empty file")
    put("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "binary file")
    put("huge.txt", b"Too big to read.\n\n" + b"filler words here " * 4000, "over the 0.05 MB limit")
    put("latin1.txt", LATIN1_TEXT.encode("latin-1"), None)
    put("cp1252.txt", ("Smart quotes\n\n\u201cHello,\u201d she said \u2013 it\u2019s a fine day in the harbour. " * 5).encode("cp1252"), None)
    put("utf16.txt", "Unicode sixteen\n\nThis file is UTF-16 with a byte-order mark: naïve café.".encode("utf-16"), None)
    put("bad-utf8.txt", "Mostly UTF-8 \u2014 one stray byte: X and the lighthouse keeper kept writing. ".encode().replace(b"X", b"\xff") * 3, None)
    put("truncated.html", b"<html><head><title>Harbour lights</title></head><body><p>The lighthouse was built in 1852.</p><p>Its lamp burns wha", None)
    put("truncated.json", b'{"title": "Cut", "text": "This record was cut off in the mid', "invalid JSON")
    put("records.jsonl", b'{"title": "Whole", "text": "The first record of the feed is complete."}\n{"title": "Cut", "text": "The second is cu', None)
    expect["records.jsonl#1"] = "invalid JSON line 2"
    expect["records.jsonl#0"] = expect.pop("records.jsonl")
    put("locked.pdf", encrypted_pdf("Secret harbour accounts."), "encrypted PDF")
    put("corrupt.pdf", make_pdf("Half a document")[:150], "corrupt PDF")
    put("ok.pdf", make_pdf("The harbour master keeps a ledger of every ship."), None)
    put("Zürich café.txt", "Zurich\n\nA file name with non-ASCII letters and a space.".encode(), None)
    put("caf%C3%A9%20news.txt", b"Percent\n\nThis file name is percent-encoded and must be kept as written.", None)
    put("日本語.md", "# 日本語の記事\n\nこれは日本語の記事です。港の灯台について。".encode(), None)
    put(b"latin1-name-\xe9.txt", b"Bytes\n\nThis file name is not valid UTF-8 on disk.", None)
    os.symlink("..", root / "loop")  # a folder loop: loop -> the folder's parent -> ... -> the folder again
    expect["loop/" + root.name] = "symlink loop"
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
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else os.readlink(p) if p.is_symlink() else ""
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
        code = ("import json, sys; from rag.documents import load_documents; r = load_documents(sys.argv[1]); "
                "print(json.dumps({'docs': [d.source for d in r.documents], 'skipped': {s.source: s.reason for s in r.skipped}}))")
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


# -- through the real path -------------------------------------------------------------------


@pytest.mark.slow
def test_real_build_over_every_bad_input_kind(bad_folder, tmp_path: Path, real_embedder) -> None:
    """A real build over all bad-input kinds at once: good articles answer, each bad file is named, nothing is modified."""
    folder, expect = bad_folder
    before = snapshot(folder.parent)
    rag = RAG(Config.load(None, {"index.path": str(tmp_path / "index"), "loader.max_file_mb": 0.05}), embedder=real_embedder)
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
