"""A small, real OpenAI-compatible chat completions server for the HTTP judge's tests and bench.

POST /v1/chat/completions answers the multiple-choice question deterministically, with fixed, known
logprobs: by default the option whose text contains MARKER wins (A when neither or both do); with
`prefer="shorter"` the option with fewer words wins (A on equal counts): a judge with a real,
order-independent preference, so the README's bring-your-own walk-through gets decisive labels.
It can fail the first N requests (503 or 429, with an optional Retry-After), reject every request
with a 4xx, reply with a body that is not JSON, add latency, and it counts requests and the peak
number in flight.

In a test: `with OpenAIServer() as server: ... server.base_url ...`.
Standalone (the bench, the README's walk-through):
    .venv/bin/python tests/label/critic/openai_server.py [--port 8123] [--prefer shorter]
prints "serving <base_url>" once it listens."""
from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "GOOD"
# top_logprobs at the answer position: the winning letter, the losing one, and two distractors.
WIN_LOGPROB, LOSE_LOGPROB, SPACED_WIN_LOGPROB, OTHER_LOGPROB = -0.2, -1.9, -3.0, -4.0
OPTION = re.compile(r"^\(([AB])\) (.*)$", re.M)


def served_logprobs(winner: str) -> list[dict]:
    loser = "B" if winner == "A" else "A"
    return [{"token": winner, "logprob": WIN_LOGPROB}, {"token": loser, "logprob": LOSE_LOGPROB},
            {"token": " " + winner, "logprob": SPACED_WIN_LOGPROB},
            {"token": "The", "logprob": OTHER_LOGPROB}]


PREFERENCES = ("marker", "shorter")


def answer_letter(user_text: str, prefer: str = "marker") -> str:
    options = dict(OPTION.findall(user_text))
    a, b = options.get("A", ""), options.get("B", "")
    if prefer == "shorter":
        return "B" if len(b.split()) < len(a.split()) else "A"
    return "B" if MARKER in b and MARKER not in a else "A"


class OpenAIServer:
    """ThreadingHTTPServer on 127.0.0.1 (a free port) in a daemon thread; knobs may change while it runs."""

    def __init__(self, port: int = 0, fail_first: int = 0, fail_status: int = 503,
                 retry_after: str | None = None, reject_status: int | None = None, latency_s: float = 0.0,
                 logprobs: bool = True, malformed: bool = False, prefer: str = "marker"):
        if prefer not in PREFERENCES:
            raise ValueError(f"prefer must be one of {PREFERENCES}, got {prefer!r}")
        self.prefer = prefer
        self.fail_first, self.fail_status, self.retry_after = fail_first, fail_status, retry_after
        self.reject_status, self.latency_s = reject_status, latency_s
        self.logprobs, self.malformed = logprobs, malformed
        self.requests = 0
        self.in_flight = self.max_in_flight = 0
        self.times: list[float] = []  # monotonic arrival time of each request
        self.authorization: list[str | None] = []
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests, self.max_in_flight = 0, 0
            self.times, self.authorization, self.bodies = [], [], []

    def _reply(self, body: dict, number: int) -> tuple[int, dict, bytes]:
        """(status, headers, body bytes) for the request that arrived `number`-th (1-based)."""
        if self.reject_status is not None:
            return self.reject_status, {}, json.dumps({"error": {"message": "rejected"}}).encode()
        if number <= self.fail_first:
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return self.fail_status, headers, b'{"error": {"message": "try again"}}'
        if self.malformed:
            return 200, {}, b"this is not json"
        user = body["messages"][-1]["content"]
        letter = answer_letter(user, self.prefer)
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": letter}}
        if self.logprobs and body.get("logprobs"):
            tops = served_logprobs(letter)[: body.get("top_logprobs", 5)]
            position = {"token": letter, "logprob": WIN_LOGPROB, "top_logprobs": tops}
            choice["logprobs"] = {"content": [position]}
        return 200, {}, json.dumps({"id": f"cmpl-{number}", "object": "chat.completion",
                                    "model": body["model"], "choices": [choice]}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without NODELAY, Nagle + delayed ACK stall each reply
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.requests += 1
                    number = server.requests
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.times.append(time.monotonic())
                    server.authorization.append(self.headers.get("Authorization"))
                try:
                    if server.latency_s:
                        time.sleep(server.latency_s)
                    if self.path != "/v1/chat/completions":
                        status, headers, payload = 404, {}, b'{"error": {"message": "no such route"}}'
                    else:
                        try:
                            body = json.loads(raw)
                            body["model"], body["messages"][-1]["content"]
                        except (ValueError, KeyError, IndexError, TypeError):
                            status, headers, payload = 400, {}, b'{"error": {"message": "bad request"}}'
                        else:
                            with server._lock:
                                server.bodies.append(body)
                            status, headers, payload = server._reply(body, number)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 = a free port (printed)")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--prefer", choices=PREFERENCES, default="marker",
                        help="marker: the option containing GOOD wins; shorter: the one with fewer words")
    args = parser.parse_args()
    with OpenAIServer(port=args.port, latency_s=args.latency_s, prefer=args.prefer) as running:
        print(f"serving {running.base_url}", flush=True)
        threading.Event().wait()
