"""Hugging Face transformers backend: ``AutoModelForCausalLM`` plus the model's chat template.

A ``.gguf`` model is dequantised on first load and cached as safetensors.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from ..loading import MODEL_LOAD_LOCK
from .base import (
    BackendOptions,
    FromConfig,
    GeneratorError,
    Message,
    TemplatedGenerator,
    default_cache_dir,
    resolve_model,
)
from .reasoning import cut_at_stop


class TransformersGenerator(FromConfig, TemplatedGenerator):
    """Hugging Face transformers backend (``AutoModelForCausalLM`` plus the chat template).

    A ``.gguf`` model is dequantised on first load and cached as safetensors, so later
    starts skip the slow conversion.

    Args:
        model: ``smollm2`` (packaged GGUF), a hub id already in the local cache, a local
            folder, or a ``.gguf`` path.
        context_window: prompt + answer token budget; None reads the model's maximum.
        cache_dir: where dequantised GGUF weights go (None: ``~/.cache/rag/models``).

    Example:
        >>> gen = TransformersGenerator("smollm2")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
    """

    Options: ClassVar[type[BackendOptions]] = BackendOptions  # no settings of its own
    shared: ClassVar[tuple[str, ...]] = ("model", "context_window", "cache_dir")

    def __init__(self, model: str = "smollm2", context_window: int | None = 2048, cache_dir: str | None = None) -> None:
        self.name = model
        self._context_window = context_window
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()
        # One generation at a time per model: torch generate() on CPU already uses every core.
        self._generate_lock = threading.Lock()

    # -- loading -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the model and tokenizer now (otherwise on first use)."""
        with self._load_lock, MODEL_LOAD_LOCK:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            folder, gguf_file = resolve_model(self.name)
            try:
                if gguf_file is None:
                    self._tokenizer = AutoTokenizer.from_pretrained(folder)
                    self._model = AutoModelForCausalLM.from_pretrained(folder)
                else:
                    self._model, self._tokenizer = self._load_gguf(Path(folder) / gguf_file)
            except OSError as exc:
                raise GeneratorError(
                    f"cannot load model {self.name!r} offline: {exc}. Use 'smollm2' (packaged), a local folder, or a .gguf path"
                ) from exc
            self._model.eval()

    def gguf_cache_path(self, path: Path) -> Path:
        """The folder the dequantised copy of GGUF ``path`` is cached in."""
        st = path.stat()
        key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:16]
        return (self._cache_dir or default_cache_dir()) / f"{path.stem}-{key}"

    def _load_gguf(self, path: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cache = self.gguf_cache_path(path)
        if (cache / "model.safetensors").is_file() and (cache / "config.json").is_file():
            try:
                return AutoModelForCausalLM.from_pretrained(cache), AutoTokenizer.from_pretrained(cache)
            except (OSError, ValueError):
                shutil.rmtree(cache, ignore_errors=True)  # a damaged cache is rebuilt below
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        try:
            _save_dequantised(model, tokenizer, cache)
        except OSError:
            pass  # a read-only or full cache only costs speed on the next start
        return model, tokenizer

    @property
    def tokenizer(self):
        """The model's tokenizer (loads the model)."""
        self.warm_up()
        return self._tokenizer

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer."""
        if self._context_window is not None:
            return self._context_window
        self.warm_up()
        return int(getattr(self._model.config, "max_position_embeddings", 2048))

    def _apply_template(self, messages: list[Message]) -> str | None:
        tok = self._tokenizer
        if not tok.chat_template:
            return None
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- generation ----------------------------------------------------------------
    def _stream_prompt(
        self, prompt: str, max_new_tokens: int, temperature: float, stop: tuple[str, ...]
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            streamer=streamer,
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self._tokenizer)
        errors: list[BaseException] = []
        stop_flag = threading.Event()

        def run() -> None:
            try:
                with self._generate_lock, torch.inference_mode():
                    self._model.generate(**kwargs, stopping_criteria=_stop_on_event(stop_flag))
            except BaseException as exc:  # surfaced in the consumer thread
                errors.append(exc)
                streamer.on_finalized_text("", stream_end=True)

        thread = threading.Thread(target=run, daemon=True, name="rag-generate")
        thread.start()
        try:
            yield from cut_at_stop(streamer, stop)
        finally:
            stop_flag.set()  # the consumer went away: stop generating
            thread.join(timeout=600)
        if errors:
            raise GeneratorError(f"generation failed: {type(errors[0]).__name__}: {errors[0]}") from errors[0]


def _stop_on_event(flag: threading.Event):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            import torch

            return torch.full((input_ids.shape[0],), flag.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([_Stop()])


def _save_dequantised(model, tokenizer, cache: Path) -> None:
    """Save a GGUF-loaded model as plain safetensors (``save_pretrained`` refuses GGUF models)."""
    from safetensors.torch import save_model

    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        save_model(model, str(tmp / "model.safetensors"))
        config = model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, cache) if not cache.exists() else shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
