"""Checking and saving uploaded articles (plain functions, testable without a browser).

Everything a browser sends is untrusted: file names, sizes, and the contents of a .zip.
:func:`plan_upload` checks a whole upload before a byte is written (count, sizes, types,
names, and in a .zip: links, zip-slip names, zip bombs), so a refused upload leaves the
upload folder as it was; :func:`save_upload` then writes each file into the upload folder
only, through a temporary file and a rename.

Example:
    >>> limits = UploadLimits.from_config(rag.config)
    >>> plan = plan_upload([("notes.md", Path("/tmp/gradio/abc/notes.md"))], limits)
    >>> save_upload(plan, Path("data/articles/uploads"))
    ['notes.md']
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rag import DEFAULT_EXTENSIONS, InputError

MB = 1_000_000
# Below this size a high compression ratio is ordinary (short, repetitive text), not a bomb.
RATIO_FLOOR_BYTES = 1_000_000
MAX_NAME_CHARS = 200
MAX_DEPTH = 8
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_READ_BLOCK = 1 << 16


class UploadError(InputError):
    """An upload refused as a whole; the message names the file, the limit and the fix."""


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold (``ui.upload_*`` in the config)."""

    max_file_bytes: int
    max_total_bytes: int
    max_files: int
    suffixes: tuple[str, ...]
    max_zip_ratio: float

    @classmethod
    def from_config(cls, config: Any) -> UploadLimits:
        """The limits of a :class:`rag.Config` (suffixes: ``ui.upload_suffixes``, else the loader's)."""
        ui = config.ui
        suffixes = ui.upload_suffixes or config.loader.extensions or DEFAULT_EXTENSIONS
        return cls(
            int(ui.upload_max_file_mb * MB),
            int(ui.upload_max_total_mb * MB),
            ui.upload_max_files,
            tuple(s.lower() for s in suffixes),
            ui.upload_max_zip_ratio,
        )

    def describe(self) -> str:
        """The limits in words, for the page."""
        return (
            f"up to {self.max_files} files, {_mb(self.max_file_bytes)} each, {_mb(self.max_total_bytes)} in all; "
            f"types: {', '.join(sorted(self.suffixes))}, or a .zip of them"
        )


@dataclass(frozen=True)
class PlannedFile:
    """One file to write: its path inside the upload folder, and where its bytes come from."""

    name: str
    source: Path
    member: str | None = None  # the .zip entry, when it comes from a .zip
    size: int = 0


def _mb(n: int) -> str:
    return f"{n / MB:g} MB"


def clean_name(name: Any, where: str = "") -> str:
    """``name`` as a relative POSIX path inside the upload folder.

    Raises:
        UploadError: empty, absolute, with ``..`` parts, control characters, too long or too deep.
    """
    text = str(name or "").replace("\\", "/")
    label = f"{where}{str(name)[:MAX_NAME_CHARS]!r}"
    if not text.strip() or text.strip("/") == "":
        raise UploadError(f"{label} has no file name; name the file, e.g. notes.md")
    if _BAD_CHARS.search(text):
        raise UploadError(f"{label} has control characters in its name; rename the file")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UploadError(
            f"{label} is an absolute path; only names inside the upload folder are accepted (e.g. notes.md)"
        )
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"{label} contains '..', which would leave the upload folder; rename it without '..'")
    if len(text) > MAX_NAME_CHARS or len(parts) > MAX_DEPTH:
        raise UploadError(
            f"{label} is too long a name (at most {MAX_NAME_CHARS} characters, {MAX_DEPTH} folders deep); shorten it"
        )
    if any(p.startswith(".") for p in parts):
        raise UploadError(f"{label} is a hidden file or folder (starts with '.'); rename it")
    return "/".join(parts)


def _check_suffix(name: str, limits: UploadLimits, where: str = "") -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in limits.suffixes:
        raise UploadError(
            f"{where}{name!r} is not an accepted type ({suffix or 'no suffix'}); "
            f"accepted: {', '.join(sorted(limits.suffixes))}, or a .zip of them"
        )


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _plan_zip(name: str, path: Path, limits: UploadLimits) -> list[PlannedFile]:
    where = f"in {name!r}: "
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise UploadError(
            f"{name!r} is not a readable .zip ({exc}); make it again, or upload the files themselves"
        ) from None
    out = []
    for info in infos:
        if info.is_dir():
            continue
        if _is_link(info):
            raise UploadError(
                f"{where}{info.filename[:MAX_NAME_CHARS]!r} is a symbolic link; links are refused, put the file itself in the .zip"
            )
        if info.flag_bits & 0x1:
            raise UploadError(f"{where}{info.filename[:MAX_NAME_CHARS]!r} is encrypted; upload an unencrypted .zip")
        member = clean_name(info.filename, where)
        _check_suffix(member, limits, where)
        if info.file_size > limits.max_file_bytes:
            raise UploadError(
                f"{where}{member!r} is {_mb(info.file_size)} uncompressed; the limit is {_mb(limits.max_file_bytes)} per file "
                "(ui.upload_max_file_mb)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_zip_ratio:
            raise UploadError(
                f"{where}{member!r} expands {ratio:.0f} times (to {_mb(info.file_size)}); the limit is {limits.max_zip_ratio:g} times "
                "(ui.upload_max_zip_ratio): this looks like a zip bomb"
            )
        out.append(PlannedFile(member, path, info.filename, info.file_size))
    if not out:
        raise UploadError(f"{name!r} holds no files; put the articles in the .zip")
    return out


def plan_upload(files: Sequence[tuple[Any, Path]], limits: UploadLimits) -> list[PlannedFile]:
    """Check an upload as a whole and list the files to write.

    Args:
        files: ``(name the browser gave, path of the received bytes)`` per file.
        limits: the limits to enforce.

    Raises:
        UploadError: no files, too many, too large (each or together), a refused type or
            name, a link, or a .zip that is unreadable, a zip bomb or has escaping names.
    """
    if not files:
        raise UploadError("choose one or more files (or a .zip) to upload")
    if len(files) > limits.max_files:
        raise UploadError(
            f"{len(files)} files chosen; the limit is {limits.max_files} per upload (ui.upload_max_files): upload them in parts"
        )
    planned: list[PlannedFile] = []
    for raw_name, path in files:
        name = clean_name(PurePosixPath(str(raw_name).replace("\\", "/")).as_posix() if raw_name else raw_name)
        try:
            st = os.lstat(path)
        except OSError:
            raise UploadError(f"{name!r} did not arrive; upload it again") from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise UploadError(f"{name!r} is not a plain file (a link or a folder); upload the file itself")
        if name.lower().endswith(".zip"):
            if st.st_size > limits.max_total_bytes:
                raise UploadError(
                    f"{name!r} is {_mb(st.st_size)}; the limit is {_mb(limits.max_total_bytes)} per upload (ui.upload_max_total_mb)"
                )
            planned.extend(_plan_zip(name, Path(path), limits))
            continue
        _check_suffix(name, limits)
        if st.st_size > limits.max_file_bytes:
            raise UploadError(
                f"{name!r} is {_mb(st.st_size)}; the limit is {_mb(limits.max_file_bytes)} per file (ui.upload_max_file_mb)"
            )
        planned.append(PlannedFile(PurePosixPath(name).name, Path(path), None, st.st_size))
    if len(planned) > limits.max_files:
        raise UploadError(
            f"the upload holds {len(planned)} files; the limit is {limits.max_files} (ui.upload_max_files): upload them in parts"
        )
    total = sum(p.size for p in planned)
    if total > limits.max_total_bytes:
        raise UploadError(
            f"the upload holds {_mb(total)}; the limit is {_mb(limits.max_total_bytes)} per upload (ui.upload_max_total_mb): upload it in parts"
        )
    seen: set[str] = set()
    for p in planned:
        if p.name.lower() in seen:
            raise UploadError(f"{p.name!r} appears twice in the upload; keep one")
        seen.add(p.name.lower())
    return planned


def _target(folder: Path, name: str) -> Path:
    """Where ``name`` goes, checked to stay inside ``folder`` after links are resolved."""
    target = folder / name
    real_parent = Path(os.path.realpath(target.parent))
    if not (real_parent == folder or real_parent.is_relative_to(folder)) or target.is_symlink():
        raise UploadError(f"{name!r} would be written outside the upload folder (through a link); rename it")
    return target


def save_upload(plan: Sequence[PlannedFile], folder: Path) -> list[str]:
    """Write the planned files into ``folder`` (created if needed); the names written.

    Each file is written to a temporary file in its folder and renamed into place, so a
    reader never sees half a file. A file of the same name is replaced.

    Raises:
        UploadError: a name would lead outside ``folder``, or a .zip entry is larger than declared.
    """
    folder.mkdir(parents=True, exist_ok=True)
    folder = Path(os.path.realpath(folder))
    targets = [_target(folder, p.name) for p in plan]  # every name checked before any write
    written = []
    for p, target in zip(plan, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        _target(folder, p.name)  # a folder made just now must not be a link either
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(p, out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(p.name)
    return written


def _copy(p: PlannedFile, out: Any) -> None:
    if p.member is None:
        with open(p.source, "rb") as src:
            while block := src.read(_READ_BLOCK):
                out.write(block)
        return
    with zipfile.ZipFile(p.source) as zf, zf.open(p.member) as src:
        seen = 0
        while block := src.read(_READ_BLOCK):
            seen += len(block)
            if seen > p.size:  # the entry's header lied about its size
                raise UploadError(f"{p.name!r} in the .zip is larger than it declares; the upload was refused")
            out.write(block)


def list_uploads(folder: Path) -> list[str]:
    """Names of the uploaded files under ``folder`` (relative, sorted; links and hidden files left out)."""
    if not folder.is_dir():
        return []
    names = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.is_symlink() or not path.is_file():
            continue
        names.append(rel.as_posix())
    return sorted(names)


def upload_allowed(enabled: bool, host: str, has_login: bool, is_loopback: Any) -> bool:
    """Whether the page offers upload: ``ui.upload`` on, and loopback or a login required."""
    return bool(enabled) and (has_login or bool(is_loopback(host)))
