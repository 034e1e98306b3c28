"""tasks/_stage.py's start-up, in fresh interpreters: torch set up as the stages need it, and the
stages that only move files and metrics start without torch."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT

SETUP = """
import sys, torch
from tasks._stage import setup
setup(1)
print(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
      torch.is_deterministic_algorithms_warn_only_enabled(), "torch._inductor" in sys.modules)
"""
STAGE = """
import sys
from pathlib import Path
from tasks._stage import run_stage
def recipe(params, store):
    Path("torch.txt").write_text(str("torch" in sys.modules))
    return {}
run_stage("files_only", recipe, uses_torch=USES_TORCH)
"""


def python(code: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFPIPE_STAGE_STATUS": str(cwd / "status.json")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_setup_sets_threads_and_deterministic_kernels_without_torch_compile(tmp_path):
    result = python(SETUP, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "True", "False"]


def test_a_stage_that_uses_no_torch_starts_without_it(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    for uses_torch in (False, True):
        result = python(STAGE.replace("USES_TORCH", str(uses_torch)), tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "torch.txt").read_text() == str(uses_torch)
