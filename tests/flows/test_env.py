"""The environment the flow gives the commands it starts, and the project's DVC settings."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.env import ROOT, command_environment


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
