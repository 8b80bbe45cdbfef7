"""Generation backends' own settings: ``generation.<backend>``, validated by the backend's ``Options``.

:class:`~rag.config.GenerationConfig` keeps the backend's name and the fields every backend
shares (model, token limits, prompt shape). What only one backend takes lives in a section named
after it, validated by that backend's own ``Options`` (a frozen pydantic model, ``extra="forbid"``)
looked up through :data:`rag.generation.BACKENDS`; so one file plus one registry line adds a
backend with settings of its own, and nothing here names a backend::

    generation:
      backend: openai
      model: qwen2.5:7b
      openai: {base_url: "http://127.0.0.1:11434/v1", retries: 0}

Every registered backend with settings gets its section (its defaults when the file has none),
so ``cfg.generation.llama_server.gguf_type`` always reads.

Deprecated: the flat keys of the old layout (``generation.gguf_type``, ``--set
generation.retries=0``) still load; each goes to every backend that declares a setting of that
name (``gguf_type`` to ``llama_server`` and ``llama_cpp``, as before, when it applied to both),
with a ``FutureWarning`` naming the new key. A key written both ways keeps the nested value.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError


def _backends() -> dict[str, Any]:
    # Imported when a config is validated: rag.config must not pull in torch or llama.cpp at import.
    return importlib.import_module("rag.generation").BACKENDS


def options_class(name: str) -> type[BaseModel]:
    """The ``Options`` model of the backend registered as ``name`` (raises ConfigError naming the choices)."""
    return _backends()[name].Options


def _validated(name: str, raw: Any) -> BaseModel:
    from .base import _describe

    cls = options_class(name)
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_unset=True)
    if not isinstance(raw, dict):
        raise ConfigError(f"config key 'generation.{name}' must be a mapping of {name}'s settings "
                          f"({', '.join(cls.model_fields) or 'it has none'}), got {raw!r}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, cls, prefix=f"generation.{name}")) from None


def backend_sections(config: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a generation section) with each backend's settings validated in its own section.

    Raises:
        ConfigError: a key that is neither a shared field, a backend's section nor an old flat
            key of some backend (names the valid keys), or a bad value in a section (names it).
    """
    backends = _backends()
    out = {k: v for k, v in data.items() if k in config.model_fields}
    sections: dict[str, Any] = {k: v for k, v in data.items() if k not in out and k in backends}
    flat = {k: v for k, v in data.items() if k not in out and k not in sections}
    for key, value in flat.items():
        owners = [n for n, b in backends.items() if key in b.Options.model_fields]
        if not owners:
            valid = sorted([*config.model_fields, *(n for n, b in backends.items() if b.Options.model_fields)])
            raise ConfigError(f"unknown config key 'generation.{key}'; valid keys here: {valid}")
        new = " and ".join(f"generation.{n}.{key}" for n in owners)
        warnings.warn(f"generation.{key} is deprecated; write {new} (configs/default.yaml shows the layout)",
                      FutureWarning, stacklevel=2)
        for name in owners:
            current = sections.get(name, {})
            current = current.model_dump(exclude_unset=True) if isinstance(current, BaseModel) else dict(current or {})
            sections[name] = {key: value, **current}  # the nested value wins
    for name, backend in backends.items():
        if name in sections or backend.Options.model_fields:
            out[name] = _validated(name, sections.get(name, {}))
    return out
