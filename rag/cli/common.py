"""What every ``rag`` command shares: the config file, ``--config``/``--index``, ``--abstention``,
and the table of commands served by the ``ui`` package.

The library never imports ``ui``: the commands that start its servers name their function
by a dotted string in :data:`UI_COMMANDS`, imported when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "configs/default.yaml"

#: command -> ``"module:function"`` in the ``ui`` package that serves it (imported on use).
UI_COMMANDS: dict[str, str] = {
    "serve": "ui.server:serve",
    "api": "ui.api_server:serve_api",
    "mcp": "ui.mcp_server:serve_mcp",
}


def config_path(arg: str | None) -> str | None:
    """The config to use: --config, else configs/default.yaml when present, else built-in defaults."""
    if arg:
        return arg
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def add_common(p: argparse.ArgumentParser) -> None:
    """--config and --index."""
    p.add_argument(
        "--config", metavar="FILE", help=f"YAML config (default: {DEFAULT_CONFIG} when present, else built-in defaults)"
    )
    p.add_argument(
        "--index",
        metavar="DIR",
        help="index folder (default: index.path from the config, index/default; with index.backend: milvus "
        "only the build lock lives there)",
    )


def add_abstention_option(p: argparse.ArgumentParser) -> None:
    """--abstention, its choices read from the config model (never a second list here)."""
    from typing import get_args

    from ..config import EvidenceConfig

    p.add_argument(
        "--abstention",
        choices=get_args(EvidenceConfig.model_fields["abstention"].annotation),
        help="how readily to decline: balanced declines at most 5%% of answerable questions on the development sets; "
        "cautious declines several times as many unanswerable questions, and more answerable ones (README 'Quality') "
        "(default: evidence.abstention, balanced)",
    )


def ui_command(name: str) -> Callable[..., Any]:
    """The function of :data:`UI_COMMANDS` ``name``, imported now.

    Raises:
        ImportError: the ``ui`` package (or a module it needs) is not installed.
    """
    module, _, function = UI_COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)
