"""The "not covered" threshold calibrated for one index (``rag calibrate``), stored with it.

The file sits in the index folder beside ``CURRENT``, outside the generations, so rebuilds
keep it and copying the folder takes it along::

    index/default/calibration.json   {"embedder": ..., "thresholds": {"hybrid": 0.49, ...}, ...}

Example:
    >>> save_calibration(IndexStore("index/default"), Calibration("all-MiniLM-L6-v2", {"hybrid": 0.49}, 0.05, 40))
    >>> read_calibration("index/default").thresholds["hybrid"]
    0.49
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ..records import Calibration
from .base import IndexBackend, IndexCorruptError, IndexNotFoundError

CALIBRATION = "calibration.json"

__all__ = ["CALIBRATION", "read_calibration", "save_calibration"]


def read_calibration(root: str | Path) -> Calibration | None:
    """The calibration stored with the index at ``root``, or None when there is none.

    Raises:
        IndexCorruptError: the file is unreadable; the message names it and the fix.
    """
    path = Path(root) / CALIBRATION
    try:
        raw = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(
            f"calibration file {str(path)!r} is unreadable ({exc}); delete it or run rag calibrate again"
        ) from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return Calibration.from_dict(data)
    except ValueError as exc:
        raise IndexCorruptError(
            f"calibration file {str(path)!r} is damaged ({exc}); delete it or run rag calibrate again"
        ) from exc


def save_calibration(store: IndexBackend, calibration: Calibration | None) -> Path:
    """Store ``calibration`` in the local folder of ``store`` atomically (None removes it); returns the file's path.

    The folder is the index folder (FAISS) or the local folder of a Milvus index (its build lock).

    Raises:
        IndexNotFoundError: nothing is built in ``store``.
    """
    root = Path(store.root)
    if not store.exists():
        raise IndexNotFoundError(
            f"no index at {store.label} to calibrate; build one with: rag build ARTICLES_DIR --index {root}"
        )
    root.mkdir(parents=True, exist_ok=True)
    path = root / CALIBRATION
    if calibration is None:
        path.unlink(missing_ok=True)
        return path
    tmp = root / f".{CALIBRATION}.{secrets.token_hex(4)}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(calibration.to_dict(), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
