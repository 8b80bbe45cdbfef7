"""scripts/llama_build.py: a portable llama.cpp build, smoke-tested, with safe fallbacks.

The smoke test runs in a real child process that loads the packaged GGUF; a crashing build
is simulated with RAG_LLAMA_SMOKE_SIMULATE=sigill:<target>, which makes that child kill
itself with SIGILL exactly where a build with unsupported instructions would die.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "llama_build.py"
spec = importlib.util.spec_from_file_location("llama_build", SCRIPT)
llama_build = importlib.util.module_from_spec(spec)
sys.modules["llama_build"] = llama_build  # dataclasses look their module up there
spec.loader.exec_module(llama_build)

AMX_CPU = (
    "processor: 0\nflags\t\t: fpu sse sse2 avx avx2 fma f16c bmi2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8\n"
)


def test_targets_for_an_amx_cpu_never_build_native_avx512_or_amx():
    """A CPU reporting AMX/AVX-512 gets avx2 first, and no target compiles tile or 512-bit code."""
    targets = llama_build.candidate_targets(llama_build.cpu_flags(AMX_CPU), machine="x86_64")
    assert [t.name for t in targets] == ["avx2", "avx", "baseline"]
    for t in targets:
        args = t.cmake_args
        assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AMX_TILE=OFF" in args and "-DGGML_AVX512=OFF" in args
        assert "GGML_NATIVE=ON" not in args and "AMX_TILE=ON" not in args and "AVX512=ON" not in args


def test_a_cpu_without_avx2_skips_the_avx2_target():
    targets = llama_build.candidate_targets(llama_build.cpu_flags("flags : sse sse2 avx\n"), machine="x86_64")
    assert [t.name for t in targets] == ["avx", "baseline"]


@pytest.fixture
def fake_install(tmp_path, monkeypatch):
    """Builds and installs nothing (the real build takes minutes); records the order of targets."""
    calls: list[str] = []
    monkeypatch.setattr(llama_build, "status_path", lambda: tmp_path / "llama-build.json")

    def build(version, target):
        calls.append(target.name)
        return tmp_path / f"{target.name}.whl"

    return calls, build


@pytest.mark.slow
def test_simulated_sigill_in_the_smoke_test_leads_to_the_safer_rebuild(fake_install, monkeypatch, capsys):
    """The avx2 build 'dies with SIGILL' in its real smoke child: the next target is built and kept."""
    calls, build = fake_install
    monkeypatch.setenv(llama_build.SIMULATE_ENV, "sigill:avx2")
    status = llama_build.ensure(
        list(llama_build.TARGETS),
        build=build,
        install=lambda wheel: None,
        uninstall=lambda: pytest.fail("must not uninstall while a target works"),
    )
    assert calls == ["avx2", "avx"]
    assert status["ok"] and status["target"] == "avx"
    assert status["failures"] == ["avx2: died with SIGILL (an instruction this CPU reports but cannot run)"]
    out = capsys.readouterr().out
    assert "failed its smoke test: died with SIGILL" in out and "trying a safer target" in out
    assert json.loads(llama_build.status_path().read_text())["target"] == "avx"


@pytest.mark.slow
def test_every_target_crashing_uninstalls_and_records_the_transformers_fallback(fake_install, monkeypatch, capsys):
    calls, build = fake_install
    removed: list[bool] = []
    monkeypatch.setenv(llama_build.SIMULATE_ENV, "sigill:avx2,avx,baseline")
    status = llama_build.ensure(
        list(llama_build.TARGETS), build=build, install=lambda wheel: None, uninstall=lambda: removed.append(True)
    )
    assert calls == ["avx2", "avx", "baseline"] and removed == [True]
    assert status["ok"] is False and len(status["failures"]) == 3
    assert "rag will use the slower transformers backend" in capsys.readouterr().out
    assert json.loads(llama_build.status_path().read_text())["ok"] is False


@pytest.mark.slow
def test_the_installed_build_passes_the_real_smoke_test():
    """The llama.cpp that setup installed loads the packaged GGUF and generates in a child process."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/setup.sh installs it)")
    result = llama_build.smoke_test("avx2")
    assert result.ok, result.detail
    assert result.detail.startswith("SMOKE-OK")
