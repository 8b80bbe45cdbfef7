"""Int8 quantisation recipes for the ONNX MiniLM: vector drift against torch and encode speed, side by side.

Usage:
    python -m benchmarks.int8_variants [--variants a,b] [--chunks N] [--rounds R] [--sensitivity] [--json FILE]

Each recipe is a set of ``onnxruntime.quantization.quantize_dynamic`` arguments applied to the
cached float32 export (``OnnxEmbedder(variant="onnx").onnx_path()``); the quantised files are
kept under ``/tmp/rag-int8-variants``. For each recipe it reports the cosine of its vectors to
torch's (min and mean) on N squad chunks (encoded in batches, as a build does) and on the
rgb-en-fact questions (encoded one at a time, as ``rag ask`` does), and its encode rate on
those chunks against torch's, interleaved round by round so a busy machine slows all alike.

The ``nb*`` (MatMulNBits) recipes need the ``onnx_ir`` package, which onnxruntime's
quantiser imports for them (``pip install onnx_ir``). Figures: benchmarks/README.md, "Int8
recipes against issue 17's bar".

``--sensitivity`` instead quantises one weight MatMul at a time (everything else float32) and
prints each node's chunk-cosine loss, worst first: which nodes to keep in float32.

Retrieval quality per recipe: ``eval/studies/int8_eval.py`` (registers each recipe as a backend and
runs ``eval/run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from rag import RAG, Config, load_documents
from rag.embedding import OnnxEmbedder, SentenceTransformerEmbedder

OUT = Path("/tmp/rag-int8-variants")
SHARED = ROOT.parent / "shared"  # --shared overrides


def weight_matmuls(fp32: Path) -> list[str]:
    """Names of the MatMul nodes whose second input is a weight (the ones dynamic quantisation touches)."""
    import onnx

    model = onnx.load(str(fp32), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def fused_fp32() -> Path:
    """MiniLM exported with eager attention, then fused by onnxruntime's BERT optimizer
    (Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu); kept in OUT."""
    out = OUT / "eager-fused.onnx"
    if out.is_file():
        return out
    import warnings

    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    from rag.embedding.base import resolve_embedder_path
    from rag.embedding.onnx import pooled_encoder

    encoder = AutoModel.from_pretrained(resolve_embedder_path("all-MiniLM-L6-v2"), attn_implementation="eager").eval()

    OUT.mkdir(parents=True, exist_ok=True)
    eager = OUT / "eager.onnx"
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {k: {0: "batch", 1: "sequence"} for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pooled_encoder(encoder),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(eager),
            input_names=list(axes),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    optimize_model(str(eager), model_type="bert", num_heads=12, hidden_size=384, opt_level=0).save_model_to_file(
        str(out)
    )
    return out


def _layer(name: str) -> int:
    return int(name.split("layer.")[1].split("/")[0])


def recipes(fp32: Path) -> dict[str, dict[str, Any]]:
    """Recipe name -> quantize_dynamic keyword arguments (``nodes_to_exclude`` etc.)."""
    mm = weight_matmuls(fp32)
    ffn_out = [n for n in mm if "/output/dense/" in n and "attention" not in n]
    ffn_in = [n for n in mm if "/intermediate/dense/" in n]
    attn = [n for n in mm if "/attention/" in n]
    fused = str(fused_fp32())
    fused_ffn1 = ffn_in  # the fused graph keeps the FFN MatMuls' names
    base: dict[str, Any] = {"per_channel": True}
    fused_q = {
        **base,
        "source": fused,
        "extra_options": {"DefaultTensorType": 1},
    }  # 1: FLOAT, for the fused ops' outputs
    only_mm = {**base, "op_types_to_quantize": ["MatMul"]}
    return {
        "pc": base,  # today's onnx-int8
        "mm": only_mm,  # embeddings (Gather) stay float32
        "mm-rr": {**only_mm, "reduce_range": True},
        "mm-noffn2": {**only_mm, "nodes_to_exclude": ffn_out},
        "mm-ffn-only": {**only_mm, "nodes_to_exclude": attn},
        "mm-ffn1-only": {**only_mm, "nodes_to_exclude": attn + ffn_out},
        "mm-attn-only": {**only_mm, "nodes_to_exclude": ffn_in + ffn_out},
        "mm-no-l0": {**only_mm, "nodes_to_exclude": [n for n in mm if _layer(n) == 0]},
        "mm-no-l5": {**only_mm, "nodes_to_exclude": [n for n in mm if _layer(n) == 5]},
        "mm-no-l0l5": {**only_mm, "nodes_to_exclude": [n for n in mm if _layer(n) in (0, 5)]},
        "nb8": {"nbits": 8, "block": 32, "accuracy_level": 4},
        "nb8-b128": {"nbits": 8, "block": 128, "accuracy_level": 4},
        "nb4": {"nbits": 4, "block": 32, "accuracy_level": 4},
        "fused": {"file": fused},
        "fused-pc": {**fused_q},
        "fused-pc-mm": {**fused_q, "op_types_to_quantize": ["MatMul"]},
        "fused-pc-qkv": {**fused_q, "nodes_to_quantize": [f"Attention_{i}" for i in range(6)]},
        "fused-pc-ffn1": {**fused_q, "nodes_to_quantize": fused_ffn1},
        "fused-pc-noffn2": {**fused_q, "nodes_to_exclude": ffn_out},
        "fused-pc-qkv-ffn1": {**fused_q, "nodes_to_quantize": [f"Attention_{i}" for i in range(6)] + fused_ffn1},
        "fused-nb8": {"nbits": 8, "block": 32, "accuracy_level": 4, "source": fused},
    }


def quantize(fp32: Path, name: str, kwargs: dict[str, Any]) -> Path:
    """The recipe's file: ``kwargs`` for quantize_dynamic, or ``{"nbits": B, "block": N, "accuracy_level": L}``
    for weight-only MatMulNBits, or ``{"file": path}`` for a file made elsewhere; ``"source"`` replaces ``fp32``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kwargs = dict(kwargs)
    if "file" in kwargs:
        return Path(kwargs["file"])
    src = Path(kwargs.pop("source", fp32))
    out = OUT / f"{name}.onnx"
    if out.is_file():
        return out
    OUT.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        if "nbits" in kwargs:
            import onnx
            from onnxruntime.quantization.matmul_nbits_quantizer import (
                MatMulNBitsQuantizer,
            )

            q = MatMulNBitsQuantizer(
                onnx.load(str(src)),
                bits=kwargs["nbits"],
                block_size=kwargs.get("block", 32),
                is_symmetric=True,
                accuracy_level=kwargs.get("accuracy_level", 4),
            )
            q.process()
            q.model.save_model_to_file(str(out), False)
        else:
            quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, **kwargs)
    finally:
        root.setLevel(level)
    return out


def embedder_for(path: Path) -> OnnxEmbedder:
    """An OnnxEmbedder that runs ``path`` (the recipe's file) instead of its cached export."""
    e = OnnxEmbedder(variant="onnx-int8")
    e.onnx_path = lambda: path  # type: ignore[method-assign]
    e.warm_up()
    return e


def texts(n_chunks: int, shared: Path = SHARED) -> tuple[list[str], list[str]]:
    """N chunk texts spread over the squad articles, and the rgb-en-fact questions."""
    chunker = RAG(Config.load(None, {"index.path": str(OUT / "unused-index")})).chunker
    docs = load_documents(shared / "corpora" / "squad-articles").documents
    chunks = [c.text for c in chunker.split_all(docs)]
    step = max(1, len(chunks) // n_chunks)
    chunks = chunks[::step][:n_chunks]
    questions = []
    qa = shared / "eval" / "rgb-en-fact"
    for f in sorted(qa.glob("qa.jsonl")):
        questions += [json.loads(line)["question"] for line in f.read_text().splitlines() if line.strip()]
    return chunks, questions[:100]


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1)
    return round(float(c.min()), 4), round(float(c.mean()), 5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="", help="comma-separated recipe names (default: all)")
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sensitivity", action="store_true")
    ap.add_argument("--no-fp32", action="store_true", help="leave the float32 onnx out of the speed rounds")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--shared", type=Path, default=SHARED, help=f"the shared data folder (default: {SHARED})")
    args = ap.parse_args()

    fp32 = OnnxEmbedder(variant="onnx").onnx_path()
    chunks, questions = texts(args.chunks, args.shared)
    torch_e = SentenceTransformerEmbedder()
    ref_c = torch_e.encode(chunks)
    ref_q = np.vstack([torch_e.encode([q]) for q in questions]) if questions else None
    print(f"{len(chunks)} chunks, {len(questions)} questions", file=sys.stderr)

    if args.sensitivity:
        rows = []
        for node in weight_matmuls(fp32):
            path = quantize(
                fp32,
                "one-" + node.strip("/").replace("/", "_"),
                {"per_channel": True, "op_types_to_quantize": ["MatMul"], "nodes_to_quantize": [node]},
            )
            e = embedder_for(path)
            lo, mean = cosines(e.encode(chunks), ref_c)
            rows.append({"node": node, "chunk_cos_min": lo, "chunk_loss_mean": round(1 - mean, 6)})
            print(json.dumps(rows[-1]), file=sys.stderr)
        rows.sort(key=lambda r: -r["chunk_loss_mean"])
        for r in rows:
            print(f"{r['chunk_loss_mean']:.6f}  {r['chunk_cos_min']:.4f}  {r['node']}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return 0

    table = recipes(fp32)
    names = [v for v in args.variants.split(",") if v] or list(table)
    embedders: dict[str, Any] = {"torch": torch_e}
    if not args.no_fp32:
        embedders["onnx"] = embedder_for(fp32)
    for name in names:
        extra = json.loads(name[5:]) if name.startswith("json:") else None
        embedders[name] = embedder_for(quantize(fp32, name, extra or table[name]))
    result: dict[str, dict[str, Any]] = {}
    for name, e in embedders.items():
        if name == "torch":
            continue
        c_lo, c_mean = cosines(e.encode(chunks), ref_c)
        q_lo, q_mean = cosines(np.vstack([e.encode([q]) for q in questions]), ref_q) if questions else (None, None)
        result[name] = {
            "chunk_cos_min": c_lo,
            "chunk_cos_mean": c_mean,
            "question_cos_min": q_lo,
            "question_cos_mean": q_mean,
        }
    seconds: dict[str, list[float]] = {n: [] for n in embedders}
    for _ in range(args.rounds):
        for name, e in embedders.items():
            t0 = time.perf_counter()
            e.encode(chunks)
            seconds[name].append(time.perf_counter() - t0)
    base = min(seconds["torch"])
    for name in embedders:
        result.setdefault(name, {})
        result[name]["best_s"] = round(min(seconds[name]), 2)
        result[name]["speedup_best"] = round(base / min(seconds[name]), 2)
        # per-round ratio against that round's torch: less sensitive to one lucky round
        result[name]["speedup_median"] = round(
            float(np.median([t / s for t, s in zip(seconds["torch"], seconds[name])])), 2
        )
    print(f"{'variant':14} {'speed best':>10} {'median':>7} {'chunk cos min/mean':>20} {'question cos min/mean':>22}")
    for name, r in result.items():
        cos_c = f"{r.get('chunk_cos_min', 1.0)} / {r.get('chunk_cos_mean', 1.0)}"
        cos_q = f"{r.get('question_cos_min', 1.0)} / {r.get('question_cos_mean', 1.0)}"
        print(f"{name:14} {r['speedup_best']:>9}x {r['speedup_median']:>6}x {cos_c:>20} {cos_q:>22}")
    if args.json:
        args.json.write_text(
            json.dumps({"chunks": len(chunks), "rounds": args.rounds, "seconds": seconds, "result": result}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
