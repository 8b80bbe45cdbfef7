"""The chat web UI: streamed, cited answers over the indexed articles (``rag serve``).

It uses only the public :mod:`rag` API. :class:`ChatUI` holds the behaviour (answering,
rewriting follow-ups, rebuilding, errors) and can be driven without a browser; :func:`build_app`
lays it out with Gradio; :func:`main` is what ``rag serve`` calls.

Example:
    >>> from rag import RAG
    >>> ui = ChatUI(RAG.from_config("configs/default.yaml"))
    >>> build_app(ui).launch(server_name="127.0.0.1", server_port=7860)
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Must be set before gradio is imported: gradio reads it at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402

from rag import (  # noqa: E402
    NOT_FOUND,
    RAG,
    Answer,
    BuildError,
    ConfigError,
    GeneratorError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    QueryRewriter,
    Turn,
)

from . import render  # noqa: E402

log = logging.getLogger("rag.ui")

TEMPERATURE_MAX = 2.0
# Answers whose sources stay in the panel (and turns kept for rewriting) per browser tab.
MAX_TURNS_KEPT = 20
# Characters of a refused, over-long question echoed back into the chat.
ECHO_CHARS = 200
# Seconds between updates of a waiting question's place in line (also lets Gradio cancel it).
QUEUE_POLL_S = 1.0


# -- the line in front of the generator -----------------------------------------------
class QueueFull(Exception):
    """The line in front of the generator is full; the message is meant for the user."""


class Place:
    """One request's place in an :class:`AnswerQueue` (a context manager that leaves the line)."""

    def __init__(self, queue: AnswerQueue, admitted: bool) -> None:
        self._queue = queue
        self.admitted = admitted
        self._left = False

    @property
    def ahead(self) -> int:
        """Requests in line before this one (0 once admitted)."""
        return self._queue._ahead(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it is this request's turn, or ``timeout`` seconds; True when admitted."""
        return self._queue._wait(self, timeout)

    def leave(self) -> None:
        """Give up the place (or the slot, once admitted). Safe to call twice."""
        self._queue._leave(self)

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()


class AnswerQueue:
    """A first-come, first-served line in front of the generator.

    At most ``concurrency`` answers run at once and up to ``max_waiting`` more wait in line;
    past that, :meth:`join` refuses at once with a readable message, so an overloaded server
    says it is busy instead of leaving requests hanging.

    Args:
        concurrency: answers computed at the same time (``ui.generation_concurrency``).
        max_waiting: requests that may wait for a slot (``ui.max_queue``).

    Example:
        >>> line = AnswerQueue(concurrency=1, max_waiting=16)
        >>> with line.join() as place:   # raises QueueFull when 16 are already waiting
        ...     place.wait()             # blocks until it is this request's turn
        ...     answer = rag.ask(question)
    """

    def __init__(self, concurrency: int = 1, max_waiting: int = 32) -> None:
        if concurrency < 1:
            raise ValueError(f"ui.generation_concurrency must be >= 1, got {concurrency}")
        if max_waiting < 0:
            raise ValueError(f"ui.max_queue must be >= 0, got {max_waiting}")
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._line: deque[Place] = deque()
        self.running = 0
        self.admitted_total = 0
        self.refused_total = 0

    @property
    def waiting(self) -> int:
        """Requests waiting in line now."""
        with self._cond:
            return len(self._line)

    def busy_message(self) -> str:
        """What a refused request is told (call with the lock held or accept a racy count)."""
        if self.max_waiting == 0:
            return (f"The server is busy: it is answering {self.running} question{'s' * (self.running != 1)} and keeps no line "
                    f"(ui.max_queue = 0). Try again in a moment.")
        n = len(self._line)
        return f"The server is busy: {n} question{'s are' if n != 1 else ' is'} waiting (ui.max_queue = {self.max_waiting}). Try again in a moment."

    def join(self) -> Place:
        """Take a slot now if one is free and nobody waits, else a place in line.

        Raises:
            QueueFull: ``max_waiting`` requests are already waiting.
        """
        with self._cond:
            if self.running < self.concurrency and not self._line:
                self.running += 1
                self.admitted_total += 1
                return Place(self, admitted=True)
            if len(self._line) >= self.max_waiting:
                self.refused_total += 1
                raise QueueFull(self.busy_message())
            place = Place(self, admitted=False)
            self._line.append(place)
            return place

    def _ahead(self, place: Place) -> int:
        with self._cond:
            if place.admitted or place._left:
                return 0
            for i, other in enumerate(self._line):
                if other is place:
                    return i
            return 0

    def _wait(self, place: Place, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not place.admitted:
                if place._left:
                    return False
                if self.running < self.concurrency and self._line and self._line[0] is place:
                    self._line.popleft()
                    self.running += 1
                    self.admitted_total += 1
                    place.admitted = True
                    self._cond.notify_all()  # the next in line may be admitted too (concurrency > 1)
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _leave(self, place: Place) -> None:
        with self._cond:
            if place._left:
                return
            place._left = True
            if place.admitted:
                self.running -= 1
            else:
                try:
                    self._line.remove(place)
                except ValueError:
                    pass
            self._cond.notify_all()


# -- safety checks --------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` as a tuple (None when unset).

    Raises:
        ValueError: the value is not ``user:password`` with both parts non-empty.
    """
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("authentication must look like USER:PASSWORD (both non-empty), e.g. --auth alice:s3cret or RAG_UI_AUTH=alice:s3cret")
    return user, password


def resolve_rebuild_folder(folder: str, allowed_roots: Sequence[Path], base: Path | None = None) -> Path:
    """The real folder to rebuild from, if it exists and lies inside an allowed root.

    ``..`` parts and symbolic links are resolved before the check, so neither can lead
    outside. Paths outside the roots are refused before their existence is looked up.

    Args:
        folder: what the user typed (relative paths are taken from ``base``).
        allowed_roots: resolved folders the UI may read from.
        base: folder relative paths start from (default: the current folder).

    Raises:
        ValueError: empty, outside the allowed roots, missing, or not a folder.
    """
    text = (folder or "").strip()
    roots_text = ", ".join(str(r) for r in allowed_roots) or "(none)"
    if not text:
        raise ValueError(f"enter the folder of articles to rebuild from, inside one of: {roots_text}")
    if "\x00" in text:
        raise ValueError(f"folder {text!r} is not a valid path")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path

    def inside(p: Path) -> bool:
        return any(p == r or p.is_relative_to(r) for r in allowed_roots)

    fix = "choose a folder inside one of them, or restart with: rag serve --allowed-root DIR"
    if not inside(Path(os.path.normpath(path))):
        raise ValueError(f"folder {text!r} is outside the allowed folders ({roots_text}); {fix}")
    if not path.exists():
        raise ValueError(f"folder {text!r} does not exist; enter an existing folder of articles inside: {roots_text}")
    real = path.resolve(strict=True)
    if not inside(real):
        raise ValueError(f"folder {text!r} leads outside the allowed folders ({roots_text}) through a symbolic link; {fix}")
    if not real.is_dir():
        raise ValueError(f"{text!r} is a file, not a folder; enter the folder that holds the articles")
    return real


def check_settings(top_k: Any, temperature: Any, max_new_tokens: Any, *, max_top_k: int, max_tokens: int) -> tuple[int, float, int]:
    """Validate the side-panel settings (the API can send anything).

    Raises:
        ValueError: naming the setting, the value and the allowed range.
    """

    def as_int(name: str, value: Any, lo: int, hi: int) -> int:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}") from None
        if not f.is_integer() or not lo <= f <= hi:
            raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
        return int(f)

    k = as_int("top-k", top_k, 1, max_top_k)
    n = as_int("max new tokens", max_new_tokens, 1, max_tokens)
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number from 0 to {TEMPERATURE_MAX}, got {temperature!r}") from None
    if not 0.0 <= t <= TEMPERATURE_MAX:
        raise ValueError(f"temperature must be a number from 0 to {TEMPERATURE_MAX}, got {temperature!r}")
    return k, t, n


def friendly_error(exc: BaseException) -> str:
    """A one-paragraph message for the chat: what went wrong and what to do. Never a traceback."""
    if isinstance(exc, IndexNotFoundError):
        return f"There is no index yet: {exc}. Or use 'Rebuild index from folder' in the side panel."
    if isinstance(exc, (IndexMismatchError, IndexCorruptError)):
        return f"The index cannot be used: {exc}. Or use 'Rebuild index from folder' in the side panel."
    if isinstance(exc, GeneratorError):
        return f"The model failed to answer: {exc}"
    if isinstance(exc, (ValueError, ConfigError)):
        return str(exc)
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:300] + " …"
    return f"Something went wrong while answering ({type(exc).__name__}{': ' + text if text else ''}). The server is still running; details are in its log."


def waiting_message(ahead: int) -> dict[str, str]:
    """The chat line shown while a question waits in line."""
    note = f"Waiting for the model: {ahead} question{'s' * (ahead != 1)} ahead of yours…" if ahead else "Waiting for the model: yours is next…"
    return {"role": "assistant", "content": "*" + render.md_text(note) + "*"}


def new_session() -> dict[str, Any]:
    """Per-browser-tab conversation state."""
    return {"turns": [], "sections": [], "count": 0}


# -- behaviour ----------------------------------------------------------------------------
class ChatUI:
    """What the page does, independent of Gradio's layout (so tests can call it directly).

    Args:
        rag: the pipeline to answer with.
        allowed_roots: folders the index may be rebuilt from (default: ``ui.allowed_roots``
            from the config, else the current folder).
        default_folder: prefilled in the rebuild box.
    """

    def __init__(self, rag: RAG, allowed_roots: Sequence[str | Path] | None = None, default_folder: str | None = None) -> None:
        self.rag = rag
        self.cfg = rag.config.ui
        roots = list(allowed_roots or self.cfg.allowed_roots or [Path.cwd()])
        self.allowed_roots = [Path(r).expanduser().resolve() for r in roots]
        self.base = Path.cwd()
        self.default_folder = default_folder or "data/articles"
        self._rewriter: QueryRewriter | None = None
        self._build_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._loaded = False
        self.rebuilding = False
        self.queue = AnswerQueue(self.cfg.generation_concurrency, self.cfg.max_queue)
        # Set once an index has been seen, so a later "no index" can say it went missing.
        self._index_seen = False

    @property
    def rewriter(self) -> QueryRewriter:
        if self._rewriter is None:
            generator = self.rag.generator if self.cfg.rewrite == "auto" else None
            self._rewriter = QueryRewriter(generator, mode=self.cfg.rewrite)
        return self._rewriter

    def settings(self, top_k: Any, temperature: Any, max_new_tokens: Any) -> tuple[int, float, int]:
        return check_settings(top_k, temperature, max_new_tokens, max_top_k=self.cfg.max_top_k, max_tokens=self.cfg.max_new_tokens_limit)

    def check_question(self, question: Any) -> str:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty; type a question about the articles")
        q = question.strip()
        if len(q) > self.cfg.max_question_chars:
            raise ValueError(f"the question is {len(q)} characters long; the limit is {self.cfg.max_question_chars} (ui.max_question_chars)")
        return q

    def explain(self, exc: BaseException) -> str:
        """Like :func:`friendly_error`, but says so when an index seen earlier has gone."""
        if isinstance(exc, IndexNotFoundError) and self._index_seen:
            return (f"The index is missing: {exc}. It was there earlier, so it was deleted or moved while the app was running. "
                    "Or use 'Rebuild index from folder' in the side panel.")
        return friendly_error(exc)

    # -- chat ------------------------------------------------------------------------
    def respond(self, message: str, chat: list | None, session: dict | None, top_k: Any, temperature: Any, max_new_tokens: Any) -> Iterator[tuple]:
        """Answer ``message`` in the conversation, streaming.

        Yields:
            ``(chat messages, session state, sources panel HTML, textbox value)`` after each change.
        """
        chat = list(chat or [])
        session = session if session else new_session()

        def out() -> tuple:
            return chat, session, render.sources_panel(session["sections"]), ""

        if not isinstance(message, str) or not message.strip():
            yield out()
            return
        shown = message.strip()
        if len(shown) > self.cfg.max_question_chars:  # a refused question is not sent back whole
            shown = f"{shown[:ECHO_CHARS]} … ({len(shown)} characters)"
        chat.append({"role": "user", "content": render.md_text(shown)})
        try:
            question = self.check_question(message)
            k, temp, n_tokens = self.settings(top_k, temperature, max_new_tokens)
        except ValueError as exc:
            chat.append({"role": "assistant", "content": render.error_markdown(str(exc))})
            yield out()
            return
        try:
            place = self.queue.join()
        except QueueFull as exc:
            chat.append({"role": "assistant", "content": render.error_markdown(str(exc))})
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
            yield from self._answer(question, chat, session, k, temp, n_tokens, out)

    def _answer(self, question: str, chat: list, session: dict, k: int, temp: float, n_tokens: int, out) -> Iterator[tuple]:
        """The body of :meth:`respond` once the question has its slot."""
        session["count"] += 1
        turn = session["count"]
        history: list[Turn] = session["turns"]
        self.ensure_loaded()
        try:
            rewrite = self.rewriter.rewrite(question, history)
        except Exception:  # never lose the question over a rewrite
            log.exception("rewriting %r failed", question)
            rewrite = None
        query = rewrite.query if rewrite is not None and rewrite.changed else None
        if query:
            chat.append({"role": "assistant", "content": render.searched_for_html(query)})
            yield out()

        answer_i: int | None = None
        reasoning_i: int | None = None
        reasoning: list[str] = []
        parts: list[str] = []
        passage_ns: set[int] = set()
        answer: Answer | None = None
        live: str | None = None
        t_reason = time.perf_counter()
        try:
            for event in self.rag.stream_events(question, top_k=k, temperature=temp, max_new_tokens=n_tokens, query=query):
                if event.kind == "retrieved":
                    self._index_seen = True
                    passage_ns = {p.n for p in event.passages}
                    live = render.retrieved_section(turn, question, query or question, event.passages)
                    yield chat, session, render.sources_panel([*session["sections"], (question, live)]), ""
                    continue
                if event.kind == "reasoning":
                    reasoning.append(event.text)
                    msg = {
                        "role": "assistant",
                        "content": render.md_text("".join(reasoning).strip()),
                        # "done" keeps the accordion collapsed while it streams.
                        "metadata": {"title": "Reasoning (thinking…)", "status": "done"},
                    }
                    if reasoning_i is None:
                        chat.append(msg)
                        reasoning_i = len(chat) - 1
                        t_reason = time.perf_counter()
                    else:
                        chat[reasoning_i] = msg
                elif event.kind == "answer":
                    parts.append(event.text)
                    msg = {"role": "assistant", "content": render.answer_markdown("".join(parts), turn, passage_ns)}
                    if answer_i is None:
                        chat.append(msg)
                        answer_i = len(chat) - 1
                    else:
                        chat[answer_i] = msg
                elif event.kind == "done":
                    answer = event.answer
                    continue
                yield chat, session, render.sources_panel([*session["sections"], *([(question, live)] if live else [])]), ""
        except Exception as exc:
            if not isinstance(exc, (IndexNotFoundError, IndexMismatchError, IndexCorruptError, GeneratorError, ValueError, ConfigError)):
                log.exception("answering %r failed", question)
            chat.append({"role": "assistant", "content": render.error_markdown(self.explain(exc))})
            yield out()
            return
        if answer is None:  # the pipeline ended without a final answer
            chat.append({"role": "assistant", "content": render.error_markdown("The answer was cut off; please ask again.")})
            yield out()
            return

        if reasoning_i is not None:
            chat[reasoning_i] = {
                "role": "assistant",
                "content": render.md_text(answer.reasoning or "".join(reasoning).strip()),
                "metadata": {"title": "Reasoning", "status": "done", "duration": round(time.perf_counter() - t_reason, 1)},
            }
        # The citation checker may have placed, moved or dropped markers after streaming.
        weak = {c.n for c in answer.citations if getattr(c, "status", "") in ("weak", "unsupported")}
        final = render.answer_markdown(answer.text, turn, {c.n for c in answer.citations}, weak)
        if answer.draft:
            final += "\n\n*" + render.md_text("The model's draft was not supported by any retrieved passage, so it is not shown.") + "*"
        for note in getattr(answer, "notes", None) or []:  # e.g. an extractive fallback or removed sentences
            final += "\n\n*" + render.md_text(f"Note: {note}") + "*"
        final_msg = {"role": "assistant", "content": final}
        if answer_i is None:
            chat.append(final_msg)
        else:
            chat[answer_i] = final_msg
        # Only the last turns matter for rewriting; the panel keeps a bounded history.
        session["turns"] = [*history, Turn(question, answer.text, query or "")][-MAX_TURNS_KEPT:]
        session["sections"] = [*session["sections"], (question, render.answer_section(turn, answer, query or question))][-MAX_TURNS_KEPT:]
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
    ) -> dict:
        """Answer one question; the JSON of ``rag ask --json`` plus ``rewritten``.

        Args:
            question: the question.
            top_k, temperature, max_new_tokens: optional overrides (same limits as the UI).
            history: earlier turns, ``[{"question": ..., "answer": ...}, ...]``, oldest first,
                for rewriting a follow-up into a standalone query.

        Raises:
            gradio.Error: with a readable message (bad input, no index, model failure).
        """
        try:
            q = self.check_question(question)
            gen = self.rag.config.generation
            k, t, n = self.settings(
                self.rag.config.retrieval.top_k if top_k is None else top_k,
                gen.temperature if temperature is None else temperature,
                gen.max_new_tokens if max_new_tokens is None else max_new_tokens,
            )
            with self.queue.join() as place:
                place.wait()
                return self._ask(q, k, t, n, history)
        except Exception as exc:
            if not isinstance(exc, (IndexNotFoundError, IndexMismatchError, IndexCorruptError, GeneratorError, ValueError, ConfigError, QueueFull)):
                log.exception("API ask %r failed", question)
            raise gr.Error(self.explain(exc), print_exception=False) from None

    def _ask(self, q: str, k: int, t: float, n: int, history: list[dict] | None) -> dict:
        """The body of :meth:`ask` once the question has its slot."""
        self.ensure_loaded()
        turns = [Turn(str(h.get("question", "")), str(h.get("answer", "")), str(h.get("query", ""))) for h in (history or []) if isinstance(h, dict) and h.get("question")]
        rewrite = self.rewriter.rewrite(q, turns)
        query = rewrite.query if rewrite.changed else None
        answer = None
        for event in self.rag.stream_events(q, top_k=k, temperature=t, max_new_tokens=n, query=query):
            if event.kind == "done":
                answer = event.answer
        if answer is None:
            raise RuntimeError("the pipeline returned no answer")
        self._index_seen = True
        return {**answer.to_dict(), "rewritten": query is not None, "not_found": answer.text == NOT_FOUND}

    # -- index --------------------------------------------------------------------------
    def status(self) -> str:
        """Index status HTML."""
        note = "Rebuilding… chat keeps using the current index until the new one is ready." if self.rebuilding else ""
        try:
            info = self.rag.info()
        except Exception as exc:
            return render.status_html(None, error=self.explain(exc), note=note)
        self._index_seen = True
        return render.status_html(info, note=note)

    def rebuild(self, folder: str, progress: gr.Progress | None = None) -> tuple[str, str]:
        """Rebuild the index from ``folder`` (checked against the allowed roots).

        Runs in the Gradio worker thread of this event, so chat events keep being served;
        the pipeline switches to the new index atomically when it is complete.

        Returns:
            ``(message HTML, status HTML)``.
        """
        try:
            path = resolve_rebuild_folder(folder, self.allowed_roots, self.base)
        except ValueError as exc:
            return render.error_markdown(str(exc)), self.status()
        if not self._build_lock.acquire(blocking=False):
            return render.error_markdown("A rebuild is already running; wait for it to finish."), self.status()
        self.rebuilding = True
        try:
            self.ensure_loaded()
            if progress is not None:
                progress(0, desc=f"Reading and embedding {path.name}")
            try:
                summary = self.rag.build(path, show_progress=progress is not None)
            except IndexCorruptError as exc:  # the current index is damaged past reuse: start over
                log.warning("the current index cannot be reused (%s); rebuilding everything", exc)
                summary = self.rag.build(path, show_progress=progress is not None, full=True)
        except Exception as exc:
            if not isinstance(exc, (BuildError, FileNotFoundError, ValueError, ConfigError)):
                log.exception("rebuild from %s failed", path)
            return render.error_markdown(f"Rebuild failed; the previous index is still in use. {friendly_error(exc)}"), self.status()
        finally:
            self.rebuilding = False
            self._build_lock.release()
        msg = f"Indexed {summary.articles} articles as {summary.chunks} chunks in {summary.seconds:.1f} s."
        if summary.skipped:
            msg += f" Skipped {len(summary.skipped)}: " + "; ".join(f"{s.source} ({s.reason})" for s in summary.skipped[:10])
        return f'<span class="rag-ok"><b>Done:</b> {render.esc(msg)}</span>', self.status()

    def ensure_loaded(self) -> None:
        """Load the embedder, then the generator, once, one after the other.

        Every handler calls this before touching the pipeline, and ``main`` calls it in a
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
            try:
                parts = [self.rag.embedder, self.rag.generator]
            except Exception as exc:  # e.g. an unknown backend: reported when the model is used
                log.warning("cannot create the models: %s", exc)
                parts = [self.rag.embedder]
            for part in parts:
                load = getattr(part, "warm_up", None)
                if load is None:
                    continue
                try:
                    load()
                except Exception as exc:  # shown to the user when they ask; the server stays up
                    log.warning("loading %s failed: %s", getattr(part, "name", part), exc)
            self._loaded = True


# -- layout -----------------------------------------------------------------------------
def build_app(ui: ChatUI) -> gr.Blocks:
    """The Gradio page for ``ui``: chat, sources, settings side panel, rebuild, API."""
    cfg = ui.cfg
    gen_cfg = ui.rag.config.generation
    with gr.Blocks(title="Ask the articles", analytics_enabled=False, fill_width=True) as demo:
        session = gr.State(new_session())
        with gr.Sidebar(label="Settings", open=True, position="left", elem_id="settings"):
            gr.Markdown("### Settings")
            top_k = gr.Slider(1, cfg.max_top_k, value=min(ui.rag.config.retrieval.top_k, cfg.max_top_k), step=1, label="Passages to retrieve (top-k)", elem_id="top-k")
            temperature = gr.Slider(0.0, TEMPERATURE_MAX, value=gen_cfg.temperature, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
            max_tokens = gr.Slider(16, cfg.max_new_tokens_limit, value=min(gen_cfg.max_new_tokens, cfg.max_new_tokens_limit), step=1, label="Max new tokens", elem_id="max-new-tokens")
            gr.Markdown("### Index")
            status = gr.HTML(ui.status(), elem_id="index-status")
            refresh = gr.Button("Refresh status", size="sm")
            gr.Markdown("### Rebuild index from folder")
            folder = gr.Textbox(value=ui.default_folder, label="Folder of articles", info="Allowed: " + ", ".join(str(r) for r in ui.allowed_roots), elem_id="rebuild-folder")
            rebuild_btn = gr.Button("Rebuild index", elem_id="rebuild")
            rebuild_msg = gr.HTML(elem_id="rebuild-message")
        gr.Markdown("## Ask the articles\nAnswers come only from the indexed articles; markers such as [1] link to their sources.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    label="Chat",
                    height=560,
                    latex_delimiters=[],
                    sanitize_html=True,
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder="Ask a question about the articles, or try an example below.",
                )
                with gr.Row():
                    box = gr.Textbox(show_label=False, placeholder="Ask about the articles…", scale=6, max_lines=4, max_length=cfg.max_question_chars, elem_id="question", autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    clear = gr.Button("Clear", scale=1, min_width=80, elem_id="clear")
                with gr.Row(elem_id="examples"):
                    example_buttons = [gr.Button(q, size="sm", elem_classes=["rag-example"]) for q in cfg.examples]
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(render.SOURCES_PLACEHOLDER, elem_id="sources")

        # No Gradio limit on answering events: every request reaches ui.queue, which runs
        # ui.generation_concurrency at once, keeps ui.max_queue waiting and says "busy" past
        # that (Gradio's own queue would keep them waiting silently, or fail opaquely).
        chat_io = dict(outputs=[chatbot, session, sources, box], concurrency_limit=None, show_progress="minimal")
        settings_in = [top_k, temperature, max_tokens]
        box.submit(ui.respond, inputs=[box, chatbot, session, *settings_in], api_name="chat", **chat_io)
        send.click(ui.respond, inputs=[box, chatbot, session, *settings_in], api_visibility="private", **chat_io)
        for b in example_buttons:
            b.click(ui.respond, inputs=[b, chatbot, session, *settings_in], api_visibility="private", **chat_io)
        clear.click(ui.clear, outputs=[chatbot, session, sources, box], api_visibility="private", queue=False)
        # The chat's own trash icon must forget the conversation too, not only the messages.
        chatbot.clear(ui.clear, outputs=[chatbot, session, sources, box], api_visibility="private", queue=False)

        def rebuild(folder_text: str, progress=gr.Progress(track_tqdm=True)) -> tuple[str, str]:
            return ui.rebuild(folder_text, progress)

        rebuild_btn.click(rebuild, inputs=[folder], outputs=[rebuild_msg, status], api_name="rebuild", concurrency_id="rebuild", concurrency_limit=1)
        refresh.click(ui.status, outputs=[status], api_name="status", queue=False)
        demo.load(ui.status, outputs=[status], api_visibility="private", queue=False)
        gr.api(ui.ask, api_name="ask", concurrency_limit=None)
    return demo


# -- entry point ---------------------------------------------------------------------------
def launch_threads(cfg: Any) -> int:
    """Gradio worker threads: each running or waiting question holds one, plus room for the rest."""
    return max(40, cfg.generation_concurrency + cfg.max_queue + 8)


def main(args: argparse.Namespace) -> int:
    """Start the UI as ``rag serve`` asks (see ``rag serve --help``). Returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    host = args.host or "127.0.0.1"
    try:
        auth = parse_auth(args.auth if args.auth else os.environ.get("RAG_UI_AUTH"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(host) and auth is None:
        print(
            f"error: refusing to serve on {host!r} without authentication: anyone who can reach this machine could use it. "
            "Set RAG_UI_AUTH=user:password or pass --auth user:password, or use --host 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, got {args.port}", file=sys.stderr)
        return 2
    from rag.cli import _config_path  # the same config resolution as the other commands

    rag = RAG.from_config(_config_path(args.config), index=args.index)
    try:
        rag.info()
        missing = False
    except IndexNotFoundError:
        missing = True
    if args.articles and missing:
        print(f"No index yet; building it from {args.articles} ...", file=sys.stderr)
        summary = rag.build(args.articles, show_progress=True)
        print(f"Indexed {summary.articles} articles as {summary.chunks} chunks.", file=sys.stderr)
    ui = ChatUI(rag, allowed_roots=args.allowed_root, default_folder=args.articles)
    demo = build_app(ui)
    demo.queue(default_concurrency_limit=1)
    try:
        demo.launch(
            server_name=host,
            server_port=args.port,
            share=False,
            auth=auth,
            show_error=False,
            ssr_mode=False,
            prevent_thread_lock=True,
            quiet=True,
            css=render.CSS,
            js=render.JS,
            footer_links=["api"],
            enable_monitoring=False,
            mcp_server=False,
            max_threads=launch_threads(ui.cfg),
        )
    except OSError as exc:
        print(f"error: cannot listen on {host}:{args.port} ({exc}); pick another port with --port", file=sys.stderr)
        return 1
    shown_host = f"[{host}]" if ":" in host else host
    print(f"Serving the chat UI on http://{shown_host}:{args.port} (started in {time.perf_counter() - t0:.1f} s; index {args.index or rag.config.index.path}; "
          f"answering {ui.cfg.generation_concurrency} question{'s' * (ui.cfg.generation_concurrency != 1)} at a time, up to {ui.cfg.max_queue} waiting). Ctrl+C stops it.", flush=True)
    if ui.cfg.warm_up:
        threading.Thread(target=ui.ensure_loaded, name="rag-load-models", daemon=True).start()
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
