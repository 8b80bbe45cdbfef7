"""The chat page's layout and event wiring (Gradio) over :class:`ui.chat.ChatUI`.

Example:
    >>> from rag import RAG
    >>> ui = ChatUI(RAG.from_config("configs/default.yaml"))
    >>> build_app(ui).queue().launch(server_name="127.0.0.1", server_port=7860)

``rag serve`` starts it through :func:`ui.server.serve`, which adds the request guard.
"""

from __future__ import annotations

import gradio as gr  # ui/__init__.py has turned Gradio's analytics off before this import

from . import render
from .chat import TEMPERATURE_MAX, ChatUI, new_session


# -- layout -----------------------------------------------------------------------------
def _side_panel(ui: ChatUI) -> tuple:
    """Settings sliders, index status and the rebuild control."""
    cfg, gen_cfg = ui.cfg, ui.rag.config.generation
    with gr.Sidebar(label="Settings", open=True, position="left", elem_id="settings"):
        gr.Markdown("### Settings")
        top_k = gr.Slider(1, cfg.max_top_k, value=min(ui.rag.config.retrieval.top_k, cfg.max_top_k), step=1, label="Passages to retrieve (top-k)", elem_id="top-k")
        temperature = gr.Slider(0.0, TEMPERATURE_MAX, value=gen_cfg.temperature, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
        max_tokens = gr.Slider(16, cfg.max_new_tokens_limit, value=min(gen_cfg.max_new_tokens, cfg.max_new_tokens_limit), step=1, label="Max new tokens", elem_id="max-new-tokens")
        gr.Markdown("### Index")
        status = gr.HTML(ui.status(), elem_id="index-status")
        refresh = gr.Button("Refresh status", size="sm")
        gr.Markdown("### Rebuild index from folder")
        folder = gr.Textbox(value=ui.default_folder, max_length=4096, label="Folder of articles", info="Allowed: " + ", ".join(ui.display.show(r) for r in ui.allowed_roots), elem_id="rebuild-folder")
        rebuild_btn = gr.Button("Rebuild index", elem_id="rebuild")
        rebuild_msg = gr.HTML(elem_id="rebuild-message")
    return top_k, temperature, max_tokens, status, refresh, folder, rebuild_btn, rebuild_msg


def build_app(ui: ChatUI) -> gr.Blocks:
    """The Gradio page for ``ui``: chat, sources, settings side panel, rebuild, API."""
    cfg = ui.cfg
    with gr.Blocks(title="Ask the articles", analytics_enabled=False, fill_width=True) as demo:
        session = gr.State(new_session())
        top_k, temperature, max_tokens, status, refresh, folder, rebuild_btn, rebuild_msg = _side_panel(ui)
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
