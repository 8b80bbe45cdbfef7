"""``generation.backend: none``: no model at all; every answer is the extractive fallback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .base import BackendOptions, GeneratorError, Message


class NullGenerator:
    """No model; :meth:`stream` raises :class:`GeneratorError`, so the pipeline answers extractively.

    Example:
        >>> RAG(Config.load(None, {"generation.backend": "none"})).ask("Who founded DeepSeek?").extractive
        True
    """

    name = "none"
    can_continue: ClassVar[bool] = False
    supports_reasoning: ClassVar[bool] = False
    notice: str = ""
    context_window = 2048
    opens_think_in_prompt = False

    Options: ClassVar[type[BackendOptions]] = BackendOptions  # no settings

    @classmethod
    def from_config(cls, cfg: Any, options: BackendOptions | None = None) -> NullGenerator:
        """The registry's factory (the config has nothing for this backend)."""
        return cls()

    def warm_up(self) -> None:
        """Nothing to load."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]:
        raise GeneratorError(
            "no generator is configured (generation.backend: none); set generation.backend to llama_server, transformers, llama_cpp or openai for generated answers"
        )
        yield ""  # pragma: no cover - makes this a generator
