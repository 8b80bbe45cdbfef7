"""Known-good small GGUF models and their profiles: one registry, :data:`CATALOGUE`, plus :data:`PROFILES`.

A :class:`Profile` holds the settings a model needs (simonw/llm-style per-model options):
``generation`` and ``evidence`` config fields by name, applied under the user's config (a
field the user set explicitly wins; see :func:`rag.config.Config`). A :class:`ModelEntry`
is a catalogue model ``rag model pull NAME`` can fetch: its repository, file, pinned
revision, the size and license its publisher lists, and its profile.

Names, files, sizes and licenses are as the publishers' repository pages list them
(looked up while writing this; the hub itself cannot be reached from the machine this was
built on). No full commit hash could be confirmed for any of them, so every entry pins
``main`` explicitly and says so (``revision_note``); ``rag model pull`` records the commit
it actually got and the file's sha256.

Example:
    >>> CATALOGUE["qwen2.5-1.5b"].repo
    'lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF'
    >>> profile_for("qwen2.5-1.5b").name
    'qwen2.5-1.5b'
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

UNCONFIRMED_REVISION = "main (no commit hash could be confirmed offline; the pulled commit is recorded)"

# What every pulled instruct model shares: the GGUF as published (already a K-quant; re-quantising
# it to q8_0 would only grow it and lose precision).
_INSTRUCT: dict[str, Any] = {"gguf_type": "packaged"}


@dataclass(frozen=True)
class Profile:
    """The settings a model needs; the user's config overrides each field it sets explicitly.

    Attributes:
        name: the profile's name (``generation.profile`` may name it).
        description: one line for ``rag model list`` and the README.
        generation: :class:`~rag.config.GenerationConfig` fields by name.
        evidence: :class:`~rag.config.EvidenceConfig` fields by name (draft-check defaults).
        files: file-name patterns (``fnmatch``, case-insensitive) of GGUFs this profile fits,
            so ``generation.model: /path/to/file.gguf`` finds it.
        fallback: the packaged 135M model: answers are mostly quoted evidence.
        evaluation_only: a model the project uses only to evaluate; never a default, never pulled.
    """

    name: str
    description: str
    generation: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    fallback: bool = False
    evaluation_only: bool = False

    def matches_file(self, path: str) -> bool:
        """Whether the GGUF at ``path`` is one this profile is for (by file name)."""
        name = PurePath(path).name.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.files)


@dataclass(frozen=True)
class ModelEntry:
    """A model ``rag model pull NAME`` fetches from the Hugging Face hub.

    Attributes:
        name: the catalogue name (``generation.model: NAME``).
        repo: the hub repository.
        filename: the GGUF file in it.
        revision: the pinned revision passed to the hub.
        size: the size the publisher lists (display only; the hub's metadata is checked).
        license: the license the repository lists.
        profile: the settings the model needs.
        revision_note: how the revision was chosen.
        sha256: the file's sha256 when known in advance (None: the hub's metadata is trusted).
    """

    name: str
    repo: str
    filename: str
    revision: str
    size: str
    license: str
    profile: Profile
    revision_note: str = UNCONFIRMED_REVISION
    sha256: str | None = None

    @property
    def url(self) -> str:
        """Where the file is downloaded from on the public hub."""
        return f"https://huggingface.co/{self.repo}/resolve/{self.revision}/{self.filename}"


# A 1B+ model picks the evidence line that answers by itself: requiring its answer to be the best
# sentence's (evidence.draft_must_agree, on for SmolLM2-135M) cost the evaluation model lead
# containment on rgb-en-fact (0.55 -> 0.50, simulated on its answers; README "Quality"). Measured on
# the evaluation model only; the catalogue's 1B+ models share it as the nearest evidence.
# Such a model's "I could not find the answer" is a judgement worth following (evidence.trust_model_decline):
# the evaluation model said so only on unanswerable questions (README "Quality").
_BIGGER = {"draft_must_agree": False, "trust_model_decline": True}

SMOLLM2_135M = Profile(
    name="smollm2",
    description="packaged SmolLM2-135M-Instruct (the fallback): tidies the evidence, answers are mostly quoted",
    # The defaults of GenerationConfig and EvidenceConfig were measured for this model (README "Quality").
    generation={"gguf_type": "q8_0", "few_shot": True, "use_system_prompt": True},
    files=("SmolLM2-135M-Instruct*.gguf",),
    fallback=True,
)

QWEN_CHAT = Profile(
    name="qwen2.5-1.5b",
    description="Qwen2.5-1.5B-Instruct: ChatML template, writes its own cited sentence",
    generation={**_INSTRUCT},
    evidence={**_BIGGER},
    files=("Qwen2.5-1.5B-Instruct-*.gguf", "qwen2.5-1.5b-instruct-*.gguf"),
)

QWEN_SMALL = Profile(
    name="qwen2.5-0.5b",
    description="Qwen2.5-0.5B-Instruct: ChatML template; weights mostly Q5_0/Q8_0, so slower than its size suggests",
    generation={**_INSTRUCT},
    files=("Qwen2.5-0.5B-Instruct-*.gguf", "qwen2.5-0.5b-instruct-*.gguf"),
)

R1_DISTILL = Profile(
    name="deepseek-r1-distill-qwen-1.5b",
    description="DeepSeek-R1-Distill-Qwen-1.5B: reasons in <think> first; DeepSeek's settings (temperature 0.6, no system prompt)",
    # DeepSeek's usage recommendations: temperature 0.5-0.7, every instruction in the user turn,
    # no few-shot examples. The <think> part gets its own budget (rag/generation/reasoning.py);
    # blank lines are part of the reasoning, so "\n\n" must not stop it.
    generation={
        "gguf_type": "packaged",
        "temperature": 0.6,
        "use_system_prompt": False,
        "few_shot": False,
        "max_thinking_tokens": 512,
        "max_new_tokens": 256,
        "context_window": 4096,
        "stop": ("Question:", "Evidence:"),
    },
    evidence={**_BIGGER},
    files=("DeepSeek-R1-Distill-Qwen-1.5B*.gguf",),
)

SMOLLM2_17B = Profile(
    name="smollm2-1.7b",
    description="SmolLM2-1.7B-Instruct: ChatML template (adds its own system line when none is given)",
    generation={**_INSTRUCT},
    evidence={**_BIGGER},
    files=("smollm2-1.7b-instruct-*.gguf", "SmolLM2-1.7B-Instruct-*.gguf"),
)

LLAMA_32_1B = Profile(
    name="llama-3.2-1b",
    description="Llama-3.2-1B-Instruct: Llama 3 template (puts a knowledge-cutoff date in the system turn)",
    generation={**_INSTRUCT},
    evidence={**_BIGGER},
    files=("Llama-3.2-1B-Instruct-*.gguf",),
)

# The evaluation model from ../shared/tools/eval-model.sh: Qwen2.5 chat format. Evaluation only:
# it is never a default and never downloaded by the project (it comes without a license file).
EVAL_QWEN_CODER = Profile(
    name="qwen2.5-coder-1.5b-eval",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (evaluation only, selected by its file name; never pulled or a default)",
    generation={**_INSTRUCT},
    evidence={**_BIGGER},
    files=("qwen2.5-coder-1.5b-instruct*.gguf",),
    evaluation_only=True,
)

#: Catalogue name -> the model ``rag model pull NAME`` fetches. One entry per model.
CATALOGUE: dict[str, ModelEntry] = {
    "qwen2.5-1.5b": ModelEntry(
        "qwen2.5-1.5b",
        "lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF",
        "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        "main",
        "986 MB",
        "apache-2.0",
        QWEN_CHAT,
    ),
    "qwen2.5-0.5b": ModelEntry(
        "qwen2.5-0.5b",
        "second-state/Qwen2.5-0.5B-Instruct-GGUF",
        "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
        "main",
        "398 MB",
        "apache-2.0",
        QWEN_SMALL,
    ),
    "deepseek-r1-distill-qwen-1.5b": ModelEntry(
        "deepseek-r1-distill-qwen-1.5b",
        "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF",
        "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
        "main",
        "1.12 GB",
        "apache-2.0 (repository tag; DeepSeek-R1 weights MIT)",
        R1_DISTILL,
    ),
    "smollm2-1.7b": ModelEntry(
        "smollm2-1.7b",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
        "smollm2-1.7b-instruct-q4_k_m.gguf",
        "main",
        "1.06 GB",
        "apache-2.0",
        SMOLLM2_17B,
    ),
    "llama-3.2-1b": ModelEntry(
        "llama-3.2-1b",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        "main",
        "0.81 GB",
        "llama3.2 (Llama 3.2 Community License)",
        LLAMA_32_1B,
    ),
}

#: Profile name -> profile: the catalogue's, the packaged SmolLM2's and the evaluation model's.
PROFILES: dict[str, Profile] = {
    p.name: p for p in (SMOLLM2_135M, EVAL_QWEN_CODER, *(e.profile for e in CATALOGUE.values()))
}

#: ``generation.model`` values that mean the packaged SmolLM2-135M GGUF.
PACKAGED_NAMES = ("smollm2", "default")


def profile_for(model: str, choice: str = "auto") -> Profile | None:
    """The profile for ``generation.model`` (and ``generation.profile``), or None.

    Args:
        model: a catalogue name, ``smollm2``, a ``.gguf`` path (matched by file name) or anything else.
        choice: ``auto`` (by the model), ``none`` (no profile) or a name in :data:`PROFILES`.
    """
    if choice == "none":
        return None
    if choice != "auto":
        return PROFILES[choice]
    if model in CATALOGUE:
        return CATALOGUE[model].profile
    if model in PACKAGED_NAMES:
        return SMOLLM2_135M
    if model.lower().endswith(".gguf"):
        return next((p for p in PROFILES.values() if p.matches_file(model)), None)
    return None
