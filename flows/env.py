"""Environment every entry point sets before Prefect is imported (Prefect reads PREFECT_HOME when
it is imported), and the environment the flow gives the commands it starts.

Importing this module sets nothing: entry points (flows/cli.py `main`) call
`prepare_environment()` first and import Prefect after it."""
from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path


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
