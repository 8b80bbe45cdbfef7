"""The ``rag`` command line: build an index, ask questions, inspect the index, serve the UI."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .common import DEFAULT_CONFIG, add_abstention_option, add_common, config_path, ui_command

DESCRIPTION = """\
Local, grounded Q&A over a folder of articles. Everything runs offline on the CPU:
articles are chunked and embedded into a FAISS index (or Milvus, index.backend), and a small local model answers
questions only from the retrieved passages, citing them as [1], [2], ...

Typical use:
  rag build data/articles                 # index the sample articles into index/default
  rag ask "Who released DeepSeek-R1?"     # answer with numbered citations
  rag ask "..." --json                    # the same, as one JSON object
  rag build data/articles                 # again later: embeds only new and changed articles
  rag build data/articles --full          # re-embed everything
  rag index info                          # what the index holds, size on disk, the model in use
  rag model pull qwen2.5-1.5b             # a 1.5B model for generated answers (rag model list: the catalogue)
  rag index remove old/article.md         # drop one article from the index
  rag calibrate my-qa.jsonl               # this index's "not covered" threshold, from your own questions
  rag build data/articles --ray           # embed on a local Ray cluster (pip install '.[ray]')
  rag feedback export --out regress.jsonl # answers rated thumbs down in the UI, as a QA file
"""


def _make_rag(args: argparse.Namespace, **overrides):
    from rag import RAG

    dotted = {k: v for k, v in overrides.items() if v is not None}
    return RAG.from_config(config_path(args.config), index=args.index, overrides=dotted)


def cmd_build(args: argparse.Namespace) -> int:
    ray = {} if args.ray is None else {"embedding.engine": "ray", "embedding.ray_address": args.ray or None}
    rag = _make_rag(args, **ray)
    how = "from scratch" if args.full else "(only new and changed articles are embedded)"
    on = (
        f" on Ray ({rag.config.embedding.ray_address or 'a local cluster'})"
        if rag.config.embedding.engine == "ray"
        else ""
    )
    print(f"Building index {rag.store.label} from {args.articles_dir} {how}{on} ...", file=sys.stderr)
    summary = rag.build(
        args.articles_dir,
        show_progress=not args.quiet,
        full=args.full,
        on_message=lambda msg: print(msg, file=sys.stderr),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(summary.describe())
    return 0


def _filters(args: argparse.Namespace):
    from rag.retrieval import MetadataFilter

    flt = MetadataFilter(since=args.since, until=args.until, source=args.source)
    return flt if flt.active else None


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.records import pages_label

    rag = _make_rag(args, **{"retrieval.retriever": args.retriever, "evidence.abstention": args.abstention})
    options = dict(
        top_k=args.top_k, temperature=args.temperature, max_new_tokens=args.max_new_tokens, filters=_filters(args)
    )
    if args.json:
        answer = rag.ask(args.question, **options)
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    answer = None
    in_reasoning = False
    # Only the checked answer is printed (lead, then the articles' quotes), once: nothing is taken back.
    for event in rag.stream_events(args.question, **options):
        if event.kind == "reasoning" and args.show_reasoning:
            if not in_reasoning:
                print("[reasoning] ", end="", file=sys.stderr)
                in_reasoning = True
            print(event.text, end="", file=sys.stderr, flush=True)
        elif event.kind == "done":
            answer = event.answer
    if in_reasoning:
        print("\n", file=sys.stderr)
    if answer is not None:
        print(answer.text)
        how = [
            f"mode: {answer.mode}"
            + (f" (answerability {answer.answerability:.2f})" if answer.answerability is not None else ""),
            *answer.notes,
        ]
        print("\nHow it was made: " + "; ".join(how), file=sys.stderr)
    flagged = [
        s for s in (answer.checks if answer is not None else []) if s.status in ("weak", "unsupported", "uncited")
    ]
    if flagged:
        print("\nCitation check (sentences their passages support weakly or not at all):", file=sys.stderr)
        for s in flagged:
            print(f"  {s.status} (support {s.support:.2f}): {s.text}", file=sys.stderr)
    if answer is not None:
        print("\nSources:")
        cited = {c.n for c in answer.citations}
        for p in answer.passages:
            mark = "*" if p.n in cited else " "
            date = f", {p.chunk.date}" if p.chunk.date else ""
            date += f", {pages_label(p.chunk.pages)}" if p.chunk.pages else ""
            # relevance (cosine to the question for dense and hybrid), not the fused ranking score
            print(f" {mark}[{p.n}] {p.chunk.title} ({p.chunk.source}{date}) relevance={p.relevance_or_score:.2f}")
        if not cited:
            print("  (the answer cites no passage)")
    return 0


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_index_info(args: argparse.Namespace) -> int:
    rag = _make_rag(args)
    info = rag.info()
    manifest = rag.store.read_manifest()
    sizes = rag.store.size_on_disk()
    info["size_bytes"] = sizes["current_bytes"]
    info["size_on_disk_bytes"] = sizes["total_bytes"]  # with the previous generation kept for readers
    info["duplicates"] = len(manifest.get("duplicates", []))
    info["near_duplicates"] = len(manifest.get("near_duplicates", []))
    info["skipped"] = len(manifest.get("skipped", []))
    info["articles_dir"] = manifest.get("articles_dir")
    info["generation"] = manifest.get("generation")
    info["last_build"] = (manifest.get("build") or {}).get("mode")
    from ..models import model_in_use

    model = model_in_use(rag.config.generation)
    info.update(model=model.label, model_profile=model.profile, model_warning=model.warning)
    if args.json:
        if args.sources:
            info["sources"] = [d["source"] for d in manifest.get("documents", [])] + [
                d["source"] for d in manifest.get("duplicates", [])
            ]
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    shown = {
        **info,
        "size_bytes": f"{_human_bytes(sizes['current_bytes'])} ({_human_bytes(sizes['total_bytes'])} with the previous generation)",
    }
    shown.pop("size_on_disk_bytes")
    shown.pop("model_warning")
    shown["size"] = shown.pop("size_bytes")
    if isinstance(shown.get("chunker"), dict):
        shown["chunker"] = ", ".join(f"{k}={v}" for k, v in shown["chunker"].items())
    for key, value in shown.items():
        print(f"{key:16} {value}")
    if model.warning:
        print(f"note: {model.warning}")
    if info["min_relevance_source"] == "uncalibrated":
        print(
            f"note: \"not covered\" declines are off: no relevance threshold is calibrated for embedder {rag.embedder.name!r}; "
            f"set retrieval.min_relevance_{rag.config.retrieval.retriever} or calibrate one with "
            f"'rag calibrate QA.jsonl --index {rag.store.root}'"
        )
    if args.sources:
        print("sources:")
        for d in manifest.get("documents", []):
            print(f"  {d['source']}")
        for d in manifest.get("duplicates", []):
            print(f"  {d['source']} (duplicate of {d['duplicate_of']})")
    return 0


def cmd_index_remove(args: argparse.Namespace) -> int:
    from rag.config import Config
    from rag.indexing import remove_article
    from rag.store import make_store

    cfg = Config.load(config_path(args.config), {"index.path": args.index} if args.index else None)
    try:
        result = remove_article(
            cfg.index.path, args.path, lock_timeout=cfg.indexing.lock_timeout, store=make_store(cfg.index)
        )
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(
        f"Removed {', '.join(result.removed)} from {result.index_path} ({result.chunks_removed} chunks); "
        f"it now holds {result.articles} articles as {result.chunks} chunks."
    )
    for old, new in result.promoted:
        print(f"  {new} (an exact copy of {old}) is indexed in its place.")
    print("The file itself was not touched; the next 'rag build' adds it back if it is still in the folder.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        serve = ui_command("serve")
    except ImportError as exc:
        print(
            f"error: the web UI is not available ({exc}); install the project with: pip install -e .", file=sys.stderr
        )
        return 2
    return serve(
        config=config_path(args.config),
        index=args.index,
        host=args.host,
        port=args.port,
        auth=args.auth,
        auth_file=args.auth_file,
        articles=args.articles,
        allowed_roots=args.allowed_root,
    )


def _add_build(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build or rebuild the index from a folder of articles",
        description="Load every .txt, .md, .html, .json, .jsonl and .pdf file under ARTICLES_DIR, chunk and embed it, "
        "and write the index (a FAISS folder, or Milvus with index.backend: milvus). Against an existing index only new and changed articles are embedded "
        "(a renamed file costs nothing), chunks of changed and deleted ones are dropped, and the summary "
        "lists added, updated, removed, renamed, unchanged and skipped articles. Exact duplicates are "
        "indexed once; near-duplicates are reported (indexing.near_duplicates: keep|drop). Unreadable "
        "files are skipped and listed with the reason; articles are never modified. The previous index "
        "stays usable until the new one is complete; a killed build or a full disk leaves it intact. One build runs "
        "per index at a time. If the embedder or chunker settings changed, everything is rebuilt "
        "(or, with indexing.on_settings_change: refuse, the build stops and asks for --full).",
    )
    p.add_argument("articles_dir", metavar="ARTICLES_DIR", help="folder of articles (searched recursively)")
    add_common(p)
    p.add_argument("--full", action="store_true", help="rebuild from scratch, re-embedding every article")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="embed the chunks on Ray Data actors (embedding.engine: ray; pip install '.[ray]'): join the cluster at ADDRESS "
        "(e.g. ray://head:10001 or auto), or without ADDRESS start a local Ray cluster of embedding.ray_num_cpus CPUs "
        "for the build and stop it after. The vectors equal a local build's; the index goes to index.backend as usual",
    )
    p.add_argument("--json", action="store_true", help="print the build summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)


def _add_ask(sub) -> None:
    from rag.retrieval import RETRIEVERS  # allowed names come from the registry, never a second list here

    p = sub.add_parser(
        "ask",
        help="answer a question from the indexed articles, with citations",
        description="Retrieve the passages most similar to QUESTION and have the local model answer from them, "
        "citing passages as [n]. When the passages do not hold the answer it says so.",
    )
    p.add_argument("question", metavar="QUESTION")
    add_common(p)
    p.add_argument("--top-k", type=int, metavar="N", help="passages to retrieve (default: retrieval.top_k, 4)")
    p.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="sampling temperature, 0 = greedy (default: generation.temperature)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="answer length limit in tokens (default: generation.max_new_tokens)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object: {"question", "answer", "reasoning", "citations", "passages"}',
    )
    p.add_argument("--show-reasoning", action="store_true", help="print a reasoning model's <think> part to stderr")
    p.add_argument("--retriever", choices=list(RETRIEVERS), help="retrieval method (default: retrieval.retriever)")
    add_abstention_option(p)
    p.add_argument(
        "--since", metavar="YYYY-MM-DD", help="only articles dated on or after this day (undated articles are left out)"
    )
    p.add_argument(
        "--until",
        metavar="YYYY-MM-DD",
        help="only articles dated on or before this day (undated articles are left out)",
    )
    p.add_argument(
        "--source",
        metavar="GLOB",
        help="only articles whose path under the articles folder matches, e.g. 'news/*.md' (comma-separate several)",
    )
    p.set_defaults(func=cmd_ask)


def _add_index(sub) -> None:
    p = sub.add_parser(
        "index",
        help="inspect an index or remove an article from it",
        description="Inspect the index, or remove one article from it.",
    )
    isub = p.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    pi = isub.add_parser("info", help="articles, chunks, embedder, chunker, build time, size on disk")
    add_common(pi)
    pi.add_argument("--json", action="store_true", help="print as JSON")
    pi.add_argument("--sources", action="store_true", help="also list every indexed article")
    pi.set_defaults(func=cmd_index_info)
    pr = isub.add_parser(
        "remove",
        help="drop one article from the index (its file is not touched)",
        description="Drop the article PATH from the index: as listed by 'rag index info --sources' (relative to the "
        "articles folder), or a path to the file. A JSONL file drops all its records. The file is never "
        "modified or deleted, so the next 'rag build' adds it back if it is still in the folder. An exact "
        "duplicate of the article takes its place without re-embedding.",
    )
    pr.add_argument("path", metavar="PATH")
    add_common(pr)
    pr.add_argument("--json", action="store_true", help="print the result as JSON")
    pr.set_defaults(func=cmd_index_remove)


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="start the local web UI (Gradio)",
        description="Start the chat UI on http://HOST:PORT: checked answers (a direct first sentence, the articles' quotes "
        "under it) with [n] markers linking to their "
        "sources, a source viewer, follow-up questions, settings, index status, a rebuild control, "
        "article upload (on loopback, or with a login), past chats kept in the browser and answer "
        "ratings (ui.feedback_path; export them with 'rag feedback export'). It binds to "
        "127.0.0.1 by default, never creates a public share link, and Gradio analytics are off. "
        "Binding to any other address (e.g. --host 0.0.0.0) requires authentication: set "
        "RAG_UI_AUTH=user:password or pass --auth-file FILE; without it the server refuses to start. "
        "Only requests for loopback names, --host and ui.allowed_hosts are answered; X-Forwarded-For is "
        "believed only from ui.trusted_proxies. Received files wait in a private folder under "
        "ui.state_dir (default ~/.local/state/rag). "
        "Programs can call the 'ask' API endpoint with gradio_client, and OpenAI-compatible clients "
        "POST /v1/chat/completions on the same port (see 'rag api --help'; beyond loopback it needs RAG_API_KEY).",
    )
    add_common(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; others need RAG_UI_AUTH or --auth-file)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="require this login. Not recommended: every local user can read it in the "
        "process list (ps); set RAG_UI_AUTH=user:password or use --auth-file instead",
    )
    p.add_argument(
        "--auth-file", metavar="FILE", help="require the logins in FILE, one USER:PASSWORD per line (chmod 600 it)"
    )
    p.add_argument("--articles", metavar="DIR", help="build the index from DIR first when none exists")
    p.add_argument(
        "--allowed-root",
        action="append",
        metavar="DIR",
        help="folder the UI may rebuild the index from (repeatable; default: ui.allowed_roots from the config, else the current folder)",
    )
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        _add_build,
        _add_ask,
        _add_chat,
        _add_eval,
        _add_calibrate,
        _add_index,
        _add_serve,
        _add_api,
        _add_feedback,
        _add_model,
    ):
        add(sub)
    return parser


def _add_api(sub) -> None:
    from .api import add_api_parsers  # rag api and rag mcp: the articles for other clients (rag/cli/api.py)

    add_api_parsers(sub, add_common, config_path)


def _add_feedback(sub) -> None:
    from ..feedback import add_feedback_parser  # rag feedback export (rag/feedback.py)

    add_feedback_parser(sub, config_path)


def _add_model(sub) -> None:
    from .model import add_model_parser  # rag model pull / list: the catalogue of small GGUF models (rag/cli/model.py)

    add_model_parser(sub)


def _add_chat(sub) -> None:
    from .chat import add_chat_parser  # rag chat: a Conversation on the command line (rag/cli/chat.py)

    add_chat_parser(sub, add_common, config_path)


def _add_eval(sub) -> None:
    from .evaluate import add_eval_parser  # rag eval (rag/cli/evaluate.py)

    add_eval_parser(sub, config_path, DEFAULT_CONFIG)


def _add_calibrate(sub) -> None:
    from .calibrate import (
        add_calibrate_parser,
    )  # rag calibrate: a per-index "not covered" threshold (rag/cli/calibrate.py)

    add_calibrate_parser(sub, add_common, config_path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rag`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "model":  # `rag model pull` is the one command that may reach the hub (HF_HUB_OFFLINE honoured)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not getattr(args, "func", None):
        if args.command in ("index", "feedback", "model"):
            parser.parse_args([args.command, "--help"])
        parser.print_help()
        return 2
    from rag import RagError

    try:
        return args.func(args)
    except (RagError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
