"""Generate answers, streaming, from one of several backends, with R1-style reasoning split off.

The :class:`Generator` protocol (``base.py``) is the seam. Backends are chosen by name
through :data:`BACKENDS` (``generation.backend`` in the config), one file each:

- ``llama_server`` (default, ``llama_server.py``): llama.cpp in a supervised child process
  on loopback, restarted if it crashes; falls back to ``transformers`` with a one-line
  ``notice`` when llama.cpp is missing or failed its set-up smoke test;
- ``transformers`` (``transformers.py``): a Hugging Face model id, a local folder or a
  ``.gguf`` file (dequantised once, then cached as safetensors);
- ``llama_cpp`` (``llama_cpp.py``): GGUF in this process through ``llama-cpp-python``;
- ``openai`` (``openai.py``): any OpenAI-compatible ``/v1/chat/completions`` server;
- ``none`` (``null.py``): no model at all (answers are extractive).

Adding a backend is one file with a class that fits :class:`Generator` plus one line in
:data:`BACKENDS` (CONTRIBUTING.md shows a worked example).

:class:`AnswerStream` (``reasoning.py``) runs a generator for the pipeline: it splits
``<think>`` reasoning from the answer and enforces a thinking budget.

Example:
    >>> gen = make_generator(Config.load("configs/default.yaml").generation)   # cheap: loads on first use
    >>> for piece in gen.stream([{"role": "user", "content": "Hi"}], max_new_tokens=20):
    ...     print(piece, end="")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import (
    BUDGET_NOTE,
    FINAL_ANSWER_REQUEST,
    THINK_CLOSE,
    THINK_OPEN,
    BackendOptions,
    ContinuingGenerator,
    Generator,
    GeneratorError,
    Message,
    TemplatedGenerator,
    default_cache_dir,
    packaged_smollm2_gguf,
    resolve_gguf,
    resolve_model,
    strip_history_reasoning,
)
from .gguf import GGUF_TYPES, LLAMACPP_MISSING, LlamaStatus, default_threads, llama_status, prepared_gguf
from .llama_cpp import LlamaCppGenerator
from .llama_server import LlamaServerGenerator, llama_server_or_fallback
from .null import NullGenerator
from .openai import OpenAIGenerator
from .reasoning import AnswerStream, Piece, ThinkSplitter, cut_at_stop, split_reasoning
from .transformers import TransformersGenerator

#: Backend name -> factory taking a :class:`~rag.config.GenerationConfig`. One line per backend.
BACKENDS: dict[str, Callable[[Any], Generator]] = {
    "llama_server": llama_server_or_fallback,
    "transformers": TransformersGenerator.from_config,
    "llama_cpp": LlamaCppGenerator.from_config,
    "openai": OpenAIGenerator.from_config,
    "none": NullGenerator.from_config,
}


def make_generator(cfg: Any) -> Generator:
    """Create the generator named by ``cfg.backend`` (a :class:`~rag.config.GenerationConfig`).

    Raises:
        GeneratorError: unknown backend name (the message lists :data:`BACKENDS`), or a
            setting the backend rejects (names it).
        ImportError: the backend's optional dependency is missing (names the extra).
    """
    try:
        factory = BACKENDS[cfg.backend]
    except KeyError:
        raise GeneratorError(f"unknown generation backend {cfg.backend!r}; choose from {sorted(BACKENDS)}") from None
    return factory(cfg)


__all__ = [
    "BACKENDS",
    "BUDGET_NOTE",
    "FINAL_ANSWER_REQUEST",
    "GGUF_TYPES",
    "LLAMACPP_MISSING",
    "THINK_CLOSE",
    "THINK_OPEN",
    "AnswerStream",
    "BackendOptions",
    "ContinuingGenerator",
    "Generator",
    "GeneratorError",
    "LlamaCppGenerator",
    "LlamaServerGenerator",
    "LlamaStatus",
    "Message",
    "NullGenerator",
    "OpenAIGenerator",
    "Piece",
    "TemplatedGenerator",
    "ThinkSplitter",
    "TransformersGenerator",
    "cut_at_stop",
    "default_cache_dir",
    "default_threads",
    "llama_status",
    "make_generator",
    "packaged_smollm2_gguf",
    "prepared_gguf",
    "resolve_gguf",
    "resolve_model",
    "split_reasoning",
    "strip_history_reasoning",
]
