"""rag/registry.py: the one shape of every extension point (name -> factory)."""

from __future__ import annotations

import pytest

from rag import ConfigError, RagError
from rag.registry import Registry


def test_an_unknown_name_is_a_config_error_listing_the_sorted_names():
    """Guards against a hand-kept list in the message (bm25s named 3 of its 5 methods)."""
    shapes = Registry("shape", {"square": 1, "circle": 2})
    shapes.register("triangle", 3)
    with pytest.raises(
        ConfigError, match=r"^unknown shape 'hexagon'; choose from \['circle', 'square', 'triangle'\]$"
    ) as err:
        shapes["hexagon"]
    assert isinstance(err.value, RagError) and isinstance(err.value, ValueError)
    assert shapes["triangle"] == 3 and shapes.get("hexagon") is None and "hexagon" not in shapes


def test_register_adds_and_returns_the_factory():
    shapes: Registry = Registry("shape")

    def square() -> str:
        return "square"

    assert shapes.register("square", square) is square and shapes["square"]() == "square" and list(shapes) == ["square"]


def test_every_extension_point_has_the_one_shape():
    """Generators, embedders, engines and file loaders: the same registry, the same error type."""
    import rag.documents as documents
    import rag.embedding as embedding
    import rag.generation as generation

    points = {
        "generation backend": generation.BACKENDS,
        "embedding backend": embedding.BACKENDS,
        "embedding engine": embedding.ENGINES,
        "file type": documents.LOADERS,
    }
    for kind, registry in points.items():
        assert isinstance(registry, Registry) and registry.kind == kind
        with pytest.raises(
            ConfigError,
            match=rf"^unknown {kind} 'nope'; choose from {sorted(registry)!r}".replace("[", r"\[").replace("]", r"\]"),
        ):
            registry["nope"]
