"""Generation on the sample question: the default path against raw llama.cpp and transformers, and GGUF types.

Usage:
    python -m benchmarks.bench_generation [--articles data/articles] [--runs 3] [--threads N]
                                          [--gguf-types packaged,q8_0,q4_0] [--no-transformers] [--json]

All on the packaged SmolLM2-135M-Instruct GGUF, greedy, with the default config's stop
strings and max_new_tokens, for the sample question's real prompt (passages retrieved from
a fresh index of ``--articles`` with the default configuration, 1,139 tokens on
data/articles) and for the evidence-first prompt ``RAG.ask`` sends now (the chosen evidence sentences and
the question after the same fixed instructions and worked example):

1. **Side by side**, in one run: the default path (``generation.backend: llama_server``, a
   supervised ``llama_cpp.server`` child over loopback HTTP), raw llama.cpp in this process
   on the same GGUF type and threads (``llama_cpp``), and ``transformers``. Time to first
   token (TTFT) is from the ``stream()`` call to the first text piece, so it includes prompt
   processing; tokens/s is the tokens after the first over the time after the first, all
   counted with the model's own tokenizer.
   - *cold*: each run starts the system message with ``(run i)``, so no cached prefix helps;
   - *warm prefix* (the default path only): different questions, each with its own
     passages, after the same system prompt and worked example, as in real use: llama.cpp
     reuses the KV cache of that common prefix and evaluates only the rest.
2. **GGUF types** in process (packaged Q4_1, and the packaged file re-quantised to Q8_0 and
   Q4_0 by ``llama_model_quantize``, cached): prompt tokens/s (prompt tokens / TTFT), TTFT,
   decode tokens/s on the cold full prompt, and whether the cited answer equals the
   transformers one (numbers, sources and words).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The same OpenMP wait policy as the llama_server child (rag/generation/llama_server.py), so
# raw llama.cpp in this process is compared on equal terms; set before llama.cpp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from rag import RAG, Config  # noqa: E402
from rag.generation import (
    LlamaCppGenerator,
    LlamaServerGenerator,
    TransformersGenerator,
    default_threads,
    make_generator,
)  # noqa: E402
from rag.answering.prompting import build_evidence_prompt, build_prompt  # noqa: E402

QUESTION = "How much market value did Nvidia lose on 27 January 2025?"
# Other questions over data/articles for the warm-prefix runs (each retrieves its own passages).
OTHER_QUESTIONS = (
    "What did the DeepSeek-V3 technical report say the final training run cost?",
    "When did DeepSeek release R1, and under which licence?",
    "How many parameters does DeepSeek-V3 have in total?",
    "How many tokens was DeepSeek-V3 pre-trained on?",
    "How many Nvidia H800 GPUs were in the cluster used to train DeepSeek-V3?",
)


def time_stream(
    gen, messages, count_tokens, max_new_tokens: int, stop: tuple[str, ...]
) -> tuple[float, float, int, str]:
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


def cold(messages: list[dict], i: int) -> list[dict]:
    """The messages with ``(run i)`` at the very start, so no earlier prefix can be reused."""
    return [{**messages[0], "content": f"(run {i}) {messages[0]['content']}"}, *messages[1:]]


def summarise(rows: list[tuple[float, float, int, str]], prompt_tokens: int) -> dict:
    ttft = statistics.median(r[0] for r in rows)
    return {
        "ttft_s": round(ttft, 3),
        "tokens_per_s": round(statistics.median(r[1] for r in rows), 1),
        "prompt_tokens_per_s": round(prompt_tokens / ttft, 1),
        "tokens": int(statistics.median(r[2] for r in rows)),
        "text": rows[-1][3].strip()[:90],
    }


def claim(text: str, sources: list[str]) -> tuple:
    """Numbers, cited sources and words of an answer (spacing and punctuation aside)."""
    bare = re.sub(r"\[\d+\]", " ", text)
    return re.findall(r"\d+(?:[.,]\d+)*", bare), sources, re.findall(r"\w+", bare.lower())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", default=str(ROOT / "data" / "articles"))
    ap.add_argument("--runs", type=int, default=3, help="generations per row (median reported)")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for every backend (0: rag's default, %d here)" % default_threads()[0],
    )
    ap.add_argument("--gguf-types", default="packaged,q8_0,q4_0", help="GGUF types for the in-process table")
    ap.add_argument("--no-transformers", action="store_true", help="skip the transformers rows")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()
    threads = args.threads or default_threads()[0]
    if not args.no_transformers:
        import torch

        torch.set_num_threads(threads)
    results: dict = {
        "question": QUESTION,
        "runs": args.runs,
        "threads": threads,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        print(f"indexing {args.articles} ...", file=sys.stderr)
        overrides = {"index.path": str(Path(tmp) / "index"), "generation.llama_server.n_threads": threads}
        cfg = Config.load(ROOT / "configs" / "default.yaml", overrides)
        rag = RAG(cfg)
        rag.build(args.articles)
        tf = TransformersGenerator("smollm2", context_window=cfg.generation.context_window)
        tf.warm_up()
        prompts = make_prompts(rag, cfg, tf)
        results["prompt_tokens"] = {name: tf.count_tokens(tf.render(p[0])) for name, p in prompts.items()}
        default = make_generator(cfg.generation)
        results["default_backend"] = type(default).__name__ + (f" ({default.notice})" if default.notice else "")
        raw = LlamaCppGenerator(
            "smollm2",
            context_window=cfg.generation.context_window,
            n_threads=threads,
            gguf_type=cfg.generation.llama_server.gguf_type,
        )
        gens = {
            "default path (llama_server)": default,
            f"raw llama.cpp in process ({cfg.generation.llama_server.gguf_type})": raw,
        }
        if not args.no_transformers:
            gens["transformers"] = tf
        try:
            results["side_by_side"] = side_by_side(gens, prompts, tf, cfg, args.runs, results["prompt_tokens"])
            results["answers"] = cited_answers(rag, cfg, {"transformers": tf, "default path": default})
        finally:
            if isinstance(default, LlamaServerGenerator):
                default.close()
        del raw
        results["gguf_types"] = gguf_table(
            args.gguf_types.split(","),
            prompts["full"],
            tf,
            cfg,
            threads,
            args.runs,
            results["prompt_tokens"]["full"],
            rag,
            results["answers"].get("transformers"),
        )
    print_tables(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def make_prompts(rag: RAG, cfg: Config, tf: TransformersGenerator) -> dict[str, tuple[list[dict], list[list[dict]]]]:
    """``name -> (messages of the sample question, messages of the other questions)``: the
    whole-passage prompt of the previous version ("full", before) and the evidence-first prompt
    that ``RAG.ask`` sends now ("evidence-first", after), built from the same retrieval."""
    g = cfg.generation
    out = {}

    def full(question: str) -> list[dict]:
        passages = rag.retrieve(question)
        return build_prompt(
            question,
            passages,
            count_tokens=tf.count_tokens,
            context_window=g.context_window,
            max_new_tokens=g.max_new_tokens,
            use_system_prompt=g.use_system_prompt,
            few_shot=g.few_shot,
        ).messages

    def evidence_first(question: str) -> list[dict]:
        evidence = rag.evidence(question, rag.retrieve(question))
        return build_evidence_prompt(
            question,
            [(e.n, e.text) for e in evidence.sentences],
            use_system_prompt=g.use_system_prompt,
            few_shot=g.few_shot,
        )

    for name, make in (("full", full), ("evidence-first", evidence_first)):
        out[name] = (make(QUESTION), [make(q) for q in OTHER_QUESTIONS])
    return out


def side_by_side(gens: dict, prompts: dict, tf, cfg: Config, runs: int, prompt_tokens: dict) -> dict:
    g = cfg.generation
    table: dict = {}
    for name, gen in gens.items():
        print(f"{name}: warming up ...", file=sys.stderr)
        t0 = time.perf_counter()
        gen.warm_up()
        time_stream(gen, cold(prompts["full"][0], -1), tf.count_tokens, 4, g.stop)
        table.setdefault("warm_up_s", {})[name] = round(time.perf_counter() - t0, 2)
        for pname, (sample, others) in prompts.items():
            rows = [time_stream(gen, cold(sample, i), tf.count_tokens, g.max_new_tokens, g.stop) for i in range(runs)]
            table[f"{name} | {pname} | cold"] = summarise(rows, prompt_tokens[pname])
            if "llama_server" in name:
                time_stream(gen, others[-1], tf.count_tokens, 4, g.stop)  # the shared prefix is now in the cache
                rows = [
                    time_stream(gen, m, tf.count_tokens, g.max_new_tokens, g.stop)
                    for m in [sample, *others][: max(runs, 2)]
                ]
                table[f"{name} | {pname} | warm prefix"] = summarise(rows, prompt_tokens[pname])
            print(f"  {name} | {pname}: {table[f'{name} | {pname} | cold']}", file=sys.stderr)
    return table


def cited_answers(rag: RAG, cfg: Config, gens: dict) -> dict:
    out = {}
    for name, gen in gens.items():
        answer = RAG(cfg, embedder=rag.embedder, generator=gen).ask(QUESTION, temperature=0.0)
        out[name] = {
            "text": answer.text,
            "sources": [c.source for c in answer.citations],
            "extractive": answer.extractive,
        }
    return out


def gguf_table(
    types: list[str],
    prompt,
    tf,
    cfg: Config,
    threads: int,
    runs: int,
    prompt_tokens: int,
    rag: RAG,
    reference: dict | None,
) -> dict:
    g = cfg.generation
    table = {}
    for gguf_type in (t.strip() for t in types if t.strip()):
        print(f"GGUF {gguf_type} ...", file=sys.stderr)
        gen = LlamaCppGenerator("smollm2", context_window=g.context_window, n_threads=threads, gguf_type=gguf_type)
        gen.warm_up()
        time_stream(gen, cold(prompt[0], -1), tf.count_tokens, 4, g.stop)
        row = summarise(
            [time_stream(gen, cold(prompt[0], i), tf.count_tokens, g.max_new_tokens, g.stop) for i in range(runs)],
            prompt_tokens,
        )
        answer = cited_answers(rag, cfg, {gguf_type: gen})[gguf_type]
        row["answer"] = answer["text"]
        if reference is not None:
            row["same_cited_answer_as_transformers"] = claim(answer["text"], answer["sources"]) == claim(
                reference["text"], reference["sources"]
            )
        table[gguf_type] = row
        del gen
    return table


def print_tables(r: dict) -> None:
    print(
        f"\nSample question: {r['question']!r}; greedy; median of {r['runs']} runs; {r['threads']} threads; prompt tokens: {r['prompt_tokens']}"
    )
    print(
        f"default backend here: {r['default_backend']}; OMP_WAIT_POLICY={r['omp_wait_policy']}; load average at start {r['load_average']}"
    )
    print(f"\n{'backend | prompt | prefix':<66}{'TTFT (s)':>9}{'prompt tok/s':>13}{'tok/s':>8}{'tokens':>7}")
    for name, row in r["side_by_side"].items():
        if name != "warm_up_s":
            print(
                f"{name:<66}{row['ttft_s']:>9.2f}{row['prompt_tokens_per_s']:>13.1f}{row['tokens_per_s']:>8.1f}{row['tokens']:>7}"
            )
    print(
        "warm-up (start/load + first 4 tokens), s: "
        + ", ".join(f"{k} {v}" for k, v in r["side_by_side"]["warm_up_s"].items())
    )
    rows = r["side_by_side"]
    d = next((v for k, v in rows.items() if k.startswith("default") and k.endswith("full | cold")), None)
    raw = next((v for k, v in rows.items() if k.startswith("raw") and k.endswith("full | cold")), None)
    if d and raw and raw["tokens_per_s"]:
        print(f"default path / raw llama.cpp, tokens/s: {d['tokens_per_s'] / raw['tokens_per_s']:.2f}")
    print("\ncited answers:")
    for name, a in r["answers"].items():
        print(f"  {name}: {a['text']!r} {a['sources']}{' (extractive)' if a['extractive'] else ''}")
    print(
        f"\n{'GGUF type (in process, full prompt, cold)':<44}{'prompt tok/s':>13}{'TTFT (s)':>9}{'decode tok/s':>13}  same cited answer as transformers"
    )
    for name, row in r["gguf_types"].items():
        same = {True: "yes", False: "no"}.get(row.get("same_cited_answer_as_transformers"), "-")
        print(
            f"{name:<44}{row['prompt_tokens_per_s']:>13.1f}{row['ttft_s']:>9.2f}{row['tokens_per_s']:>13.1f}  {same}: {row['answer'][:60]!r}"
        )


if __name__ == "__main__":
    sys.exit(main())
