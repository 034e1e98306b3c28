"""tasks/python: every dvc.yaml stage runs the project's interpreter, whatever PATH says first."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, env_for, make_repo

WRAPPER = ROOT / "tasks" / "python"
PROJECT_VENV = Path(sys.executable).parent.parent  # the venv running the tests has the packages
PRINT_EXECUTABLE = ["-c", "import sys; print(sys.executable)"]


@pytest.fixture
def wrong_python(tmp_path) -> Path:
    """A folder whose `python` and `python3` are not the project's (they fail loudly)."""
    folder = tmp_path / "wrong-bin"
    folder.mkdir()
    for name in ("python", "python3"):
        (folder / name).write_text("#!/bin/sh\necho 'wrong python' >&2\nexit 3\n")
        (folder / name).chmod(0o755)
    return folder


def shell_env(first_on_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFPIPE_PYTHON", "VIRTUAL_ENV")}
    env["PATH"] = f"{first_on_path}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return {**env, **extra}


def project_with_venv(path: Path) -> Path:
    (path / "tasks").mkdir(parents=True)
    shutil.copy2(WRAPPER, path / "tasks" / "python")
    (path / ".venv").symlink_to(PROJECT_VENV)
    return path


def run_wrapper(wrapper: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(wrapper), *PRINT_EXECUTABLE], env=env, cwd=wrapper.parent,
                          capture_output=True, text=True, timeout=60)


def test_the_projects_venv_wins_over_the_first_python_on_path(tmp_path, wrong_python):
    project = project_with_venv(tmp_path / "project")
    result = run_wrapper(project / "tasks" / "python", shell_env(wrong_python))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(project / ".venv" / "bin" / "python")


def test_an_experiment_copy_inside_the_project_finds_the_projects_venv(tmp_path, wrong_python):
    project = project_with_venv(tmp_path / "project")
    copy = project / ".dvc" / "tmp" / "exps" / "tmpabc"  # where `dvc exp run --temp` works
    (copy / "tasks").mkdir(parents=True)
    shutil.copy2(WRAPPER, copy / "tasks" / "python")
    result = run_wrapper(copy / "tasks" / "python", shell_env(wrong_python))
    assert result.stdout.strip() == str(project / ".venv" / "bin" / "python"), result.stderr


def test_prefpipe_python_is_used_first(tmp_path, wrong_python):
    project = project_with_venv(tmp_path / "project")
    env = shell_env(wrong_python, PREFPIPE_PYTHON=sys.executable)
    assert run_wrapper(project / "tasks" / "python", env).stdout.strip() == sys.executable


def test_a_venv_without_the_packages_is_passed_by(tmp_path, wrong_python):
    """An unrelated .venv in a folder above the project (its python lacks torch) is not taken."""
    bare = tmp_path / ".venv" / "bin"
    bare.mkdir(parents=True)
    (bare / "python").symlink_to(shutil.which("python3", path="/usr/bin:/bin"))
    project = tmp_path / "project"
    (project / "tasks").mkdir(parents=True)
    shutil.copy2(WRAPPER, project / "tasks" / "python")
    env = shell_env(wrong_python, VIRTUAL_ENV=str(PROJECT_VENV))
    assert run_wrapper(project / "tasks" / "python", env).stdout.strip() == \
        str(PROJECT_VENV / "bin" / "python")


def test_no_usable_python_says_how_to_get_one(tmp_path, wrong_python):
    project = tmp_path / "project"
    (project / "tasks").mkdir(parents=True)
    shutil.copy2(WRAPPER, project / "tasks" / "python")
    result = run_wrapper(project / "tasks" / "python", shell_env(wrong_python))
    assert result.returncode == 127
    assert "make setup" in result.stderr and "PREFPIPE_PYTHON" in result.stderr


def test_readme_dvc_commands_work_when_the_first_python_is_not_the_projects(tmp_path, wrong_python):
    """`.venv/bin/dvc repro` and `.venv/bin/dvc exp run -S ...` from a shell whose `python` is
    another one: the stage runs the project's interpreter and the experiment's params apply."""
    repo = make_repo(tmp_path / "repo")
    (repo.path / ".venv").symlink_to(PROJECT_VENV)
    env = env_for(repo.path)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{wrong_python}{os.pathsep}{env['PATH']}"
    dvc = str(PROJECT_VENV / "bin" / "dvc")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=repo.path, env=env, capture_output=True, text=True, timeout=600)

    repro = run(dvc, "repro", "prepare")
    assert repro.returncode == 0, repro.stdout[-2000:] + repro.stderr[-2000:]
    assert (repo.path / "data" / "prompts.parquet").exists()
    for command in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t",
                                           "commit", "-qm", "base"]):
        subprocess.run(command, cwd=repo.path, env=env, check=True, capture_output=True)
    exp = run(dvc, "exp", "run", "-S", "data.heldout_fraction=0.3", "prepare")
    assert exp.returncode == 0, exp.stdout[-2000:] + exp.stderr[-2000:]
    assert "wrong python" not in exp.stdout + exp.stderr
    assert repo.params()["data"]["heldout_fraction"] == 0.3
