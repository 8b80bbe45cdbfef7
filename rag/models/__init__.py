"""Models the project knows: the catalogue ``rag model pull`` fetches, each model's profile, and the model in use.

- :mod:`.catalogue`: :data:`CATALOGUE` (repository, file, pinned revision, size, license,
  profile of each known-good small instruct GGUF) and :data:`PROFILES` (those plus the
  packaged SmolLM2-135M's and the evaluation model's). Cheap to import: the config checks
  ``generation.profile`` against it.
- :mod:`.hub`: :func:`pull` and :func:`installed_models` (``huggingface_hub`` loads only there).
- :func:`model_in_use`: what the UI and ``rag index info`` name, with the one warning for the
  135M fallback.

Example:
    >>> from rag.models import CATALOGUE, model_in_use
    >>> model_in_use(Config().generation).warning[:30]
    'The model is the small package'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, PACKAGED_NAMES, PROFILES, ModelEntry, Profile, profile_for
from .hub import InstalledModel, ModelError, installed, installed_models, model_file, models_root, pull

#: Said once (the web page, ``rag index info``) when answers come from the packaged 135M model.
FALLBACK_WARNING = (
    "The model in use is the small packaged SmolLM2-135M: answers are mostly quoted from the articles; "
    "`rag model pull qwen2.5-1.5b` for generated answers."
)


@dataclass(frozen=True)
class ModelInUse:
    """The model a configuration answers with, for display.

    Attributes:
        label: what to show, e.g. ``qwen2.5-1.5b (Qwen2.5-1.5B-Instruct-Q4_K_M.gguf, llama_server)``.
        profile: the profile applied (None: none).
        fallback: the packaged 135M model.
        warning: one plain sentence for the user ("" when there is nothing to say).
    """

    label: str
    profile: str | None
    fallback: bool
    warning: str


def model_in_use(gen: Any) -> ModelInUse:
    """What ``gen`` (a :class:`~rag.config.GenerationConfig`) answers with, and the fallback warning."""
    if gen.backend == "none":
        return ModelInUse("none (evidence answers only)", None, False, "")
    profile = profile_for(gen.model, gen.profile)
    if gen.model in CATALOGUE:
        shown = f"{gen.model} ({CATALOGUE[gen.model].filename}, {gen.backend})"
    elif gen.model in PACKAGED_NAMES:
        shown = f"SmolLM2-135M-Instruct (packaged, {gen.backend})"
    else:
        shown = f"{Path(gen.model).name if gen.model.lower().endswith('.gguf') else gen.model} ({gen.backend})"
    fallback = bool(profile and profile.fallback) and gen.backend != "openai"
    return ModelInUse(shown, profile.name if profile else None, fallback, FALLBACK_WARNING if fallback else "")


__all__ = [
    "CATALOGUE",
    "FALLBACK_WARNING",
    "PACKAGED_NAMES",
    "PROFILES",
    "InstalledModel",
    "ModelEntry",
    "ModelError",
    "ModelInUse",
    "Profile",
    "installed",
    "installed_models",
    "model_file",
    "model_in_use",
    "models_root",
    "profile_for",
    "pull",
]
