"""The "Add articles" panel: upload files or a .zip into the upload folder, rebuild; remove an upload.

An upload reuses the page's rebuild path (:meth:`ui.chat.ChatUI.building` and its build),
so it waits for no other build, refuses while one runs, and the chat keeps answering from
the current index until the new one is switched in. Uploads go into one folder inside the
folder the index is built from, so the incremental build adds them and keeps the rest.

Example:
    >>> panel = ArticlesPanel(ui)
    >>> message_html, status_html, uploads = panel.upload(["/tmp/gradio/x/notes.md"])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag import IndexCorruptError, IndexNotFoundError, InputError, RagError, remove_article

from . import render
from .chat import ChatUI
from .errors import EXPECTED
from .folders import resolve_rebuild_folder, shown
from .upload import UploadLimits, list_uploads, plan_upload, save_upload

log = logging.getLogger("rag.ui")


class ArticlesPanel:
    """Upload and removal of articles for ``ui`` (which holds the pipeline and the build slot)."""

    def __init__(self, ui: ChatUI) -> None:
        self.ui = ui
        self.limits = UploadLimits.from_config(ui.rag.config)

    def _inside_roots(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == r or real.is_relative_to(r) for r in self.ui.allowed_roots)

    def folders(self) -> tuple[Path, Path]:
        """``(upload folder, folder to build from)``, both inside the allowed roots.

        Raises:
            InputError: ``ui.upload_dir`` is outside the allowed roots, or outside the folder
                the index is built from (a build from elsewhere would drop its other articles).
        """
        ui = self.ui
        try:
            built_from = ui.rag.info().get("articles_dir")
        except (IndexNotFoundError, IndexCorruptError):
            built_from = None
        articles = Path(built_from) if built_from else ui.base / ui.default_folder
        configured = ui.cfg.upload_dir
        upload = Path(os.path.normpath(ui.base / configured)) if configured else articles / "uploads"
        if not self._inside_roots(upload):
            raise InputError(
                f"the upload folder {ui.display.show(upload)} (ui.upload_dir) is outside the allowed folders "
                f"({', '.join(ui.display.show(r) for r in ui.allowed_roots)}); set ui.upload_dir inside one of them"
            )
        if upload == articles or upload.is_relative_to(articles):
            return upload, articles
        if built_from:
            raise InputError(
                f"the upload folder {ui.display.show(upload)} (ui.upload_dir) is outside the folder the index is built from "
                f"({ui.display.show(articles)}), so building from it would drop the other articles; "
                "set ui.upload_dir inside that folder, or leave it empty"
            )
        return upload, upload

    def uploads(self) -> list[str]:
        """The files in the upload folder (for the remove list); none when it cannot be named."""
        try:
            return list_uploads(self.folders()[0])
        except RagError:
            return []

    def _refuse(self, message: str) -> tuple[str, str, Any]:
        return render.error_markdown(message), self.ui.status(), gr.update(choices=self.uploads())

    def upload(self, files: Sequence[Any] | None, progress: gr.Progress | None = None) -> tuple[str, str, Any]:
        """Check the upload, save it, and bring the index up to date.

        Returns:
            ``(message HTML, status HTML, update of the remove list)``.
        """
        ui = self.ui
        if not ui.upload_enabled:
            return self._refuse(
                "Uploading is off on this server (ui.upload, or it listens beyond this machine without a login)."
            )
        received = [(Path(str(getattr(f, "name", f))).name, Path(str(getattr(f, "name", f)))) for f in files or []]
        try:
            plan = plan_upload(received, self.limits)
            upload_dir, build_dir = self.folders()
            with ui.building():  # refuses before anything is written when a build runs
                written = save_upload(plan, upload_dir)
                log.info("upload: saved %d file(s) into %s", len(written), upload_dir)
                build_path = resolve_rebuild_folder(str(build_dir), ui.allowed_roots, ui.base, ui.display)
                summary = ui.build_folder(build_path, progress)
        except RagError as exc:
            return self._refuse(f"Upload refused: {ui.display.redact(str(exc))}")
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("upload failed")
            return self._refuse(
                f"The files were saved, but the rebuild failed; the previous index is still in use. {ui.explain(exc)}"
            )
        names = ", ".join(written[:10]) + (f" and {len(written) - 10} more" if len(written) > 10 else "")
        note = f'<div class="rag-ok">Added: {render.esc(names)}</div>'
        return note + ui.build_message(summary), ui.status(), gr.update(choices=self.uploads(), value=None)

    def remove(self, name: Any) -> tuple[str, str, Any]:
        """Remove uploaded file ``name`` from the index and the upload folder.

        Only a name the upload folder lists now is accepted, so no path sent by the page is
        ever opened.
        """
        ui = self.ui
        if not ui.upload_enabled:
            return self._refuse("Uploading is off on this server, and so is removing uploads.")
        try:
            upload_dir, build_dir = self.folders()
            if not isinstance(name, str) or name not in list_uploads(upload_dir):
                raise InputError(f"{shown(str(name), 100)} is not an uploaded article; choose one from the list")
            source = (upload_dir / name).relative_to(build_dir).as_posix()
            with ui.building():
                try:
                    remove_article(ui.rag.store.root, source)
                except KeyError:  # never indexed (skipped by the build): only the file goes
                    pass
                (upload_dir / name).unlink()
        except RagError as exc:
            return self._refuse(f"Not removed: {ui.display.redact(str(exc))}")
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("removing %s failed", name)
            return self._refuse(f"Not removed: {ui.explain(exc)}")
        return (
            f'<span class="rag-ok"><b>Removed:</b> {render.esc(name)}</span>',
            ui.status(),
            gr.update(choices=self.uploads(), value=None),
        )
