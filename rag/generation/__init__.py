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

Adding a backend is one file with a class that fits :class:`Generator` (its own settings
in a nested ``Options``, read from ``generation.<name>``) plus one line in :data:`BACKENDS`
(CONTRIBUTING.md shows a worked example).

:class:`AnswerStream` (``reasoning.py``) runs a generator for the pipeline: it splits
``<think>`` reasoning from the answer and enforces a thinking budget.

Example:
    >>> gen = make_generator(Config.load("configs/default.yaml").generation)   # cheap: loads on first use
    >>> for piece in gen.stream([{"role": "user", "content": "Hi"}], max_new_tokens=20):
    ...     print(piece, end="")
"""

from __future__ import annotations

from typing import Any

from ..registry import Registry
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
from .llama_server import LlamaServerGenerator
from .null import NullGenerator
from .openai import OpenAIGenerator
from .reasoning import AnswerStream, Piece, ThinkSplitter, cut_at_stop, split_reasoning
from .transformers import TransformersGenerator

#: Backend name -> backend class: ``from_config(cfg)`` builds it, ``Options`` validates its own
#: settings (``generation.<name>`` in the config). One line per backend.
BACKENDS: Registry[Any] = Registry(
    "generation backend",
    {
        "llama_server": LlamaServerGenerator,
        "transformers": TransformersGenerator,
        "llama_cpp": LlamaCppGenerator,
        "openai": OpenAIGenerator,
        "none": NullGenerator,
    },
)


def make_generator(cfg: Any) -> Generator:
    """Create the generator named by ``cfg.backend`` (a validated :class:`~rag.config.GenerationConfig`).

    Raises:
        ConfigError: unknown backend name (the message lists :data:`BACKENDS`).
        ImportError: the backend's optional dependency is missing (names the extra).
    """
    return BACKENDS[cfg.backend].from_config(cfg)


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
