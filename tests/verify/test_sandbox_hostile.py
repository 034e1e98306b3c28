"""Attacks that get past the audit hook and the rlimits and that only the kernel stops: writes
through directory descriptors, memory-backed /dev/shm, other processes' /proc entries, filling the
disk with big or many small files, reading world-readable host files.

Each runs with bubblewrap (must be contained) and on the fallback layers, where it escapes: the
fallback case is a strict xfail, so a fallback that started containing one would show up too."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from prefpipe.verify.sandbox import BUBBLEWRAP, FALLBACK, SandboxLimits, run_tests
from tests.verify.test_sandbox import limits_for


@pytest.fixture(params=[BUBBLEWRAP, pytest.param(FALLBACK, marks=pytest.mark.xfail(
    strict=True, reason="the fallback layers (rlimits, uid, audit hook) do not stop this attack"))])
def limits(request) -> SandboxLimits:
    return limits_for(request.param)


@pytest.fixture
def host_name():
    """A fresh name, and every host place an escaped candidate could have used it, removed after."""
    name = f"prefpipe-hostile-{secrets.token_hex(6)}"
    yield name
    for folder in (tempfile.gettempdir(), "/dev/shm"):
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def test_writes_through_a_directory_descriptor_leave_nothing_in_the_host_temp_dir(limits, host_name):
    code = (f"import os\ndef escape():\n    top = os.open({tempfile.gettempdir()!r}, os.O_RDONLY)\n"
            f"    os.mkdir({host_name!r}, dir_fd=top)\n"
            f"    out = os.open({host_name + '/big'!r}, os.O_CREAT | os.O_WRONLY, dir_fd=top)\n"
            "    return os.write(out, b'x' * 100_000)\n")
    result = run_tests(code, ["assert escape() == 100_000"], limits)
    assert result.status == "ok"  # the audit hook lets it through: its own tmpfs took the write
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), host_name))


def test_writes_to_dev_shm_do_not_reach_the_host(limits, host_name):
    code = (f"import os\ndef escape():\n    shm = os.open('/dev/shm', os.O_RDONLY)\n    try:\n"
            f"        os.mkdir({host_name!r}, dir_fd=shm)\n"
            f"        out = os.open({host_name + '/big'!r}, os.O_CREAT | os.O_WRONLY, dir_fd=shm)\n"
            "        return os.write(out, b'x' * 100_000)\n    except OSError as err:\n"
            "        return err.strerror\n")
    result = run_tests(code, ["assert escape() == 'Read-only file system'"], limits)
    assert (result.status, result.reward) == ("ok", 1.0)
    assert not os.path.exists(os.path.join("/dev/shm", host_name))


def test_proc_through_a_descriptor_shows_only_the_sandbox_processes(limits):
    marker = f"prefpipe-hostile-{secrets.token_hex(6)}"
    planted = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    code = ("import os\ndef cmdlines():\n    top, seen = os.open('/proc', os.O_RDONLY), {}\n"
            "    for entry in os.listdir(top):\n        if entry.isdigit():\n            try:\n"
            "                fd = os.open(entry + '/cmdline', os.O_RDONLY, dir_fd=top)\n"
            "                seen[int(entry)] = os.read(fd, 1 << 16)\n                os.close(fd)\n"
            "            except OSError:\n                pass\n    return seen\n")
    tests = [f"assert any({marker.encode()!r} in c for c in cmdlines().values()) == False",
             "assert sorted(cmdlines()) == [1, 2]"]  # bwrap's reaper and the candidate
    try:
        result = run_tests(code, tests, limits)
    finally:
        planted.kill()
        planted.wait()
    assert (result.status, result.passed) == ("ok", 2), result.detail


def test_filling_the_disk_stops_at_the_tmpfs_cap(limits):
    cap = 2 << 20
    code = ("def fill():\n    written = 0\n    try:\n        for n in range(32):  # 8 MiB in 256 KiB files\n"
            "            with open(f'big{n}', 'wb') as out:\n                out.write(b'x' * (256 << 10))\n"
            "            written += 256 << 10\n    except OSError as err:\n"
            "        return written, err.strerror\n    return written, None\n")
    test = f"written, error = fill()\nassert written <= {cap} and error == 'No space left on device'"
    result = run_tests(code, [test], replace(limits, max_disk_bytes=cap))
    assert (result.status, result.reward) == ("ok", 1.0), result.detail


def test_many_small_files_fail_the_run_cleanly_at_the_cap(limits):
    code = ("for n in range(1024):  # a page each: 4 MiB\n"
            "    with open(f's{n}', 'w') as out:\n        out.write('x')\n")
    result = run_tests(code + "def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"],
                       replace(limits, max_disk_bytes=1 << 20))
    assert (result.status, result.reward) == ("crashed", 0.0)
    assert "No space left on device" in result.detail


def test_world_readable_host_files_are_not_there(limits):
    folder = tempfile.mkdtemp(prefix="prefpipe-hostile-")
    try:
        os.chmod(folder, 0o755)
        secret = Path(folder, "store.duckdb")
        secret.write_text("hunter2")
        secret.chmod(0o644)
        code = ("def peek(path):\n    try:\n        return open(path).read()[:7]\n"
                "    except OSError as err:\n        return type(err).__name__\n")
        tests = [f"assert peek({str(secret)!r}) == 'FileNotFoundError'",
                 f"assert peek({__file__!r}) == 'FileNotFoundError'"]  # the repository, under /work
        result = run_tests(code, tests, limits)
    finally:
        shutil.rmtree(folder)
    assert (result.status, result.passed) == ("ok", 2), result.detail
