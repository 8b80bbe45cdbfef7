"""Gradio inputs that turn malformed API values into messages instead of tracebacks.

The page always sends well-formed values, but ``/chat`` is also an API: a caller can send
``top_k="abc"``, ``top_k=true`` or a chat given as text. Gradio's own Slider compares the
value with its bounds (``TypeError`` for text, and ``True`` passes as 1), and its Chatbot
validates the chat with pydantic: both failed with ``{"error": null}`` and a traceback in
the log. These subclasses are Gradio "templates" (``is_template``), so the page draws them
as the ordinary Slider and Chatbot.

Example:
    >>> top_k = SettingSlider(1, 20, value=4, step=1, label="top-k")   # "abc" reaches the handler, which names it
    >>> chat = ChatHistory(elem_id="chat")                              # "hello" as the chat: a clear gr.Error
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.components.chatbot import ChatbotDataMessages
from pydantic import ValidationError

CHAT_SHAPE = 'a list of messages such as [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'

def _kind(value: Any) -> str:
    return "text" if isinstance(value, str) else type(value).__name__

class CheckedMessages(ChatbotDataMessages):
    """Gradio's chat data model, refusing anything else with a message (``gr.Error``, no traceback)."""

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> CheckedMessages:
        if not isinstance(obj, list):
            raise gr.Error(f"the chat must be {CHAT_SHAPE}; got {_kind(obj)}", print_exception=False)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
            raise gr.Error(
                f"the chat must be {CHAT_SHAPE}; chat{where}: {first['msg']}", print_exception=False
            ) from None

from gradio.events import Dependency

class ChatHistory(gr.Chatbot):
    """:class:`gradio.Chatbot` whose API input is checked by :class:`CheckedMessages`."""

    is_template = True
    data_model = CheckedMessages
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

class SettingSlider(gr.Slider):
    """:class:`gradio.Slider` that passes a value that is not a number (text, true/false) on unchanged.

    The handler's check (:func:`ui.chat.check_settings`) then refuses it with the setting's
    name, the value and the allowed range.
    """

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        if isinstance(payload, bool) or not isinstance(payload, int | float):
            return payload
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component
