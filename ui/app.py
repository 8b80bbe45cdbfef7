"""The chat page's layout and event wiring (Gradio) over :class:`ui.chat.ChatUI`.

Example:
    >>> from rag import RAG
    >>> ui = ChatUI(RAG.from_config("configs/default.yaml"))
    >>> build_app(ui).queue().launch(server_name="127.0.0.1", server_port=7860)

``rag serve`` starts it through :func:`ui.server.serve`, which adds the request guard.
"""

from __future__ import annotations

import gradio as gr  # ui/__init__.py has turned Gradio's analytics off before this import

from . import history, render, viewer
from .chat import TEMPERATURE_MAX, ChatUI, new_session
from .inputs import ChatHistory, SettingSlider
from .library import ArticlesPanel
from .rating import Ratings

# localStorage key of the past chats (gr.BrowserState); the value is encrypted per server process.
HISTORY_KEY = "rag_past_chats"
# Gradio deletes the files it received every 5 minutes once they are 30 minutes old (ui.tempspace caps the rest).
DELETE_CACHE = (300, 1800)


# -- layout -----------------------------------------------------------------------------
def _side_panel(ui: ChatUI) -> tuple:
    """Settings (sliders, the cautious box), index status and the rebuild control."""
    cfg, gen_cfg = ui.cfg, ui.rag.config.generation
    with gr.Sidebar(label="Settings", open=True, position="left", elem_id="settings"):
        gr.Markdown("### Settings")
        top_k = SettingSlider(
            1,
            cfg.max_top_k,
            value=min(ui.rag.config.retrieval.top_k, cfg.max_top_k),
            step=1,
            label="Passages to retrieve (top-k)",
            elem_id="top-k",
        )
        temperature = SettingSlider(
            0.0,
            TEMPERATURE_MAX,
            value=gen_cfg.temperature,
            step=0.05,
            label="Temperature (0 = greedy)",
            elem_id="temperature",
        )
        max_tokens = SettingSlider(
            16,
            cfg.max_new_tokens_limit,
            value=min(gen_cfg.max_new_tokens, cfg.max_new_tokens_limit),
            step=1,
            label="Max new tokens",
            elem_id="max-new-tokens",
        )
        cautious = gr.Checkbox(
            value=ui.rag.config.evidence.abstention == "cautious",
            label="Cautious: decline unless the articles clearly answer",
            info="Says \"I could not find\" several times as often to questions the articles do not answer, "
            "and more often to ones they do (README 'Quality')",
            elem_id="cautious",
        )
        gr.Markdown("### Index")
        status = gr.HTML(ui.status(), elem_id="index-status")
        refresh = gr.Button("Refresh status", size="sm")
        gr.Markdown("### Rebuild index from folder")
        folder = gr.Textbox(
            value=ui.default_folder,
            max_length=4096,
            label="Folder of articles",
            info="Allowed: " + ", ".join(ui.display.show(r) for r in ui.allowed_roots),
            elem_id="rebuild-folder",
        )
        rebuild_btn = gr.Button("Rebuild index", elem_id="rebuild")
        rebuild_msg = gr.HTML(elem_id="rebuild-message")
    return top_k, temperature, max_tokens, cautious, status, refresh, folder, rebuild_btn, rebuild_msg


def _articles_panel(ui: ChatUI, demo: gr.Blocks, status: gr.HTML) -> None:
    """Upload files or a .zip, remove an upload (only where ui.upload_enabled); the list of uploads is read
    again each time a page loads, so an upload made since the server started can be removed from a fresh page."""
    if not ui.upload_enabled:
        return
    panel = ArticlesPanel(ui)
    with gr.Accordion("Add articles", open=False, elem_id="add-articles"):
        files = gr.File(file_count="multiple", type="filepath", label="Articles or a .zip", elem_id="upload-files")
        gr.Markdown(f"Accepted: {panel.limits.describe()}.", elem_classes=["rag-upload-limits"])
        upload_btn = gr.Button("Upload and index", elem_id="upload")
        upload_msg = gr.HTML(elem_id="upload-message")
        uploaded = gr.Dropdown(
            choices=panel.uploads(), value=None, label="Uploaded articles", elem_id="uploaded", allow_custom_value=False
        )
        remove_btn = gr.Button("Remove from the index", size="sm", elem_id="remove-upload")

    def upload(paths: list | None, progress=gr.Progress(track_tqdm=True)) -> tuple:
        return (*panel.upload(paths, progress), None)

    # One build at a time through ui.building(), which refuses a second one at once with a message
    # (a Gradio concurrency limit would instead hold it in line and run it after the first).
    upload_btn.click(
        upload, inputs=[files], outputs=[upload_msg, status, uploaded, files], api_name="upload", concurrency_limit=None
    )
    remove_btn.click(
        panel.remove,
        inputs=[uploaded],
        outputs=[upload_msg, status, uploaded],
        api_name="remove_upload",
        concurrency_limit=None,
    )
    demo.load(
        lambda: gr.update(choices=panel.uploads(), value=None),
        outputs=[uploaded],
        api_visibility="private",
        queue=False,
    )


def _history_panel() -> tuple:
    """The list of past chats (kept in this browser) and its delete button."""
    with gr.Accordion("Past chats (kept in this browser)", open=True, elem_id="past-chats-box"):
        past = gr.Radio(choices=[], value=None, label="Past chats", show_label=False, elem_id="past-chats")
        delete = gr.Button("Delete selected chat", size="sm", elem_id="delete-chat")
    return past, delete


def _wire_history(
    ui: ChatUI,
    demo: gr.Blocks,
    answered: list,
    chatbot: gr.Chatbot,
    session: gr.State,
    sources: gr.HTML,
    box: gr.Textbox,
    past: gr.Radio,
    delete: gr.Button,
    clear: gr.Button,
) -> None:
    saved = gr.BrowserState([], storage_key=HISTORY_KEY)
    chat_id = gr.State(None)
    limit = ui.cfg.max_question_chars

    def save(cid, chat, sess, stored):
        stored, cid = history.save_chat(stored, cid, chat, sess)
        return cid, stored, gr.update(choices=history.choices(stored), value=cid)

    def open_(cid, stored):
        chat, sess, cid = history.open_chat(stored, cid, max_question_chars=limit)
        return chat, sess, render.sources_panel(sess["sections"]), "", cid

    def delete_(selected, cid, stored):
        stored = history.delete_chat(stored, selected)
        return stored, gr.update(choices=history.choices(stored), value=None), (None if selected == cid else cid)

    for event in answered:
        event.then(
            save,
            inputs=[chat_id, chatbot, session, saved],
            outputs=[chat_id, saved, past],
            api_visibility="private",
            queue=False,
        )
    past.input(
        open_,
        inputs=[past, saved],
        outputs=[chatbot, session, sources, box, chat_id],
        api_visibility="private",
        queue=False,
    )
    delete.click(
        delete_, inputs=[past, chat_id, saved], outputs=[saved, past, chat_id], api_visibility="private", queue=False
    )
    for cleared in (clear.click, chatbot.clear):  # a new chat is saved under a new id
        cleared(lambda: (None, gr.update(value=None)), outputs=[chat_id, past], api_visibility="private", queue=False)
    demo.load(
        lambda stored: gr.update(choices=history.choices(stored), value=None),
        inputs=[saved],
        outputs=[past],
        api_visibility="private",
        queue=False,
    )


def _viewer_panel(ui: ChatUI) -> None:
    """The source viewer: the page's JS (render.JS) fills the hidden request box and clicks the hidden button."""
    gr.Markdown("### Article")
    shown = gr.HTML(viewer.VIEWER_PLACEHOLDER, elem_id="source-viewer")
    request = gr.Textbox(visible="hidden", elem_id="viewer-request", max_length=viewer.MAX_REQUEST_CHARS)
    go = gr.Button("open", visible="hidden", elem_id="viewer-open")
    go.click(ui.view_source, inputs=[request], outputs=[shown], api_name="source", queue=False).then(
        None, js=viewer.SCROLL_JS
    )


def _rating_row() -> tuple:
    """The message after a thumbs up/down, and the optional comment on the rated answer."""
    rated = gr.HTML(elem_id="rating-message")
    with gr.Row():
        comment = gr.Textbox(
            show_label=False,
            placeholder="Comment on the answer you rated (optional)",
            max_length=2000,
            scale=6,
            elem_id="rating-comment",
        )
        comment_btn = gr.Button("Send comment", scale=1, min_width=80, elem_id="send-comment")
    return rated, comment, comment_btn


def build_app(ui: ChatUI) -> gr.Blocks:
    """The Gradio page for ``ui``: chat, sources, settings side panel, rebuild, API."""
    cfg = ui.cfg
    with gr.Blocks(
        title="Ask the articles", analytics_enabled=False, fill_width=True, delete_cache=DELETE_CACHE
    ) as demo:
        session = gr.State(new_session())
        top_k, temperature, max_tokens, cautious, status, refresh, folder, rebuild_btn, rebuild_msg = _side_panel(ui)
        ratings = Ratings(ui)
        gr.Markdown(
            "## Ask the articles\nAnswers come only from the indexed articles; markers such as [1] link to their sources."
        )
        if ui.model.warning:  # said once, at the top of the page, not with every answer
            gr.Markdown(f"**Note:** {ui.model.warning}", elem_id="model-warning")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = ChatHistory(
                    elem_id="chat",
                    label="Chat",
                    show_label=False,  # the label box sat over the first line of a scrolled chat
                    height=560,
                    latex_delimiters=[],
                    sanitize_html=True,
                    feedback_options=("Like", "Dislike"),
                    buttons=["copy"],
                    placeholder="Ask a question about the articles, or try an example below.",
                )
                with gr.Row():
                    box = gr.Textbox(
                        show_label=False,
                        placeholder="Ask about the articles…",
                        scale=6,
                        max_lines=4,
                        max_length=cfg.max_question_chars,
                        elem_id="question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    clear = gr.Button("Clear", scale=1, min_width=80, elem_id="clear")
                with gr.Row(elem_id="examples"):
                    example_buttons = [gr.Button(q, size="sm", elem_classes=["rag-example"]) for q in cfg.examples]
                rated, comment, comment_btn = _rating_row()
                past, delete_chat = _history_panel()
                _articles_panel(ui, demo, status)
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(render.SOURCES_PLACEHOLDER, elem_id="sources", max_height=render.SOURCES_MAX_HEIGHT)
                _viewer_panel(ui)

        # No Gradio limit on answering events: every request reaches ui.queue, which runs
        # ui.generation_concurrency at once, keeps ui.max_queue waiting and says "busy" past
        # that (Gradio's own queue would keep them waiting silently, or fail opaquely).
        chat_io = dict(outputs=[chatbot, session, sources, box], concurrency_limit=None, show_progress="minimal")
        settings_in = [top_k, temperature, max_tokens, cautious]
        answered = [
            box.submit(ui.respond, inputs=[box, chatbot, session, *settings_in], api_name="chat", **chat_io),
            send.click(ui.respond, inputs=[box, chatbot, session, *settings_in], api_visibility="private", **chat_io),
        ]
        for b in example_buttons:
            answered.append(
                b.click(ui.respond, inputs=[b, chatbot, session, *settings_in], api_visibility="private", **chat_io)
            )
        _wire_history(ui, demo, answered, chatbot, session, sources, box, past, delete_chat, clear)
        chatbot.like(ratings.like, inputs=[session], outputs=[rated, session], api_visibility="private", queue=False)
        comment_btn.click(
            ratings.comment, inputs=[session, comment], outputs=[rated, comment], api_visibility="private", queue=False
        )
        clear.click(ui.clear, outputs=[chatbot, session, sources, box], api_visibility="private", queue=False)
        # The chat's own trash icon must forget the conversation too, not only the messages.
        chatbot.clear(ui.clear, outputs=[chatbot, session, sources, box], api_visibility="private", queue=False)

        def rebuild(folder_text: str, progress=gr.Progress(track_tqdm=True)) -> tuple[str, str]:
            return ui.rebuild(folder_text, progress)

        rebuild_btn.click(
            rebuild, inputs=[folder], outputs=[rebuild_msg, status], api_name="rebuild", concurrency_limit=None
        )  # see _articles_panel
        refresh.click(ui.status, outputs=[status], api_name="status", queue=False)
        demo.load(ui.status, outputs=[status], api_visibility="private", queue=False)
        gr.api(ui.ask, api_name="ask", concurrency_limit=None)
    return demo
