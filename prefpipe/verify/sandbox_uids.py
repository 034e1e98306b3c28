"""Layer 4 of the sandbox (see `prefpipe.verify.sandbox`): when run as root, each concurrent run
gets an unprivileged uid of its own, and every process of that uid is killed after the run.

A uid is held exclusively, across threads and processes, through flock on one lock file per uid;
root ignores RLIMIT_NPROC, so this is what makes the sandbox's fork limit real."""
from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

SANDBOX_UID_BASE = 62_000  # uids SANDBOX_UID_BASE .. + SANDBOX_UID_SLOTS - 1 are reserved for runs
SANDBOX_UID_SLOTS = 256


@dataclass(frozen=True)
class Slot:
    uid: int
    lock_fd: int


class UidSlots:
    """Hands out uids exclusively, across threads and processes, through flock on one file per uid."""

    def __init__(self, base: int, count: int) -> None:
        self.base, self.count = base, count
        self.lock_dir = os.path.join(tempfile.gettempdir(), "prefpipe-sandbox-uids")

    def acquire(self) -> Slot:
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        offset = secrets.randbelow(self.count)
        while True:
            for step in range(self.count):
                uid = self.base + (offset + step) % self.count
                fd = os.open(os.path.join(self.lock_dir, str(uid)), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC,
                             0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return Slot(uid, fd)
                except BlockingIOError:
                    os.close(fd)
            time.sleep(0.05)

    def release(self, slot: Slot) -> None:
        os.close(slot.lock_fd)


UID_SLOTS = UidSlots(SANDBOX_UID_BASE, SANDBOX_UID_SLOTS)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` and wait (up to 5 s) until none is left alive, so the uid's
    next run starts from zero tasks. kill(-1) sent as that uid reaches exactly its processes."""
    kill = shutil.which("kill", path="/usr/bin:/bin")
    command = [kill, "-9", "-1"] if kill else [sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"]
    deadline = time.perf_counter() + 5.0
    while live_processes(uid) and time.perf_counter() < deadline:
        subprocess.run(command, user=uid, group=uid, extra_groups=[], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=10)
        time.sleep(0.01)


def live_processes(uid: int) -> list[int]:
    """Pids whose real uid is `uid` and that are not zombies (read from /proc/<pid>/status)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        zombie = fields.get("State", "").strip().startswith("Z")
        if int(fields.get("Uid", "-1").split()[0]) == uid and not zombie:
            pids.append(int(entry))
    return pids
