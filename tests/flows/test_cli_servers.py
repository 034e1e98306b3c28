"""`prefpipe ui` and `prefpipe serve` against real Prefect servers on loopback."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
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
    ui = subprocess.Popen([sys.executable, "-m", "flows.cli", "ui", "--port", str(port)],
                          cwd=repo.path, env=env_for(repo.path), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
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
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            ui.wait(timeout=120)
        except subprocess.TimeoutExpired:  # a loaded machine: don't leave a server behind
            ui.kill()
            ui.wait()


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
    finally:
        serve.terminate()
        serve.wait(timeout=60)
