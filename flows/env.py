"""Environment every entry point sets before Prefect is imported (Prefect reads PREFECT_HOME when
it is imported), the environment the flow gives the commands it starts, and the Prefect server an
entry point starts for itself when no API is configured.

Importing this module sets nothing: entry points (flows/cli.py `main`) call
`prepare_environment()` first and import Prefect after it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prefpipe.errors import PrefpipeError


def project_root() -> Path:
    """The project (dvc.yaml, params.yaml, store): $PREFPIPE_ROOT if set, else the checkout these
    modules sit in (a source tree or an editable install), else the working directory (an installed
    package run from inside the project)."""
    if os.environ.get("PREFPIPE_ROOT"):
        return Path(os.environ["PREFPIPE_ROOT"]).resolve()
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "dvc.yaml").exists() else Path.cwd().resolve()


ROOT = project_root()
UI_STATE = ROOT / ".prefect" / "ui.json"


def prepare_environment() -> None:
    """Project-local Prefect home, no analytics, time for a first server start, and this venv's
    python first on PATH."""
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A fresh .prefect/ migrates its database on the first start: Prefect's default 20 s wait for
    # the temporary server timed out on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.update(command_environment())
    if "PREFECT_API_URL" not in os.environ:
        url = running_ui_api_url()
        if url:
            os.environ["PREFECT_API_URL"] = url


def command_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a command it starts (dvc, a stage): this interpreter for the
    stages and this venv's tools first on PATH, quiet tokenizers, no DVC analytics, plus `extra`.
    Also right when a Prefect worker, not an entry point of ours, imported the flow."""
    env = {**os.environ, **extra}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("DVC_NO_ANALYTICS", "1")  # else each dvc command leaves a detached analytics daemon
    env.setdefault("PREFPIPE_PYTHON", sys.executable)  # what tasks/python runs stages with
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def server_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def running_ui_api_url() -> str | None:
    """The API of the server `prefpipe ui` started, if it is still up."""
    if not UI_STATE.exists():
        return None
    url = json.loads(UI_STATE.read_text()).get("api_url")
    return url if url and server_healthy(url) else None


def start_prefect_server(log: Path, timeout_s: float = 90.0) -> str:
    """`prefect server start` (API and UI) on a free loopback port, a child of this process in a
    session of its own (a terminal's Ctrl-C reaches only this process), its output to `log`; returns
    its API URL once it answers. The caller stops it (flows/children.py `serve_until_stopped` stops
    every process started while it runs). A server that exits or stays silent past `timeout_s` is a
    `PrefpipeError` naming `log`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_UI_API_URL": api_url,
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        server = subprocess.Popen(["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until_answering(api_url, server, log, timeout_s)
    return api_url


def wait_until_answering(api_url: str, server: subprocess.Popen, log: Path, timeout_s: float, *,
                         name: str = "the Prefect server", timeout_setting: str = "",
                         poll_s: float = 0.5) -> None:
    """Poll `api_url`'s /health until it answers. The `server` process exiting first (its exit code),
    or `timeout_s` passing (the URL, the wait and `timeout_setting`, the setting that sets it), is a
    `PrefpipeError` that names the server's `log`; `name` says which server."""
    deadline = time.monotonic() + timeout_s
    while not server_healthy(api_url):
        if server.poll() is not None:
            raise PrefpipeError(f"{name} exited with code {server.returncode} before it answered; "
                                f"its log: {log}")
        if time.monotonic() > deadline:
            setting = f" ({timeout_setting})" if timeout_setting else ""
            raise PrefpipeError(f"{name} on {api_url} did not answer within {timeout_s:.0f} s{setting}; "
                                f"its log: {log}")
        time.sleep(poll_s)
