"""The environment the flow gives the commands it starts, the project's DVC settings, and the wait
for a server to answer (real processes on loopback)."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.env import ROOT, command_environment, server_healthy, wait_until_answering
from prefpipe.errors import PrefpipeError


def test_commands_run_this_interpreter_without_dvc_analytics(monkeypatch):
    monkeypatch.delenv("DVC_NO_ANALYTICS", raising=False)
    env = command_environment(EXTRA="1")
    assert env["DVC_NO_ANALYTICS"] == "1"  # else every dvc command leaves a detached daemon behind
    assert env["PREFPIPE_PYTHON"] == sys.executable and env["EXTRA"] == "1"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_the_project_switches_dvc_analytics_off_for_anyone_running_dvc():
    value = subprocess.run([str(Path(sys.executable).parent / "dvc"), "config", "core.analytics"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert value == "false"


def free_api_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


@pytest.fixture
def started(tmp_path):
    """Starts `python -c CODE ...` with its output to a log, as the servers are; stops them all."""
    processes = []

    def start(*args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"server-{len(processes)}.log"
        with open(log, "w") as out:
            processes.append(subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT))
        return processes[-1], log

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_the_wait_ends_once_a_starting_server_answers_its_health_url(started, tmp_path):
    (tmp_path / "site" / "api").mkdir(parents=True)
    (tmp_path / "site" / "api" / "health").write_text("true")
    api_url = free_api_url()
    port = api_url.split(":")[2].split("/")[0]
    server, log = started("-m", "http.server", port, "--bind", "127.0.0.1",
                          "--directory", str(tmp_path / "site"))
    wait_until_answering(api_url, server, log, timeout_s=60, poll_s=0.05)
    assert server_healthy(api_url) and server.poll() is None


def test_a_server_that_exits_first_is_an_error_with_its_exit_code_and_log(started):
    server, log = started("-c", "import sys; print('cannot bind'); sys.exit(3)")
    with pytest.raises(PrefpipeError) as failed:
        wait_until_answering(free_api_url(), server, log, timeout_s=60, poll_s=0.05)
    assert str(failed.value) == f"the Prefect server exited with code 3 before it answered; its log: {log}"
    assert log.read_text() == "cannot bind\n"


@pytest.mark.parametrize(("name", "setting", "said"), [
    ("the Prefect server", "", "the Prefect server on {url} did not answer within 1 s; its log: {log}"),
    ("the temporary Prefect server", "SOME_TIMEOUT_KEY",
     "the temporary Prefect server on {url} did not answer within 1 s (SOME_TIMEOUT_KEY); its log: {log}")])
def test_a_silent_server_is_an_error_naming_the_url_the_wait_and_its_setting(started, name, setting, said):
    server, log = started("-c", "import time; time.sleep(120)")
    api_url = free_api_url()
    with pytest.raises(PrefpipeError) as failed:
        wait_until_answering(api_url, server, log, timeout_s=1, name=name, timeout_setting=setting,
                             poll_s=0.05)
    assert str(failed.value) == said.format(url=api_url, log=log)
    assert server.poll() is None  # still running: the wait gave up on it, it did not end it
