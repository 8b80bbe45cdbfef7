"""ui/upload.py: every refused upload says why and writes nothing; accepted files land only in the upload folder."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from ui.upload import UploadError, UploadLimits, clean_name, list_uploads, plan_upload, save_upload, upload_allowed

LIMITS = UploadLimits(
    max_file_bytes=10_000, max_total_bytes=25_000, max_files=3, suffixes=(".md", ".txt", ".pdf"), max_zip_ratio=50
)
BIG_LIMITS = UploadLimits(
    max_file_bytes=5_000_000, max_total_bytes=10_000_000, max_files=10, suffixes=(".md", ".txt"), max_zip_ratio=50
)


def _file(folder: Path, name: str, data: bytes | str = "# Title\n\nSome text.\n") -> Path:
    path = folder / "received" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _zip(
    folder: Path, entries: dict[str, bytes | str], name: str = "batch.zip", links: dict[str, str] | None = None
) -> Path:
    path = folder / "received" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data)
        for entry, target in (links or {}).items():
            info = zipfile.ZipInfo(entry)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()


def test_files_and_a_zip_are_saved_inside_the_upload_folder(tmp_path):
    up = tmp_path / "articles" / "uploads"
    plan = plan_upload(
        [("a.md", _file(tmp_path, "a.md")), ("batch.zip", _zip(tmp_path, {"sub/b.txt": "Bee.", "c.md": "# C"}))], LIMITS
    )
    assert save_upload(plan, up) == ["a.md", "sub/b.txt", "c.md"]
    assert list_uploads(up) == ["a.md", "c.md", "sub/b.txt"]
    assert (up / "sub" / "b.txt").read_text() == "Bee."
    assert not list(up.rglob(".upload-*")), "temporary files left behind"


@pytest.mark.parametrize(
    "name, message",
    [
        ("../evil.md", "contains '..'"),
        ("notes/../../evil.md", "contains '..'"),
        ("/etc/evil.md", "is an absolute path"),
        ("C:\\evil.md", "is an absolute path"),
        ("", "has no file name"),
        ("bad\x00name.md", "control characters"),
        (".hidden.md", "hidden file"),
    ],
)
def test_bad_names_are_refused(name, message):
    """Guards against a name that escapes the upload folder or hides there."""
    with pytest.raises(UploadError, match=message):
        clean_name(name)


def test_oversize_file_is_refused_naming_the_limit(tmp_path):
    big = _file(tmp_path, "big.md", "x" * 10_001)
    with pytest.raises(
        UploadError, match=r"'big.md' is 0.010001 MB; the limit is 0.01 MB per file \(ui.upload_max_file_mb\)"
    ):
        plan_upload([("big.md", big)], LIMITS)


def test_oversize_upload_in_total_is_refused(tmp_path):
    files = [(f"{i}.md", _file(tmp_path, f"{i}.md", "y" * 9_000)) for i in range(3)]
    with pytest.raises(UploadError, match=r"holds 0.027 MB; the limit is 0.025 MB per upload"):
        plan_upload(files, LIMITS)


def test_too_many_files_are_refused(tmp_path):
    files = [(f"{i}.md", _file(tmp_path, f"{i}.md")) for i in range(4)]
    with pytest.raises(UploadError, match=r"4 files chosen; the limit is 3 per upload \(ui.upload_max_files\)"):
        plan_upload(files, LIMITS)


def test_too_many_files_inside_a_zip_are_refused(tmp_path):
    z = _zip(tmp_path, {f"{i}.md": "# x" for i in range(4)})
    with pytest.raises(UploadError, match=r"the upload holds 4 files; the limit is 3"):
        plan_upload([("batch.zip", z)], LIMITS)


@pytest.mark.parametrize("name", ["script.exe", "page.html", "noext"])
def test_wrong_suffix_is_refused_listing_the_accepted_types(tmp_path, name):
    with pytest.raises(UploadError, match=r"is not an accepted type .*accepted: \.md, \.pdf, \.txt, or a \.zip"):
        plan_upload([(name, _file(tmp_path, name))], LIMITS)


def test_wrong_suffix_inside_a_zip_is_refused(tmp_path):
    with pytest.raises(UploadError, match=r"in 'batch.zip': 'run.sh' is not an accepted type"):
        plan_upload([("batch.zip", _zip(tmp_path, {"ok.md": "# ok", "run.sh": "rm -rf /"}))], LIMITS)


def test_symlink_inside_a_zip_is_refused(tmp_path):
    """A link entry, once extracted, could point anywhere (/etc/passwd)."""
    z = _zip(tmp_path, {"ok.md": "# ok"}, links={"passwd.md": "/etc/passwd"})
    with pytest.raises(UploadError, match=r"'passwd.md' is a symbolic link; links are refused"):
        plan_upload([("batch.zip", z)], LIMITS)


@pytest.mark.parametrize("entry", ["../../escape.md", "/abs/escape.md", "a/../../escape.md"])
def test_zip_slip_entries_are_refused(tmp_path, entry):
    """Guards against zip-slip: an entry name that writes outside the folder it is extracted to."""
    up = tmp_path / "up"
    with pytest.raises(UploadError, match=r"in 'batch.zip': .*(contains '\.\.'|is an absolute path)"):
        save_upload(plan_upload([("batch.zip", _zip(tmp_path, {"ok.md": "# ok", entry: "# evil"}))], LIMITS), up)
    assert not up.exists() and not (tmp_path / "escape.md").exists()


def test_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    z = _zip(tmp_path, {"zeros.txt": b"0" * 4_000_000})
    assert z.stat().st_size < 40_000  # it really is a bomb
    with pytest.raises(UploadError, match=r"'zeros.txt' expands \d+ times .*the limit is 50 times .*zip bomb"):
        plan_upload([("bomb.zip", z)], BIG_LIMITS)


def test_zip_entry_over_the_file_limit_is_refused_by_its_declared_size(tmp_path):
    z = _zip(tmp_path, {"big.md": "z" * 10_001})
    with pytest.raises(UploadError, match=r"'big.md' is 0.010001 MB uncompressed; the limit is 0.01 MB per file"):
        plan_upload([("batch.zip", z)], LIMITS)


def test_not_a_zip_is_refused(tmp_path):
    with pytest.raises(UploadError, match=r"'fake.zip' is not a readable .zip"):
        plan_upload([("fake.zip", _file(tmp_path, "fake.zip", b"PK not really"))], LIMITS)


def test_a_received_link_is_refused(tmp_path):
    target = _file(tmp_path, "real.md")
    link = tmp_path / "received" / "link.md"
    link.symlink_to(target)
    with pytest.raises(UploadError, match=r"'link.md' is not a plain file"):
        plan_upload([("link.md", link)], LIMITS)


def test_writing_through_a_linked_subfolder_is_refused(tmp_path):
    """A folder inside the upload folder that links elsewhere must not receive files."""
    up = tmp_path / "up"
    (up).mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (up / "sub").symlink_to(outside, target_is_directory=True)
    plan = plan_upload([("batch.zip", _zip(tmp_path, {"sub/x.md": "# x"}))], LIMITS)
    with pytest.raises(UploadError, match=r"'sub/x.md' would be written outside the upload folder"):
        save_upload(plan, up)
    assert _tree(outside) == set()


def test_a_refused_upload_writes_nothing(tmp_path):
    """All or nothing: the good file of a refused upload is not saved either."""
    up = tmp_path / "up"
    with pytest.raises(UploadError, match="not an accepted type"):
        save_upload(
            plan_upload([("good.md", _file(tmp_path, "good.md")), ("bad.exe", _file(tmp_path, "bad.exe"))], LIMITS), up
        )
    assert _tree(up) == set()


def test_the_same_name_twice_is_refused(tmp_path):
    with pytest.raises(UploadError, match=r"'A.md' appears twice in the upload; keep one"):
        plan_upload([("a.md", _file(tmp_path, "a.md")), ("batch.zip", _zip(tmp_path, {"A.md": "# a"}))], LIMITS)


def test_upload_is_off_beyond_loopback_without_a_login():
    from ui.server import is_loopback

    assert upload_allowed(True, "127.0.0.1", False, is_loopback)
    assert not upload_allowed(True, "0.0.0.0", False, is_loopback)
    assert upload_allowed(True, "0.0.0.0", True, is_loopback)
    assert not upload_allowed(False, "127.0.0.1", True, is_loopback)


def test_limits_default_to_the_loader_suffixes():
    from rag import DEFAULT_EXTENSIONS, Config

    limits = UploadLimits.from_config(Config())
    assert set(limits.suffixes) == set(DEFAULT_EXTENSIONS) and ".pdf" in limits.suffixes
    assert limits.max_file_bytes == 20_000_000 and limits.max_files == 50
