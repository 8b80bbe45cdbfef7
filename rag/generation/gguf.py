"""What both llama.cpp backends share: whether llama.cpp is usable, the GGUF file they run, their thread counts.

- :func:`llama_status`: llama-cpp-python is importable and the set-up's smoke test
  (``scripts/llama_build.py`` writes ``<sys.prefix>/llama-build.json``) did not record a failure.
- :func:`prepared_gguf`: the packaged Q4_1 GGUF re-quantised once to a faster type
  (``generation.llama_server.gguf_type``), cached under the model cache keyed by the source file's hash.
  Measured with 2 threads on the sample question (benchmarks/bench_generation.py): prompt
  processing is about twice as fast from Q8_0 or Q4_0 as from the packaged Q4_1, and Q8_0
  keeps the answers of the packaged weights (Q4_0 re-quantises 4-bit weights again).
- :func:`default_threads`: explicit thread counts (llama-cpp-python's own default generates
  on half the cores, which measured 35 instead of 58 tokens/s on 2 cores).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from .base import BackendOptions, GeneratorError, default_cache_dir, resolve_gguf

LLAMACPP_MISSING = (
    "the llama_cpp backend needs llama-cpp-python, which is not installed; install the extra: "
    "pip install '.[llamacpp]' (or pip install 'llama-cpp-python[server]'), or set generation.backend: transformers"
)

#: GGUF types ``gguf_type`` (generation.llama_server, generation.llama_cpp) accepts: the file as shipped, or re-quantised to one of these llama.cpp ftypes.
GGUF_TYPES: dict[str, str | None] = {
    "packaged": None,
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
}

#: Overrides where the set-up's smoke-test record is read (default ``<sys.prefix>/llama-build.json``).
BUILD_STATUS_ENV = "RAG_LLAMA_BUILD_STATUS"


def require_llama_cpp() -> None:
    """Raise ``ImportError`` naming the extra when llama-cpp-python is missing."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ImportError(LLAMACPP_MISSING)


@dataclass(frozen=True)
class LlamaStatus:
    """Whether llama.cpp can be used here, and if not, why (one line)."""

    usable: bool
    reason: str = ""


def build_status_path(prefix: str | Path | None = None) -> Path:
    """Where ``scripts/llama_build.py`` recorded its smoke test (``$RAG_LLAMA_BUILD_STATUS`` wins)."""
    if prefix is None and os.environ.get(BUILD_STATUS_ENV):
        return Path(os.environ[BUILD_STATUS_ENV])
    return Path(prefix if prefix is not None else sys.prefix) / "llama-build.json"


def llama_status(prefix: str | Path | None = None) -> LlamaStatus:
    """Is llama.cpp usable? Not when it is not importable, or when the set-up's smoke test failed.

    A missing record (llama-cpp-python installed by hand) counts as usable.

    Args:
        prefix: the environment folder holding ``llama-build.json`` (None: ``sys.prefix``,
            or the file named by ``$RAG_LLAMA_BUILD_STATUS``).
    """
    if importlib.util.find_spec("llama_cpp") is None:
        return LlamaStatus(False, "llama-cpp-python is not installed")
    path = build_status_path(prefix)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LlamaStatus(True)
    except (OSError, ValueError) as exc:
        return LlamaStatus(False, f"the llama.cpp build record {str(path)!r} is unreadable ({exc})")
    if not isinstance(record, dict) or record.get("ok") is not True:
        failures = record.get("failures") if isinstance(record, dict) else None
        detail = "; ".join(map(str, failures)) if failures else "no detail recorded"
        return LlamaStatus(False, f"the llama.cpp build failed its smoke test at set-up ({detail})")
    return LlamaStatus(True)


def default_threads() -> tuple[int, int]:
    """``(n_threads, n_threads_batch)`` for this machine.

    Prompt processing is compute-bound and uses every CPU this process may run on;
    decoding is memory-bound and stops gaining past ~8 threads (hyper-threads slow it down).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8)), max(1, cpus)


def thread_counts(n_threads: int | None, n_threads_batch: int | None) -> tuple[int, int]:
    """The configured ``(n_threads, n_threads_batch)``, None filled in: decoding from
    :func:`default_threads`, prompt processing with the decoding count when that was set."""
    auto_threads, auto_batch = default_threads()
    return n_threads or auto_threads, n_threads_batch or n_threads or auto_batch


_HASHES: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (remembered per path, size and mtime for this process)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


_QUANTIZE = r"""
import ctypes, sys
import llama_cpp
src, dst, ftype, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = getattr(llama_cpp, ftype)
params.allow_requantize = True
params.nthread = threads
sys.exit(llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))
"""


def prepared_gguf(model: str, gguf_type: str = "q8_0", cache_dir: str | Path | None = None) -> Path:
    """The GGUF llama.cpp should run for ``model``: as shipped, or re-quantised once and cached.

    The conversion runs in a child process (like generation, it must not be able to crash
    this one) and takes about a second for SmolLM2-135M. ``gguf_type`` is one of
    :data:`GGUF_TYPES`, checked when the config loaded (``LlamaOptions``).

    Raises:
        GeneratorError: the conversion failed (names the fallback).
    """
    source = resolve_gguf(model)
    ftype = GGUF_TYPES[gguf_type]
    if ftype is None:
        return source
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    target = folder / f"{source.stem}-{file_digest(source)[:16]}.{gguf_type}.gguf"
    if target.is_file() and target.stat().st_size > 0:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _QUANTIZE, str(source), str(tmp), ftype, str(default_threads()[1])],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            raise GeneratorError(
                f"converting {source.name} to {gguf_type} took over 600 s; set gguf_type: packaged in generation.llama_server (or generation.llama_cpp) to run the file as shipped"
            ) from None
        if proc.returncode != 0 or not tmp.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise GeneratorError(
                f"could not convert {source.name} to {gguf_type}: {tail[0][:300]}; set gguf_type: packaged in generation.llama_server (or generation.llama_cpp) to run the file as shipped"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class LlamaOptions(BackendOptions):
    """The settings every llama.cpp backend takes (``generation.llama_server``, ``generation.llama_cpp``)."""

    n_threads: int | None = Field(
        None, ge=1, description="CPU threads for decoding (null: the CPUs available, up to 8)."
    )
    # Speed settings measured in benchmarks/bench_generation.py.
    n_threads_batch: int | None = Field(
        None, ge=1, description="CPU threads for prompt processing (null: every CPU available)."
    )
    gguf_type: Literal["packaged", "q8_0", "q4_0", "f16"] = Field(
        "q8_0",
        description="The packaged Q4_1 GGUF re-quantised once to q8_0 "
        "(default, ~1.3x prompt speed, same answers), q4_0 or f16, or packaged "
        "to run the file as shipped.",
    )
    # Answers copy words from the evidence, so drafts taken from the prompt might be accepted; measured
    # slower for SmolLM2-135M (0.66x) and the 1.5B evaluation model (0.43x) on 2 cores, so no profile
    # turns it on (benchmarks/bench_models.py, benchmarks/README.md).
    prompt_lookup: int = Field(
        0,
        ge=0,
        le=32,
        description="Prompt-lookup decoding, proposing this many tokens copied from the "
        "prompt per step (0: off, plain decoding).",
    )
