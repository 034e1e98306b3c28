"""Environment every entry point sets before Prefect is imported."""
from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_STATE = ROOT / ".prefect" / "ui.json"


def prepare_environment() -> None:
    """Project-local Prefect home, no analytics, and this venv's python first on PATH."""
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if "PREFECT_API_URL" not in os.environ:
        url = running_ui_api_url()
        if url:
            os.environ["PREFECT_API_URL"] = url


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
