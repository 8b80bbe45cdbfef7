"""One process-wide lock around model loading.

transformers' ``from_pretrained`` switches process-global state while it builds a model
(default dtype, the "skip weight init" context, tied-weight bookkeeping). Two loads in two
threads at once — the UI warming the embedder and the generator side by side, say — can
interleave those switches and leave a model half-initialised (SmolLM2 came up with random
untied embeddings). Every backend that loads through torch takes this lock; loading is
rare and slow anyway, so serialising it costs nothing that matters.
"""

from __future__ import annotations

import threading

MODEL_LOAD_LOCK = threading.RLock()
