"""Errors as the page shows them: what went wrong and what to do, never a traceback."""

from __future__ import annotations

from rag import (
    GeneratorError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    RagError,
)

# Errors whose message is written for the user: every one of rag's own (config, index,
# build, generator, input) subclasses RagError.
USER_ERRORS: tuple[type[BaseException], ...] = (RagError,)
# Failures that are not bugs: shown to the user and not logged with a traceback.
EXPECTED: tuple[type[BaseException], ...] = (*USER_ERRORS, ValueError, FileNotFoundError)


def friendly_error(exc: BaseException) -> str:
    """A one-paragraph message for the chat: what went wrong and what to do. Never a traceback."""
    if isinstance(exc, IndexNotFoundError):
        return f"There is no index yet: {exc}. Or use 'Rebuild index from folder' in the side panel."
    if isinstance(exc, (IndexMismatchError, IndexCorruptError)):
        return f"The index cannot be used: {exc}. Or use 'Rebuild index from folder' in the side panel."
    if isinstance(exc, GeneratorError):
        return f"The model failed to answer: {exc}"
    if isinstance(exc, (*USER_ERRORS, ValueError)):
        return str(exc)
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:300] + " …"
    return f"Something went wrong while answering ({type(exc).__name__}{': ' + text if text else ''}). The server is still running; details are in its log."
