"""A scripted OpenAI-compatible chat-completions server, for the fault and queue tests only.

    python tests/openai_stub.py PORT [--hold FILE]

It answers ``POST /v1/chat/completions`` (streamed as server-sent events) with the first
sentence of the first passage in the prompt, cited ``[n]``, a few characters per event
0.05 s apart, like a slow local model. Words in the question script faults:

    STALL  stream a few pieces, then send nothing more (for up to 60 s): the tests kill the
           process with SIGKILL once they have seen the first piece, as a server killed
           mid-answer
    HOLD   wait until the file given by ``--hold`` exists before answering (a busy model)
    CUT    stream a few pieces, then end the response cleanly without ``[DONE]`` or a
           finish_reason (a proxy that drops the rest of an answer)

Each request is logged to stdout as ``request N: <question>`` for the tests to follow.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

QUESTION = re.compile(r"Question: (.*?)(?:\nAnswer|$)", re.S)
EVIDENCE = re.compile(r"^\[(\d+)\] (.+)$", re.M)  # the evidence-first prompt: "[n] sentence" lines


def answer_for(prompt: str) -> str:
    """The first evidence sentence, cited: a faithful answer, so the pipeline shows it as generated."""
    m = EVIDENCE.search(prompt.split("Evidence:", 1)[-1])
    if not m:
        return "I could not find the answer in the articles."
    first = re.split(r"(?<=[.!?])\s", m.group(2).strip(), maxsplit=1)[0].rstrip(".")
    return f"{first} [{m.group(1)}]."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hold: Path | None = None
    count = 0

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # /v1/models, so a test can wait for the server to be up
        body = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        prompt = payload["messages"][-1]["content"]
        q = QUESTION.search(prompt)
        question = q.group(1) if q else prompt[-200:]
        Handler.count += 1
        print(f"request {Handler.count}: {question}", flush=True)
        if "HOLD" in question and self.hold is not None:
            while not self.hold.exists():
                time.sleep(0.05)
        text = answer_for(prompt)
        # Chunked, as uvicorn (llama_cpp.server, vLLM) sends it: a server that dies leaves the
        # body incomplete, which the client can tell from a finished one.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        for i in range(0, len(text), 4):
            if "STALL" in question and i >= 12:
                print("stalling mid-answer", flush=True)
                time.sleep(60)  # killed long before this ends
            if "CUT" in question and i >= 12:
                print("cutting the answer short", flush=True)
                break
            event = {"choices": [{"index": 0, "delta": {"content": text[i : i + 4]}, "finish_reason": None}]}
            chunk(f"data: {json.dumps(event)}\n\n".encode())
            time.sleep(0.05)
        else:
            chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--hold", type=Path, help="HOLD questions wait until this file exists")
    args = parser.parse_args(argv)
    Handler.hold = args.hold
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
