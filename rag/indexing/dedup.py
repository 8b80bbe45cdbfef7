"""Near-duplicate detection: MinHash over word 3-shingles, candidates from LSH.

Signatures are stored in each generation (``minhash.npz``, by content hash), so an
incremental build hashes only new texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..records import Chunk
from ..store import GenerationWriter

SIGNATURES = "minhash.npz"
NUM_PERM = 128
SHINGLE_WORDS = 3
_SEED = 1

_WORDS = re.compile(r"\w+")


def _shingles(text: str) -> set[bytes]:
    words = _WORDS.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8") for i in range(len(words) - SHINGLE_WORDS + 1)}


_TEMPLATE: Any = None


def _template() -> Any:
    """One MinHash whose permutations every signature shares (creating them costs more than hashing)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        from datasketch import MinHash

        _TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED)
    return _TEMPLATE


def minhash_signature(text: str) -> np.ndarray | None:
    """MinHash of ``text``'s word 3-shingles (``NUM_PERM`` uint32 values); None for text without words."""
    from datasketch import MinHash

    shingles = _shingles(text)
    if not shingles:
        return None
    t = _template()
    m = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=t.permutations, scheme=t.scheme)
    m.update_batch(list(shingles))
    return np.asarray(m.hashvalues).copy()


def find_near_duplicates(
    order: Sequence[str], signatures: dict[str, np.ndarray], threshold: float, show_progress: bool = False
) -> dict[str, tuple[str, float]]:
    """Map each key of ``order`` that nearly duplicates an earlier key to ``(earlier, similarity)``.

    Candidates come from MinHash LSH; a pair counts when the estimated Jaccard similarity is
    at least ``threshold``. Only earlier keys that are not themselves near-duplicates are
    compared against, so a chain of small edits is reported against its first version.
    """
    from datasketch import LeanMinHash, MinHashLSH
    from tqdm.auto import tqdm

    if len(order) < 2:
        return {}
    scheme = str(_template().scheme)
    # LSH only proposes candidates; a lower bar than the threshold misses fewer true pairs,
    # and each candidate is then checked against the threshold itself.
    lsh = MinHashLSH(threshold=max(0.1, min(threshold - 0.1, 0.9)), num_perm=NUM_PERM)
    found: dict[str, tuple[str, float]] = {}
    position = {k: i for i, k in enumerate(order)}
    for key in tqdm(order, desc="Near-duplicates: comparing", unit="doc", disable=not show_progress, delay=0.5):
        sig = signatures.get(key)
        if sig is None:
            continue
        m = LeanMinHash(seed=_SEED, hashvalues=sig, scheme=scheme)
        best: tuple[str, float] | None = None
        for other in lsh.query(m):
            sim = float(np.mean(signatures[other] == sig))
            if sim >= threshold and (
                best is None or sim > best[1] or (sim == best[1] and position[other] < position[best[0]])
            ):
                best = (other, sim)
        if best is not None:
            found[key] = best
        else:
            lsh.insert(key, m)
    return found


def signature_writer(signatures: dict[str, np.ndarray]) -> GenerationWriter:
    """A generation writer that stores ``signatures`` (by content hash) beside the vectors."""

    def write(tmp: Path, _chunks: Sequence[Chunk], _rows: np.ndarray) -> None:
        keys = sorted(signatures)
        values = np.stack([signatures[k] for k in keys]) if keys else np.zeros((0, NUM_PERM), dtype=np.uint32)
        with open(tmp / SIGNATURES, "wb") as fh:
            np.savez(fh, hashes=np.asarray(keys, dtype="U64"), values=values)

    return write


def read_signatures(path: Path) -> dict[str, np.ndarray]:
    """Stored MinHash signatures by content hash ({} when absent or unreadable: they are recomputed)."""
    try:
        with np.load(path / SIGNATURES) as data:
            return {str(h): v for h, v in zip(data["hashes"], data["values"])}
    except (OSError, ValueError, KeyError):
        return {}
