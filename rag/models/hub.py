"""``rag model pull`` and ``rag model list``: catalogue models in the model cache, fetched through ``huggingface_hub``.

A pulled model lives in ``<model cache>/pulled/<name>/<file>`` (the model cache is
``$RAG_CACHE_DIR/models``, else ``~/.cache/rag/models``), next to ``rag-model.json``
recording the repository, the revision asked for, the commit the hub resolved it to and
the file's sha256. The download is ``hf_hub_download``'s: a progress bar, a connection that
drops mid-file resumed with an HTTP Range request, the partial file deleted if it fails
for good. Before it, the hub's metadata (``X-Linked-Etag``: the LFS sha256) is read; after
it, the file's sha256 must equal it or the file is deleted and the pull refused.

``HF_ENDPOINT`` (a mirror, or a local stand-in in the tests) and ``HF_HUB_OFFLINE`` are read
when :func:`pull` runs. Without a network, the error says which URL to download and
where to put the file; a file put there by hand is used as it is (``rag model list`` says
its sha256 was not checked).

Example:
    >>> pulled = pull("qwen2.5-1.5b")          # HF_ENDPOINT and HF_HUB_OFFLINE honoured
    >>> pulled.path, pulled.sha256
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import RagError
from .catalogue import CATALOGUE, ModelEntry

RECORD = "rag-model.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ModelError(RagError):
    """A model could not be pulled or found; the message says what to do."""


@dataclass(frozen=True)
class InstalledModel:
    """A catalogue model present in the model cache.

    Attributes:
        name: the catalogue name.
        path: the GGUF file.
        size_bytes: its size.
        sha256: the checked sha256 (None: put there by hand, not checked).
        commit: the hub commit it was pulled from (None when unknown).
        revision: the revision asked for.
    """

    name: str
    path: Path
    size_bytes: int
    sha256: str | None
    commit: str | None
    revision: str | None

    @property
    def verified(self) -> bool:
        """Pulled through the hub with its sha256 checked."""
        return self.sha256 is not None


def default_cache_dir() -> Path:
    """Where converted model files are cached (``$RAG_CACHE_DIR/models``, else ``~/.cache/rag/models``)."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rag"
    )
    return Path(base) / "models"


def models_root(cache_dir: str | Path | None = None) -> Path:
    """The folder pulled models live in (``<model cache>/pulled``)."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "pulled"


def entry(name: str) -> ModelEntry:
    """The catalogue entry ``name``.

    Raises:
        ModelError: not in the catalogue (the message lists the names).
    """
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; choose from {sorted(CATALOGUE)} (`rag model list` shows them)"
        ) from None


def model_file(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where the catalogue model ``name`` is (or would be) in the model cache."""
    e = entry(name)
    return models_root(cache_dir) / e.name / e.filename


def installed(name: str, cache_dir: str | Path | None = None) -> InstalledModel | None:
    """The catalogue model ``name`` if its file is in the model cache, else None."""
    path = model_file(name, cache_dir)
    if not path.is_file():
        return None
    record = _read_record(path.parent)
    sha = record.get("sha256") if record.get("size_bytes") == path.stat().st_size else None
    return InstalledModel(name, path, path.stat().st_size, sha, record.get("commit"), record.get("revision"))


def installed_models(cache_dir: str | Path | None = None) -> list[InstalledModel]:
    """Every catalogue model present in the model cache, in catalogue order."""
    return [m for m in (installed(name, cache_dir) for name in CATALOGUE) if m is not None]


def offline_message(e: ModelEntry, target: Path, reason: str) -> str:
    """What to download by hand, and where to put it, when the hub cannot be reached."""
    return (
        f"cannot download {e.name}: {reason}. On a machine with internet access download\n  {e.url}\n"
        f"({e.size}, license {e.license}) and put the file at\n  {target}\n"
        f"then `rag model list` shows it and `generation.model: {e.name}` uses it"
    )


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``, as huggingface_hub reads it) is true; read now, not at import."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in ("1", "true", "yes", "on")


def pull(
    name: str, *, cache_dir: str | Path | None = None, endpoint: str | None = None, progress: bool = True
) -> InstalledModel:
    """Download the catalogue model ``name`` into the model cache, checking its sha256.

    Args:
        name: a name in :data:`~rag.models.CATALOGUE`.
        cache_dir: the model cache (None: ``$RAG_CACHE_DIR/models``, else ``~/.cache/rag/models``).
        endpoint: the hub (None: ``$HF_ENDPOINT``, else https://huggingface.co).
        progress: show huggingface_hub's progress bar.

    Returns:
        The installed model (already there and checked: returned without downloading).

    Raises:
        ModelError: unknown name, offline or unreachable (says what to download and where to
            put it), not on the hub, or a sha256 mismatch (the file is deleted).
        ImportError: huggingface_hub is missing.
    """
    e = entry(name)
    target = model_file(name, cache_dir)
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    if is_offline():
        have = installed(name, cache_dir)
        if have is not None:
            return have
        raise ModelError(offline_message(e, target, "HF_HUB_OFFLINE is set"))
    meta = _metadata(e, endpoint, target)
    expected = e.sha256 or (meta.etag if meta.etag and _SHA256.match(meta.etag) else None)
    if expected is None:
        raise ModelError(
            f"the hub at {endpoint} gave no sha256 for {e.repo}/{e.filename} (etag {meta.etag!r}), "
            "so the file cannot be checked; "
            f"not downloaded. Check HF_ENDPOINT, or download {e.url} by hand and put it at {target}"
        )
    have = installed(name, cache_dir)
    if have is not None and have.sha256 == expected:
        return have
    path = _download(e, meta.commit_hash or e.revision, target.parent, endpoint, progress)
    actual = file_sha256(path)
    if actual != expected:
        _discard(target.parent, e.filename)
        raise ModelError(
            f"sha256 of the downloaded {e.filename} is {actual}, but the hub lists {expected}: "
            "refused, and the file was deleted. "
            f"Pull again; if it persists, the mirror at {endpoint} serves a different file"
        )
    record = {
        "name": e.name,
        "repo": e.repo,
        "filename": e.filename,
        "revision": e.revision,
        "commit": meta.commit_hash,
        "sha256": actual,
        "size_bytes": path.stat().st_size,
        "endpoint": endpoint,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_record(target.parent, record)
    return InstalledModel(e.name, path, record["size_bytes"], actual, meta.commit_hash, e.revision)


def _metadata(e: ModelEntry, endpoint: str, target: Path):
    """The hub's metadata of the file (commit, LFS sha256, size), or a ModelError saying what to do."""
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError("rag model pull needs huggingface_hub: pip install huggingface_hub") from exc
    url = hf_hub_url(e.repo, e.filename, revision=e.revision, endpoint=endpoint)
    try:
        return get_hf_file_metadata(url, endpoint=endpoint)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelError(
            f"the hub at {endpoint} has no {e.filename} in {e.repo} at revision {e.revision} ({type(exc).__name__}); "
            f"the catalogue entry may be out of date: download the file by hand and put it at {target}"
        ) from None
    except HfHubHTTPError as exc:
        raise ModelError(
            offline_message(e, target, f"the hub at {endpoint} answered {exc.response.status_code}")
        ) from None
    except OSError as exc:  # connection refused, DNS failure, timeouts (httpx errors are not OSErrors)
        raise ModelError(offline_message(e, target, f"{endpoint} cannot be reached ({type(exc).__name__})")) from None
    except Exception as exc:  # httpx transport errors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise ModelError(
                offline_message(e, target, f"{endpoint} cannot be reached ({type(exc).__name__}: {exc})")
            ) from None
        raise


def _download(e: ModelEntry, revision: str, folder: Path, endpoint: str, progress: bool) -> Path:
    """``hf_hub_download`` into ``folder`` at the resolved commit (its partial file is removed on failure)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    folder.mkdir(parents=True, exist_ok=True)
    if not progress:
        disable_progress_bars()
    try:
        return Path(hf_hub_download(e.repo, e.filename, revision=revision, local_dir=folder, endpoint=endpoint))
    except Exception as exc:  # huggingface_hub has already removed its partial file
        if type(exc).__module__.startswith(("httpx", "httpcore", "huggingface_hub")) or isinstance(exc, OSError):
            reason = f"the download from {endpoint} failed ({type(exc).__name__}: {exc})"
            raise ModelError(offline_message(e, folder / e.filename, reason)) from None
        raise
    finally:
        if not progress:
            enable_progress_bars()


def _discard(folder: Path, filename: str) -> None:
    """Delete a bad or partial download and huggingface_hub's note of it, keeping nothing half-written."""
    (folder / filename).unlink(missing_ok=True)
    (folder / RECORD).unlink(missing_ok=True)
    shutil.rmtree(folder / ".cache", ignore_errors=True)


def file_sha256(path: Path) -> str:
    """The file's sha256, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_record(folder: Path) -> dict:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(folder: Path, record: dict) -> None:
    tmp = folder / f".{RECORD}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / RECORD)


def describe(m: InstalledModel) -> dict:
    """Plain-dict form of an installed model (for ``rag model list --json``)."""
    return {**asdict(m), "path": str(m.path), "verified": m.verified}
