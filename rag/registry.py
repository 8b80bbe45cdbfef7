"""The one shape of every extension point: a registry of name -> factory.

Generators, embedders, file loaders (and the stores and retrievers that follow the same
shape) are chosen by name from a :class:`Registry`. It is a plain ``dict`` (tests
``monkeypatch.setitem`` it, the config lists its keys as the allowed names), except that a
missing name raises :class:`~rag.errors.ConfigError` listing the names it holds, sorted.

Example:
    >>> SHAPES = Registry("shape", {"square": Square, "circle": Circle})
    >>> SHAPES["triangle"]
    Traceback (most recent call last):
    rag.errors.ConfigError: unknown shape 'triangle'; choose from ['circle', 'square']
"""

from __future__ import annotations

from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(dict[str, T]):
    """Name -> factory, whose unknown-name error lists the sorted names.

    Args:
        kind: what the names name, for the error (``generation backend``).
        entries: the first names and their factories.
    """

    def __init__(self, kind: str, entries: dict[str, T] | None = None) -> None:
        super().__init__(entries or {})
        self.kind = kind

    def __missing__(self, name: Any) -> T:
        raise ConfigError(f"unknown {self.kind} {name!r}; choose from {sorted(self)}")

    def register(self, name: str, factory: T) -> T:
        """Add ``factory`` under ``name`` and return it."""
        self[name] = factory
        return factory
