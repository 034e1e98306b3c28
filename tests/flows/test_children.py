"""flows/children.py with real processes: a server script is stopped by SIGTERM or SIGINT, and
nothing it started, not even a process that ignores SIGTERM or left for a session of its own,
outlives it. The CLI's servers themselves: tests/flows/test_cli_servers.py."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from flows.children import descendants, serve_until_stopped

# A child in a group of its own that ignores SIGTERM, and a grandchild that left for its own session.
STUBBORN = textwrap.dedent("""
    from flows.children import run_child, serve_until_stopped
    script = "trap '' TERM; exec 2>/dev/null; setsid sleep 300 >&2 & echo ready; sleep 300 >&2 & wait"
    child = lambda: run_child(["sh", "-c", script], grace_s=1)
    raise SystemExit(serve_until_stopped("stub", child, grace_s=1))
""")
# The server in this process, with a child in this process's group (as Prefect's temporary server).
IN_PROCESS = textwrap.dedent("""
    import subprocess, time
    from flows.children import serve_until_stopped
    def run():
        subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("ready", flush=True)
        time.sleep(300)
    raise SystemExit(serve_until_stopped("stub", run, grace_s=1))
""")
# A server that ignores the stop: the deadline ends it.
HANGS = textwrap.dedent("""
    import subprocess, time
    from flows.children import serve_until_stopped
    def run():
        subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                print("ready", flush=True)  # within the try: the signal may come at once
                time.sleep(300)
            except KeyboardInterrupt:
                pass
    raise SystemExit(serve_until_stopped("stub", run, grace_s=1, deadline_s=2))
""")
# A server that ends on its own with a code, leaving a process behind.
ENDS = textwrap.dedent("""
    import subprocess
    from flows.children import serve_until_stopped
    def run():
        sleep = subprocess.Popen(["sleep", "300"], start_new_session=True, stdout=subprocess.DEVNULL)
        print(sleep.pid, flush=True)
        return CODE
    raise SystemExit(serve_until_stopped("stub", run, grace_s=1))
""")


def start(script: str, count: int) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """Start `script`, wait for its "ready" and `count` descendants, and record them."""
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    recorded = psutil.Process(server.pid).children(recursive=True)
    while len(recorded) < count and time.monotonic() < deadline:
        time.sleep(0.05)  # the shell's two sleeps start just after its "ready"
        recorded = psutil.Process(server.pid).children(recursive=True)
    assert len(recorded) == count
    return server, recorded


def finish(server: subprocess.Popen, recorded: list[psutil.Process]) -> tuple[str, str]:
    """The server's output once it exits; past 30 s, it and what it started are killed."""
    try:
        return server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        still = left(recorded)
        server.communicate()
        raise AssertionError(f"still running 30 s after the signal; left: {still}") from None


def left(recorded: list[psutil.Process]) -> list[str]:
    """Recorded processes still alive (killed, so a failing test leaves nothing either)."""
    alive = []
    for process in recorded:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(process.cmdline()))
                process.kill()
        except psutil.NoSuchProcess:
            pass
    return alive


# sh, its sleep and the setsid sleep; or the one child
@pytest.mark.parametrize("script, count", [(STUBBORN, 3), (IN_PROCESS, 1)], ids=["child-group", "in-process"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_the_server_and_everything_it_started(script, count, sig):
    server, recorded = start(script, count)
    started = time.monotonic()
    server.send_signal(sig)
    out, err = finish(server, recorded)
    assert time.monotonic() - started < 8  # SIGTERM, 1 s of grace, SIGKILL
    assert left(recorded) == []
    assert (server.returncode, out.strip(), err) == (0, f"stub stopped by {sig.name}", "")


def test_a_shutdown_that_hangs_is_forced_after_the_deadline():
    server, recorded = start(HANGS, 1)
    server.send_signal(signal.SIGTERM)
    out, err = finish(server, recorded)
    assert left(recorded) == []
    assert server.returncode == 128 + signal.SIGTERM
    assert err.strip() == "error: stub: stopped by SIGTERM (forced after 2 s)"


@pytest.mark.parametrize("ending", ["return", "raise SystemExit"], ids=["returns", "exits"])
@pytest.mark.parametrize("code", [0, 3])
def test_a_server_that_ends_by_itself_keeps_its_code_and_leaves_nothing(code, ending):
    """Returning a code, or exiting with one as Prefect's runner does on a SIGTERM it takes itself."""
    script = ENDS.replace("return CODE", f"{ending}({code})")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    out, _ = server.communicate(timeout=30)
    pid, *rest = out.splitlines()
    assert left([psutil.Process(int(pid))] if psutil.pid_exists(int(pid)) else []) == []
    assert server.returncode == code
    assert rest == (["stub stopped"] if code == 0 else [])  # "stopped": a clean end only


def test_descendants_sees_grandchildren_and_tells_reused_pids_apart():
    before = descendants()  # this test run's own servers, if any
    shell = subprocess.Popen(["sh", "-c", "sleep 300 & wait"])
    try:
        deadline = time.monotonic() + 10
        while not descendants(shell.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        found = descendants()
        new = found.keys() - before.keys()
        expected = {shell.pid} | {p.pid for p in psutil.Process(shell.pid).children(recursive=True)}
        assert new == expected and len(new) == 2
        assert descendants(shell.pid).keys() == new - {shell.pid}
        assert all(start.isdigit() for start in found.values())  # start times, not pids
    finally:
        for process in psutil.Process(shell.pid).children(recursive=True):
            process.kill()
        shell.kill()
        shell.wait()


def test_processes_running_before_the_server_are_left_alone():
    earlier = subprocess.Popen(["sleep", "300"])
    try:
        assert serve_until_stopped("stub", lambda: 0, grace_s=1) == 0
        assert earlier.poll() is None  # not the server's: still running
    finally:
        earlier.kill()
        earlier.wait()
