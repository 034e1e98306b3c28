"""The Prefect server a `prefpipe run` starts for itself when no API is configured (no PREFECT_API_URL,
no `prefpipe ui` up), started before this process imports Prefect.

Prefect would start the same temporary server itself, but only once the flow calls its API: after
the CLI has imported Prefect and, to find its server class, Prefect's whole server (4-5 s of CPU
here), and then the run waits for the server's own start (about 10 s of CPU on this 2-core
machine). Started first, the server boots on one core while the CLI imports Prefect on the other,
and the CLI never imports Prefect's server. It is launched as Prefect launches its own (uvicorn
serving `prefect.server.api.server:create_app` on 127.0.0.1, no UI, Prefect's ephemeral mode: no
background services), but registers no block types; its database is the project's
(.prefect/prefect.db, so `prefpipe ui` shows the run later), its output in
`.prefect/temporary-server.log`. It is a child in this process's group,
as Prefect's own is, and `stop()` ends it (SIGTERM, SIGKILL after 5 s)."""
from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

from flows.env import wait_until_answering

# What Prefect's SubprocessASGIServer sets for its temporary server (prefect/server/api/server.py)
EPHEMERAL_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
# Unless the environment says otherwise: no registering of block types at start. A run uses none,
# and even a memoized registration imports every installed Prefect collection (prefect-kubernetes
# and the kubernetes client: 2-3 s of CPU) to hash them; `prefpipe ui`'s server registers them.
QUIET_START_ENV = {"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
                   "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
STOP_GRACE_S = 5.0
TIMEOUT_KEY = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"  # the wait Prefect gives its own


class TemporaryServer:
    """A Prefect API server for this process's run. `start()` launches it and points PREFECT_API_URL
    at it (call it before Prefect is imported: Prefect reads the variable then); `ready()` waits
    until it answers; `stop()` ends it."""

    def __init__(self):  # flows.env.prepare_environment() has set both
        self.log = Path(os.environ["PREFECT_HOME"]) / "temporary-server.log"
        self.timeout_s = float(os.environ.get(TIMEOUT_KEY, "180"))
        self.api_url = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> TemporaryServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{port}/api"
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent  # finds, imports nothing
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), "--factory",
                   "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "error", "--lifespan", "on"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**QUIET_START_ENV, **os.environ, **EPHEMERAL_ENV})
        atexit.register(self.stop)
        os.environ["PREFECT_API_URL"] = self.api_url
        print(f"Starting temporary server on {self.api_url.removesuffix('/api')} (it stops when the "
              "run ends; `prefpipe ui` keeps one up)", file=sys.stderr, flush=True)
        return self

    def ready(self) -> None:
        """Wait until the server answers; a server that exits or stays silent past the timeout is a
        PrefpipeError naming its log."""
        wait_until_answering(self.api_url, self.process, self.log, self.timeout_s,
                             name="the temporary Prefect server", timeout_setting=TIMEOUT_KEY, poll_s=0.1)

    def stop(self) -> None:
        """Once Prefect has sent what it still queues for the API (the run's last log lines and
        events), end the server. Also called at exit, should the caller not get to it."""
        running = self.process is not None and self.process.poll() is None
        if running:
            drain_prefect_queues()
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
        if not running:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def drain_prefect_queues(timeout_s: float = STOP_GRACE_S) -> None:
    """Wait (up to `timeout_s` each) for Prefect's workers that send log lines and events to the API
    to empty their queues: after its server has gone, they retry for a minute or more."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)
