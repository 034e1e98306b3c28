"""tasks/_stage.py's start-up, in fresh interpreters: torch set up as the stages need it, and the
stages that only move files and metrics start without torch (prepare, whose tokenizer trains with
`tokenizers` alone, runs without it), nor boto3 when no S3 store is set."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from tests.conftest import ROOT, TINY, merge

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

# A stage run as `python -m tasks.NAME` runs it; what it imported is written as it exits.
RUN_AND_LIST = """
import atexit, runpy, sys
from pathlib import Path
atexit.register(lambda: Path("imported.txt").write_text(
    " ".join(m for m in ("torch", "transformers", "boto3") if m in sys.modules)))
runpy.run_module(sys.argv[1], run_name="__main__")
"""
IMPORT_AND_LIST = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(" ".join(m for m in ("torch", "boto3") if m in sys.modules))
"""


def python(code: str, cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFPIPE_STAGE_STATUS": str(cwd / "status.json")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


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


def test_the_stages_that_move_files_import_neither_torch_nor_boto3(tmp_path):
    result = python(IMPORT_AND_LIST, tmp_path, "tasks.prepare", "tasks.round", "tasks.gate",
                    "tasks.publish")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_prepare_runs_without_torch(tmp_path):
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = python(RUN_AND_LIST, tmp_path, "tasks.prepare")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models" / "tokenizer" / "tokenizer.json").is_file()  # it did its work
    assert (tmp_path / "imported.txt").read_text().split() == ["transformers"]


# Loaded at interpreter start (PYTHONPATH): whether the collector was on when the stage imported
# tasks._stage; at exit, whether it is on and whether start-up's objects are frozen.
GC_PROBE = """
import atexit, gc, sys
seen = {}
def on_import(event, args):
    if event == "import" and args[0] == "tasks._stage":
        seen.setdefault("import", gc.isenabled())
def report():
    open("probe.txt", "w").write(f"{seen.get('import')} {gc.isenabled()} {gc.get_freeze_count() > 0}")
sys.addaudithook(on_import)
atexit.register(report)
"""


def test_a_stage_process_imports_with_the_collector_off(tmp_path):
    """`python -m tasks.NAME` (what dvc.yaml runs) imports with the cyclic GC off; run_stage freezes
    what start-up made and turns the GC back on. `import tasks...` anywhere else (flows, tests)
    leaves the collector as it is."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "sitecustomize.py").write_text(GC_PROBE)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'probe'}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1",
           "PREFPIPE_STAGE_STATUS": str(tmp_path / "status.json")}
    as_stage = [sys.executable, "-m", "tasks.sft"]  # fails for want of a tokenizer, after start-up
    as_import = [sys.executable, "-c", "import runpy; runpy.run_module('tasks.sft', run_name='__main__')"]
    for command, expected in ((as_stage, "False True True"), (as_import, "True True False")):
        (tmp_path / "probe.txt").unlink(missing_ok=True)
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert "stage sft starting" in result.stderr, result.stderr
        assert (tmp_path / "probe.txt").read_text() == expected
