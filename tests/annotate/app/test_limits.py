"""The request-body limit and credentials-before-body, against the real server over a real socket.

A raw socket streams up to 300 MB (with a Content-Length, or chunked so that no length is
announced) while watching for the answer; the server's RSS (psutil) is read before and after.
Run with `-s` to see the figures."""
from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass

import httpx
import psutil

from prefpipe.annotate.app.limits import DEFAULT_MAX_BODY_BYTES
from tests.annotate.app.test_http import api, form_fields, sign_in, tasks_of

MB = 2**20
HUGE = 300 * MB


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the server let in before it answered and the socket stopped taking more
    seconds: float


def stream_post(server, path: str, headers: dict[str, str], size: int, chunked: bool = False,
                timeout: float = 120) -> Answer:
    """POST `size` bytes to `path` in 1 MB pieces, sending as long as the socket takes them and
    reading the answer as soon as it comes; sending stops at the answer or when the server closes."""
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
            *(f"{k}: {v}" for k, v in headers.items()), length]
    piece = b"{" * MB
    frame = f"{MB:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    frames = [frame] * (size // MB) + ([b"0\r\n\r\n"] if chunked else [])
    sent, pending, received = 0, memoryview(b""), b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        start = time.monotonic()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        while time.monotonic() - start < timeout and not complete(received):
            writing = bool(frames or pending)
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(1 << 16)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                received += data
            if writable:
                pending = pending or memoryview(frames.pop(0))
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):  # the server closed: stop sending
                    frames, pending = [], memoryview(b"")
                    continue
                pending, sent = pending[n:], sent + n
        seconds = time.monotonic() - start
    head_text, _, body = received.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), received[:200]
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return Answer(int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body, sent, seconds)


def complete(received: bytes) -> bool:
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
               if line.lower().startswith(b"content-length:")]
    return len(body) >= (lengths[0] if lengths else 0)


def rss_mb(server) -> float:
    return psutil.Process(server.process.pid).memory_info().rss / MB


def report(name: str, answer: Answer, before: float, after: float) -> None:
    print(f"\n{name}: {answer.status} after {answer.seconds:.3f}s; {answer.sent / MB:.1f} MB sent; "
          f"server RSS {before:.0f} -> {after:.0f} MB")


def test_a_huge_body_without_credentials_is_refused_unread(world):
    store, tokens, server = world
    before = rss_mb(server)
    for path, headers in [("/api/submit", {"Content-Type": "application/json"}),
                          ("/api/submit", {"Authorization": "Bearer wrong"}),
                          ("/label/submit", {"Origin": server.url}),
                          ("/login", {"Origin": "http://evil.example",
                                      "Content-Type": "application/x-www-form-urlencoded"})]:
        for chunked in (False, True):
            answer = stream_post(server, path, headers, HUGE, chunked=chunked)
            report(f"{path} {headers} chunked={chunked}", answer, before, rss_mb(server))
            assert answer.status in (401, 303, 403) and answer.headers["connection"] == "close"
            assert answer.seconds < 10 and answer.sent < 64 * MB
    assert rss_mb(server) - before < 40
    # invalid JSON without a token: 401, never 422
    response = httpx.post(f"{server.url}/api/submit", content=b"{not json", timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    with api(server, tokens["u1"]) as c:  # with one: the body is read, and is invalid
        assert c.post("/api/submit", content=b"{not json").status_code == 422
    assert store.count("labels") == 0


def test_a_body_over_the_limit_is_refused_while_it_is_read(world):
    store, tokens, server = world
    session = sign_in(server, tokens["u1"])
    with httpx.Client(base_url=server.url, headers={"Cookie": f"prefpipe_session={session}"}) as c:
        fields = form_fields(c.get("/label").text)
    cases = [("/api/submit", {"Authorization": f"Bearer {tokens['u1']}", "Content-Type": "application/json"}),
             ("/label/submit", {"Origin": server.url, "Cookie": f"prefpipe_session={session}",
                                "Content-Type": "application/x-www-form-urlencoded"}),
             ("/login", {"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"})]
    before = rss_mb(server)
    for path, headers in cases:
        for chunked in (False, True):  # chunked: no length announced, the counted bytes decide
            answer = stream_post(server, path, headers, HUGE, chunked=chunked)
            report(f"{path} chunked={chunked}", answer, before, rss_mb(server))
            assert answer.status == 413 and answer.headers["connection"] == "close", answer
            assert b"limit of 1048576 bytes (1 MiB); send less" in answer.body
            assert answer.seconds < 10 and answer.sent < 64 * MB
    assert rss_mb(server) - before < 40
    assert store.count("labels") == 0 and store.sessions.count() == 1
    # just under the limit: read and answered on its merits (the rationale is too long: 400)
    task = tasks_of(store, "u1")[0]["task_id"]
    big = {"task_id": task, "choice": "first", "rationale": "r" * (DEFAULT_MAX_BODY_BYTES - 100)}
    with api(server, tokens["u1"]) as c:
        under = c.post("/api/submit", content=json.dumps(big))
        assert under.status_code == 400 and "rationale has" in under.json()["detail"]
        big["rationale"] += "r" * 200
        over = c.post("/api/submit", content=json.dumps(big))  # httpx sends a Content-Length
        assert over.status_code == 413 and "send less" in over.json()["detail"]
        assert c.post("/api/submit", json={"task_id": task, "choice": "first"}).status_code == 200
    # a page's form just over the limit gets the error page, and a normal one still works
    with httpx.Client(base_url=server.url, headers={"Cookie": f"prefpipe_session={session}",
                                                    "Origin": server.url}) as c:
        over = c.post("/label/submit", data={**fields, "rationale": "r" * DEFAULT_MAX_BODY_BYTES})
        assert over.status_code == 413 and "over the app&#39;s limit" in over.text
        fields = form_fields(c.get("/label").text)
        assert c.post("/label/submit", data={**fields, "choice": "tie"}).status_code == 303
    assert store.count("labels") == 2
