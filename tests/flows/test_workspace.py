"""flows/workspace.py: one run at a time per workspace, with real processes holding the real lock, and
two real `prefpipe run`s started together on a copy of the project."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from flows.workspace import LOCK, WorkspaceBusy, describe, hold_workspace
from prefpipe.store import Store
from tests.conftest import ROOT, env_for, make_repo

HOLDER = """import sys
from pathlib import Path
from flows.workspace import hold_workspace
with hold_workspace(Path(sys.argv[1]), 0):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


def start_holder(root: Path) -> subprocess.Popen:
    """Another process that holds `root`'s workspace until its stdin closes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == "held\n"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)


def test_the_lock_records_its_holder_while_held_and_nothing_after(tmp_path):
    with hold_workspace(tmp_path, 0):
        record = json.loads((tmp_path / LOCK).read_text())
        assert record["pid"] == os.getpid() and record["flow_run_id"] is None
    assert (tmp_path / LOCK).read_text() == ""
    with hold_workspace(tmp_path, 0):  # released: the next run gets it at once
        pass


def test_a_held_workspace_refuses_at_once_naming_the_holder(tmp_path):
    holder = start_holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(WorkspaceBusy) as refused, hold_workspace(tmp_path, 0):
            pytest.fail("got a workspace another process holds")
        assert time.monotonic() - started < 2
    finally:
        release(holder)
    message = str(refused.value)
    assert message.startswith(f"another prefpipe run holds this workspace (pid {holder.pid}, since ")
    assert message.endswith("this run was refused; wait for it to finish, or raise "
                            "orchestration.wait_for_workspace_s to queue behind it")
    assert "\n" not in message


def test_a_waiting_run_gets_the_workspace_once_the_holder_releases_it(tmp_path):
    holder = start_holder(tmp_path)
    said: list[str] = []
    threading.Timer(1.5, holder.stdin.close).start()
    started = time.monotonic()
    with hold_workspace(tmp_path, 60, say=said.append):
        waited = time.monotonic() - started
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    holder.wait(timeout=30)
    assert 1.0 < waited < 30
    assert len(said) == 1 and f"(pid {holder.pid}, " in said[0], said
    assert said[0].endswith("waiting for it (0 s of up to 60 s, orchestration.wait_for_workspace_s)")


def test_a_waiting_run_is_refused_when_its_wait_runs_out(tmp_path):
    holder = start_holder(tmp_path)
    said: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(WorkspaceBusy, match=r"this run waited 0\.6 s and was refused"), \
                hold_workspace(tmp_path, 0.6, say=said.append):
            pass
        assert 0.6 <= time.monotonic() - started < 5
    finally:
        release(holder)
    assert len(said) == 1


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == holder.pid  # its record stays...
    with hold_workspace(tmp_path, 0):  # ...but the kernel released its lock
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


def test_describe_names_pid_flow_run_host_and_start():
    now = datetime.now(UTC)
    record = {"pid": 7, "host": "elsewhere", "flow_run_id": "abc",
              "started_at": now.isoformat(timespec="seconds")}
    assert describe(record) == f"pid 7 on elsewhere, flow run abc, since {now:%H:%M:%S} UTC"
    earlier = now - timedelta(days=2)
    assert describe({"pid": 7, "started_at": earlier.isoformat()}) == \
        f"pid 7, since {earlier:%Y-%m-%d %H:%M:%S} UTC"
    assert describe(None) == "holder not recorded yet"


def test_prefpipe_stage_is_refused_while_a_run_holds_the_workspace(tmp_path):
    repo = make_repo(tmp_path / "stage")
    holder = start_holder(repo.path)
    try:
        result = repo.prefpipe("stage", "prepare", check=False)
    finally:
        release(holder)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: another prefpipe run holds this workspace (pid {holder.pid}, ")
    assert not (repo.path / "dvc.lock").exists() and not (repo.path / "store").exists()


# Two real runs on a copy of the project. The real `prepare` stage, then `linger`: a stage of the
# copy's dvc.yaml that keeps the run that got the workspace busy for 30 s, so the two runs overlap
# however the machine schedules the two processes' start-up.
LINGER = {"cmd": "python -c \"import time; time.sleep(30); open('linger.txt', 'w').write('x')\"",
          "deps": ["data/prompts.parquet"], "outs": ["linger.txt"]}


@pytest.mark.slow
def test_two_runs_started_together_one_runs_the_other_is_refused(tmp_path, prefect_server):
    # A real server: two temporary ones starting together on a fresh .prefect/ race to migrate its
    # database (Prefect's own start-up, before any run holds the workspace).
    repo = make_repo(tmp_path / "two-runs", prefect_server)
    dvc_yaml = yaml.safe_load((repo.path / "dvc.yaml").read_text())
    dvc_yaml["stages"]["linger"] = LINGER
    (repo.path / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    env = {**env_for(repo.path, prefect_server), "PREFPIPE_ROOT": str(repo.path)}
    command = [sys.executable, "-m", "flows.cli", "run", "--stage", "prepare", "--stage", "linger"]
    runs = [subprocess.Popen(command, cwd=repo.path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run, *run.communicate(timeout=600)) for run in runs]
    assert sorted(run.returncode for run, _, _ in results) == [0, 2], results
    (winner, *_), (_, _, refused) = sorted(results, key=lambda result: result[0].returncode)
    line = next(line for line in refused.splitlines() if line.startswith("error: "))
    held = re.fullmatch(rf"error: another prefpipe run holds this workspace \(pid {winner.pid}, "
                        r"flow run ([0-9a-f-]{36}), since \d\d:\d\d:\d\d UTC\): this run was refused; "
                        r"wait for it to finish, or raise orchestration\.wait_for_workspace_s to "
                        r"queue behind it", line)
    assert held, refused
    assert "Traceback" not in refused, refused
    status = subprocess.run(["dvc", "status", "--json", "prepare", "linger"], cwd=repo.path, env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {}  # dvc.lock matches every output the winner wrote
    store = Store(repo.path / "store" / "prefpipe.duckdb", lock_timeout_s=5)
    assert store.count("prompts") > 0
    stage_runs = store.query("SELECT run_id, stage FROM runs ORDER BY stage").to_pylist()
    assert stage_runs == [{"run_id": held.group(1), "stage": "prepare"}]  # the winner's, once
