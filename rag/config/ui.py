"""The web UI's section."""

from __future__ import annotations

import ipaddress
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from .base import _Section, registered


class UIConfig(_Section):
    """The web UI (``rag serve``)."""

    section: ClassVar[str] = "ui"
    allowed_roots: tuple[str, ...] = Field(
        (), description="Folders the UI may rebuild the index from (empty: the folder rag serve started in)."
    )
    max_question_chars: int = Field(2000, ge=1, description="Longer questions are refused with a message.")
    rewrite: Annotated[str, registered("conversation", "REWRITE_MODES")] = Field(
        "auto", description="Follow-up rewriting: auto (rules, then the model, checked), heuristic (rules only) or off."
    )
    max_top_k: int = Field(20, ge=1, description="Upper limit of the top-k slider.")
    max_new_tokens_limit: int = Field(1024, ge=16, description="Upper limit of the max-new-tokens slider.")
    warm_up: bool = Field(True, description="Load the models in the background right after the server starts.")
    # The local generators generate one answer at a time anyway.
    generation_concurrency: int = Field(
        1,
        ge=1,
        description="Answers computed at once (raise only for an openai server that serves requests in parallel).",
    )
    max_queue: int = Field(
        32,
        ge=0,
        description="Questions that may wait; past this, new ones get a 'busy' message at once (0: refuse all waiting).",
    )
    examples: tuple[str, ...] = Field(
        (
            "How much market value did Nvidia lose on 27 January 2025?",
            "What did the DeepSeek-V3 technical report say the final training run cost?",
            "When did DeepSeek release R1, and under which licence?",
        ),
        description="Example questions shown as buttons.",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names the server answers to besides 127.0.0.1, localhost, ::1 and --host (others get 403).",
    )
    upload: bool = Field(
        True, description="Let the page add articles (files or a .zip); never offered beyond loopback without a login."
    )
    upload_dir: str = Field(
        "",
        description="Folder uploads are saved in, inside an allowed root and inside the folder the index is built from "
        "(empty: 'uploads' inside that folder).",
    )
    upload_max_file_mb: float = Field(
        20.0, gt=0, description="Largest file accepted (a file in a .zip counts uncompressed)."
    )
    upload_max_total_mb: float = Field(
        50.0, gt=0, description="Largest upload: all files together, .zip contents uncompressed."
    )
    upload_max_files: int = Field(50, ge=1, description="Most files in one upload (files in a .zip count one by one).")
    upload_suffixes: tuple[str, ...] = Field(
        (),
        description="File types accepted, e.g. ['.pdf', '.md'] (empty: every type the loader reads); .zip is always accepted.",
    )
    upload_max_zip_ratio: float = Field(
        100.0,
        gt=1,
        description="A .zip entry whose uncompressed size is more than this times its compressed size is refused (zip bombs).",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto headers are believed "
        "(e.g. ['127.0.0.1']); empty: those headers are ignored and each connection is its own client.",
    )
    state_dir: str = Field(
        "",
        description="The server's own folder (private, 0700) for Gradio's received files "
        "(empty: $XDG_STATE_HOME/rag, else ~/.local/state/rag).",
    )
    temp_max_mb: float = Field(
        500.0,
        gt=0,
        description="Files received and not yet cleaned up, all together; past this Gradio's upload route answers 507.",
    )
    max_sessions: int = Field(
        200,
        ge=1,
        description="Browser tabs and API callers whose chat state the server keeps (the oldest is forgotten past this).",
    )
    feedback_path: str = Field(
        "feedback/feedback.jsonl",
        description="JSON lines file of answer ratings (relative paths: from the folder rag serve started in).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"ui.trusted_proxies: {item!r} is not an IP address or network; write e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
        return v
