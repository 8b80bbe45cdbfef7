"""Models on a CPU, side by side: time to first token, tokens/s and whole-answer time on the sample questions' evidence prompts.

Usage (one command; see benchmarks/README.md):
    python -m benchmarks.bench_models [--models smollm2,EVAL] [--limit 16] [--prompt-lookup 10] [--threads 2]
                                      [--sweep-threads 1,2] [--sweep-batch 64,512] [--json OUT.json]

``EVAL`` is the evaluation model from ``bash ../shared/tools/eval-model.sh``
(``~/.cache/rag-eval-models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf``; any ``.gguf`` path or
catalogue name works). Each model runs with its profile (rag.models) applied under the
default config, as ``generation.model: <it>`` would.

The prompts are the pipeline's own: for each answerable question of ``eval/sample-qa.jsonl``
the passages are retrieved from a fresh index of ``data/articles`` (default configuration),
the evidence sentences chosen with ``RAG.evidence`` (as ``rag ask``) and the messages built
with ``rag.answering.prompting.build_evidence_prompt`` and the model's ``use_system_prompt`` /
``few_shot`` (as ``RAG._draft_stream`` does). Greedy, the config's ``max_new_tokens`` and stop
strings. Per model, question by question and in rotating order (so load hits every path
alike), three paths run on the same prompts:

- ``raw``: ``llama_cpp.Llama.create_chat_completion`` in this process, the reference;
- ``library``: the default backend, ``LlamaServerGenerator`` (a ``llama_cpp.server`` child over
  loopback HTTP) built from the profile's config, plain decoding;
- ``library+pld``: the same with prompt-lookup decoding (``--prompt-lookup N`` draft tokens).

Every path keeps the KV cache of its previous request and reuses the common prefix (system
prompt and worked example): that is the prompt caching real use gets, so one warm-up question
per path is run first and not counted. TTFT is from the call to the first text piece; tokens/s
is the tokens after the first over the time after the first (the model's own tokenizer);
whole answer is the call's total time. ``--sweep-threads`` / ``--sweep-batch`` add raw runs
with other thread counts / batch sizes (the values the profile should use).

The machine is shared: ``uptime`` is printed before and after; compare only rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the llama_server child runs (rag/generation/llama_server.py)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Only what does not load torch: the index and prompts are built in a child process (--dump-prompts),
# so the raw reference runs llama.cpp in a process as clean as the llama_server child.
from rag.config import Config  # noqa: E402
from rag.generation import LlamaServerGenerator, default_threads, prepared_gguf  # noqa: E402
from rag.answering.prompting import build_evidence_prompt  # noqa: E402

EVAL_MODEL = Path.home() / ".cache" / "rag-eval-models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def load() -> str:
    """``uptime``'s load averages, for the record."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "uptime unavailable"


def evidence_prompts(qa: Path, articles: Path, limit: int, workdir: Path) -> list[tuple[str, list[tuple[int, str]]]]:
    """(question, evidence sentences) of the answerable questions, retrieved as the pipeline does (loads torch)."""
    from rag import RAG

    rag = RAG(Config.load(None, {"index.path": str(workdir / "index"), "generation.backend": "none"}))
    rag.build(str(articles), show_progress=False)
    out = []
    for line in qa.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("answerable", True):
            continue
        chosen = rag.evidence(row["question"], rag.retrieve(row["question"]))
        if chosen.sentences:
            out.append((row["question"], [(e.n, e.text) for e in chosen.sentences]))
        if limit and len(out) >= limit:
            break
    return out


class Raw:
    """The reference: ``llama_cpp.Llama`` in this process, chat template from the GGUF, prefix cache kept."""

    def __init__(
        self, path: Path, n_ctx: int, threads: int, batch_threads: int, n_batch: int = 512, prompt_lookup: int = 0
    ) -> None:
        import llama_cpp

        draft = None
        if prompt_lookup:
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            draft = LlamaPromptLookupDecoding(num_pred_tokens=prompt_lookup)
        self.llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=batch_threads,
            n_batch=n_batch,
            draft_model=draft,
            verbose=False,
        )

    def stream(self, messages, *, max_new_tokens, temperature, stop):
        # The sampling llama_cpp.server applies to the library's requests (its defaults: repeat_penalty 1.1,
        # top_k 40, top_p 0.95, min_p 0.05; temperature 0 makes it greedy), so both compute the same answer.
        chunks = self.llm.create_chat_completion(
            messages,
            max_tokens=max_new_tokens,
            temperature=temperature,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=1.1,
            stop=list(stop),
            stream=True,
        )
        for c in chunks:
            text = c["choices"][0]["delta"].get("content")
            if text:
                yield text

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        self.llm.close()


def timed(gen, messages, max_new_tokens: int, stop: tuple[str, ...]) -> tuple[float, float, str]:
    """(time to first piece, whole time, text) of one greedy answer."""
    t0 = time.perf_counter()
    first, parts = None, []
    for piece in gen.stream(messages, max_new_tokens=max_new_tokens, temperature=0.0, stop=stop):
        if first is None and piece.strip():
            first = time.perf_counter() - t0
        parts.append(piece)
    total = time.perf_counter() - t0
    return (first if first is not None else total), total, "".join(parts)


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def summarise(rows: list[tuple[float, float, int]]) -> dict:
    """p50/p90 TTFT and whole-answer time, and decode tokens/s (total tokens after the first over total time after the first)."""
    ttft, whole, tokens = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    decode_tokens = sum(max(0, t - 1) for t in tokens)
    decode_time = sum(max(1e-9, w - f) for f, w, t in rows if t > 1)
    return {
        "ttft_p50": round(statistics.median(ttft), 2),
        "ttft_p90": round(p(ttft, 0.9), 2),
        "whole_p50": round(statistics.median(whole), 2),
        "whole_p90": round(p(whole, 0.9), 2),
        "tokens_per_s": round(decode_tokens / decode_time, 1) if decode_time else 0.0,
        "tokens_mean": round(statistics.mean(tokens), 1),
        "n": len(rows),
    }


def bench_model(model: str, prompts, args) -> dict:
    """Every path on every prompt for one model; returns {path: summary}."""
    cfg = Config.load(None, {"generation.model": model})
    g = cfg.generation
    own = g.llama_server  # the settings of the llama.cpp backends (generation.llama_server)
    threads = args.threads or own.n_threads or default_threads()[0]
    batch_threads = own.n_threads_batch or threads
    path = prepared_gguf(g.model, own.gguf_type, g.cache_dir)
    n_ctx = g.context_window or 2048
    paths = {"raw": Raw(path, n_ctx, threads, batch_threads)}
    server_opts = dict(
        context_window=n_ctx,
        n_threads=threads,
        n_threads_batch=batch_threads,
        gguf_type=own.gguf_type,
        cache_dir=g.cache_dir,
    )
    paths["library"] = LlamaServerGenerator(g.model, prompt_lookup=0, **server_opts)
    if args.prompt_lookup:
        paths[f"library+pld{args.prompt_lookup}"] = LlamaServerGenerator(
            g.model, prompt_lookup=args.prompt_lookup, **server_opts
        )
        paths[f"raw+pld{args.prompt_lookup}"] = Raw(
            path, n_ctx, threads, batch_threads, prompt_lookup=args.prompt_lookup
        )
    for t in args.sweep_threads:
        if t != threads:
            paths[f"raw threads={t}"] = Raw(path, n_ctx, t, t)
    for b in args.sweep_batch:
        paths[f"raw n_batch={b}"] = Raw(path, n_ctx, threads, batch_threads, n_batch=b)
    counter = paths["raw"]

    def prompt_messages(most: int | None) -> list:
        return [
            build_evidence_prompt(q, ev[:most], use_system_prompt=g.use_system_prompt, few_shot=g.few_shot)
            for q, ev in prompts
        ]

    full = prompt_messages(None)
    # (generator, messages per question) for every row; "library, N sentences" sends only the best N evidence sentences
    runs = {name: (gen, full) for name, gen in paths.items()}
    for most in args.prompt_sentences:
        runs[f"library, {most} sentence{'s' if most > 1 else ''}"] = (paths["library"], prompt_messages(most))
    names = list(runs)
    # the question's own part of each prompt (its evidence and question; the instructions and example are cached),
    # counted before the models are closed
    prompt_tokens = {
        name: round(sum(counter.count_tokens(m[-1]["content"]) for m in msgs[1:]) / max(1, len(msgs) - 1), 1)
        for name, (_gen, msgs) in runs.items()
    }
    rows: dict[str, list] = {name: [] for name in names}
    texts: dict[str, list[str]] = {name: [] for name in names}
    try:
        for i in range(len(full)):
            order = names[i % len(names) :] + names[: i % len(names)]  # rotate, so load hits every path alike
            for name in order:
                gen, messages = runs[name]
                first, whole, text = timed(gen, messages[i], g.max_new_tokens, g.stop)
                if i == 0:
                    continue  # warm-up: loads the model and fills the prefix cache
                rows[name].append((first, whole, counter.count_tokens(text)))
                texts[name].append(text.strip())
            print(f"  {model}: question {i + 1}/{len(full)} done ({load()})", file=sys.stderr)
    finally:
        for gen in paths.values():
            gen.close()
    out = {name: summarise(r) for name, r in rows.items()}
    base = out["raw"]["tokens_per_s"] or float("nan")
    for name, s in out.items():
        s["vs_raw_tokens_per_s"] = round(s["tokens_per_s"] / base, 2)
        s["same_answers_as_raw"] = sum(a == b for a, b in zip(texts[name], texts["raw"]))
        s["question_prompt_tokens"] = prompt_tokens[name]
    return {
        "model": model,
        "gguf": str(path),
        "threads": threads,
        "n_threads_batch": batch_threads,
        "profile": g.profile,
        "prompt_lookup_in_profile": own.prompt_lookup,
        "max_new_tokens": g.max_new_tokens,
        "paths": out,
    }


def print_table(result: dict) -> None:
    print(
        f"\n{result['model']}  ({Path(result['gguf']).name}, {result['threads']} threads, "
        f"max_new_tokens {result['max_new_tokens']})"
    )
    print(
        f"{'path':<24}{'prompt':>7}{'TTFT p50':>9}{'p90':>7}{'whole p50':>10}{'p90':>7}{'tok/s':>7}{'vs raw':>8}"
        f"{'tokens':>8}{'same':>6}"
    )
    for name, s in result["paths"].items():
        print(
            f"{name:<24}{s['question_prompt_tokens']:>7.0f}{s['ttft_p50']:>8.2f}s{s['ttft_p90']:>6.2f}s{s['whole_p50']:>9.2f}s{s['whole_p90']:>6.2f}s"
            f"{s['tokens_per_s']:>7.1f}"
            f"{s['vs_raw_tokens_per_s']:>8.2f}{s['tokens_mean']:>8.1f}{s['same_answers_as_raw']:>4}/{s['n']}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models", default=f"smollm2,{EVAL_MODEL}", help="comma-separated: catalogue names, smollm2, or .gguf paths"
    )
    ap.add_argument("--qa", default=str(ROOT / "eval" / "sample-qa.jsonl"))
    ap.add_argument("--articles", default=str(ROOT / "data" / "articles"))
    ap.add_argument(
        "--limit", type=int, default=16, help="questions (the first is a warm-up and not counted; 0: all answerable)"
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="decode threads (0: the profile's, else the CPUs available up to 8)"
    )
    ap.add_argument(
        "--prompt-lookup", type=int, default=10, help="draft tokens for the prompt-lookup rows (0: no such rows)"
    )
    ap.add_argument("--sweep-threads", default="", help="extra raw rows with these thread counts, e.g. 1,2")
    ap.add_argument("--sweep-batch", default="", help="extra raw rows with these n_batch values, e.g. 32,512")
    ap.add_argument(
        "--prompt-sentences",
        default="",
        help="extra library rows whose prompts hold only the best N evidence sentences, e.g. 1,2 (a shorter prompt: "
        "time to first token against what the model is shown)",
    )
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument(
        "--dump-prompts", metavar="OUT", help=argparse.SUPPRESS
    )  # the child that builds the index and prompts
    args = ap.parse_args()
    args.sweep_threads = [int(x) for x in args.sweep_threads.split(",") if x]
    args.sweep_batch = [int(x) for x in args.sweep_batch.split(",") if x]
    args.prompt_sentences = [int(x) for x in args.prompt_sentences.split(",") if x]
    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if m.endswith(".gguf") and not Path(m).is_file()]
    if missing:
        print(
            f"error: {missing} not found; the evaluation model comes from `bash ../shared/tools/eval-model.sh`",
            file=sys.stderr,
        )
        return 2
    before = load()
    if not args.dump_prompts:
        print(f"load before: {before}\ncpus: {len(os.sched_getaffinity(0))}", flush=True)
    if args.dump_prompts:
        with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
            prompts = evidence_prompts(Path(args.qa), Path(args.articles), args.limit, Path(tmp))
        Path(args.dump_prompts).write_text(json.dumps(prompts), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        dump = Path(tmp) / "prompts.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--dump-prompts",
                str(dump),
                "--qa",
                args.qa,
                "--articles",
                args.articles,
                "--limit",
                str(args.limit),
            ],
            check=True,
        )
        prompts = [(q, [tuple(e) for e in ev]) for q, ev in json.loads(dump.read_text(encoding="utf-8"))]
    print(f"{len(prompts)} evidence prompts from {args.qa} over {args.articles} (the first is the warm-up)", flush=True)
    results = []
    for model in models:
        results.append(bench_model(model, prompts, args))
        print_table(results[-1])
    after = load()
    print(f"\nload after: {after}")
    if args.json:
        record = {"load_before": before, "load_after": after, "results": results}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
