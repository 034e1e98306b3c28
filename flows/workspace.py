"""One run at a time in a workspace: the lock that the flow (`prefpipe run`, a deployment's run) and
`prefpipe stage` hold while they run stages.

Two runs at once in one checkout would `dvc repro` into the same outputs, dvc.lock and store. The
lock is an exclusive flock(2) on `.dvc/tmp/prefpipe-run.lock`: the kernel drops it when its holder
exits, however it exits (SIGKILL, out of memory), so a killed run never leaves a stale lock to clear
by hand. While held, the file records the holder (pid, host, flow run id, start time) for the
message of a run that finds it taken. A run that finds it taken waits up to
`orchestration.wait_for_workspace_s` (0: not at all), saying so every 30 s, then is refused with
`WorkspaceBusy`: one line naming the holder (exit code 2 from the CLI).

The lock's descriptor is not inherited by the commands the run starts (Python opens it
non-inheritable), so it lives exactly as long as the run's own process."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from prefpipe.errors import PrefpipeError

LOCK = Path(".dvc") / "tmp" / "prefpipe-run.lock"  # under DVC's own (git-ignored) tmp folder
POLL_S = 0.2  # how often a waiting run tries the lock again
SAY_EVERY_S = 30.0  # how often a waiting run says it still waits


class WorkspaceBusy(PrefpipeError, RuntimeError):
    """Another prefpipe run holds the workspace; the message names it and what to do."""


@contextmanager
def hold_workspace(root: Path, wait_s: float, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the workspace of the project at `root` for the block. Taken by another live process:
    wait up to `wait_s` seconds (telling `say` at once and every SAY_EVERY_S), then raise
    WorkspaceBusy. Inside a flow, `print` goes to the run's log (the flow logs prints)."""
    path = root / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait_s, say)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "flow_run_id": _flow_run_id(),
                  "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a released lock records no holder (a killed one's record is overwritten)
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: Path, wait_s: float, say: Callable[[str], None]) -> None:
    start = time.monotonic()
    said = None  # when the last "waiting" line was said
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now - start >= wait_s:
            waited = f"waited {wait_s:g} s and " if wait_s > 0 else ""
            raise WorkspaceBusy(f"another prefpipe run holds this workspace ({describe(holder(path))}): "
                                f"this run {waited}was refused; wait for it to finish, or raise "
                                "orchestration.wait_for_workspace_s to queue behind it")
        if said is None or now - said >= SAY_EVERY_S:
            say(f"another prefpipe run holds this workspace ({describe(holder(path))}): waiting "
                f"for it ({now - start:.0f} s of up to {wait_s:g} s, "
                "orchestration.wait_for_workspace_s)")
            said = now
        time.sleep(min(POLL_S, max(wait_s - (now - start), 0.0)))


def holder(path: Path, attempts: int = 5) -> dict | None:
    """The holder's record in the lock file; None when there is none to read (e.g. the holder has
    the lock but has not written it yet: read again a few times first)."""
    for attempt in range(attempts):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            if attempt + 1 < attempts:
                time.sleep(0.05)
    return None


def describe(record: dict | None) -> str:
    """'pid 1234, flow run <id>, since 02:13:04 UTC' (the host too when it is another one)."""
    if not record:
        return "holder not recorded yet"
    parts = [f"pid {record.get('pid')}"]
    if record.get("host") and record["host"] != socket.gethostname():
        parts[0] += f" on {record['host']}"
    if record.get("flow_run_id"):
        parts.append(f"flow run {record['flow_run_id']}")
    try:
        started = datetime.fromisoformat(record["started_at"])
    except (KeyError, TypeError, ValueError):
        return ", ".join(parts)
    today = started.date() == datetime.now(UTC).date()
    parts.append("since " + started.strftime("%H:%M:%S UTC" if today else "%Y-%m-%d %H:%M:%S UTC"))
    return ", ".join(parts)


def _flow_run_id() -> str | None:
    """The flow run this process runs, if any. Prefect is only asked when already imported: a
    process that never imported it (`prefpipe stage`) runs no flow, and its import is slow."""
    if "prefect" not in sys.modules:
        return None
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
