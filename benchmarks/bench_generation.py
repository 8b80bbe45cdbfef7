"""Generation backends on the sample question: time to first token, tokens/s, load times.

Usage:
    python benchmarks/bench_generation.py [--articles data/articles] [--runs 5] [--cold-runs 2]
                                          [--backends transformers,llama_cpp,openai] [--threads N] [--json]

What it measures, all on the packaged SmolLM2-135M-Instruct GGUF with greedy decoding and
the default config's stop strings and max_new_tokens:

1. The sample question's real prompt (retrieved passages from a fresh index of
   ``--articles``) is sent ``--runs`` times to each backend. Time to first token is from the
   ``stream()`` call to the first text piece (so it includes prompt processing); tokens/s is
   the tokens after the first over the time after the first, counted with the model's own
   tokenizer for every backend. Each run starts its system message with ``(run i)`` so no
   backend can reuse a cached prompt prefix from the previous run (llama.cpp would).
   ``openai`` is ``python -m llama_cpp.server`` on loopback, so it adds HTTP/SSE on top of
   llama.cpp.
2. Transformers load time in a fresh process: cold (an empty temporary cache: the GGUF is
   dequantised and cached as safetensors) and warm (read from that cache), ``warm_up()``
   only, wall and CPU seconds; warm also with torch and transformers already imported (as
   in ``rag ask`` and the UI, where the embedder imported them); llama.cpp's for comparison.
   CPU seconds show what an idle machine would take when other work shares the cores.
3. The cited answer of ``RAG.ask`` through transformers and llama_cpp, to show whether they agree.

Prints medians and the transformers / llama.cpp ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import RAG, Config  # noqa: E402
from rag.generation import LlamaCppGenerator, OpenAIGenerator, TransformersGenerator, packaged_smollm2_gguf  # noqa: E402
from rag.prompting import build_prompt  # noqa: E402

QUESTION = "How much market value did Nvidia lose on 27 January 2025?"

LOAD_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
if {preimport!r}:
    import torch, transformers, transformers.models.llama.modeling_llama  # as in `rag ask`, where the embedder imported them
from rag.generation import {cls}
gen = {cls}("smollm2"{extra})
t0, c0 = time.perf_counter(), time.process_time()
gen.warm_up()
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def load_seconds(cls: str, cache_root: str | None = None, preimport: bool = False) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of a generator's ``warm_up()`` in a fresh Python process.

    ``cache_root``: used as ``RAG_CACHE_DIR``. ``preimport``: torch and transformers are imported before timing (they already are in
    ``rag ask`` and the UI by the time the generator loads, for the embedder).
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if cache_root:
        env["RAG_CACHE_DIR"] = cache_root  # the generator caches under $RAG_CACHE_DIR/models
    code = LOAD_SCRIPT.format(root=str(ROOT), cls=cls, extra="", preimport=preimport)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return round(statistics.median(p[0] for p in pairs), 2), round(statistics.median(p[1] for p in pairs), 2)


def time_stream(gen, messages, count_tokens, max_new_tokens: int, stop: tuple[str, ...]) -> tuple[float, float, int, str]:
    """(time to first token, tokens/s after it, tokens, text) for one greedy generation."""
    t0 = time.perf_counter()
    first = None
    parts = []
    for piece in gen.stream(messages, max_new_tokens=max_new_tokens, temperature=0.0, stop=stop):
        if first is None and piece:
            first = time.perf_counter() - t0
        parts.append(piece)
    total = time.perf_counter() - t0
    text = "".join(parts)
    tokens = count_tokens(text)
    rate = (tokens - 1) / (total - first) if first is not None and tokens > 1 and total > first else 0.0
    return first or total, rate, tokens, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, threads: int = 0) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_smollm2_gguf()), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    if threads:
        cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    proc = subprocess.Popen(cmd, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-1000:]}")
        try:
            httpx.get(f"{base}/models", timeout=2)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start within 120 s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", default=str(ROOT / "data" / "articles"))
    ap.add_argument("--runs", type=int, default=5, help="generations per backend (median reported)")
    ap.add_argument("--cold-runs", type=int, default=2, help="cold transformers loads (each dequantises the GGUF again)")
    ap.add_argument("--backends", default="transformers,llama_cpp,openai")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for every backend (0: each library's default)")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results: dict = {"question": QUESTION, "runs": args.runs, "threads": args.threads or "default"}
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"indexing {args.articles} ...", file=sys.stderr)
        cfg = Config.load(ROOT / "configs" / "default.yaml", {"index.path": str(tmp_path / "index")})
        base = RAG(cfg)
        base.build(args.articles)
        passages = base.retrieve(QUESTION)
        gen_cfg = cfg.generation
        tf = TransformersGenerator("smollm2", context_window=gen_cfg.context_window)
        tf.warm_up()
        prompt = build_prompt(QUESTION, passages, count_tokens=tf.count_tokens, context_window=gen_cfg.context_window,
                              max_new_tokens=gen_cfg.max_new_tokens, use_system_prompt=gen_cfg.use_system_prompt, few_shot=gen_cfg.few_shot)
        prompt_tokens = tf.count_tokens(tf.render(prompt.messages))
        results["prompt_tokens"] = prompt_tokens

        def run_messages(i: int) -> list[dict]:
            first = prompt.messages[0]
            return [{**first, "content": f"(run {i}) {first['content']}"}, *prompt.messages[1:]]

        server = None
        gens = {}
        if "transformers" in backends:
            gens["transformers"] = tf
        if "llama_cpp" in backends:
            gens["llama_cpp"] = LlamaCppGenerator("smollm2", context_window=gen_cfg.context_window, n_threads=args.threads or None)
            gens["llama_cpp"].warm_up()
        if "openai" in backends:
            server, url = start_server(tmp_path / "server.log", args.threads)
            gens["openai"] = OpenAIGenerator("smollm2", base_url=url, context_window=gen_cfg.context_window, timeout=300)
        try:
            # One untimed warm-up generation each (thread pools, first-call allocations).
            for gen in gens.values():
                time_stream(gen, run_messages(-1), tf.count_tokens, 8, gen_cfg.stop)
            per_backend: dict[str, dict] = {}
            for name, gen in gens.items():
                rows = []
                for i in range(args.runs):
                    ttft, rate, tokens, text = time_stream(gen, run_messages(i), tf.count_tokens, gen_cfg.max_new_tokens, gen_cfg.stop)
                    rows.append((ttft, rate, tokens))
                    print(f"  {name} run {i + 1}: ttft {ttft:.2f} s, {rate:.1f} tok/s, {tokens} tokens: {text.strip()[:70]!r}", file=sys.stderr)
                per_backend[name] = {
                    "ttft_s": round(statistics.median(r[0] for r in rows), 3),
                    "tokens_per_s": round(statistics.median(r[1] for r in rows), 1),
                    "tokens": int(statistics.median(r[2] for r in rows)),
                }
            results["backends"] = per_backend

            if "transformers" in gens and "llama_cpp" in gens:
                answers = {}
                for name in ("transformers", "llama_cpp"):
                    answer = RAG(cfg, embedder=base.embedder, generator=gens[name]).ask(QUESTION, temperature=0.0)
                    answers[name] = {"text": answer.text, "citations": [(c.n, c.source) for c in answer.citations]}
                results["answers"] = answers
                results["same_cited_answer"] = answers["transformers"] == answers["llama_cpp"]
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)

        # Load times in fresh processes.
        print("measuring load times ...", file=sys.stderr)
        cache = tmp_path / "model-cache"
        cold = []
        for _ in range(max(args.cold_runs, 1)):
            if cache.exists():
                import shutil

                shutil.rmtree(cache)
            cold.append(load_seconds("TransformersGenerator", str(cache)))
        warm = [load_seconds("TransformersGenerator", str(cache)) for _ in range(args.runs)]
        warm_pre = [load_seconds("TransformersGenerator", str(cache), preimport=True) for _ in range(args.runs)]
        loads = {"transformers_cold": medians(cold), "transformers_warm": medians(warm), "transformers_warm_preimported": medians(warm_pre)}
        if "llama_cpp" in backends:
            loads["llama_cpp"] = medians([load_seconds("LlamaCppGenerator") for _ in range(args.runs)])
        results["load"] = loads

    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def print_table(r: dict) -> None:
    print(f"\nSample question: {r['question']!r} ({r['prompt_tokens']} prompt tokens), greedy, median of {r['runs']} runs, threads: {r['threads']}")
    print(f"{'backend':<14}{'ttft (s)':>10}{'tokens/s':>10}{'tokens':>8}")
    for name, row in r.get("backends", {}).items():
        print(f"{name:<14}{row['ttft_s']:>10.2f}{row['tokens_per_s']:>10.1f}{row['tokens']:>8}")
    b = r.get("backends", {})
    if "transformers" in b and "llama_cpp" in b:
        tf, ll = b["transformers"], b["llama_cpp"]
        ttft_ratio = tf["ttft_s"] / ll["ttft_s"] if ll["ttft_s"] else float("nan")
        rate_ratio = tf["tokens_per_s"] / ll["tokens_per_s"] if ll["tokens_per_s"] else float("nan")
        print(f"transformers / llama.cpp on the same GGUF: time to first token x{ttft_ratio:.2f}, tokens/s x{rate_ratio:.2f}")
    load = r["load"]
    print("\nload (warm_up() in a fresh process)       wall (s)   CPU (s)")
    rows = [("transformers cold (dequantise + cache)", "transformers_cold"), ("transformers warm (safetensors cache)", "transformers_warm"),
            ("transformers warm, torch+transformers imported", "transformers_warm_preimported"), ("llama.cpp", "llama_cpp")]
    for label, key in rows:
        if key in load:
            print(f"{label:<48}{load[key][0]:>8.2f}{load[key][1]:>10.2f}")
    if "answers" in r:
        print(f"same cited answer (transformers vs llama_cpp): {'yes' if r['same_cited_answer'] else 'no'}")
        for name, a in r["answers"].items():
            print(f"  {name}: {a['text']!r} {a['citations']}")


if __name__ == "__main__":
    sys.exit(main())
