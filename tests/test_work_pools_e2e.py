"""End to end: `orchestration.work_pools` sends a stage to a real Prefect process worker.

A copy of the project sends `prepare` to a work pool of the shared Prefect server; a worker of that
pool runs in the copy (its checkout: PREFPIPE_ROOT, the same directory, as a shared volume would be),
and `prefpipe run --stage prepare --stage sft` runs prepare there, as a subflow of prepare's task
run, and sft in the flow's own process on prepare's outputs. Without a worker the stage fails with
one line saying how to start one. Slow (about a minute): real dvc, a real worker, a tiny sft."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import QUICK, Repo, env_for, flow_runs, make_repo, merge, task_runs

pytestmark = pytest.mark.slow
PREFECT = str(Path(sys.executable).parent / "prefect")


def pooled_repo(path: Path, api_url: str, pool: str, timeout_s: float) -> Repo:
    """A copy whose prepare stage goes to `pool`, created on the server as a process pool."""
    repo = make_repo(path, api_url, merge(QUICK, {"orchestration": {"work_pools": {"prepare": pool},
                                                                    "dispatch_timeout_s": timeout_s}}))
    repo.run(PREFECT, "work-pool", "create", pool, "--type", "process")
    return repo


def start_worker(repo: Repo, pool: str, log: Path) -> subprocess.Popen:
    env = {**env_for(repo.path, repo.api_url), "PREFPIPE_ROOT": str(repo.path),
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    with open(log, "w") as out:
        return subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
                                cwd=repo.path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """The worker's whole process group: the worker and any flow run it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def new_runs(api_url: str, before: set[str]) -> list[dict]:
    return [r for r in flow_runs(api_url) if r["id"] not in before]


def test_a_stage_on_a_work_pool_runs_on_its_worker(tmp_path, prefect_server):
    pool = f"prefpipe-test-{uuid.uuid4().hex[:8]}"
    repo = pooled_repo(tmp_path / "pooled", prefect_server, pool, timeout_s=120)
    log = tmp_path / "worker.log"
    before = {r["id"] for r in flow_runs(prefect_server)}
    worker = start_worker(repo, pool, log)
    try:
        result = repo.prefpipe("run", "--stage", "prepare", "--stage", "sft")
    finally:
        stop(worker)
    output, worker_log = result.stdout + result.stderr, log.read_text()

    runs = new_runs(prefect_server, before)
    (dispatched,) = [r for r in runs if r["work_pool_name"] == pool]
    (pipeline,) = [r for r in runs if r["parent_task_run_id"] is None]
    assert dispatched["state_type"] == pipeline["state_type"] == "COMPLETED", runs
    flow = httpx.get(f"{prefect_server}/flows/{dispatched['flow_id']}").json()
    deployment = httpx.get(f"{prefect_server}/deployments/{dispatched['deployment_id']}").json()
    assert (flow["name"], deployment["name"]) == ("prefpipe-stage", pool)
    assert deployment["entrypoint"] == "flows/dispatch.py:run_stage_on_worker"

    # shown under prepare's task run: its parent is run_deployment's task run, which follows prepare's
    stages = {t["name"]: t for t in task_runs(prefect_server, pipeline["id"])}
    parent = httpx.get(f"{prefect_server}/task_runs/{dispatched['parent_task_run_id']}").json()
    assert parent["flow_run_id"] == pipeline["id"]
    assert [p["id"] for p in parent["task_inputs"]["__parents__"]] == [stages["prepare"]["id"]]
    assert {stages[s]["state_type"] for s in ("prepare", "sft")} == {"COMPLETED"}
    assert [w["id"] for w in stages["sft"]["task_inputs"]["wait_for"]] == [stages["prepare"]["id"]]

    # prepare ran in the worker's flow run, recording the pipeline run's id; sft in the flow itself
    assert dispatched["id"] in worker_log, worker_log[-3000:]
    assert f"stage prepare runs on host {os.uname().nodename}" in worker_log
    assert f"in the checkout {repo.path}" in worker_log
    assert f"stage prepare starting (run {pipeline['id']}" in worker_log
    assert "Running stage 'prepare'" not in output and "Running stage 'sft'" in output, output[-3000:]
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())["stages"]
    assert {"prepare", "sft"} <= set(lock)
    assert any(o["path"] == "data/sft_corpus.parquet" for o in lock["prepare"]["outs"])
    assert any(d["path"] == "data/sft_corpus.parquet" for d in lock["sft"]["deps"])
    assert json.loads(repo.dvc("status", "--json", "prepare", "sft").stdout or "{}") == {}


def test_a_stage_no_worker_takes_fails_with_how_to_start_one(tmp_path, prefect_server):
    pool = f"prefpipe-idle-{uuid.uuid4().hex[:8]}"
    repo = pooled_repo(tmp_path / "idle", prefect_server, pool, timeout_s=3)
    before = {r["id"] for r in flow_runs(prefect_server)}
    result = repo.prefpipe("run", "--stage", "prepare", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    line = (f"error: no worker took stage prepare from work pool {pool} in 3 s: start one with "
            f"`prefect worker start --pool {pool}`")
    assert line in result.stderr.splitlines(), result.stderr
    (dispatched,) = [r for r in new_runs(prefect_server, before) if r["work_pool_name"] == pool]
    assert dispatched["state_type"] == "CANCELLED"  # a worker started later will not run it
    assert not (repo.path / "data" / "prompts.parquet").exists()


def test_a_pool_the_server_lacks_is_named(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "nopool", prefect_server,
                     merge(QUICK, {"orchestration": {"work_pools": {"prepare": "no-such-pool"}}}))
    result = repo.prefpipe("run", "--stage", "prepare", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "orchestration.work_pools names work pool 'no-such-pool', which the Prefect server at" \
        in result.stderr
