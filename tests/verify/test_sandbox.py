"""The sandboxed code runner: honest scoring, forgery attempts, and hostile candidates contained.

Hostile candidates run with the audit hook (the normal path) and, where a kernel layer should stop
them on its own, once more without it (`_run(..., audit=False)`); each with bubblewrap and without
(the `limits` fixture). The attacks only bubblewrap stops are in test_sandbox_hostile.py."""
from __future__ import annotations

import logging
import os
import re
import socket
import time
from dataclasses import replace

import psutil
import pytest

from prefpipe.verify import sandbox
from prefpipe.verify.sandbox import (
    BUBBLEWRAP,
    FALLBACK,
    SandboxLimits,
    _run,
    isolation,
    run_many,
    run_tests,
)
from prefpipe.verify.sandbox_verdict import split_test

FAST = SandboxLimits(wall_s=4.0, cpu_s=1.0)
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0",
             "assert 5 == add(-1, 1)"]
ADD = "def add(a, b):\n    return a + b\n"
ROOT = os.geteuid() == 0
as_root = pytest.mark.skipif(not ROOT, reason="the uid layer needs root")


def limits_for(isolation_mode: str) -> SandboxLimits:
    """FAST with bubblewrap (skipped where it does not work here), or with the fallback layers."""
    if isolation_mode == FALLBACK:
        return replace(FAST, bubblewrap=False)
    if isolation(FAST) != BUBBLEWRAP:
        pytest.skip("bubblewrap does not work here (the log says why)")
    return FAST


@pytest.fixture(params=[BUBBLEWRAP, FALLBACK])
def limits(request) -> SandboxLimits:
    return limits_for(request.param)


def run_both(code: str, tests=ADD_TESTS, limits=FAST):
    """The result with the audit hook, and the one with only the kernel layers."""
    return run_tests(code, tests, limits), _run(code, list(tests), limits, audit=False)


def printed_pid(detail: str, name: str = "PID") -> int:
    return int(re.search(rf"{name}=(\d+)", detail).group(1))


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


SHOW_PID = "import os\nprint(f'PID={os.getpid()} NS={os.readlink(\"/proc/self/ns/pid\")}')\n"


def left_behind(detail: str, name: str = "PID") -> list[int]:
    """Live host processes of a run that printed SHOW_PID: any in its own pid namespace (bubblewrap;
    its teardown gets 2 s), else the pid it printed as `name`, and that pid's process group."""
    ns = re.search(r"NS=(pid:\[\d+\])", detail).group(1)
    if ns == os.readlink("/proc/self/ns/pid"):
        pid = printed_pid(detail, name)
        return [p for p in psutil.pids() if (p == pid or _pgid(p) == pid) and not gone(p)]
    deadline = time.perf_counter() + 2
    alive = [p for p in psutil.pids() if _pid_ns(p) == ns and not gone(p)]
    while alive and time.perf_counter() < deadline:
        time.sleep(0.05)
        alive = [p for p in psutil.pids() if _pid_ns(p) == ns and not gone(p)]
    return alive


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def test_normal_candidate_passes_three_of_four():
    result = run_tests(ADD, ADD_TESTS, FAST)
    assert (result.status, result.passed, result.total, result.reward) == ("ok", 3, 4, 0.75)
    assert "test 3: got 0" in result.detail


def test_statement_tests_are_run_in_the_child():
    tests = ["assert add(1, 2) in (3,)", "assert isinstance(add(1, 2), int)", "assert add(1, 1) > 5"]
    result = run_tests(ADD, tests, FAST)
    assert (result.status, result.passed) == ("ok", 2)


def test_split_test():
    assert split_test("assert add(1, 2) == 3") == ("add(1, 2)", 3)
    assert split_test("assert [1, 'x'] == f(a=1)") == ("f(a=1)", [1, "x"])
    assert split_test("assert f(1) == g(1)") is None
    assert split_test("assert f(1) != 3") is None
    assert split_test("x = 1") is None
    assert split_test("assert (") is None


@pytest.mark.parametrize("code", [
    ADD + "import sys\nsys.exit(0)\n",
    ADD + "import os\nos._exit(0)\n",
    ADD + "raise SystemExit(0)\n",
])
def test_exiting_at_import_scores_zero(code):
    result = run_tests(code, ADD_TESTS, FAST)
    assert result.reward == 0.0
    assert result.status == "crashed"


def test_printed_fake_results_score_zero():
    code = ("import sys\nfor i in range(4):\n    print(f'pass {i}'); print(f'value {i} 3')\n"
            "sys.stdout.flush()\nimport os\nos._exit(0)\n")
    assert run_tests(code, ADD_TESTS, FAST).reward == 0.0


def test_writing_fake_lines_to_every_descriptor_voids_the_run():
    code = ADD + ("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'x pass 0 \\n')\n"
                  "    except OSError:\n        pass\n")
    result = run_tests(code, ADD_TESTS, FAST)
    assert (result.status, result.reward) == ("blocked", 0.0)
    assert "forged" in result.detail


def test_always_equal_objects_do_not_pass():
    code = ("class Same:\n    def __eq__(self, other):\n        return True\n"
            "def add(a, b):\n    return Same()\n")
    assert run_tests(code, ADD_TESTS, FAST).reward == 0.0


def test_patched_builtins_are_restored_before_each_test():
    code = "import builtins\nbuiltins.len = lambda x: 3\ndef f():\n    return [1]\n"
    assert run_tests(code, ["assert len(f()) == 3"], FAST).reward == 0.0


def test_syntax_error():
    result = run_tests("def add(a, b) return a", ADD_TESTS, FAST)
    assert (result.status, result.reward) == ("syntax_error", 0.0)


@pytest.mark.parametrize("code", [SHOW_PID + "while True:\n    pass\n",
                                  SHOW_PID + "import time\ntime.sleep(100)\n"])
def test_loops_and_sleeps_time_out_and_leave_nothing_behind(code, limits):
    start = time.perf_counter()
    result = run_tests(code, ADD_TESTS, limits)
    assert time.perf_counter() - start < 15
    assert (result.status, result.reward) == ("timeout", 0.0)
    assert left_behind(result.detail) == []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@as_root
def test_a_child_that_left_the_process_group_is_killed_by_uid(limits):
    code = SHOW_PID + ("import time\npid = os.fork()\nif pid == 0:\n    os.setsid()\n    time.sleep(100)\n"
                       "print(f'CHILD={pid}')\nwhile True:\n    pass\n")
    result = _run(code, ADD_TESTS, replace(limits, wall_s=3.0, max_processes=4), audit=False)
    assert result.status == "timeout"
    assert left_behind(result.detail, "CHILD") == []


@pytest.mark.parametrize("code", ["import os\nwhile True:\n    os.fork()\n",
                                  "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])\n"])
def test_fork_bombs_are_contained(code, limits):
    start = time.perf_counter()
    hooked, kernel_only = run_both(code, limits=limits)
    assert time.perf_counter() - start < 15
    assert (hooked.status, hooked.reward) == ("blocked", 0.0)
    if ROOT:  # RLIMIT_NPROC holds for the sandbox uid even without the hook
        assert kernel_only.status == "crashed" and "BlockingIOError" in kernel_only.detail


def test_memory_hog_gets_memory_error(limits):
    start = time.perf_counter()
    hooked, kernel_only = run_both("hog = bytearray(10 * 2**30)\n" + ADD, limits=limits)
    assert time.perf_counter() - start < 15
    assert (hooked.status, hooked.reward) == ("memory", 0.0)
    assert kernel_only.status == "memory"


def test_network_call_never_reaches_a_listening_server(limits):
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    port = server.getsockname()[1]
    code = (f"import socket\ndef add(a, b):\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)"
            ".sendall(b'leak')\n    return a + b\n")
    try:
        hooked, kernel_only = run_both(code, limits=limits)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert (hooked.status, hooked.reward) == ("blocked", 0.0)
    assert kernel_only.reward == 0.0


def test_writing_outside_its_directory(tmp_path, limits):
    target = tmp_path / "escaped.txt"
    code = f"open({str(target)!r}, 'w').write('x')\n" + ADD
    hooked = run_tests(code, ADD_TESTS, limits)
    # with bubblewrap the host's /tmp/... is a path in its own tmpfs, where that folder doesn't exist
    assert (hooked.status, hooked.reward) == ("crashed" if limits.bubblewrap else "blocked", 0.0)
    assert not target.exists()
    if ROOT or limits.bubblewrap:  # the unprivileged uid alone stops it, and so does bubblewrap
        assert _run(code, ADD_TESTS, limits, audit=False).status == "crashed"
        assert not target.exists()


def test_writing_inside_its_directory_is_fine():
    code = "open('scratch.txt', 'w').write('3')\ndef three():\n    return int(open('scratch.txt').read())\n"
    assert run_tests(code, ["assert three() == 3"], FAST).reward == 1.0


def test_parent_environment_is_unreadable(monkeypatch, limits):
    monkeypatch.setenv("PREFPIPE_TEST_SECRET", "hunter2")
    code = "import os\ndef leak():\n    return os.environ.get('PREFPIPE_TEST_SECRET')\n"
    result = run_tests(code, ["assert leak() == 'hunter2'", "assert leak() is None"], limits)
    assert (result.status, result.passed) == ("ok", 1)
    via_proc = ("import os\ndef leak():\n"
                "    return 'hunter2' in open(f'/proc/{os.getppid()}/environ').read()\n")
    hooked, kernel_only = run_both(via_proc, ["assert leak() == True"], limits)
    assert (hooked.status, hooked.reward) == ("blocked", 0.0)
    if limits.bubblewrap:  # its parent is bwrap's pid 1, which carries the sandbox's own environment
        assert (kernel_only.status, kernel_only.reward) == ("ok", 0.0)
    elif ROOT:
        assert kernel_only.reward == 0.0 and "PermissionError" in kernel_only.detail


def test_run_many_keeps_order_and_runs_duplicates_once():
    wrong = "def add(a, b):\n    return a - b\n"
    jobs = [(ADD, ADD_TESTS), (wrong, ADD_TESTS), (ADD, ADD_TESTS)]
    first = run_many(jobs, FAST, workers=2)
    assert [r.passed for r in first] == [3, 1, 3]
    assert first[0] is first[2]  # one run for the duplicate
    again = run_many(jobs, FAST, workers=2)
    assert again[0] is first[0] and again[1] is first[1]  # served from the cache
    fresh = run_many(jobs, FAST, workers=2, use_cache=False)
    assert fresh[1] is not first[1] and fresh[1].passed == 1


def test_isolation_is_bubblewrap_where_it_works_unless_turned_off():
    assert isolation(replace(FAST, bubblewrap=False)) == FALLBACK
    assert isolation(FAST) in (BUBBLEWRAP, FALLBACK)
    if isolation(FAST) == BUBBLEWRAP:
        code = "import os\ndef procs():\n    return sorted(int(p) for p in os.listdir('/proc') if p < 'A')"
        assert run_tests(code, ["assert procs() == [1, 2]"], FAST).reward == 1.0  # its own pid namespace


def test_a_bubblewrap_that_cannot_confine_falls_back_and_says_so_once(monkeypatch, caplog):
    sandbox._bubblewrap_works.cache_clear()
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/bin/false")  # a bwrap whose every run fails
    try:
        with caplog.at_level(logging.WARNING, logger="prefpipe"):
            assert [isolation(FAST) for _ in range(3)] == [FALLBACK] * 3
            assert run_tests(ADD, ADD_TESTS, FAST).passed == 3  # the fallback layers still run it
        warnings = [r.getMessage() for r in caplog.records if "code sandbox" in r.getMessage()]
        assert len(warnings) == 1 and "/bin/false failed its probe run" in warnings[0]
    finally:
        sandbox._bubblewrap_works.cache_clear()
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        works = isolation(FAST) == BUBBLEWRAP
    assert works == (not caplog.records)  # a bubblewrap that works says nothing
