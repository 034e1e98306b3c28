"""What `prefpipe run` shows and keeps: a quiet terminal, the full log in a file, a clean stop.

The terminal gets the stages' own output and Prefect's progress lines, but not Prefect's tracebacks
and failure restatements of a failed stage (the CLI ends with the stage's own message once); the
file `.prefect/logs/<time>.log` (and Prefect's UI, when a server is up) keeps everything. SIGTERM
or SIGINT stops the running stage's process group (flows/dvc_state.py), fails the flow run and
exits with 128 + the signal's number."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.env import ROOT

# Prefect's own report of a failure the CLI reports once, in the stage's words (display only).
_RESTATED = ("prefect.flow_runs", "prefect.task_runs")


class _QuietFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_RESTATED) and record.levelno >= logging.ERROR:
            return False
        message = record.getMessage()
        return not (message.startswith("Finished in state") and "Completed" not in message)


class _AfterTheRun(logging.Filter):
    """Prefect's info lines once the run is over, e.g. "Stopping temporary server on ..." that its
    temporary server logs as the process exits, after the CLI's verdict (display only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class Interrupted(SystemExit):
    """SIGTERM or SIGINT: a BaseException, so Prefect records the run as crashed and unwinds."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


def log_dir() -> Path:
    return Path(os.environ.get("PREFECT_HOME", ROOT / ".prefect")) / "logs"


@contextmanager
def run_log() -> Iterator[Path]:
    """Everything Prefect logs during the block goes to a new file under log_dir() too, tracebacks
    included; Prefect's console handlers stop restating failures, and after the block show
    warnings and errors only, so what the CLI prints last stays last. Yields the file's path."""
    path = log_dir() / time.strftime("%Y%m%d-%H%M%S.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    prefect_logger = logging.getLogger("prefect")
    consoles = [h for h in prefect_logger.handlers + logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    handler = logging.FileHandler(path, encoding="utf-8")
    if consoles and consoles[0].formatter:
        handler.setFormatter(consoles[0].formatter)
    quiet = _QuietFailures()
    prefect_logger.addHandler(handler)
    for console in consoles:
        console.addFilter(quiet)
    try:
        yield path
    finally:
        prefect_logger.removeHandler(handler)
        handler.close()
        for console in consoles:
            console.removeFilter(quiet)
            console.addFilter(_AfterTheRun())


@contextmanager
def stop_on_signals(grace_s: float = 20.0) -> Iterator[None]:
    """SIGTERM / SIGINT raise `Interrupted` (the stage's process group is stopped as the exception
    leaves flows.dvc_state.repro). Past `grace_s` the process exits anyway; logs that can no longer
    reach Prefect's API are dropped rather than reported for minutes."""
    def handle(signum, frame):
        logging.raiseExceptions = False  # e.g. Prefect's API log worker when its server is gone
        code = 128 + signum

        def give_up():
            print(f"error: stopped by {signal.Signals(signum).name} (forced after {grace_s:.0f} s)",
                  file=sys.stderr, flush=True)
            os._exit(code)
        timer = threading.Timer(grace_s, give_up)
        timer.daemon = True
        timer.start()
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal while unwinding: ignored
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ui_url(flow_run_id) -> str | None:
    """The flow run's page in Prefect's UI when it reports to a server that outlives the run (not
    the temporary one Prefect starts when none is up)."""
    api = os.environ.get("PREFECT_API_URL")
    if not api or not flow_run_id:
        return None
    return f"{api.rstrip('/').removesuffix('/api')}/runs/flow-run/{flow_run_id}"
