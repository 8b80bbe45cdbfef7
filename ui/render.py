"""HTML and Markdown the chat UI shows: answers with linked [n] markers, sources, index status.

Article text, titles, file names, dates and model output are untrusted (articles come from
anywhere, and the model may repeat them), so every such value is escaped here before it
reaches the page. Marker links point at ``#src-<turn>-<n>`` anchors in the Sources panel.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlparse

from rag import NOT_FOUND, Answer, Evidence, Passage, pages_label, parse_markers

# Same shape as the markers the pipeline parses: [1], [1, 3], [1][2], [1-3].
MARKER = re.compile(r"\[(\s*\d+(?:\s*(?:,|;|-|\u2013)\s*\d+)*\s*)\]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")

SOURCES_PLACEHOLDER = '<div class="rag-sources-empty">Sources of the answer appear here. Click a marker such as [1] in an answer to jump to its source.</div>'


def esc(value: Any) -> str:
    """HTML-escape any value (None becomes '')."""
    return html.escape("" if value is None else str(value), quote=True)


def md_text(text: str) -> str:
    """Untrusted text made safe for the chat's Markdown: HTML escaped and Markdown syntax inert."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def source_anchor(turn: int, n: int) -> str:
    """Element id of passage ``n`` of answer ``turn`` in the Sources panel."""
    return f"src-{turn}-{n}"


def answer_markdown(text: str, turn: int, linkable: set[int], weak: Collection[int] = ()) -> str:
    """The answer as chat Markdown: text escaped, each [n] with n in ``linkable`` a link to its source.

    ``[1, 3]`` becomes two links, ``[1][3]``; markers naming no linkable passage stay plain text.
    Markers in ``weak`` (citations the checker found weakly or not supported) get a ⚠ after
    the link, whose hover text says why, so the reader knows which claims to check first.
    """
    out: list[str] = []
    last = 0
    for m in MARKER.finditer(text):
        out.append(md_text(text[last : m.start()]))
        nums = [n for n in dict.fromkeys(parse_markers(m.group(0))) if n in linkable]
        if nums:
            out.append(
                "".join(
                    f"[\\[{n}\\]](#{source_anchor(turn, n)})"
                    + (f'[⚠](#{source_anchor(turn, n)} "{WEAK_MARK_TITLE}")' if n in weak else "")
                    for n in nums
                )
            )
        else:
            out.append(md_text(m.group(0)))
        last = m.end()
    out.append(md_text(text[last:]))
    return "".join(out)


def searched_for_html(query: str) -> str:
    """The line under a follow-up that shows what was actually retrieved with."""
    return f'<span class="rag-query">↳ searched for: <em>{esc(query)}</em></span>'


def error_markdown(message: str) -> str:
    """An error shown as a chat message (escaped; never a traceback)."""
    return f'<span class="rag-error"><b>Error:</b> {esc(message)}</span>'


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


# Shown in the answer's place until the checked answer is ready (replaced, never followed by other text).
CHECKING = '<span class="rag-checking">Checking the answer against the articles…</span>'


def lead_markdown(lead: str, span: tuple[int, int] | None, turn: int, linkable: set[int], weak: Collection[int]) -> str:
    """The lead as chat Markdown, its answer phrase (``span``) in bold."""
    if not span or not 0 <= span[0] < span[1] <= len(lead):
        return answer_markdown(lead, turn, linkable, weak)
    a, b = span
    return (
        answer_markdown(lead[:a], turn, linkable, weak)
        + "**"
        + md_text(lead[a:b].strip())
        + "**"
        + answer_markdown(lead[b:], turn, linkable, weak)
    )


def how_made_html(answer: Answer) -> str:
    """How the answer was made (its mode and the pipeline's notes), collapsed under the answer."""
    items = [MODE_LABELS.get(answer.mode, answer.mode), *answer.notes]
    body = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f'<details class="rag-how"><summary>How this answer was made</summary><ul>{body}</ul></details>'


def final_answer_markdown(answer: Answer, turn: int) -> str:
    """A finished answer: the lead (answer phrase bold), the articles' quotes under it as secondary text,
    and how it was made in a collapsed detail; a decline is its message alone."""
    linkable = {c.n for c in answer.citations}
    weak = {c.n for c in answer.citations if c.status in ("weak", "unsupported")}
    if not answer.lead or not answer.text.startswith(answer.lead):
        body = answer_markdown(answer.text, turn, linkable, weak)
    else:
        body = lead_markdown(answer.lead, answer.lead_span, turn, linkable, weak)
        rest = answer.text[len(answer.lead) :].strip()
        if rest:
            body += f'\n\n<span class="rag-quotes">{answer_markdown(rest, turn, linkable, weak)}</span>'
    return body + "\n\n" + how_made_html(answer)


# Said under every finished answer: how it was made (Answer.mode).
MODE_LABELS = {
    "generated": "The first sentence was written by the model from the quotes below it and checked against its passage.",
    "evidence": "Quoted from the articles: the sentence that answers best leads, the others follow.",
    "declined": "Declined: the articles do not answer this.",
}

# Verdicts of the citation verifier (Citation.status, when the pipeline sets one).
WEAK_MARK_TITLE = "this citation is only weakly supported by its passage: check it"
_STATUS_LABELS = {"weak": "weakly supported by this passage", "unsupported": "not supported by this passage"}


def highlighted_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` escaped, with the ``(start, end)`` spans (offsets into ``text``) wrapped in ``<mark>``."""
    out: list[str] = []
    last = 0
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if end <= last:
            continue
        start = max(start, last)
        out.append(esc(text[last:start]))
        out.append(f'<mark class="rag-evidence">{esc(text[start:end])}</mark>')
        last = end
    out.append(esc(text[last:]))
    return "".join(out)


def _evidence_spans(p: Passage, evidence: Sequence[Evidence]) -> list[tuple[int, int]]:
    """The evidence sentences of passage ``p`` as offsets into its chunk text."""
    c = p.chunk
    return [(e.start - c.start, e.end - c.start) for e in evidence if e.n == p.n and c.start <= e.start < c.end]


def _source_item(
    turn: int,
    p: Passage,
    *,
    support: float | None = None,
    added: bool = False,
    status: str = "",
    evidence: Sequence[Evidence] = (),
) -> str:
    c = p.chunk
    meta = []
    if c.date:
        meta.append(f'<span class="rag-date">{esc(c.date)}</span>')
    meta.append(f'<span class="rag-file">{esc(c.source)}</span>')
    if c.pages:
        meta.append(f'<span class="rag-pages">{esc(pages_label(c.pages))}</span>')
    # Relevance (cosine to the question for dense and hybrid retrieval), not the raw ranking
    # score: an RRF score of 0.016-0.033 says nothing to a reader.
    meta.append(
        f'<span class="rag-score" title="how close this passage is to the question (0-1)">relevance {p.relevance_or_score:.2f}</span>'
    )
    if support is not None:
        meta.append(
            f'<span class="rag-support">support {support:.2f}{" (marker placed by checker)" if added else ""}</span>'
        )
    if status in _STATUS_LABELS:
        meta.append(f'<span class="rag-status-{esc(status)}">{_STATUS_LABELS[status]}</span>')
    url = _safe_url(c.url)
    link = (
        f' <a class="rag-url" href="{esc(url)}" target="_blank" rel="noopener noreferrer nofollow">link</a>'
        if url
        else ""
    )
    # What the source viewer asks the server for (ui.viewer): the article, the passage, its evidence.
    view = json.dumps(
        {
            "doc": c.doc_id,
            "n": p.n,
            "start": c.start,
            "end": c.end,
            "ev": [[e.start, e.end] for e in evidence if e.n == p.n],
        }
    )
    return (
        f'<li class="rag-source" id="{source_anchor(turn, p.n)}" data-n="{p.n}" data-view="{esc(view)}">'
        f'<div class="rag-src-title"><span class="rag-n">[{p.n}]</span> {esc(c.title)}{link}'
        f'<button type="button" class="rag-view" title="show this passage in its article">Read in article</button></div>'
        f'<div class="rag-src-meta">{" · ".join(meta)}</div>'
        f'<blockquote class="rag-src-text">{highlighted_text(c.text, _evidence_spans(p, evidence))}</blockquote></li>'
    )


def _turn_head(turn: int, question: str, query: str) -> str:
    searched = (
        f'<div class="rag-turn-query">searched for: <em>{esc(query)}</em></div>' if query and query != question else ""
    )
    return f'<div class="rag-turn-head"><b>Q{turn}:</b> {esc(question)}</div>{searched}'


def retrieved_section(turn: int, question: str, query: str, passages: Sequence[Passage]) -> str:
    """Sources panel while an answer streams: every retrieved passage, not yet split by citation."""
    items = "".join(_source_item(turn, p) for p in passages) or "<li>No passages were retrieved.</li>"
    return (
        f'<section class="rag-turn" id="turn-{turn}">{_turn_head(turn, question, query)}'
        f'<h4>Retrieved passages (answer in progress)</h4><ol class="rag-sources">{items}</ol></section>'
    )


def answer_section(turn: int, answer: Answer, query: str) -> str:
    """Sources panel for a finished answer: cited sources, then the uncited ones collapsed."""
    by_n = {p.n: p for p in answer.passages}
    cited_ns = [c.n for c in answer.citations if c.n in by_n]
    cited = "".join(
        _source_item(turn, by_n[c.n], support=c.support, added=c.added, status=c.status, evidence=answer.evidence)
        for c in answer.citations
        if c.n in by_n
    )
    uncited = [p for p in answer.passages if p.n not in cited_ns]
    parts = [f'<section class="rag-turn" id="turn-{turn}">{_turn_head(turn, answer.question, query)}']
    if cited:
        parts.append(f'<h4>Sources ({len(cited_ns)})</h4><ol class="rag-sources rag-cited">{cited}</ol>')
    elif (
        answer.mode == "declined" or answer.text == NOT_FOUND
    ):  # "not found", or "not covered" below the relevance floor
        parts.append('<div class="rag-none">No retrieved passage answers this question.</div>')
    else:
        parts.append('<div class="rag-none">The answer cites no passage; check it against the passages below.</div>')
    if uncited:
        items = "".join(_source_item(turn, p, evidence=answer.evidence) for p in uncited)
        parts.append(
            f'<details class="rag-uncited"><summary>Retrieved but not cited ({len(uncited)})</summary>'
            f'<ol class="rag-sources">{items}</ol></details>'
        )
    parts.append("</section>")
    return "".join(parts)


def sources_panel(sections: Sequence[tuple[str, str]]) -> str:
    """The whole panel: the latest answer's sources open, earlier answers' collapsed below.

    Args:
        sections: ``(question, section HTML)`` per answer, oldest first.
    """
    if not sections:
        return SOURCES_PLACEHOLDER
    latest = sections[-1][1]
    earlier = "".join(
        f'<details class="rag-earlier"><summary>Earlier: {esc(q)}</summary>{html_}</details>'
        for q, html_ in reversed(sections[:-1])
    )
    return f'<div class="rag-sources-panel">{latest}{earlier}</div>'


_THRESHOLD_SOURCES = {
    "configured": "set in the config",
    "index": "calibrated for this index",
    "calibrated": "shipped for the embedder",
}


def _threshold_text(info: dict[str, Any]) -> str | None:
    """The "not covered" relevance threshold and where it comes from; says so when there is none."""
    source = info.get("min_relevance_source")
    if source is None:
        return None
    years = "; a year the question names that no retrieved passage writes"  # always in force (rag.answering.declining)
    if source == "uncalibrated":
        return "off: no threshold is calibrated for this embedder (run rag calibrate)" + years
    text = f"relevance {info.get('min_relevance', 0):.3f} ({_THRESHOLD_SOURCES.get(source, source)})"
    rule = info.get("term_coverage_rule")
    if rule:  # (min_term_coverage, below_relevance): only when in force
        text += (
            f"; below relevance {rule[1]:.2f} when the passages hold under {rule[0]:.0%} of the question's rare words"
        )
    return text + years


def status_html(info: dict[str, Any] | None, error: str | None = None, note: str = "") -> str:
    """Index status: articles, chunks, embedder, generator, when built."""
    if info is None:
        body = f'<div class="rag-status-missing">{esc(error or "No index yet.")}</div>'
    else:
        rows = [
            ("Articles", info.get("articles")),
            ("Chunks", info.get("chunks")),
            ("Embedder", info.get("embedder")),
            ("Model", info.get("model")),
            ("Generator", info.get("generator")),
            ("Built", info.get("built_at")),
            ("Index", info.get("index_path")),
            ("Not covered below", _threshold_text(info)),
        ]
        body = (
            "<table class='rag-status'>"
            + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v is not None)
            + "</table>"
        )
    if note:
        body += f'<div class="rag-status-note">{esc(note)}</div>'
    return f'<div id="rag-status-body">{body}</div>'


class AnswerView:
    """The chat messages of one answer, updated as :meth:`rag.Conversation.stream_events` events arrive.

    A rewritten follow-up shows as *searched for: …*; reasoning streams into a collapsed
    accordion above the answer; the answer's place shows "checking…" until the checked answer
    (lead, then the articles' quotes, markers linked) is ready, and nothing shown is taken back.

    Args:
        chat: the page's chat messages (appended to and updated in place).
        turn: the answer's number in the conversation (for the source anchors).
        question: what the user asked.
    """

    def __init__(self, chat: list[dict[str, Any]], turn: int, question: str) -> None:
        self.chat, self.turn, self.question = chat, turn, question
        self.query: str | None = None
        self.answer: Answer | None = None
        self._answer_i: int | None = None
        self._reasoning_i: int | None = None
        self._reasoning: list[str] = []
        self._passage_ns: set[int] = set()
        self._live: str | None = None
        self._t_reason = time.perf_counter()

    def add(self, event: Any) -> bool:
        """Show ``event``; True when the page needs an update.

        Nothing shown is later taken back: until the checked answer is ready the answer's place
        holds a short "checking" line, then the whole answer (lead, quotes) replaces that line.
        """
        if event.kind == "rewritten":
            self.query = event.text
            self.chat.append({"role": "assistant", "content": searched_for_html(event.text)})
        elif event.kind == "retrieved":
            self._passage_ns = {p.n for p in event.passages}
            self._live = retrieved_section(self.turn, self.question, self.query or self.question, event.passages)
            self._answer_i = self._put(self._answer_i, {"role": "assistant", "content": CHECKING})
        elif event.kind == "reasoning":
            self._reasoning.append(event.text)
            if self._reasoning_i is None:
                self._t_reason = time.perf_counter()
                self._reasoning_i = self._insert_before_answer()
            # "done" keeps the accordion collapsed while it streams.
            self.chat[self._reasoning_i] = {
                "role": "assistant",
                "content": md_text("".join(self._reasoning).strip()),
                "metadata": {"title": "Reasoning (thinking…)", "status": "done"},
            }
        elif event.kind == "done":
            self.answer = event.answer
            return False
        else:  # "answer": the final text, shown by finish() with its links and marks
            return False
        return True

    def _insert_before_answer(self) -> int:
        """A new message placed above the answer's (so reasoning reads before the answer it led to)."""
        if self._answer_i is None:
            self.chat.append({})
            return len(self.chat) - 1
        self.chat.insert(self._answer_i, {})
        self._answer_i += 1
        return self._answer_i - 1

    def _put(self, index: int | None, message: dict[str, Any]) -> int:
        if index is None:
            self.chat.append(message)
            return len(self.chat) - 1
        self.chat[index] = message
        return index

    @property
    def answer_index(self) -> int | None:
        """Where the answer is in the chat's messages."""
        return self._answer_i

    def live_section(self) -> list[tuple[str, str]]:
        """The Sources panel section of the answer in progress (none before retrieval)."""
        return [(self.question, self._live)] if self._live else []

    def finish(self) -> None:
        """Put the checked answer in its place (lead, quotes, how it was made); close the reasoning."""
        answer = self.answer
        if answer is None:
            return
        if self._reasoning_i is not None:
            self.chat[self._reasoning_i] = {
                "role": "assistant",
                "content": md_text(answer.reasoning or "".join(self._reasoning).strip()),
                "metadata": {
                    "title": "Reasoning",
                    "status": "done",
                    "duration": round(time.perf_counter() - self._t_reason, 1),
                },
            }
        self._answer_i = self._put(
            self._answer_i, {"role": "assistant", "content": final_answer_markdown(answer, self.turn)}
        )


# Height of the Sources panel's own scrolling box (gr.HTML's max_height, ui/app.py). Not CSS on #sources: Gradio 6
# puts the elem_id on the component's wrapper with an inline "overflow: visible", so a max-height there let the
# sources spill over the Article panel below (text on text); max_height scrolls the inner html-container instead.
SOURCES_MAX_HEIGHT = 360

CSS = """
/* Gradio's bundled Source Sans Pro SemiBold is a 5 KB stub without Latin letters, so bold text (the lead's answer
   phrase, source titles) fell back to DejaVu Sans Bold, larger than the text around it; its Bold file is complete. */
@font-face { font-family: 'Source Sans Pro'; src: url('static/fonts/SourceSansPro/SourceSansPro-Bold.woff2') format('woff2'); font-weight: 600; font-style: normal; }
@font-face { font-family: 'Source Sans Pro'; src: url('static/fonts/SourceSansPro/SourceSansPro-Bold.woff2') format('woff2'); font-weight: 700; font-style: normal; }
.rag-sources { padding-left: 0; list-style: none; margin: 4px 0; }
.rag-source { border-left: 3px solid var(--border-color-primary); padding: 4px 8px; margin: 8px 0; border-radius: 2px; transition: background 0.4s; }
mark.rag-evidence { background: var(--color-accent-soft); color: inherit; padding: 0 1px; border-radius: 2px; }
.rag-source.rag-focus { border-left-color: var(--color-accent); background: var(--color-accent-soft); }
.rag-src-title { font-weight: 600; }
.rag-n { color: var(--color-accent); margin-right: 4px; }
.rag-src-meta { font-size: 0.85em; opacity: 0.8; }
.rag-src-text { max-height: 11em; overflow-y: auto; white-space: pre-wrap; font-size: 0.88em; margin: 4px 0 0 0; padding: 4px 8px; border-left: 2px solid var(--border-color-primary); }
.rag-turn-head { margin-bottom: 2px; }
.rag-turn-query, .rag-query { font-size: 0.88em; opacity: 0.85; }
.rag-uncited summary, .rag-earlier summary { cursor: pointer; opacity: 0.85; margin-top: 6px; }
.rag-error { color: var(--error-text-color, #b91c1c); }
.rag-status-weak, .rag-status-unsupported { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.rag-status { font-size: 0.88em; width: 100%; }
.rag-status th, .rag-status td { padding: 2px 6px; }
.rag-status th { text-align: left; font-weight: 600; }
.rag-status td { word-break: normal; overflow-wrap: anywhere; }  /* long paths wrap; words stay whole where they fit */
.rag-sources-empty { opacity: 0.7; font-size: 0.95em; padding: 8px; }
.rag-quotes { font-size: 0.9em; opacity: 0.8; }
.rag-checking { font-style: italic; opacity: 0.75; }
.rag-how { font-size: 0.82em; opacity: 0.75; margin-top: 4px; }
.rag-how summary { cursor: pointer; }
.rag-how ul { margin: 2px 0 0 1em; padding: 0; }
"""

# Clicking a marker link scrolls its source into view (opening collapsed sections) and
# highlights it, instead of navigating. Gradio runs this once when the page loads.
JS = """
() => {
  // The source viewer (ui.viewer): the hidden request box and button carry the source item's data-view.
  const openViewer = (item) => {
    const box = document.querySelector('#viewer-request textarea, #viewer-request input');
    const go = document.getElementById('viewer-open');
    if (!item || !item.dataset.view || !box || !go) return;
    box.value = item.dataset.view;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => go.click(), 60);
  };
  document.addEventListener('click', (ev) => {
    const b = ev.target && ev.target.closest ? ev.target.closest('button.rag-view') : null;
    if (b) { ev.preventDefault(); openViewer(b.closest('li.rag-source')); return; }
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#src-"]') : null;
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    const el = document.getElementById(a.getAttribute('href').slice(1));
    if (!el) return;
    for (let p = el.parentElement; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    document.querySelectorAll('.rag-source.rag-focus').forEach((e) => e.classList.remove('rag-focus'));
    el.classList.add('rag-focus');
    el.scrollIntoView({behavior: 'smooth', block: 'center'});
    openViewer(el);
  }, true);
}
"""
