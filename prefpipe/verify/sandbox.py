"""Run untrusted Python against assert-statement tests in a sandboxed subprocess.

Each run gets a fresh interpreter (``python -I -S -B``: isolated mode, no site-packages, no
bytecode writes) started in a new session, fed the candidate and the tests on stdin. Its isolation
comes from the kernel through bubblewrap where that works here (probed once with a real run); the
harness in the child then confines itself further before the candidate's first line runs. Layers,
and what each stops:

0. bubblewrap (`sandbox_bwrap`): user, pid, mount, network, IPC and UTS namespaces of its own,
   ``--die-with-parent``, ``--new-session``. The candidate sees only its own processes in a fresh
   /proc, no network, and of the host's files only /usr, /lib*, the interpreter's prefix and the
   loader's cache, read-only: the host's temp dir, /dev/shm, /work, /root and the store are not
   there, so no path and no directory descriptor reaches them. Its only writable place is a private
   tmpfs (its cwd) capped at `max_disk_bytes` for all its files together, gone with the run.
1. A minimal environment (PATH, LANG, HOME, TMPDIR): the parent's environment variables are never
   inherited. Without bubblewrap: a fresh temp dir on the host as cwd, deleted afterwards.
2. Kernel resource limits: RLIMIT_AS (memory hog -> MemoryError), RLIMIT_CPU (busy loop -> killed),
   RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0, RLIMIT_NPROC (fork bomb -> EAGAIN).
3. A wall-clock deadline in the parent: past it the whole process group is SIGKILLed (sleepers,
   blocked reads); the group is also killed after every normal exit. With bubblewrap that kills
   bwrap, and its pid namespace dies with it: every process the candidate started goes too.
4. When run as root: an unprivileged uid of its own per concurrent run (SANDBOX_UID_BASE + slot,
   exclusive across processes through a lock file); with bubblewrap, bwrap itself runs as that uid.
   Root ignores RLIMIT_NPROC, so this is what makes the fork limit real; file permissions stop
   writes to root's files and reads of them (/proc/<parent>/environ). With max_processes > 1 the
   parent also runs ``kill -9 -1`` as that uid, which reaches children that left the group (setsid).
5. Without bubblewrap: a network namespace of its own (``unshare(CLONE_NEWNET)``; unprivileged:
   with CLONE_NEWUSER): only a loopback that is down. Skipped if not permitted.
6. Defence in depth: a ``sys.addaudithook`` hook that blocks process creation (fork, exec, system,
   spawn, Popen), socket connect/bind/send, ctypes, writes and renames outside its directory, and
   other processes' /proc entries. A blocked attempt is reported at once and voids the run (status
   "blocked").

Where bubblewrap is missing or cannot create namespaces (not root and no unprivileged user
namespaces), layers 1-6 run alone: a warning says so once in the log, `isolation` reports it (the
label stage's metric ``verifier_sandbox``), and then the audit hook is all that stands between the
candidate and world-writable or world-readable host files: directory descriptors (``dir_fd``) and a
PathLike with a changing ``__fspath__`` get past its path checks, so writes to /tmp and /dev/shm,
reads of other processes' /proc/<pid>/cmdline and of any world-readable file succeed, and disk use
is bounded only per file (RLIMIT_FSIZE). `SandboxLimits.bubblewrap=False` forces that path (tests).

Forging a pass: tests of the form ``assert EXPR == LITERAL`` are judged in the parent: the child is
only sent EXPR, returns its value (plain data only, as ``repr``), and the parent compares it with
the LITERAL the child never saw; so a candidate that exits early, prints or writes fake result
lines, or returns an always-equal object cannot pass without producing the right values. Other
statements are judged in the child and reported with a per-run nonce; a forged or duplicate line
voids the run. NOT covered, even with bubblewrap: a candidate that digs the nonce out of harness
memory can forge non-literal statement tests; the tmpfs caps bytes, not inodes, so empty files are
bounded only by the wall clock (kernel memory, freed with the run); everything under /usr is
readable; CPU and memory are per-process rlimits, not a cgroup; there is no seccomp filter, so a
kernel exploit escapes the namespaces.

This module starts the child and keeps the parent's side (layers 1 and 3, the job cache, the
probe); `sandbox_bwrap` builds layer 0's command line, `sandbox_child` is the harness that confines
the child (layers 2, 5, 6), `sandbox_uids` holds layer 4 and `sandbox_verdict` turns the child's
result lines into a score.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from prefpipe.verify.sandbox_bwrap import SANDBOX_DIR, bwrap_command, bwrap_path
from prefpipe.verify.sandbox_child import harness_main
from prefpipe.verify.sandbox_uids import SANDBOX_UID_BASE, UID_SLOTS, kill_uid
from prefpipe.verify.sandbox_verdict import MAX_RESULT_BYTES, SandboxResult, score, split_test

_CACHE_LIMIT = 100_000
BUBBLEWRAP, FALLBACK = "bubblewrap", "rlimits+audit-hook"  # what `isolation` reports
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits; each one is enforced by the kernel or by the parent, not by the candidate."""
    wall_s: float = 5.0  # wall clock from spawn to exit, interpreter start included; then SIGKILL
    cpu_s: float = 3.0  # RLIMIT_CPU, rounded up to whole seconds; exceeding it is a SIGKILL
    memory_mb: int = 256  # RLIMIT_AS: address space; larger allocations raise MemoryError
    max_processes: int = 1  # RLIMIT_NPROC of the sandbox uid (tasks: processes and threads); 1 = none
    max_output_bytes: int = 16_384  # stdout+stderr tail kept in `detail`; the rest is read and dropped
    max_file_bytes: int = 1 << 20  # RLIMIT_FSIZE: largest file the candidate may write
    max_open_files: int = 64  # RLIMIT_NOFILE
    max_disk_bytes: int = 16 << 20  # bubblewrap: size of its tmpfs, all its files together (+ inodes)
    bubblewrap: bool = True  # False: layers 1-6 only, as where bubblewrap does not work (tests)


def run_tests(code: str, tests: Sequence[str], limits: SandboxLimits) -> SandboxResult:
    """Run `code` in a fresh sandboxed interpreter, then each test statement against its namespace."""
    return _run(code, list(tests), limits, audit=True)


def run_many(jobs: Sequence[tuple[str, Sequence[str]]], limits: SandboxLimits, workers: int,
             use_cache: bool = True) -> list[SandboxResult]:
    """run_tests for each (code, tests) job with at most `workers` at once; results in input order.

    Identical jobs (same code, tests and limits) run once: within the batch always, and across
    calls through an in-memory cache keyed by their content hash unless `use_cache` is False."""
    from concurrent.futures import ThreadPoolExecutor

    if workers < 1:
        raise ValueError(f"workers must be >= 1 (got {workers}); set the verifier's workers param")
    keys = [_job_key(code, tests, limits) for code, tests in jobs]
    todo = {}
    for key, (code, tests) in zip(keys, jobs):
        if key not in todo and not (use_cache and key in _CACHE):
            todo[key] = (code, list(tests))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = dict(zip(todo, pool.map(lambda job: run_tests(job[0], job[1], limits), todo.values())))
    if use_cache:
        with _CACHE_LOCK:
            if len(_CACHE) + len(done) > _CACHE_LIMIT:
                _CACHE.clear()
            _CACHE.update(done)
    return [done[key] if key in done else _CACHE[key] for key in keys]


def isolation(limits: SandboxLimits) -> str:
    """BUBBLEWRAP when runs with `limits` are confined by bubblewrap, else FALLBACK: asked not to,
    or bubblewrap does not work here (probed once with a real run; the log then says so, once)."""
    if not limits.bubblewrap:
        return FALLBACK
    with _PROBE_LOCK:
        return BUBBLEWRAP if _bubblewrap_works() else FALLBACK


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


_CACHE: dict[str, SandboxResult] = {}
_CACHE_LOCK = threading.Lock()
_PROBE_LOCK = threading.Lock()
_PROBE_CODE = "import math, fractions, json, collections, itertools, functools, re"
_PROBE_TESTS = ["assert math.isqrt(16) == 4", "assert str(fractions.Fraction(1, 2)) == '1/2'"]


def _job_key(code: str, tests: Sequence[str], limits: SandboxLimits) -> str:
    blob = json.dumps([code, list(tests), asdict(limits)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _run(code: str, tests: list[str], limits: SandboxLimits, audit: bool,
         interpreter: str | None = None, kernel: bool | None = None) -> SandboxResult:
    """One sandboxed run; `audit=False` (tests only) leaves out layer 6 to check the others alone;
    `kernel` (the probes) says whether to use bubblewrap, else `isolation(limits)` does."""
    split = [split_test(test) for test in tests]
    child_tests = [["expr", s[0]] if s else ["stmt", t] for s, t in zip(split, tests)]
    nonce = secrets.token_hex(16)
    bwrap = isolation(limits) == BUBBLEWRAP if kernel is None else kernel
    exe = interpreter or _interpreter()
    slot = UID_SLOTS.acquire() if os.geteuid() == 0 else None
    workdir = None if bwrap else tempfile.mkdtemp(prefix="prefpipe-sandbox-")
    read_end, write_end = os.pipe()
    start = time.perf_counter()
    try:
        if slot is not None and workdir:
            os.chown(workdir, slot.uid, slot.uid)
        home = SANDBOX_DIR if bwrap else workdir
        payload = {"code": code, "tests": child_tests, "nonce": nonce, "fd": write_end, "tmp": home,
                   "uid": None if bwrap or slot is None else slot.uid, "unshare": not bwrap, "audit": audit,
                   "limits": {**asdict(limits), "cpu_s": max(1, int(-(-limits.cpu_s // 1))),
                              # bwrap's reaper (pid 1) counts too: it has the candidate's uid and namespace
                              "max_processes": limits.max_processes + int(bwrap)}}
        command = [exe, "-I", "-S", "-B", "-u", "-c", _harness_source()]
        if bwrap:  # bwrap runs as the slot's uid, so its user namespace maps to that uid
            command = bwrap_command(bwrap_path(), os.path.realpath(exe), limits.max_disk_bytes) + command[1:]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home}
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            cwd=workdir or "/", pass_fds=(write_end,), start_new_session=True,
            **({"user": slot.uid, "group": slot.uid, "extra_groups": []} if bwrap and slot else {}))
        os.close(write_end)
        write_end = -1
        output, results, timed_out = _collect(proc, json.dumps(payload).encode(), read_end,
                                              start + limits.wall_s, limits.max_output_bytes)
        if slot is not None and limits.max_processes > 1:
            kill_uid(slot.uid)
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        if slot is not None:
            UID_SLOTS.release(slot)
    wall = time.perf_counter() - start
    returncode = proc.returncode  # bwrap exits 128 + N when its child was killed by signal N
    if bwrap and returncode > 128:
        returncode = 128 - returncode
    return score(results, nonce, split, returncode, timed_out, output, wall)


def _collect(proc: subprocess.Popen, payload: bytes, results_fd: int, deadline: float,
             max_output: int) -> tuple[bytes, bytes, bool]:
    """Feed the payload, read output (tail kept) and results until EOF or the deadline, then
    SIGKILL the process group while its leader is still unreaped (so the group id can't be reused)."""
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    output, results = bytearray(), bytearray()
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, output)
    selector.register(results_fd, selectors.EVENT_READ, results)
    timed_out = False
    while selector.get_map():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in selector.select(remaining):
            chunk = os.read(key.fd, 65_536)
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            key.data.extend(chunk)
            if key.data is output and len(output) > max_output:
                del output[:len(output) - max_output]
            if len(results) > MAX_RESULT_BYTES:
                selector.unregister(key.fileobj)
    selector.close()
    while not timed_out and os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if time.perf_counter() > deadline:  # closed its pipes but kept running
            timed_out = True
        time.sleep(0.002)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    proc.stdout.close()
    return bytes(output), bytes(results), timed_out


@functools.lru_cache(maxsize=1)
def _harness_source() -> str:
    return inspect.getsource(harness_main) + "\nharness_main()\n"


@functools.lru_cache(maxsize=1)
def _interpreter() -> str:
    """A Python whose standard library the sandbox uid can read (as root, the venv's interpreter may
    live under /root); probed once with a real run without bubblewrap."""
    if os.geteuid() != 0:
        return sys.executable
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    for exe in dict.fromkeys(c for c in candidates if os.path.exists(c)):
        probe = _run(_PROBE_CODE, _PROBE_TESTS, SandboxLimits(wall_s=20.0), audit=True, interpreter=exe,
                     kernel=False)
        if probe.status == "ok" and probe.passed == len(_PROBE_TESTS):
            return exe
    raise RuntimeError(f"no Python interpreter among {candidates} has a standard library readable by "
                       f"the sandbox uid {SANDBOX_UID_BASE}+; make one readable (chmod o+rx along its "
                       "path) or install python3 under /usr")


@functools.lru_cache(maxsize=1)
def _bubblewrap_works() -> bool:
    """Whether bubblewrap confines a real run here; when it does not, the log says so (once)."""
    bwrap = bwrap_path()
    if bwrap is None:
        reason = "bubblewrap is not installed (`make sandbox`, or apt-get install bubblewrap)"
    else:
        probe = _run(_PROBE_CODE, _PROBE_TESTS, SandboxLimits(wall_s=20.0), audit=True, kernel=True)
        if probe.status == "ok" and probe.passed == len(_PROBE_TESTS):
            return True
        reason = f"{bwrap} failed its probe run (no user namespaces?): {' '.join(probe.detail.split())[:300]}"
    log.warning("code sandbox: %s; falling back to rlimits, a uid per run and the audit hook, which "
                "do not stop writes and reads through directory descriptors (prefpipe/verify/sandbox.py)",
                reason)
    return False
