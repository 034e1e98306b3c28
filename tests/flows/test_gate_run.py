"""A failed gate through `prefpipe run` and a real Prefect server: the run ends Failed with the gate
named in its state message, metrics/gates.json is written, and the run's artifacts (the summary,
the evaluation report, the verdicts) are there to say why. Tiny params, evaluated once."""
from __future__ import annotations

import json

import httpx
import pytest
import yaml

from tests.conftest import flow_runs, make_repo, task_runs

pytestmark = pytest.mark.slow  # real dvc, stages and Prefect: the tiny pipeline once, ~3 minutes
FAILING = {"rm_win_rate": {"min": 0.99}, "policy_no_such_signal": {"max": 1.0}}
STALE = {"passed": False, "verdicts": {"old": {"status": "failed", "reason": "from another run"}}}


def set_gates(repo, gates: dict) -> None:
    params = repo.params()
    params["evaluate"]["gates"] = gates  # replaced, not merged: exactly these gates
    (repo.path / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="module")
def gated(tmp_path_factory, prefect_server):
    """Evaluated once with `dvc repro` (no Prefect), then `prefpipe run` with a gate that fails."""
    repo = make_repo(tmp_path_factory.mktemp("gated"), prefect_server,
                     {"evaluate": {"enforce_gates": True, "kl_budget": 1000.0}})
    set_gates(repo, FAILING)
    repo.dvc("repro", "evaluate")
    # a verdicts file no stage of this run writes: a failed run must not show it
    (repo.path / "metrics" / "stale.json").write_text(json.dumps(STALE))
    before = {r["id"] for r in flow_runs(prefect_server)}
    result = repo.prefpipe("run", check=False)
    runs = [r for r in flow_runs(prefect_server) if r["id"] not in before and r.get("deployment_id") is None]
    return repo, result, runs


def artifacts(api_url: str, flow_run_id: str) -> dict[str, dict]:
    found = httpx.post(f"{api_url}/artifacts/filter",
                       json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    return {a["key"]: a for a in found}


def test_a_failed_gate_fails_the_run_with_the_gate_named(gated, prefect_server):
    repo, result, runs = gated
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # the user can fix it: the gate stage's own exit code
    error = result.stderr.strip().splitlines()[-2]
    assert error.startswith("error: gate failed: round 1 rejected: rm_win_rate "), output
    assert error.endswith("< min 0.99 (evaluate.gates.rm_win_rate)"), output
    assert [r["state_type"] for r in runs] == ["FAILED"], runs
    assert "gate failed: round 1 rejected: rm_win_rate " in runs[0]["state"]["message"], runs[0]["state"]
    tasks = {t["name"]: t["state_type"] for t in task_runs(prefect_server, runs[0]["id"])}
    assert tasks.pop("gate") == "FAILED" and set(tasks.values()) == {"COMPLETED"}, tasks


def test_the_verdicts_are_written_for_inspection(gated):
    repo, _, _ = gated
    written = json.loads((repo.path / "metrics" / "gates.json").read_text())
    assert written["passed"] is False and written["failed"] == ["rm_win_rate"]
    assert written["verdicts"]["policy_no_such_signal"]["status"] == "skipped"
    assert written["verdicts"]["kl_budget"]["status"] == "passed"


def test_the_failed_run_shows_why_in_its_artifacts(gated, prefect_server):
    _, _, runs = gated
    found = artifacts(prefect_server, runs[0]["id"])
    assert {"prefpipe-summary", "prefpipe-report", "prefpipe-gates"} <= set(found), sorted(found)
    gates = found["prefpipe-gates"]
    assert gates["type"] == "markdown" and "## gates: FAILED" in gates["data"]
    assert "| rm_win_rate | FAILED |" in gates["data"]
    assert "win_rate" in json.dumps(found["prefpipe-summary"]["data"])
    assert "prefpipe-stale" not in found  # stale files of no stage this run ran stay out


def test_passing_gates_complete_the_run_and_show_their_verdicts(gated, prefect_server):
    repo, _, _ = gated
    set_gates(repo, {"rm_win_rate": {"min": 0.0}})
    before = {r["id"] for r in flow_runs(prefect_server)}
    result = repo.prefpipe("run", "--stage", "gate")  # gate alone: evaluate's metrics are unchanged
    assert "=== prefpipe summary ===" in result.stdout
    runs = [r for r in flow_runs(prefect_server) if r["id"] not in before and r.get("deployment_id") is None]
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    gates = artifacts(prefect_server, runs[0]["id"])["prefpipe-gates"]
    assert "## gates: passed" in gates["data"] and "| rm_win_rate | passed |" in gates["data"]
    assert json.loads((repo.path / "metrics" / "gates.json").read_text())["passed"] is True
