"""Fault injection for crash-safety tests: the one place the library pauses on request.

A process started with ``RAG_TEST_PAUSE_AT=<phase>`` prints ``rag: paused at <phase>`` on
stderr when it reaches that phase and sleeps there, so a test can kill it at exactly that
point and check that what is on disk is still loadable. Without the variable
:func:`pause_point` returns at once; nothing else in the library reads it. The phases:

* ``writing``: a FAISS build's new generation folder is half written
  (:func:`rag.store.write_generation`);
* ``switch``: the new generation (or Milvus collection) is complete and ``CURRENT`` (or the
  alias) is not switched yet;
* ``update``: an in-place Milvus update has deleted rows and not yet upserted the new ones.

CONTRIBUTING.md ("Test hooks") lists the tests that use it.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "RAG_TEST_PAUSE_AT"


def pause_point(phase: str) -> None:
    """Wait here (for an hour) when ``RAG_TEST_PAUSE_AT`` names ``phase``; otherwise do nothing.

    Args:
        phase: ``writing``, ``switch`` or ``update`` (see the module docstring).
    """
    if os.environ.get(PAUSE_ENV) == phase:
        print(f"rag: paused at {phase} ({PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(3600)
