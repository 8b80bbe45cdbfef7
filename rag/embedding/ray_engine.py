"""Embed a build's chunks on a Ray cluster (``embedding.engine: ray``, ``rag build --ray [ADDRESS]``).

Ray Data splits the texts into batches and runs them through ``map_batches`` with
:class:`EmbedActor`, a class that builds the configured embedder (the same backend, model and
normalisation as a local build, through :func:`rag.embedding.make_embedder`) once per actor.
The vectors come back in input order, so the builder writes them to whichever index backend
is configured exactly as it writes local ones. Questions are still embedded locally.

Without ``embedding.ray_address`` a local Ray cluster is started for the build
(``embedding.ray_num_cpus`` CPUs, no dashboard) and stopped after it; with one, the build joins
that cluster and leaves it running. Workers import ``rag`` from this checkout (its folder is
put on their ``PYTHONPATH``). ray is imported only here (``pip install '.[ray]'``).

Example:
    >>> emb = RayEmbedder(EmbeddingConfig(engine="ray", ray_concurrency=2), "all-MiniLM-L6-v2", make_embedder)
    >>> vectors = emb.encode(["DeepSeek released R1.", "Nvidia fell 17 percent."])
    >>> emb.close()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..config import EmbeddingConfig

# The checkout that holds the rag package: Ray workers import rag from here.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


class EmbedActor:
    """A Ray Data actor: builds the embedder once, then embeds one batch per call.

    Args:
        config: the ``embedding`` section as a dict (pickled to the workers).
        make_embedder: :func:`rag.embedding.make_embedder` (pickled by reference; passed in so
            this module does not import its own package).
    """

    def __init__(self, config: dict[str, Any], make_embedder: Callable[..., Any]) -> None:
        from rag.config import EmbeddingConfig

        self.embedder = make_embedder(EmbeddingConfig(**{**config, "engine": "local"}))
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"i": np.asarray(batch["i"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


class RayEmbedder:
    """An :class:`~rag.embedding.Embedder` whose :meth:`encode` runs on Ray Data actors.

    Args:
        config: the ``embedding`` section (``ray_address``, ``ray_concurrency``,
            ``ray_num_cpus``, ``batch_size`` and the backend the actors build).
        name: the local embedder's name: the vectors are the same, so the manifest records it.
        make_embedder: :func:`rag.embedding.make_embedder`, which builds the local embedders.
    """

    def __init__(self, config: EmbeddingConfig, name: str, make_embedder: Callable[..., Any]) -> None:
        self.config = config
        self.name = name
        self._make_embedder = make_embedder
        self._started = False
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._make_embedder(self.config, engine="local").dimension)
        return self._dimension

    def warm_up(self) -> None:
        """Join the cluster (or start a local one)."""
        try:
            import ray
        except ImportError as exc:
            raise ImportError(
                "embedding.engine is ray (rag build --ray) but ray is not installed: pip install '.[ray]'"
            ) from exc
        if ray.is_initialized():
            return
        path = os.pathsep.join(p for p in (_SOURCE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        env = {
            "PYTHONPATH": path,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        if self.config.ray_address:
            ray.init(address=self.config.ray_address, runtime_env={"env_vars": env}, log_to_driver=False)
        else:
            ray.init(
                num_cpus=self.config.ray_num_cpus,
                include_dashboard=False,
                runtime_env={"env_vars": env},
                log_to_driver=False,
            )
        self._started = True

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Vectors of ``texts`` in input order, embedded by ``ray_concurrency`` actors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.warm_up()
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = show_progress
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        kwargs = {"config": self.config.model_dump(), "make_embedder": self._make_embedder}
        ds = ds.map_batches(
            EmbedActor,
            fn_constructor_kwargs=kwargs,
            batch_size=self.config.batch_size,
            concurrency=self.config.ray_concurrency,
            num_cpus=1,
            batch_format="numpy",
        )
        order = np.zeros(len(texts), dtype=np.int64)
        out: np.ndarray | None = None
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            if out is None:
                out = np.zeros((len(texts), batch["vector"].shape[1]), dtype=np.float32)
            out[batch["i"]] = batch["vector"]
            order[batch["i"]] = 1
        if out is None or not order.all():
            raise RuntimeError(f"Ray returned vectors for {int(order.sum())} of {len(texts)} texts")
        self._dimension = out.shape[1]
        return out

    def close(self) -> None:
        """Stop the local Ray cluster this embedder started (a joined cluster keeps running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
