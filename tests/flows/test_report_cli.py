"""`prefpipe report`, run as a user would (`python -m flows.cli` in a subprocess, PREFPIPE_ROOT a
temp folder of hand-written metrics): exit 0 when the gates passed or did not run, 2 with each
failed gate's reason, one error line without metrics; `--compare` over collected folders. And the
parsing of `dvc exp show --json`, on tests/flows/dvc3_exp_show.json: captured from DVC 3.67.1
(`dvc exp show --json`, re-indented) in a throwaway repo with a baseline and two `dvc exp run -S`
experiments whose stage writes prefpipe-shaped metrics/evaluate.json and metrics/gates.json."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows import report_cli
from flows.report_cli import dvc_runs, exp_show_runs, find
from prefpipe.errors import PrefpipeError
from prefpipe.evaluate.compare_report import failed_gates
from tests.conftest import ROOT, env_for

SAMPLE = Path(__file__).with_name("dvc3_exp_show.json")
METRICS = {"win_rate": 0.72, "win_rate_low": 0.69, "win_rate_high": 0.75, "kl_nats": 1.7,
           "kl_nats_low": 1.5, "kl_nats_high": 1.9, "kl_nats_per_token": 0.1356}
KL = {"metric": "kl_nats", "value": 1.7, "min": None, "max": 5.0, "status": "passed",
      "reason": "kl_nats 1.7 <= 5 (evaluate.kl_budget)"}
WIN = {"metric": "win_rate_low", "value": 0.69, "min": 0.5, "max": None, "status": "passed",
       "reason": "win_rate_low 0.69 >= 0.5 (evaluate.gates.win_rate_low)"}
DRIFT = {**KL, "value": 9.0, "status": "failed", "reason": "kl_nats 9 > 5 (evaluate.kl_budget)"}


def report(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**env_for(root), "PREFPIPE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "flows.cli", "report", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def write(folder: Path, metrics: dict | None, verdicts: dict | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        (folder / "evaluate.json").write_text(json.dumps(metrics))
    if verdicts is not None:
        failed = [n for n, v in verdicts.items() if v["status"] == "failed"]
        (folder / "gates.json").write_text(json.dumps({"passed": not failed, "failed": failed,
                                                       "verdicts": verdicts}))
    return folder


def test_passed_gates_exit_0_with_the_headline(tmp_path):
    write(tmp_path / "metrics", METRICS, {"kl_budget": KL, "win_rate_low": WIN})
    result = report(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "gold win rate vs SFT          : 0.720 [0.690, 0.750] (95% CI)" in result.stdout
    assert "all 2 gates passed" in result.stdout
    assert str(tmp_path / "reports" / "evaluation.html") in result.stdout


def test_a_failed_gate_exits_2_with_its_reason(tmp_path):
    write(tmp_path / "metrics", METRICS, {"kl_budget": DRIFT, "win_rate_low": WIN})
    result = report(tmp_path)
    assert result.returncode == 2, result.stdout
    assert "1 of 2 failed: kl_budget" in result.stdout
    assert "  failed: kl_nats 9 > 5 (evaluate.kl_budget)" in result.stdout
    assert "win_rate_low 0.69" not in result.stdout  # only failed gates' reasons


def test_gates_not_run_exit_0(tmp_path):
    write(tmp_path / "metrics", METRICS, None)
    result = report(tmp_path)
    assert result.returncode == 0 and "gates not run yet" in result.stdout


def test_no_metrics_is_one_error_line(tmp_path):
    result = report(tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: ") and "evaluate.json" in lines[0]
    assert "run `prefpipe run` (or `dvc repro evaluate`) first" in lines[0]


def test_compare_two_collected_folders(tmp_path):
    write(tmp_path / "docs" / "results" / "dpo", METRICS, {"kl_budget": KL})
    write(tmp_path / "docs" / "results" / "grpo", {**METRICS, "kl_nats": 9.0, "win_rate": 0.6,
                                                   "win_rate_low": 0.55, "win_rate_high": 0.65},
          {"kl_budget": DRIFT})
    result = report(tmp_path, "--compare", "dpo", "docs/results/grpo")  # a name, a path
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| run | gold win rate [95% CI] |")
    assert lines[2].startswith("| dpo | 0.720 [0.690, 0.750] |") and lines[2].endswith("| all 1 passed |")
    assert lines[3].startswith("| docs/results/grpo | 0.600 [0.550, 0.650] |")
    assert lines[3].endswith("| 1 of 1 failed: kl_budget |")
    page = (tmp_path / "reports" / "compare.html").read_text()
    assert lines[-1] == f"page: {tmp_path / 'reports' / 'compare.html'}"
    assert page.count('<circle class="point"') == 3  # dpo, grpo and the reference
    assert "kl_nats 9 &gt; 5 (evaluate.kl_budget)" in page


def test_compare_an_unknown_name_outside_dvc_is_one_error_line(tmp_path):
    write(tmp_path / "docs" / "results" / "dpo", METRICS, None)
    result = report(tmp_path, "--compare", "dpo", "missing-run")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: 'missing-run': no collected folder") and "`dvc exp show" in lines[0]


def sample() -> list:
    return json.loads(SAMPLE.read_text())


def test_exp_show_runs_reads_every_experiment_of_the_dvc3_sample():
    runs = exp_show_runs(sample())
    names = {k for k in runs if not report_cli.is_commit(k)}
    assert names == {"workspace", "master", "beta-0.2", "beta-0.02"}
    assert runs["beta-0.2"]["metrics"]["kl_nats"] == 1.0 and runs["beta-0.2"]["metrics"]["win_rate"] == 0.7
    assert runs["beta-0.02"]["metrics"]["kl_nats"] == 10.0
    assert runs["beta-0.02"]["source"] == "dvc exp beta-0.02 (415acc8)"
    assert runs["workspace"]["source"] == "dvc workspace"
    # DVC dropped gates.json's "failed" list and its nulls; the verdicts still say which failed
    assert "failed" not in runs["beta-0.02"]["gates"]
    assert [v["name"] for v in failed_gates(runs["beta-0.02"]["gates"])] == ["kl_budget", "win_rate_low"]
    assert failed_gates(runs["beta-0.2"]["gates"]) == []
    assert find(runs, "415acc8") is runs["beta-0.02"]
    assert find(runs, "415acc") is None and find(runs, "nope") is None


def test_exp_show_runs_skips_rows_without_evaluation_metrics():
    rows = [{"rev": "workspace", "name": None, "data": {"metrics": {}}, "experiments": None},
            {"rev": "a" * 40, "name": "main", "data": None, "error": {"type": "X"},
             "experiments": [{"revs": [{"rev": "b" * 40, "name": "e", "data": {"metrics": {
                 "metrics/evaluate.json": {"error": {"type": "FileNotFoundError"}}}}}]}]}]
    assert exp_show_runs(rows) == {}
    assert exp_show_runs([]) == {}


def test_dvc_runs_looks_in_every_commit_before_it_gives_up(monkeypatch):
    calls = []
    base = sample()
    other = [{"rev": "c" * 40, "name": "old-branch", "data": {"metrics": {
        "metrics/evaluate.json": {"data": {"kl_nats": 3.0}}}}, "experiments": None}]
    monkeypatch.setattr(report_cli, "exp_show",
                        lambda extra=(): calls.append(tuple(extra)) or (base + other if extra else base))
    assert dvc_runs(["beta-0.2"])["beta-0.2"]["metrics"]["kl_nats"] == 1.0 and calls == [()]
    assert dvc_runs(["old-branch"])["old-branch"]["metrics"] == {"kl_nats": 3.0}
    assert calls == [(), (), ("--all-commits",)]
    with pytest.raises(PrefpipeError, match="'nope'") as err:
        dvc_runs(["beta-0.2", "nope"])
    assert "beta-0.02, beta-0.2, master, old-branch, workspace;" in str(err.value)
    assert "c" * 40 not in str(err.value)
