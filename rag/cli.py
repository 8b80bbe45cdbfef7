"""The ``rag`` command line: build an index, ask questions, inspect the index, serve the UI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "configs/default.yaml"

DESCRIPTION = """\
Local, grounded Q&A over a folder of articles. Everything runs offline on the CPU:
articles are chunked and embedded into a FAISS index, and a small local model answers
questions only from the retrieved passages, citing them as [1], [2], ...

Typical use:
  rag build data/articles                 # index the sample articles into index/default
  rag ask "Who released DeepSeek-R1?"     # answer with numbered citations
  rag ask "..." --json                    # the same, as one JSON object
  rag index info                          # what the index holds
"""


def _config_path(arg: str | None) -> str | None:
    """The config to use: --config, else configs/default.yaml when present, else built-in defaults."""
    if arg:
        return arg
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def _make_rag(args: argparse.Namespace, **overrides):
    from rag import RAG

    dotted = {k: v for k, v in overrides.items() if v is not None}
    return RAG.from_config(_config_path(args.config), index=args.index, overrides=dotted)


def cmd_build(args: argparse.Namespace) -> int:
    rag = _make_rag(args)
    print(f"Building index {rag.store.root} from {args.articles_dir} ...", file=sys.stderr)
    summary = rag.build(args.articles_dir, show_progress=not args.quiet)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"Indexed {summary.articles} articles as {summary.chunks} chunks into {summary.index_path} "
          f"in {summary.seconds:.1f} s ({summary.chunks_per_second:.1f} chunks/s; embedding {summary.embed_seconds:.1f} s).")
    if summary.skipped:
        print(f"Skipped {len(summary.skipped)} file(s):")
        for s in summary.skipped:
            print(f"  {s.source}: {s.reason}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    rag = _make_rag(args)
    options = dict(top_k=args.top_k, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    if args.json:
        answer = rag.ask(args.question, **options)
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    answer = None
    streamed: list[str] = []
    in_reasoning = False
    for event in rag.stream_events(args.question, **options):
        if event.kind == "reasoning" and args.show_reasoning:
            if not in_reasoning:
                print("[reasoning] ", end="", file=sys.stderr)
                in_reasoning = True
            print(event.text, end="", file=sys.stderr, flush=True)
        elif event.kind == "answer":
            if in_reasoning:
                print("\n", file=sys.stderr)
                in_reasoning = False
            print(event.text, end="", flush=True)
            streamed.append(event.text)
        elif event.kind == "done":
            answer = event.answer
    print()
    if answer is not None and answer.text != "".join(streamed).strip():
        # Citation checking placed markers or declined after the text was streamed.
        label = "Checked answer" if answer.citations else "No passage supports that; answer"
        print(f"\n{label}: {answer.text}")
    if answer is not None:
        print("\nSources:")
        cited = {c.n for c in answer.citations}
        for p in answer.passages:
            mark = "*" if p.n in cited else " "
            date = f", {p.chunk.date}" if p.chunk.date else ""
            print(f" {mark}[{p.n}] {p.chunk.title} ({p.chunk.source}{date}) score={p.score:.3f}")
        if not cited:
            print("  (the answer cites no passage)")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    rag = _make_rag(args)
    info = rag.info()
    info["size_bytes"] = sum(f.stat().st_size for f in Path(rag.store.root).rglob("*") if f.is_file())
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    for key, value in info.items():
        print(f"{key:12} {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ui.app import main as serve_main
    except ImportError as exc:
        print(f"error: the web UI is not available ({exc}); install the project with: pip install -e .", file=sys.stderr)
        return 2
    return serve_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help=f"YAML config (default: {DEFAULT_CONFIG} when present, else built-in defaults)")
        p.add_argument("--index", metavar="DIR", help="index folder (default: index.path from the config, index/default)")

    p = sub.add_parser("build", help="build or rebuild the index from a folder of articles",
                       description="Load every .txt, .md, .html, .json, .jsonl and .pdf file under ARTICLES_DIR, chunk and embed it, "
                                   "and write a FAISS index. Unreadable files are skipped and listed. The previous index stays "
                                   "usable until the new one is complete.")
    p.add_argument("articles_dir", metavar="ARTICLES_DIR", help="folder of articles (searched recursively)")
    common(p)
    p.add_argument("--json", action="store_true", help="print the build summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("ask", help="answer a question from the indexed articles, with citations",
                       description="Retrieve the passages most similar to QUESTION and have the local model answer from them, "
                                   "citing passages as [n]. When the passages do not hold the answer it says so.")
    p.add_argument("question", metavar="QUESTION")
    common(p)
    p.add_argument("--top-k", type=int, metavar="N", help="passages to retrieve (default: retrieval.top_k, 4)")
    p.add_argument("--temperature", type=float, metavar="T", help="sampling temperature, 0 = greedy (default: generation.temperature)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="answer length limit in tokens (default: generation.max_new_tokens)")
    p.add_argument("--json", action="store_true", help='print one JSON object: {"question", "answer", "reasoning", "citations", "passages"}')
    p.add_argument("--show-reasoning", action="store_true", help="print a reasoning model's <think> part to stderr")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("index", help="inspect an index", description="Inspect the index.")
    isub = p.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    pi = isub.add_parser("info", help="articles, chunks, embedder, chunker, build time, size on disk")
    common(pi)
    pi.add_argument("--json", action="store_true", help="print as JSON")
    pi.set_defaults(func=cmd_index_info)

    p = sub.add_parser("serve", help="start the local web UI (Gradio)",
                       description="Start the chat UI on http://HOST:PORT: streamed answers with [n] markers linking to their "
                                   "sources, follow-up questions, settings, index status and a rebuild control. It binds to "
                                   "127.0.0.1 by default, never creates a public share link, and Gradio analytics are off. "
                                   "Binding to any other address (e.g. --host 0.0.0.0) requires authentication: set "
                                   "RAG_UI_AUTH=user:password or pass --auth user:password; without it the server refuses to start. "
                                   "Programs can call the 'ask' API endpoint with gradio_client.")
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; others need --auth or RAG_UI_AUTH)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (default: RAG_UI_AUTH from the environment)")
    p.add_argument("--articles", metavar="DIR", help="build the index from DIR first when none exists")
    p.add_argument("--allowed-root", action="append", metavar="DIR",
                   help="folder the UI may rebuild the index from (repeatable; default: ui.allowed_roots from the config, else the current folder)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rag`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if args.command == "index":
            parser.parse_args(["index", "--help"])
        parser.print_help()
        return 2
    from rag import BuildError, ConfigError, GeneratorError, IndexCorruptError, IndexMismatchError, IndexNotFoundError

    try:
        return args.func(args)
    except (BuildError, ConfigError, GeneratorError, IndexCorruptError, IndexMismatchError, IndexNotFoundError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
