"""`prefpipe ui`, `prefpipe serve` and `prefpipe label serve` as real servers on loopback: what they
serve, and that SIGTERM or SIGINT stops every process they started (flows/children.py)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import env_for, flow_runs, free_port, make_repo

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ui_serves_the_ui_and_later_runs_report_to_it(tmp_path):
    repo = make_repo(tmp_path / "ui", None)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    output = tmp_path / "output.txt"
    with open(output, "w") as out:
        ui = subprocess.Popen([sys.executable, "-m", "flows.cli", "ui", "--port", str(port)],
                              cwd=repo.path, env=env_for(repo.path), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 120, "the server")
        state = json.loads((repo.path / ".prefect" / "ui.json").read_text())
        assert state["api_url"] == api
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        settings = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
        assert settings["api_url"] == api  # the UI finds its API through PREFECT_UI_API_URL

        repo.prefpipe("run", "--stage", "prepare")  # no PREFECT_API_URL: found via ui.json
        runs = flow_runs(api)
        assert [r["state_type"] for r in runs] == ["COMPLETED"]

        stop_and_check(ui, signal.SIGINT, repo.path / ".prefect", port, output)  # Ctrl-C
        assert not (repo.path / ".prefect" / "ui.json").exists()
    finally:
        kill_tree(ui)


def test_serve_registers_a_cron_scheduled_deployment(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "serve", prefect_server)
    serve = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--cron", "0 3 * * *",
                              "--name", "nightly-test"], cwd=repo.path,
                             env=env_for(repo.path, prefect_server), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        def deployment():
            found = httpx.post(f"{prefect_server}/deployments/filter",
                               json={"deployments": {"name": {"any_": ["nightly-test"]}}}).json()
            return found[0] if found else None

        found = wait_for(deployment, 90, "the deployment")
        crons = [s["schedule"].get("cron") for s in found["schedules"]]
        assert crons == ["0 3 * * *"]
        assert found["global_concurrency_limit"]["limit"] == 1  # one round at a time
        assert found["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    finally:
        serve.terminate()
        serve.wait(timeout=60)


def test_serve_without_an_api_starts_a_server_whose_scheduler_fires_the_cron(tmp_path):
    """Prefect's temporary server never fires a schedule: with no PREFECT_API_URL and no `prefpipe
    ui` up, `prefpipe serve` starts a real server, records it for other shells, and stops it too."""
    repo = make_repo(tmp_path / "own", None)
    ui_state, output = repo.path / ".prefect" / "ui.json", tmp_path / "output.txt"
    env = {**env_for(repo.path), "PREFPIPE_ROOT": str(repo.path),
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}  # the scheduler: every 2 s, not 60
    with open(output, "w") as out:
        serve = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--cron", "0 3 * * *", "--name",
                                  "x"], cwd=repo.path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def recorded():
            assert serve.poll() is None, f"serve exited {serve.returncode}:\n{output.read_text()[-2000:]}"
            text = ui_state.read_text() if ui_state.exists() else ""
            return text and json.loads(text)["api_url"]

        api = wait_for(recorded, 120, ".prefect/ui.json")
        port = int(api.rsplit(":", 1)[1].split("/")[0])
        started = (f"Prefect server and UI on http://127.0.0.1:{port} (started for this serve); "
                   "Ctrl-C stops both")
        assert started in output.read_text().splitlines()

        def deployment():
            found = httpx.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["x"]}}},
                               timeout=10).json()
            return found[0] if found else None

        found = wait_for(deployment, 120, "the deployment")
        assert [s["schedule"].get("cron") for s in found["schedules"]] == ["0 3 * * *"]
        assert found["schedules"][0]["active"] and not found["paused"]

        def scheduled_runs():  # what the server's scheduler does and a temporary server never does
            runs = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
                "deployments": {"id": {"any_": [found["id"]]}}}).json()
            return [r for r in runs if r["state_type"] == "SCHEDULED"]

        runs = wait_for(scheduled_runs, 60, "the scheduler's runs")
        assert {r["expected_start_time"][11:16] for r in runs} == {"03:00"}

        stop_and_check(serve, signal.SIGTERM, repo.path / ".prefect", port, output)
        assert not ui_state.exists()
    finally:
        kill_tree(serve)


def test_serve_whose_server_fails_to_start_says_so_in_one_line(tmp_path):
    repo = make_repo(tmp_path / "broken", None)
    env = {**env_for(repo.path), "PREFPIPE_ROOT": str(repo.path),
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/missing/prefect.db"}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "serve", "--cron", "0 3 * * *"],
                            cwd=repo.path, env=env, capture_output=True, text=True, timeout=180)
    log = repo.path / ".prefect" / "server.log"
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: the Prefect server exited with code 3 before it answered; its log: {log}"]
    assert "unable to open database file" in log.read_text()
    assert not (repo.path / ".prefect" / "ui.json").exists()


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} (parent {process.ppid()}): {' '.join(process.cmdline())[:160]}"
    except psutil.Error:
        return f"{process.pid} (gone)"


def leftovers(recorded: list[psutil.Process], home: Path, port: int) -> list[psutil.Process]:
    """Recorded descendants still alive, and any other process (re-parented to init, say) whose
    environment names this test's Prefect home or whose command line names its port."""
    found = {p.pid: p for p in recorded if alive(p)}
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and alive(process) and (
                    process.environ().get("PREFECT_HOME") == str(home) or str(port) in process.cmdline()):
                found[process.pid] = process
        except psutil.Error:
            pass
    return list(found.values())


def kill_tree(server: subprocess.Popen) -> None:
    """After a failed check: don't leave the server or anything it started behind."""
    if server.poll() is None:
        for process in psutil.Process(server.pid).children(recursive=True):
            process.kill()
        server.kill()
        server.wait()


def stop_and_check(server: subprocess.Popen, sig: signal.Signals, home: Path, port: int,
                   output: Path) -> None:
    """Record the server's descendants, send `sig`, and check that it exits 0 within a minute with
    its "stopped" line and leaves no process behind (any it left is killed, then reported)."""
    recorded = psutil.Process(server.pid).children(recursive=True)
    server.send_signal(sig)
    try:
        code = server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        recorded += psutil.Process(server.pid).children(recursive=True)
        server.kill()
        code = server.wait()
    left = leftovers(recorded, home, port)
    report = [describe(p) for p in left]
    for process in left:
        process.kill()
    assert not report, f"processes left after {sig.name}: {report}"
    assert code == 0, f"exit code {code} after {sig.name}:\n{output.read_text()[-2000:]}"
    # Prefect's runner takes SIGTERM itself, so `prefpipe serve` can't always name the signal
    assert re.search(rf"^prefpipe [a-z ]+ stopped( by {sig.name})?$", output.read_text(), re.M)


SERVERS = {
    "ui": ["ui", "--port", "{port}"],
    "label": ["label", "serve", "--port", "{port}"],
    "serve": ["serve", "--cron", "0 3 * * *", "--name", "stop-test"],  # with a server it starts
}


def answers(kind: str, port: int, output: Path, server: subprocess.Popen) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"{kind} exited {server.returncode}:\n{output.read_text()[-2000:]}")
    if kind == "ui":
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    if kind == "label":
        return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
    return "is being served" in output.read_text() and bool(psutil.Process(server.pid).children())


@pytest.mark.parametrize("kind, sig", [("ui", signal.SIGTERM), ("label", signal.SIGTERM),
                                       ("label", signal.SIGINT), ("serve", signal.SIGTERM),
                                       ("serve", signal.SIGINT)],
                         ids=lambda v: getattr(v, "name", v))
def test_a_signal_stops_the_server_and_every_process_it_started(tmp_path, kind, sig):
    # `prefpipe ui`'s SIGINT case is the end of test_ui_serves_the_ui_and_later_runs_report_to_it
    repo = make_repo(tmp_path / kind, None)
    port, output = free_port(), tmp_path / "output.txt"
    args = [a.format(port=port) for a in SERVERS[kind]]
    with open(output, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=repo.path,
                                  env=env_for(repo.path), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: answers(kind, port, output, server), 120, f"`prefpipe {' '.join(args)}`")
        stop_and_check(server, sig, repo.path / ".prefect", port, output)
    finally:
        kill_tree(server)
