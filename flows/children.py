"""Servers the CLI starts (`prefpipe ui`, `prefpipe serve`, `prefpipe label serve`) end whole.

`serve_until_stopped(name, run)` calls `run()`, the server, in this process. SIGTERM or SIGINT
raises `Stopped` there, a KeyboardInterrupt, so the library serving (uvicorn, Prefect's runner)
shuts down as it does on Ctrl-C. Then every process this one started meanwhile, and theirs, is
stopped (those already running when it was called are left alone):
SIGTERM, then SIGKILL after `grace_s`; those that were descendants when the signal came are
included even if they have since left the tree (re-parented to init). A requested stop is a
server's normal end: one line "NAME stopped by SIGTERM" and exit code 0 (not 128 + the signal, as
`prefpipe run` exits when a run is cut short). Should the shutdown hang past `deadline_s`, whatever
is left is killed and the process exits 128 + the signal's number.

`run_child(command)` runs a server command in a process group of its own, so a terminal's Ctrl-C
reaches only the CLI, which stops the whole group (SIGTERM, SIGKILL after `grace_s`).

Descendants are found through /proc (Linux); elsewhere only the child's process group is stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

GRACE_S = 10.0
DEADLINE_S = 30.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT asked the server to stop."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal_name = signal.Signals(signum).name


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc ({} where there is none)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid ...
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z":
            table[int(stat.parent.name)] = (int(fields[1]), fields[19])  # ppid, starttime
    return table


def descendants(pid: int | None = None) -> dict[int, str]:
    """Every living descendant of `pid` (this process by default): pid -> start time, which tells a
    process from a later one that reuses its pid."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, [os.getpid() if pid is None else pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def stop_processes(processes: Mapping[int, str], grace_s: float = GRACE_S) -> None:
    """SIGTERM each process that is still the one recorded, SIGKILL those alive after `grace_s`."""
    def living():
        table = _proc_table()
        return [pid for pid, start in processes.items() if table.get(pid, (0, None))[1] == start]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in living():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while living() and time.monotonic() < deadline:
            time.sleep(0.1)


def run_child(command: list[str], env: Mapping[str, str] | None = None, grace_s: float = GRACE_S) -> int:
    """Run `command` in a process group of its own until it exits (its exit code) or this process is
    interrupted: then the whole group is stopped before the exception goes on."""
    with subprocess.Popen(command, env=env, start_new_session=True) as child:
        try:
            return child.wait()
        except BaseException:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(child.pid, signal.SIGKILL)  # the group's members once the leader is gone too
            child.wait()
            raise


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def serve_until_stopped(name: str, run: Callable[[], int | None], grace_s: float = GRACE_S,
                        deadline_s: float = DEADLINE_S) -> int:
    """Call `run()` until it returns (its exit code; None is 0) or SIGTERM / SIGINT stops it (0);
    either way no process it started outlives this call. Prints "NAME stopped" when it ends with 0."""
    earlier = descendants()  # not the server's to stop (a test's own servers, say)
    recorded: dict[int, str] = {}
    seen: list[int] = []  # the signals that came, the first one stopping the server
    stopping, done = threading.Event(), threading.Event()
    threading.Thread(target=_force_exit_when_stuck, args=(name, seen, stopping, done, deadline_s, earlier),
                     daemon=True).start()  # now: a handler that starts a thread can deadlock

    def handle(signum, frame):
        recorded.update(descendants())
        seen.append(signum)
        if len(seen) == 1:  # later ones: the shutdown is under way, bounded by the deadline
            stopping.set()
            raise Stopped(signum)

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        code = run() or 0
    except KeyboardInterrupt:  # Stopped, or a library's own translation of it (asyncio's)
        code = 0
    except SystemExit as exit_:  # a library's own handler (Prefect's runner exits 0 on an early SIGTERM)
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        seen.append(0)  # from here on a signal only records what is running
        stop_processes(_started_since(earlier, {**recorded, **descendants()}), grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        done.set()
        stopping.set()
    if code == 0:
        how = f" by {signal.Signals(seen[0]).name}" if seen[0] else ""
        print(f"{name} stopped{how}", flush=True)
    return code


def _started_since(earlier: Mapping[int, str], processes: Mapping[int, str]) -> dict[int, str]:
    """`processes` less those that were already running (same pid and start time) in `earlier`."""
    return {pid: start for pid, start in processes.items() if earlier.get(pid) != start}


def _force_exit_when_stuck(name: str, seen: list[int], stopping: threading.Event,
                           done: threading.Event, deadline_s: float, earlier: Mapping[int, str]) -> None:
    """Once a signal came, a shutdown that hangs past `deadline_s` ends anyway: what is left is
    killed and the process exits 128 + the signal's number."""
    stopping.wait()
    if done.wait(deadline_s):
        return
    stop_processes(_started_since(earlier, descendants()), grace_s=0)
    print(f"error: {name}: stopped by {signal.Signals(seen[0]).name} (forced after {deadline_s:.0f} s)",
          file=sys.stderr, flush=True)
    os._exit(128 + seen[0])
