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
with a ``FutureWarning`` naming the new key. A key written both ways in one file keeps the
nested value; an override (``--set``) of a flat key sets the nested keys, so it wins over the file.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError


class NoSettings(BaseModel):
    """The settings of a registry entry that declares no ``Options``."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _backends(module: str) -> dict[str, Any]:
    # Imported when a config is validated: rag.config must not pull in torch or llama.cpp at import.
    return importlib.import_module(f"rag.{module}").BACKENDS


def _options(entry: Any) -> type[BaseModel]:
    return getattr(entry, "Options", NoSettings)


def options_class(name: str, module: str = "generation") -> type[BaseModel]:
    """The ``Options`` model of the backend registered as ``name`` in ``rag.<module>.BACKENDS`` (ConfigError naming the choices)."""
    return _options(_backends(module)[name])


def _validated(name: str, raw: Any, module: str, prefix: str) -> BaseModel:
    from .base import _describe

    cls = options_class(name, module)
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_unset=True)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config key '{prefix}.{name}' must be a mapping of {name}'s settings "
            f"({', '.join(cls.model_fields) or 'it has none'}), got {raw!r}"
        )
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, cls, prefix=f"{prefix}.{name}")) from None


def _owners(config: type[BaseModel], key: str) -> list[str]:
    return [n for n, b in _backends(config.backends_from).items() if key in _options(b).model_fields]


def _warn_deprecated(prefix: str, key: str, owners: list[str]) -> None:
    new = " and ".join(f"{prefix}.{n}.{key}" for n in owners)
    warnings.warn(
        f"{prefix}.{key} is deprecated; write {new} (configs/default.yaml shows the layout)",
        FutureWarning,
        stacklevel=3,
    )


def override_keys(config: type[BaseModel] | None, key: str) -> list[str]:
    """Where an override of ``key`` (``--set section.key=...``) goes: ``key`` itself, or, for an old
    flat key, the same key in each backend section declaring it (with the deprecation warning).

    An override comes after the file, so ``--set generation.gguf_type=packaged`` on a file that
    lists ``generation.llama_server.gguf_type`` must reach the nested key, not lose to it.
    """
    if "." in key or not getattr(config, "backends_from", ""):
        return [key]
    if key in config.model_fields or key in _backends(config.backends_from):
        return [key]
    owners = _owners(config, key)
    if owners:
        _warn_deprecated(config.section, key, owners)
    return [f"{n}.{key}" for n in owners] or [key]  # an unknown key is refused by validation, naming it


def backend_sections(config: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a config section) with each backend's settings validated in its own section.

    ``config`` names its registry's module in ``backends_from`` (``generation``: the
    registry is ``rag.generation.BACKENDS``) and its key prefix in ``section``; an entry
    without ``Options`` has no settings of its own.

    Raises:
        ConfigError: a key that is neither a shared field, a backend's section nor an old flat
            key of some backend (names the valid keys), or a bad value in a section (names it).
    """
    module, prefix = config.backends_from, config.section
    backends = _backends(module)
    out = {k: v for k, v in data.items() if k in config.model_fields}
    sections: dict[str, Any] = {k: v for k, v in data.items() if k not in out and k in backends}
    flat = {k: v for k, v in data.items() if k not in out and k not in sections}
    for key, value in flat.items():
        owners = _owners(config, key)
        if not owners:
            valid = sorted([*config.model_fields, *(n for n, b in backends.items() if _options(b).model_fields)])
            raise ConfigError(f"unknown config key '{prefix}.{key}'; valid keys here: {valid}")
        _warn_deprecated(prefix, key, owners)
        for name in owners:
            current = sections.get(name, {})
            current = current.model_dump(exclude_unset=True) if isinstance(current, BaseModel) else dict(current or {})
            sections[name] = {key: value, **current}  # the nested value wins
    for name, backend in backends.items():
        if name in sections or _options(backend).model_fields:
            out[name] = _validated(name, sections.get(name, {}), module, prefix)
    return out
