"""What DVC itself says about a stage, asked through its command line (never its log text), and
`dvc repro` of one stage with the stage's own exit code and message (tasks/_stage.report_exit)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flows.env import ROOT, command_environment


def up_to_date(stage: str, root: Path = ROOT) -> bool:
    """`dvc status STAGE` finds nothing changed, so `dvc repro --single-item STAGE` will skip it.

    False when dvc can't tell (e.g. a broken dvc.yaml): the repro that follows reports why."""
    return status([stage], root) == {}


def changed_stages(stages: Iterable[str], root: Path = ROOT) -> set[str] | None:
    """Those of `stages` (of the project's dvc.yaml) that `dvc status` finds changed; the others
    `dvc repro --single-item` would skip. One `dvc status` of the whole project (half the time of one
    naming every stage); what it says of other stages or tracked files is not needed. None when dvc
    can't tell (a broken dvc.yaml)."""
    said = status([], root)
    if said is None:
        return None
    named = {key.removeprefix("dvc.yaml:") for key in said}
    return {stage for stage in stages if stage in named}


def status(targets: list[str], root: Path = ROOT) -> dict | None:
    """`dvc status --json TARGETS...` (the whole project when none): what changed, by stage (or
    tracked file); None when dvc can't tell."""
    result = subprocess.run(["dvc", "status", "--json", *targets], cwd=root, env=command_environment(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    try:
        said = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return None
    return said if isinstance(said, dict) else None


@dataclass(frozen=True)
class Repro:
    """How `dvc repro` of one stage ended. `exit_code`: 0, the stage's own code when it reported one
    (2: the user can fix it), else 1 (a crash, a kill, or DVC itself failed). `outcome`: "skipped"
    (up to date), "restored" (DVC checked its outputs out of its run cache: the command never
    ran), "ran", or "failed". `message`: the stage's own one-line error, or DVC's exit status.
    `stop_message`: "" unless the stage said the run has nothing more to do (report_exit's
    stop_run), then its message; `run_title`: what the stage asked to prefix the run's name with."""
    stage: str
    exit_code: int
    outcome: str
    message: str
    stop_message: str = ""
    run_title: str = ""


def repro(stage: str, force: bool = False, root: Path = ROOT, on_line: Callable[[str], None] | None = None,
          changed: bool | None = None, **extra_env: str) -> Repro:
    """`dvc repro --single-item STAGE` in a process group of its own, stopped whole when an exception
    (a signal) interrupts the wait. Output goes to `on_line` line by line, or to this terminal.
    `changed`: what `dvc status` said of the stage, when the caller knows it is still so (else it is
    asked here): False skips the stage without starting dvc at all."""
    if changed is False and not force:
        (on_line or print)(f"Stage '{stage}' didn't change, skipping (dvc status, asked once for the run)")
        return Repro(stage, 0, "skipped", "")
    skipping = not force and not changed and up_to_date(stage, root)
    command = ["dvc", "repro", "--single-item", stage] + (["--force"] if force else [])
    with tempfile.TemporaryDirectory(prefix="prefpipe-stage-") as tmp:
        status_file = Path(tmp) / "status.json"
        env = command_environment(PREFPIPE_STAGE_STATUS=str(status_file), **extra_env)
        pipe = subprocess.PIPE if on_line else None
        with subprocess.Popen(command, cwd=root, env=env, stdout=pipe,
                              stderr=subprocess.STDOUT if on_line else None, text=True, bufsize=1,
                              start_new_session=True) as process:
            try:
                for line in process.stdout or ():
                    if line.rstrip():
                        on_line(line.rstrip())
                code = process.wait()
            except BaseException:  # SIGTERM (Prefect's TerminationSignal), SIGINT, a crash: stop it
                _stop(process)
                raise
        status = json.loads(status_file.read_text()) if status_file.exists() else None
    if code == 0:
        outcome = "skipped" if skipping else ("ran" if status else "restored")
        said = status or {}
        return Repro(stage, 0, outcome, "", said["message"] if said.get("stop_run") else "",
                     said.get("run_title", ""))
    if status and status["exit"]:
        return Repro(stage, int(status["exit"]), "failed", status["message"])
    return Repro(stage, 1, "failed", f"{stage} failed: `{' '.join(command)}` exited with {code}")


def _stop(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the command's process group (dvc, the stage, its workers); SIGKILL after `grace_s`."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
    _signal_group(process, signal.SIGKILL)  # workers dvc left behind


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
