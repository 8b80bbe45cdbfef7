"""What the chat page does, apart from its layout: answering, the API, index status and rebuild.

:class:`ChatUI` is a thin client of :class:`rag.Conversation` (rewrite, then answer) and can
be driven without a browser; :mod:`ui.app` lays it out with Gradio. Every message it sends
to the page is written for the user, shows no absolute path and no traceback.

Example:
    >>> ui = ChatUI(RAG.from_config("configs/default.yaml"))
    >>> steps = list(ui.respond("Who released DeepSeek-R1?", [], None, 4, 0.0, 256))
    >>> steps[-1][0][-1]["content"]
    'DeepSeek released R1 on 20 January 2025 [\\\\[1\\\\]](#src-1-1).'
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag import (
    NOT_FOUND,
    RAG,
    Conversation,
    IndexCorruptError,
    IndexNotFoundError,
    InputError,
    ModelInUse,
    RagError,
    Turn,
    model_in_use,
)
from rag.conversation import MAX_TURNS, check_question, turns_from_history

from . import render, viewer
from .errors import EXPECTED, friendly_error
from .folders import ECHO_CHARS, PathDisplay, resolve_rebuild_folder, shown
from .queue import AnswerQueue

log = logging.getLogger("rag.ui")

TEMPERATURE_MAX = 2.0
# Seconds between updates of a waiting question's place in line (also lets Gradio cancel it).
QUEUE_POLL_S = 1.0
# Messages of the page's chat kept when it is sent back (the API can send any list).
MAX_CHAT_MESSAGES = 200


def check_settings(
    top_k: Any, temperature: Any, max_new_tokens: Any, *, max_top_k: int, max_tokens: int
) -> tuple[int, float, int]:
    """The side-panel settings as numbers within the UI's limits (sliders send floats, the API anything).

    Raises:
        InputError: naming the setting, the value and the allowed range.
    """

    def as_int(name: str, value: Any, lo: int, hi: int) -> int:
        try:
            if isinstance(value, bool):  # float(True) is 1.0: a JSON true is not a number
                raise TypeError
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{name} must be a whole number from {lo} to {hi}, got {shown(str(value), 50)}") from None
        if not f.is_integer() or not lo <= f <= hi:
            raise InputError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
        return int(f)

    k = as_int("top-k", top_k, 1, max_top_k)
    n = as_int("max new tokens", max_new_tokens, 1, max_tokens)
    try:
        if isinstance(temperature, bool):
            raise TypeError
        t = float(temperature)
    except (TypeError, ValueError, OverflowError):
        raise InputError(
            f"temperature must be a number from 0 to {TEMPERATURE_MAX}, got {shown(str(temperature), 50)}"
        ) from None
    if not 0.0 <= t <= TEMPERATURE_MAX:
        raise InputError(f"temperature must be a number from 0 to {TEMPERATURE_MAX}, got {temperature!r}")
    return k, t, n


def check_cautious(cautious: Any) -> str | None:
    """The side panel's "Cautious" box as an ``abstention`` for the pipeline (None: the config's).

    Raises:
        InputError: not true, false or absent.
    """
    if cautious is None:
        return None
    if not isinstance(cautious, bool):
        raise InputError(f"cautious must be true or false, got {shown(str(cautious), 50)}")
    return "cautious" if cautious else "balanced"


def waiting_message(ahead: int) -> dict[str, str]:
    """The chat line shown while a question waits in line."""
    note = (
        f"Waiting for the model: {ahead} question{'s' * (ahead != 1)} ahead of yours…"
        if ahead
        else "Waiting for the model: yours is next…"
    )
    return {"role": "assistant", "content": "*" + render.md_text(note) + "*"}


def new_session() -> dict[str, Any]:
    """Per-browser-tab conversation state."""
    return {"turns": [], "sections": [], "count": 0, "answers": {}}


def forget_messages(session: dict[str, Any], drop: int) -> None:
    """The chat lost its ``drop`` oldest messages: re-key what ratings read (answers by message
    position, the latest rating) so a rating still records the answer it was given on."""
    answers: dict[str, Any] = {}
    kept = session.get("answers")
    for key, info in kept.items() if isinstance(kept, dict) else ():
        if isinstance(key, str) and key.isdigit() and int(key) >= drop:
            answers[str(int(key) - drop)] = info
    session["answers"] = answers
    rated = session.get("rated")
    if isinstance(rated, dict):
        key = str(rated.get("index", ""))
        if key.isdigit() and int(key) >= drop:
            session["rated"] = {**rated, "index": str(int(key) - drop)}
        else:
            session.pop("rated", None)


class ChatUI:
    """What the page does, independent of Gradio's layout (so tests can call it directly).

    Args:
        rag: the pipeline to answer with.
        allowed_roots: folders the index may be rebuilt from (default: ``ui.allowed_roots``
            from the config, else the current folder).
        default_folder: prefilled in the rebuild box.
    """

    def __init__(
        self,
        rag: RAG,
        allowed_roots: Sequence[str | Path] | None = None,
        default_folder: str | None = None,
        upload_enabled: bool = False,
    ) -> None:
        self.rag = rag
        self.cfg = rag.config.ui
        roots = list(allowed_roots or self.cfg.allowed_roots or [Path.cwd()])
        self.allowed_roots = [Path(r).expanduser().resolve() for r in roots]
        self.base = Path.cwd()
        self.display = PathDisplay(self.base, [Path(rag.store.root).resolve(), *self.allowed_roots])
        self.default_folder = default_folder or "data/articles"
        self._build_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._loaded = False
        self.rebuilding = False
        self.queue = AnswerQueue(self.cfg.generation_concurrency, self.cfg.max_queue)
        # Set once an index has been seen, so a later "no index" can say it went missing.
        self._index_seen = False
        # rag serve turns this on where ui.upload allows it (loopback, or a login required).
        self.upload_enabled = upload_enabled

    def conversation(self, turns: Sequence[Turn]) -> Conversation:
        """A :class:`Conversation` over a tab's (or an API caller's) ``turns``: cheap, the models are the pipeline's."""
        return Conversation(self.rag, turns=turns)

    def settings(self, top_k: Any, temperature: Any, max_new_tokens: Any) -> tuple[int, float, int]:
        return check_settings(
            top_k, temperature, max_new_tokens, max_top_k=self.cfg.max_top_k, max_tokens=self.cfg.max_new_tokens_limit
        )

    def explain(self, exc: BaseException) -> str:
        """:func:`friendly_error` without absolute paths, saying so when an index seen earlier has gone."""
        if isinstance(exc, IndexNotFoundError) and self._index_seen:
            text = (
                f"The index is missing: {exc}. It was there earlier, so it was deleted or moved while the app was running. "
                "Or use 'Rebuild index from folder' in the side panel."
            )
        else:
            text = friendly_error(exc)
        return self.display.redact(text)

    # -- chat ------------------------------------------------------------------------
    def respond(
        self,
        message: Any,
        chat: list | None,
        session: dict | None,
        top_k: Any,
        temperature: Any,
        max_new_tokens: Any,
        cautious: Any = None,
    ) -> Iterator[tuple]:
        """Answer ``message`` in the conversation, streaming (``cautious``: the side panel's box, None: the config's abstention).

        Yields:
            ``(chat messages, session state, sources panel HTML, textbox value)`` after each change.
        """
        chat = list(chat or []) if isinstance(chat, list) else []
        session = session if session else new_session()
        if len(chat) > MAX_CHAT_MESSAGES:
            drop = len(chat) - MAX_CHAT_MESSAGES
            chat = chat[drop:]
            forget_messages(session, drop)

        def out() -> tuple:
            return chat, session, render.sources_panel(session["sections"]), ""

        if not isinstance(message, str) or not message.strip():
            yield out()
            return
        # Echoed as valid text (a lone surrogate would break the page's JSON), and not whole when refused as too long.
        text = message.strip().encode("utf-8", "replace").decode("utf-8")
        if len(text) > self.cfg.max_question_chars:
            text = f"{text[:ECHO_CHARS]} … ({len(text)} characters)"
        chat.append({"role": "user", "content": render.md_text(text)})
        try:
            question = check_question(message, self.cfg.max_question_chars)
            settings = self.settings(top_k, temperature, max_new_tokens)
            abstention = check_cautious(cautious)
            place = self.queue.join()
        except RagError as exc:
            chat.append({"role": "assistant", "content": render.error_markdown(self.explain(exc))})
            yield out()
            return
        # Leaves the line (or frees the slot) when the answer ends, fails or is cancelled:
        # Gradio closes this generator when the browser goes away.
        with place:
            yield out()
            if not place.wait(0):
                chat.append(waiting_message(place.ahead))
                yield out()
                while not place.wait(QUEUE_POLL_S):
                    chat[-1] = waiting_message(place.ahead)
                    yield out()
                chat.pop()
            yield from self._answer(question, chat, session, settings, abstention, out)

    def _answer(
        self,
        question: str,
        chat: list,
        session: dict,
        settings: tuple[int, float, int],
        abstention: str | None,
        out: Callable[[], tuple],
    ) -> Iterator[tuple]:
        """The body of :meth:`respond` once the question has its slot."""
        session["count"] += 1
        view = render.AnswerView(chat, session["count"], question)
        self.ensure_loaded()
        conversation = self.conversation(session["turns"])
        k, temperature, n_tokens = settings
        try:
            for event in conversation.stream_events(
                question, top_k=k, temperature=temperature, max_new_tokens=n_tokens, abstention=abstention
            ):
                if event.kind == "retrieved":
                    self._index_seen = True
                if view.add(event):
                    yield chat, session, render.sources_panel([*session["sections"], *view.live_section()]), ""
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("answering %r failed", question)
            chat.append({"role": "assistant", "content": render.error_markdown(self.explain(exc))})
            yield out()
            return
        if view.answer is None:  # the pipeline ended without a final answer
            chat.append(
                {"role": "assistant", "content": render.error_markdown("The answer was cut off; please ask again.")}
            )
            yield out()
            return
        view.finish()
        # What a rating of this answer records (ui.rating), keyed by its place in the chat.
        session.setdefault("answers", {})[str(view.answer_index)] = {
            "question": question,
            "answer": view.answer.text,
            "mode": view.answer.mode,
            "query": view.answer.query,
            "citations": [
                {"n": c.n, "title": c.title, "source": c.source, "pages": list(c.pages)} for c in view.answer.citations
            ],
            "generation": self.generation(),
        }
        session["turns"] = conversation.turns
        # The panel keeps as many answers as the conversation keeps turns.
        session["sections"] = [
            *session["sections"],
            (question, render.answer_section(view.turn, view.answer, view.query or question)),
        ][-MAX_TURNS:]
        yield out()

    def clear(self) -> tuple:
        """A fresh conversation."""
        return [], new_session(), render.SOURCES_PLACEHOLDER, ""

    # -- API --------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        top_k: int | None = None,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        history: list[dict] | None = None,
        cautious: bool | None = None,
    ) -> dict:
        """Answer one question; the JSON of ``rag ask --json`` plus ``rewritten``.

        Args:
            question: the question.
            top_k, temperature, max_new_tokens: optional overrides (same limits as the UI).
            history: earlier turns, ``[{"question": ..., "answer": ...}, ...]``, oldest first,
                for rewriting a follow-up into a standalone query (at most 20 turns, each
                field within the question and answer limits).
            cautious: true to decline unless the articles clearly answer (``evidence.abstention:
                cautious``), false for balanced; absent: the config's.

        Raises:
            gradio.Error: with a readable message (bad input, busy, no index, model failure).
        """
        try:
            q = check_question(question, self.cfg.max_question_chars)
            turns = turns_from_history(history, max_question_chars=self.cfg.max_question_chars)
            gen = self.rag.config.generation
            k, t, n = self.settings(
                self.rag.config.retrieval.top_k if top_k is None else top_k,
                gen.temperature if temperature is None else temperature,
                gen.max_new_tokens if max_new_tokens is None else max_new_tokens,
            )
            abstention = check_cautious(cautious)
            with self.queue.join() as place:
                place.wait()
                self.ensure_loaded()
                answer = self.conversation(turns).ask(
                    q, top_k=k, temperature=t, max_new_tokens=n, abstention=abstention
                )
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("API ask %s failed", shown(str(question), 100))
            raise gr.Error(self.explain(exc), print_exception=False) from None
        self._index_seen = True
        return {**answer.to_dict(), "rewritten": answer.query != answer.question, "not_found": answer.text == NOT_FOUND}

    def view_source(self, request: Any) -> str:
        """The source viewer's HTML for the page's request (see :mod:`ui.viewer`): the article from the index, passage highlighted."""
        try:
            req = viewer.parse_request(request)
            text, chunks = self.rag.article(req.doc)
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("showing a source failed")
            return render.error_markdown(self.explain(exc))
        return viewer.article_html(req, text, chunks)

    # -- index --------------------------------------------------------------------------
    def generation(self) -> str | None:
        """The name of the index generation answers come from now (None without an index)."""
        return self.rag.store.current_name_or_none()

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Hold the one build slot (a rebuild, an upload, a removal) or refuse at once.

        Raises:
            InputError: another build is running.
        """
        if not self._build_lock.acquire(blocking=False):
            raise InputError("A rebuild is already running; wait for it to finish, then try again.")
        self.rebuilding = True
        try:
            yield
        finally:
            self.rebuilding = False
            self._build_lock.release()

    def build_message(self, summary: Any) -> str:
        """The page's note on a finished build."""
        msg = f"Indexed {summary.articles} articles as {summary.chunks} chunks in {summary.seconds:.1f} s."
        if summary.skipped:
            msg += f" Skipped {len(summary.skipped)}: " + "; ".join(
                f"{s.source} ({s.reason})" for s in summary.skipped[:10]
            )
        return f'<span class="rag-ok"><b>Done:</b> {render.esc(self.display.redact(msg))}</span>'

    @property
    def model(self) -> ModelInUse:
        """The model answering, and the one warning to show when it is the packaged 135M fallback."""
        return model_in_use(self.rag.config.generation)

    def status(self) -> str:
        """Index status HTML."""
        note = "Rebuilding… chat keeps using the current index until the new one is ready." if self.rebuilding else ""
        try:
            info = self.rag.info()
        except Exception as exc:
            return render.status_html(None, error=self.explain(exc), note=note)
        self._index_seen = True
        shown_info = {
            **info,
            "index_path": self.display.show(Path(info["index_path"])),
            "generator": self.display.redact(str(info.get("generator"))),
            "model": self.display.redact(self.model.label),
        }
        return render.status_html(shown_info, note=note)

    def rebuild(self, folder: Any, progress: gr.Progress | None = None) -> tuple[str, str]:
        """Rebuild the index from ``folder`` (checked against the allowed roots).

        Runs in the Gradio worker thread of this event, so chat events keep being served;
        the pipeline switches to the new index atomically when it is complete.

        Returns:
            ``(message HTML, status HTML)``.
        """
        try:
            path = resolve_rebuild_folder(folder, self.allowed_roots, self.base, self.display)
        except RagError as exc:
            return render.error_markdown(str(exc)), self.status()
        try:
            with self.building():
                summary = self.build_folder(path, progress)
        except InputError as exc:
            return render.error_markdown(str(exc)), self.status()
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("rebuild from %s failed", path)
            return render.error_markdown(
                f"Rebuild failed; the previous index is still in use. {self.explain(exc)}"
            ), self.status()
        return self.build_message(summary), self.status()

    def build_folder(self, path: Path, progress: gr.Progress | None) -> Any:
        """Bring the index up to date with checked folder ``path`` (the caller holds :meth:`building`)."""
        self.ensure_loaded()
        if progress is not None:
            progress(0, desc=f"Reading and embedding {path.name}")
        try:
            return self.rag.build(path, show_progress=progress is not None)
        except IndexCorruptError as exc:  # the current index is damaged past reuse: start over
            log.warning("the current index cannot be reused (%s); rebuilding everything", exc)
            return self.rag.build(path, show_progress=progress is not None, full=True)

    def ensure_loaded(self) -> None:
        """Load the embedder, then the generator, once, one after the other.

        Every handler calls this before touching the pipeline, and ``serve`` calls it in a
        background thread right after start-up. Loading two transformers models at the same
        time in different threads is not safe: we saw SmolLM2 come up with untied, randomly
        initialised input embeddings (and answer gibberish) when a first question raced the
        warm-up. Requests that arrive during loading wait here instead.
        """
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            for name, load in (
                ("embedder", lambda: self.rag.embedder.warm_up()),
                ("generator", lambda: self.rag.generator.warm_up()),
            ):
                try:
                    load()
                except Exception as exc:  # e.g. an unknown backend or a missing model: shown when a question needs it
                    log.warning("loading the %s failed: %s", name, exc)
            self._loaded = True
