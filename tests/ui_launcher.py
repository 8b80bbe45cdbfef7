"""Start ``rag serve`` with a test-only generator backend, for the UI failure-path tests.

Usage: python tests/ui_launcher.py serve --config CFG ...   (CFG sets generation.backend: ui-test)

The ``ui-test`` backend is registered here, in the test tree only, so it can never be
selected in production. It streams a short reasoning part and a cited answer, and raises
when the question contains CRASH, like a generator that dies mid-request. Evidence about
steel cables (the uploaded PDF of tests/test_ui_articles_browser.py) is answered and cited. A question with
HOLD waits until the file named by $RAG_TEST_HOLD exists (a busy model). A question with CITE<N>
gets a one-sentence answer citing passages 1..N (with ``citations.mode: off`` it leads unchecked). Each call is
logged to stdout as ``generate: <kind> <characters>`` so tests can tell what reached it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import BACKENDS  # noqa: E402
from rag.generation.base import FromConfig  # noqa: E402
from rag.cli import main  # noqa: E402


class ScriptedGenerator(FromConfig):
    """Answers from the Nvidia passage with a <think> part first; raises on CRASH."""

    shared = ()  # takes nothing from the config

    name = "ui-test"
    context_window = 2048
    opens_think_in_prompt = False

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def warm_up(self) -> None:
        """Nothing to load."""

    def stream(self, messages, *, max_new_tokens: int = 256, temperature: float = 0.0, stop=()) -> Iterator[str]:
        prompt = messages[-1]["content"]
        print(f"generate: {'rewrite' if 'Follow-up:' in prompt else 'answer'} {len(prompt)}", flush=True)
        hold = os.environ.get("RAG_TEST_HOLD")
        if "HOLD" in prompt and hold:
            while not Path(hold).exists():
                time.sleep(0.05)
        if "CRASH" in prompt:
            raise RuntimeError("simulated generator crash")
        if "Follow-up:" in prompt:  # a rewrite request: echo, so the heuristic is used
            yield prompt.rsplit("Follow-up:", 1)[1].strip()
            return
        cite = re.search(r"CITE(\d)", prompt)
        if cite:  # the layout tests: a lead citing passages 1..N (run with citations.mode: off)
            yield (
                "DeepSeek released its models in January 2025 "
                + "".join(f"[{n}]" for n in range(1, int(cite.group(1)) + 1))
                + "."
            )
            return
        cables = re.search(r"\[(\d+)\][^\n]*steel cables", prompt)
        if cables:  # the uploaded PDF of the articles browser test
            yield f"The Harbour Bridge needs 42 new steel cables [{cables.group(1)}]."
            return
        m = re.search(r"^\[(\d+)\][^\n]*Nvidia", prompt, re.MULTILINE)  # the evidence prompt's "[n] sentence" lines
        text = (
            "<think>Passage about the Nvidia share price says it fell 17 percent.</think>"
            f"On 27 January 2025 the share price of Nvidia fell about 17 percent [{m.group(1) if m else 1}]."
        )
        for i in range(0, len(text), 6):
            time.sleep(0.02)
            yield text[i : i + 6]


BACKENDS["ui-test"] = ScriptedGenerator

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
