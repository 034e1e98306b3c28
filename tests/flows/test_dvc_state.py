"""`up_to_date` and `changed_stages` ask DVC itself (`dvc status`), as the flow does; `repro` hands on
what the stage said of the run (tasks/_stage.report_exit: stop it, name it), and skips a stage the
caller knows unchanged without starting dvc."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.dvc_state import Repro, changed_stages, repro, up_to_date

pytestmark = pytest.mark.slow  # real dvc commands: ~30 s on a loaded CPU
DVC = str(Path(sys.executable).parent / "dvc")
REPO = Path(__file__).resolve().parents[2]


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


CHAIN = """stages:
  a:
    cmd: cp in.txt a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: cp a.txt b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: echo c > c.txt
    outs: [c.txt]
"""


def test_one_status_names_the_changed_stages(tmp_path):
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "in.txt").write_text("one\n")
    (tmp_path / "dvc.yaml").write_text(CHAIN)
    assert changed_stages(["a", "b", "c"], tmp_path) == {"a", "b", "c"}  # never ran
    subprocess.run([DVC, "repro", "-q"], cwd=tmp_path, check=True)
    assert changed_stages(["a", "b", "c"], tmp_path) == set()
    (tmp_path / "in.txt").write_text("two\n")
    (tmp_path / "c.txt").unlink()
    # b reads a's output, which only a's rerun changes: DVC's word on b holds until a runs
    assert changed_stages(["a", "b", "c"], tmp_path) == {"a", "c"}
    assert changed_stages(["b", "c"], tmp_path) == {"c"}  # only the stages asked about
    (tmp_path / "dvc.yaml").write_text("stages: [")
    assert changed_stages(["a"], tmp_path) is None  # dvc can't tell


def test_a_stage_known_unchanged_is_skipped_without_dvc(tmp_path):
    lines = []  # no dvc repo here at all: dvc would fail
    result = repro("copy", root=tmp_path, on_line=lines.append, changed=False)
    assert (result.exit_code, result.outcome) == (0, "skipped")
    assert lines == ["Stage 'copy' didn't change, skipping (dvc status, asked once for the run)"]
    forced = repro("copy", force=True, root=tmp_path, on_line=lines.append, changed=False)
    assert forced.outcome == "failed"  # --force runs dvc whatever the caller knew


def said(tmp_path: Path, body: str, exit_code: int = 0) -> Repro:
    """`repro` of a stage whose command runs `body` (calls of tasks._stage.report_exit), then exits."""
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "say.py").write_text(f"from tasks._stage import report_exit\n{body}\n"
                                     f"raise SystemExit({exit_code})\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  say:\n    cmd: python say.py\n    deps: [say.py]\n    always_changed: true\n")
    return repro("say", root=tmp_path, on_line=lambda line: None)


@pytest.mark.parametrize(("body", "stop_message", "run_title"), [
    ("report_exit(0, 'say ran')", "", ""),
    ("report_exit(0, 'nothing new since round 2', stop_run=True)", "nothing new since round 2", ""),
    ("report_exit(0, 'say ran', run_title='round 3')", "", "round 3"),
    # the recipe says it, then run_stage's closing "ran" must not undo it
    ("report_exit(0, 'nothing new', stop_run=True, run_title='round 3')\nreport_exit(0, 'say ran')",
     "nothing new", "round 3"),
])
def test_a_stage_may_stop_and_name_the_run(tmp_path, monkeypatch, body, stop_message, run_title):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = said(tmp_path, body)
    assert (result.exit_code, result.outcome) == (0, "ran")
    assert (result.stop_message, result.run_title) == (stop_message, run_title)


def test_a_stage_that_fails_after_saying_stop_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = said(tmp_path, "report_exit(0, 'nothing new', stop_run=True)\n"
                            "report_exit(2, 'say failed: the store is locked')", exit_code=2)
    assert (result.exit_code, result.outcome) == (2, "failed")
    assert result.message == "say failed: the store is locked"
