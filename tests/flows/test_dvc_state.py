"""`up_to_date` asks DVC itself (`dvc status`), as the flow does before each stage."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.dvc_state import up_to_date

pytestmark = pytest.mark.slow  # real dvc commands: ~30 s on a loaded CPU
DVC = str(Path(sys.executable).parent / "dvc")


def test_a_stage_is_up_to_date_only_after_it_ran(tmp_path):
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "in.txt").write_text("one\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    assert not up_to_date("copy", tmp_path)
    subprocess.run([DVC, "repro", "-q", "copy"], cwd=tmp_path, check=True)
    assert up_to_date("copy", tmp_path)
    (tmp_path / "in.txt").write_text("two\n")
    assert not up_to_date("copy", tmp_path)


def test_a_stage_dvc_does_not_know_is_not_up_to_date(tmp_path):
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo hi\n")
    assert not up_to_date("nope", tmp_path)
