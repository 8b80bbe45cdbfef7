"""llama.cpp in this process: GGUF models through ``llama-cpp-python`` (the ``llamacpp`` extra).

The default path runs llama.cpp in a supervised child process instead
(:mod:`rag.generation.llama_server`), so a crash cannot take the app down; this backend is
the raw in-process reference (benchmarks) and the choice where that isolation is not needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from .base import FromConfig, GeneratorError, Message, TemplatedGenerator
from .gguf import LLAMACPP_MISSING, LlamaOptions, prepared_gguf, require_llama_cpp, thread_counts
from .reasoning import cut_at_stop

__all__ = ["LLAMACPP_MISSING", "LlamaCppGenerator"]


class LlamaCppGenerator(FromConfig, TemplatedGenerator):
    """GGUF models natively through ``llama-cpp-python`` (the ``llamacpp`` extra).

    The prompt is rendered with the chat template stored in the GGUF (the same Jinja
    template transformers uses) and completed with ``Llama.create_completion``, so the
    backend can also continue a half-written assistant turn (the thinking budget needs it).

    Args:
        model: ``smollm2`` (the packaged GGUF) or a ``.gguf`` path.
        context_window: ``n_ctx``; None uses the model's training context.
        n_threads: CPU threads for generation (None: :func:`~rag.generation.gguf.default_threads`).
            llama.cpp's threads spin while waiting, so on a busy machine fewer threads are faster.
        n_threads_batch: CPU threads for prompt processing (None: every CPU available).
        gguf_type: ``packaged`` (the file as given) or a type to re-quantise it to once
            (``q8_0``, ``q4_0``, ``f16``; cached under ``cache_dir``).
        cache_dir: where re-quantised GGUF files go (None: ``~/.cache/rag/models``).
        prompt_lookup: prompt-lookup decoding, this many draft tokens copied from the prompt
            per step (``LlamaPromptLookupDecoding``; 0: plain decoding).

    Raises:
        ImportError: llama-cpp-python is missing (names the extra to install).

    Example:
        >>> gen = LlamaCppGenerator("smollm2")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
    """

    class Options(LlamaOptions):
        """This backend's own settings (``generation.llama_cpp``): those of every llama.cpp backend."""

    shared: ClassVar[tuple[str, ...]] = ("model", "context_window", "cache_dir")

    def __init__(
        self,
        model: str = "smollm2",
        context_window: int | None = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        gguf_type: str = "q8_0",
        cache_dir: str | None = None,
        prompt_lookup: int = 0,
    ) -> None:
        require_llama_cpp()
        self.prompt_lookup = prompt_lookup
        self.name = model
        self._context_window = context_window
        self.n_threads, self.n_threads_batch = thread_counts(n_threads, n_threads_batch)
        self.gguf_type = gguf_type
        self._cache_dir = cache_dir
        self._llm = None
        self._formatter = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the GGUF now (otherwise on first use)."""
        with self._load_lock:
            if self._llm is not None:
                return
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            path = prepared_gguf(self.name, self.gguf_type, self._cache_dir)
            draft = None
            if self.prompt_lookup:
                from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

                draft = LlamaPromptLookupDecoding(num_pred_tokens=self.prompt_lookup)
            try:
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self._context_window or 0,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads_batch,
                    draft_model=draft,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise GeneratorError(
                    f"llama.cpp cannot load {str(path)!r}: {exc}; check that it is a valid GGUF file"
                ) from exc
            template = llm.metadata.get("tokenizer.chat_template")
            if template:

                def text_of(token_id: int) -> str:
                    return llm._model.token_get_text(token_id) if token_id != -1 else ""

                self._formatter = Jinja2ChatFormatter(
                    template=template, eos_token=text_of(llm.token_eos()), bos_token=text_of(llm.token_bos())
                )
            self._llm = llm

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer."""
        if self._context_window is not None:
            return self._context_window
        self.warm_up()
        return int(self._llm.n_ctx())

    def _apply_template(self, messages: list[Message]) -> str | None:
        return None if self._formatter is None else self._formatter(messages=messages).prompt

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the GGUF's own tokenizer."""
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _stream_prompt(
        self, prompt: str, max_new_tokens: int, temperature: float, stop: tuple[str, ...]
    ) -> Iterator[str]:
        sampling: dict[str, Any] = (
            dict(temperature=temperature, top_p=0.95, top_k=0, min_p=0.0)
            if temperature > 0
            else dict(temperature=0.0, top_k=1)
        )
        with self._generate_lock:
            try:
                chunks = self._llm.create_completion(
                    prompt,
                    max_tokens=max_new_tokens,
                    stop=list(stop),
                    stream=True,
                    # Same decoding as transformers: no repetition penalty (llama.cpp defaults to 1.1 in some versions).
                    repeat_penalty=1.0,
                    **sampling,
                )
                # create_completion stops at `stop` itself; cut_at_stop also catches a stop
                # string split across pieces in a way llama.cpp lets through.
                yield from cut_at_stop((c["choices"][0]["text"] for c in chunks), stop)
            except ValueError as exc:  # e.g. "Requested tokens exceed context window"
                raise GeneratorError(
                    f"llama.cpp generation failed: {exc}; lower retrieval.top_k or raise generation.context_window"
                ) from exc
