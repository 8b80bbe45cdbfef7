"""A model's profile under the user's config: the settings a model needs, where the config leaves them open.

A profile (:mod:`rag.models.catalogue`) names :class:`GenerationConfig` and
:class:`EvidenceConfig` fields. A field the user set explicitly to something other than the
built-in default wins; every other field takes the profile's value. A value equal to the
built-in default does not count as the user's, because ``configs/default.yaml`` lists every
field with its default: a copy of it with only ``generation.model`` changed must still get
the model's settings (``generation.profile: none`` turns profiles off).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .stages import EvidenceConfig, GenerationConfig


def user_fields(section: BaseModel) -> set[str]:
    """Fields set explicitly (pydantic's ``model_fields_set``) to a value other than the built-in default."""
    fields = type(section).model_fields  # a generation backend's own section (an extra) is not one of them
    return {
        n
        for n in section.model_fields_set & fields.keys()
        if getattr(section, n) != fields[n].get_default(call_default_factory=True)
    }


def _per_backend(gen: GenerationConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """A profile's generation settings with each backend's own (``gguf_type``) put in its section.

    A profile names settings, not backends: one every llama.cpp backend declares goes to each of
    them, under the same rule as the shared fields (a value the user set there to other than the
    default wins).
    """
    sections = gen.__pydantic_extra__ or {}
    declared = {k for section in sections.values() for k in type(section).model_fields}
    out = {
        k: v for k, v in settings.items() if k not in declared
    }  # shared fields, and any typo (refused by the config)
    own = {k: v for k, v in settings.items() if k in declared}
    for name, section in sections.items():
        updates = {k: v for k, v in own.items() if k in type(section).model_fields and k not in user_fields(section)}
        if updates:
            out[name] = {**section.model_dump(include=section.model_fields_set), **updates}
    return out


def _section(cls: type[BaseModel], raw: Any) -> BaseModel | None:
    if raw is None:
        return cls()
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, dict):
        return cls(**raw)  # raises ConfigError naming the key
    return None  # not a mapping: left to the Config's own validation, which names it


def _sections(section: BaseModel) -> dict[str, Any]:
    """A generation config's backend sections, as validated (empty for other sections)."""
    return dict(section.__pydantic_extra__ or {})


def apply_profile(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a Config's raw sections) with the model's profile filled in where the user left fields open.

    Raises:
        ConfigError: the generation or evidence section is invalid (names the key).
    """
    from ..models.catalogue import profile_for

    gen = _section(GenerationConfig, data.get("generation"))
    profile = profile_for(gen.model, gen.profile) if gen is not None else None
    if profile is None:
        return data
    out = dict(data)
    for key, cls, settings in (
        ("generation", GenerationConfig, profile.generation),
        ("evidence", EvidenceConfig, profile.evidence),
    ):
        section = gen if key == "generation" else _section(cls, data.get(key))
        if section is None or not settings:
            continue
        if key == "generation":
            settings = _per_backend(section, settings)
        mine = user_fields(section)
        updates = {name: value for name, value in settings.items() if name not in mine}
        if updates:
            kept = section.model_dump(include=section.model_fields_set & type(section).model_fields.keys())
            out[key] = cls(**{**kept, **_sections(section), **updates})
    return out
