"""The base of the errors a user is meant to read, and the one for bad input.

Every user-facing error of ``rag`` says what went wrong and how to fix it; catching
:class:`RagError` catches all of them, so a front end (the CLI, the web UI) can show the
message as it is and treat anything else as a bug to log. Each also keeps the built-in base
it had (``ConfigError`` is a ``ValueError``, ``IndexNotFoundError`` a ``FileNotFoundError``,
``GeneratorError`` and ``BuildError`` ``RuntimeError``s), so older ``except`` clauses still work.

Example:
    >>> try:
    ...     conversation.ask("x" * 10_000)
    ... except RagError as exc:
    ...     print(exc)
    the question is 10000 characters long; the limit is 2000 (ui.max_question_chars)
"""

from __future__ import annotations


class RagError(Exception):
    """An error whose message is written for the user: what went wrong and what to do."""


class InputError(RagError, ValueError):
    """A question, history turn, setting or path given by the user is not acceptable.

    Also a :class:`ValueError`, so callers that caught ``ValueError`` for bad input still do.
    """


class ConfigError(RagError, ValueError):
    """A configuration file, override or name is invalid; the message names the key and the fix.

    Raised at the edge, where values are checked once (pydantic, :mod:`rag.config`), and by a
    :class:`~rag.registry.Registry` asked for a name it does not hold.
    """
