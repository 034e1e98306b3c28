"""The flow around its stages, on a real Prefect server: the run graph's edges (each stage's task run
waits for its upstream stages' task runs, a hook's rerun for the run it repeats), a stage that stops
the run (Completed with its message, no later stage runs) or names it, and a markdown artifact per
report among the outs of the stages the run reached; one `dvc status` opening a run skips the
stages it finds up to date without dvc, until a stage they read from runs. Copies of the repository
whose dvc.yaml has three cheap stages calling tasks._stage.report_exit (real dvc), so nothing is
trained."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import httpx
import pytest

from tests.conftest import env_for, flow_runs, make_repo, task_runs

pytestmark = pytest.mark.slow  # real dvc and Prefect: ~2 minutes on a loaded CPU
STOP = "nothing new since round 6"
STAGES = '''"""Cheap stages: each writes its outs and says how it ended; flag files steer `check`."""
import json
import sys
from pathlib import Path

from tasks._stage import report_exit


def write(path, text):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def first():
    write("out1.txt", "1")
    write("reports/first.md", "# first report")
    report_exit(0, "first ran", run_title="round 7")


def check():
    if Path("fail.flag").exists():
        report_exit(2, "check failed: planted")
        raise SystemExit(2)
    write("out2.txt", "2")
    write("metrics/check.json", json.dumps({"checked": 1}))
    if Path("stop.flag").exists():
        report_exit(0, "{stop}", stop_run=True)
    report_exit(0, "check ran")


def last():
    write("out3.txt", Path("out2.txt").read_text())
    write("metrics/last.json", json.dumps({"lasted": 1}))
    write("reports/Last_Round.md", "# last report")
    report_exit(0, "last ran")


globals()[sys.argv[1]]()
'''.replace("{stop}", STOP)
DVC_YAML = """stages:
  first:
    cmd: python -m tasks.fake_round first
    outs: [out1.txt, reports/first.md]
    meta: {after: again}
  check:
    cmd: python -m tasks.fake_round check
    deps: [out1.txt]
    outs: [{out2.txt: {persist: true}}]
    metrics: [{metrics/check.json: {cache: false}}]
    always_changed: true
  last:
    cmd: python -m tasks.fake_round last
    deps: [out2.txt]
    outs: [out3.txt, reports/Last_Round.md]
    metrics: [{metrics/last.json: {cache: false}}]
"""
# The flow in a process of its own, as `prefpipe run` runs it, with one test hook: rerun the stage.
DRIVER = """import json
from flows.env import prepare_environment
prepare_environment()
from flows import hooks
hooks.AFTER_HOOKS["again"] = lambda stage, params, rerun, root: rerun()
from flows.pipeline import pipeline
state = pipeline(return_state=True)
print(json.dumps({"id": str(state.state_details.flow_run_id), "type": state.type.value,
                  "message": state.message,
                  "result": state.result() if state.is_completed() else None}))
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefect_server):
    repo = make_repo(tmp_path_factory.mktemp("pipeline"), prefect_server)
    (repo.path / "tasks" / "fake_round.py").write_text(STAGES)
    (repo.path / "dvc.yaml").write_text(DVC_YAML)
    return repo


def run_flow(repo, flag: str | None = None) -> dict:
    """One run of the flow, with the flag file `flag` (stop.flag, fail.flag) there during the run;
    "log": what it logged."""
    env = {**env_for(repo.path, repo.api_url), "PREFPIPE_ROOT": str(repo.path)}
    if flag:
        (repo.path / flag).write_text("")
    try:
        result = subprocess.run([sys.executable, "-c", DRIVER], cwd=repo.path, env=env,
                                capture_output=True, text=True, timeout=600)
    finally:
        if flag:
            (repo.path / flag).unlink()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "log": result.stdout + result.stderr}


def artifacts(api_url: str, flow_run_id: str) -> dict[str, dict]:
    found = httpx.post(f"{api_url}/artifacts/filter",
                       json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    return {a["key"]: a for a in found}


def waits_for(task_run: dict) -> set[str]:
    return {i["id"] for i in task_run["task_inputs"].get("wait_for", [])}


@pytest.fixture(scope="module")
def full(repo, prefect_server):
    run = run_flow(repo)
    tasks = sorted(task_runs(prefect_server, run["id"]), key=lambda t: t["expected_start_time"])
    return run, tasks


@pytest.fixture(scope="module")
def stopped(repo, full, prefect_server):
    run = run_flow(repo, "stop.flag")
    return run, task_runs(prefect_server, run["id"])


def test_each_stage_waits_for_its_upstream_stages(full):
    run, tasks = full
    assert run["type"] == "COMPLETED", run
    assert [t["name"] for t in tasks] == ["first", "first", "check", "last"]
    assert all(t["state_type"] == "COMPLETED" for t in tasks), tasks
    first, rerun, check, last = tasks
    assert waits_for(first) == set()
    assert waits_for(rerun) == {first["id"]}  # the hook's rerun follows the run it repeats
    assert waits_for(check) == {rerun["id"]}  # the stage's latest run
    assert waits_for(last) == {check["id"]}


def test_a_stage_names_the_run(full, prefect_server):
    run, _ = full
    name = {r["id"]: r["name"] for r in flow_runs(prefect_server)}[run["id"]]
    title, _, original = name.partition(" · ")
    assert title == "round 7" and original and " · " not in original, name


def test_each_report_the_run_wrote_is_an_artifact(full, prefect_server):
    run, _ = full
    found = artifacts(prefect_server, run["id"])
    assert found["prefpipe-first"]["data"] == "# first report"
    assert found["prefpipe-last-round"]["data"] == "# last report"
    assert found["prefpipe-last-round"]["type"] == "markdown"
    assert "prefpipe-round" not in found  # nothing stopped this run
    assert run["result"] == {"check": {"checked": 1}, "last": {"lasted": 1}}


def test_a_stage_that_stops_the_run_ends_it_completed(stopped, prefect_server):
    run, tasks = stopped
    assert (run["type"], run["message"]) == ("COMPLETED", STOP), run
    assert sorted(t["name"] for t in tasks) == ["check", "first", "first"]  # last never ran
    assert run["result"] == {"check": {"checked": 1}}  # last's metrics are another run's
    found = artifacts(prefect_server, run["id"])
    assert found["prefpipe-round"]["data"] == STOP
    assert "prefpipe-first" in found and "prefpipe-last-round" not in found, sorted(found)


def test_a_failed_run_shows_only_the_reports_of_stages_it_reached(repo, stopped, prefect_server):
    run = run_flow(repo, "fail.flag")
    assert run["type"] == "FAILED" and run["message"] and "check failed: planted" in run["message"], run
    found = artifacts(prefect_server, run["id"])
    assert "prefpipe-first" in found and "prefpipe-last-round" not in found, sorted(found)


CHAIN_STAGES = """import shutil
import sys
from tasks._stage import report_exit

name, source, target = sys.argv[1:]
shutil.copy(source, target)
report_exit(0, f"{name} ran")
"""
CHAIN_DVC_YAML = """stages:
  one:
    cmd: python -m tasks.fake_chain one in.txt one.txt
    deps: [in.txt]
    outs: [one.txt]
  two:
    cmd: python -m tasks.fake_chain two one.txt two.txt
    deps: [one.txt]
    outs: [two.txt]
  apart:
    cmd: python -m tasks.fake_chain apart apart_in.txt apart.txt
    deps: [apart_in.txt]
    outs: [apart.txt]
"""
SKIPPED_WITHOUT_DVC = "didn't change, skipping (dvc status, asked once for the run)"


@pytest.fixture(scope="module")
def chain(tmp_path_factory, prefect_server):
    repo = make_repo(tmp_path_factory.mktemp("chain"), prefect_server)
    (repo.path / "tasks" / "fake_chain.py").write_text(CHAIN_STAGES)
    (repo.path / "dvc.yaml").write_text(CHAIN_DVC_YAML)
    (repo.path / "in.txt").write_text("1")
    (repo.path / "apart_in.txt").write_text("1")
    return repo


def outcomes(run: dict) -> dict[str, str]:
    """The flow's closing "stages: {name: outcome}" line."""
    return ast.literal_eval(re.search(r" - stages: (\{.*\})", run["log"]).group(1))


def test_up_to_date_stages_are_skipped_without_dvc_yet_recorded(chain, prefect_server):
    first = run_flow(chain)
    assert outcomes(first) == {"one": "ran", "two": "ran", "apart": "ran"}
    again = run_flow(chain)  # nothing changed
    assert outcomes(again) == {"one": "skipped", "two": "skipped", "apart": "skipped"}
    assert again["log"].count(SKIPPED_WITHOUT_DVC) == 3, again["log"]
    assert "Running stage" not in again["log"] and "Data and pipelines are up to date" not in again["log"]
    tasks = task_runs(prefect_server, again["id"])
    assert sorted((t["name"], t["state_type"]) for t in tasks) == [
        ("apart", "COMPLETED"), ("one", "COMPLETED"), ("two", "COMPLETED")]


def test_a_stage_is_asked_again_once_a_stage_it_reads_from_ran(chain, prefect_server):
    run_flow(chain)
    (chain.path / "in.txt").write_text("2")  # changes one; two was up to date when the run began
    run = run_flow(chain)
    assert outcomes(run) == {"one": "ran", "two": "ran", "apart": "skipped"}
    assert (chain.path / "two.txt").read_text() == "2"
    assert run["log"].count(SKIPPED_WITHOUT_DVC) == 1, run["log"]  # apart's; two's was dvc's to say
