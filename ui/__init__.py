"""The chat web UI over :mod:`rag` (``rag serve``): :mod:`ui.server` starts it, :mod:`ui.app` lays
it out, :mod:`ui.chat` holds what it does."""

import os

# Must be set before gradio is imported: gradio reads it at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
