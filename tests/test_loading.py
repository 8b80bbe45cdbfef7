"""Model loads are serialised process-wide (rag/loading.py)."""

import threading
import time

import rag.embedding.torch as embedding
import rag.generation.transformers as generation
from rag.embedding import SentenceTransformerEmbedder
from rag.generation import TransformersGenerator


class _Model:
    def eval(self):
        return self


def test_embedder_and_generator_never_load_at_the_same_time(monkeypatch, tmp_path):
    """The UI warms both models in parallel threads; their loads must not overlap."""
    active, overlaps = [0], []
    guard = threading.Lock()

    def slow_load(*_args, **_kwargs):
        with guard:
            active[0] += 1
            overlaps.append(active[0])
        time.sleep(0.3)
        with guard:
            active[0] -= 1
        return _Model()

    import sentence_transformers

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", slow_load)
    monkeypatch.setattr(embedding, "resolve_embedder_path", lambda name: str(tmp_path))
    monkeypatch.setattr(generation, "resolve_model", lambda name: (str(tmp_path), "m.gguf"))
    monkeypatch.setattr(TransformersGenerator, "_load_gguf", lambda self, path: (slow_load(), object()))

    emb, gen = SentenceTransformerEmbedder(), TransformersGenerator("x.gguf")
    threads = [threading.Thread(target=emb.warm_up), threading.Thread(target=gen.warm_up)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(overlaps) == 2, "both loads should have run"
    assert max(overlaps) == 1, "the embedder and the generator loaded concurrently"
