"""Fixtures for the annotation app: the real server in a subprocess (the store and pairs come from
tests/annotate/conftest.py), and a `world` of annotators and queues it serves."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from prefpipe.annotate.annotation import add_annotator, enqueue
from prefpipe.store import Store

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `serve` in a fresh interpreter: what `prefpipe label serve` runs, on a store of the test's own
SERVE = ("import sys; from prefpipe.annotate.app.server import serve; "
         "serve(sys.argv[1], port=int(sys.argv[2]), rubric_path=sys.argv[3] or None, log_level='warning')")


class AppServer:
    """The annotation app's `serve` on a free loopback port, started and stopped for real."""

    def __init__(self, store_path: Path, log_path: Path, rubric: Path | None = None):
        self.store_path, self.log_path, self.rubric = store_path, log_path, rubric
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> AppServer:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-c", SERVE, str(self.store_path), str(self.port),
               str(self.rubric) if self.rubric else ""]
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"annotation server exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/login", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"annotation server not up after {timeout}s:\n{self.log()}")

    def restart(self) -> AppServer:
        """Stop (SIGTERM) and start a fresh process on the same port and store."""
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs (a crash)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a loaded machine: don't leave a server behind
                self.kill()


@pytest.fixture
def app_server(tmp_path):
    """A factory: app_server(store_path) -> a started AppServer; every one is stopped at the end."""
    servers: list[AppServer] = []

    def start(store_path: Path, rubric: Path | None = None) -> AppServer:
        server = AppServer(store_path, tmp_path / f"server{len(servers)}.log", rubric).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def world(tmp_path, seed, app_server):
    """Four pairs (p0 holds hostile HTML) queued for both u1 and u2, an admin, and the server running."""
    store = Store(tmp_path / "store.duckdb", lock_timeout_s=20)
    pairs = seed(store, [(XSS, "plain b0"), ("a1", "b1"), ("a2", "b2"), ("a3", "b3")])
    tokens = {name: add_annotator(store, name) for name in ("u1", "u2")}
    tokens["boss"] = add_annotator(store, "boss", is_admin=True)
    enqueue(store, pairs, ["u1", "u2"], overlap=2, gold={}, gold_every=0, seed=0)
    server = app_server(store.path)
    return store, tokens, server
