"""The ``torch`` backend: sentence-transformers on PyTorch (the reference vectors)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ..loading import MODEL_LOAD_LOCK
from .base import SMALL_INPUT, encode_in_batches, offline, resolve_embedder_path


class SentenceTransformerEmbedder:
    """sentence-transformers embedder on PyTorch, loaded lazily on first use.

    Args:
        model: ``all-MiniLM-L6-v2`` (packaged), a local folder, or a cached hub id.
        batch_size: texts per forward pass.
        device: torch device, ``cpu`` by default.

    Example:
        >>> embedder = SentenceTransformerEmbedder()          # cheap: nothing loaded yet
        >>> embedder.encode(["DeepSeek released R1."]).shape
        (1, 384)
    """

    backend = "torch"

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64, device: str = "cpu") -> None:
        # The bare model name: indexes built before other backends existed stay valid.
        self.name = model
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._load_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (otherwise it loads on first ``encode``)."""
        if self._model is not None:
            return
        with self._load_lock, MODEL_LOAD_LOCK:
            if self._model is not None:
                return
            offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the weight-loading bar is noise; build progress is shown by encode

            path = resolve_embedder_path(self.model_name)
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except OSError as exc:
                raise OSError(
                    f"cannot load embedder {self.model_name!r} from {path!r} offline: {exc}. Use 'all-MiniLM-L6-v2' (packaged) or a local sentence-transformers folder"
                ) from exc

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
        model = self.model
        # sentence-transformers renamed the getter; the version is pinned, but both are in use.
        getter = (
            model.get_embedding_dimension
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension
        )
        return int(getter())

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode texts to normalised float32 vectors of shape ``(len(texts), dimension)``."""
        import torch
        from sentence_transformers.util import batch_to_device

        model = self.model

        def run(features: dict) -> np.ndarray:
            features = batch_to_device(features, model.device)
            with torch.inference_mode():
                emb = model(features)["sentence_embedding"]
                emb = torch.nn.functional.normalize(emb.float(), p=2, dim=1)
            return emb.cpu().numpy()

        texts = list(texts)
        prepare = (
            model.preprocess if hasattr(model, "preprocess") else model.tokenize
        )  # sentence-transformers < 6 calls it tokenize
        if len(texts) > SMALL_INPUT or self.device != "cpu":
            return encode_in_batches(texts, self.batch_size, prepare, run, self.dimension, show_progress)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return encode_in_batches(texts, self.batch_size, prepare, run, self.dimension, show_progress)
        finally:
            torch.set_num_threads(before)
