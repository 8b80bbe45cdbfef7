"""The ``rag`` command line, one module per command group.

* :mod:`.main`: the parser, ``build``, ``ask``, ``index``, ``serve`` and :func:`main` (the
  ``rag`` console script; ``python -m rag.cli`` runs it too);
* :mod:`.common`: what the commands share (``--config``, ``--index``, ``--abstention``, the
  commands the ``ui`` package serves);
* :mod:`.chat`, :mod:`.api` (``api`` and ``mcp``), :mod:`.evaluate` (``eval``),
  :mod:`.calibrate`, :mod:`.model` (``model pull`` and ``model list``).
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
