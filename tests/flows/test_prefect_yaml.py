"""infra/prefect.yaml deploys the nightly flow (cron schedule, one run at a time) and the GPU stage
deployment `prefpipe-stage/gpu` (flows/dispatch.py's, with the Kubernetes job's variables) to a real
Prefect server, on pools made from infra/'s base job templates."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.dispatch import ENTRYPOINT, FLOW, PULL_STEPS
from tests.conftest import ROOT, make_repo

PREFECT_YAML = ROOT / "infra" / "prefect.yaml"
GPU_TEMPLATE = ROOT / "infra" / "k8s" / "gpu-job-template.json"


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}


def test_the_deployment_runs_one_round_at_a_time():
    """Parsed by Prefect's own model, so a misspelt strategy fails here, not at `prefect deploy`."""
    limit = ConcurrencyLimitConfig.model_validate(deployments()["nightly"]["concurrency_limit"])
    assert (limit.limit, limit.collision_strategy) == (1, ConcurrencyLimitStrategy.ENQUEUE)


def test_the_gpu_deployment_is_the_one_dispatch_sends_stages_to():
    """Named after its pool, with dispatch's entrypoint and pull step: the deployment the flow would
    create itself (flows/dispatch.py), so it finds this one and uses it; its job variables are ones
    the pool's template declares."""
    gpu = deployments()["gpu"]
    assert gpu["work_pool"]["name"] == gpu["name"] and gpu["entrypoint"] == ENTRYPOINT
    assert yaml.safe_load(PREFECT_YAML.read_text())["pull"] == PULL_STEPS
    declared = json.loads(GPU_TEMPLATE.read_text())["variables"]["properties"]
    assert set(gpu["work_pool"]["job_variables"]) <= set(declared)


def find_deployment(api_url: str, name: str) -> dict:
    (found,) = httpx.post(f"{api_url}/deployments/filter",
                          json={"deployments": {"name": {"any_": [name]}}}).json()
    return found


@pytest.mark.slow
def test_prefect_yaml_deploys_the_nightly_and_the_gpu_stage_deployments(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "deploy", prefect_server)
    shutil.copytree(ROOT / "infra", repo.path / "infra")
    prefect = str(Path(sys.executable).parent / "prefect")
    repo.run(prefect, "work-pool", "create", "prefpipe-cpu", "--type", "process")
    repo.run(prefect, "work-pool", "create", "gpu", "--type", "kubernetes",
             "--base-job-template", "infra/k8s/gpu-job-template.json")
    # PREFPIPE_ROOT unset, as infra/README.md says: `prefect deploy` would resolve the pull step's
    # {{ $PREFPIPE_ROOT }} from its own environment (repo.run passes no PREFPIPE_* variable)
    repo.run(prefect, "--no-prompt", "deploy", "--prefect-file", "infra/prefect.yaml", "--all")

    nightly = find_deployment(prefect_server, "nightly")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 3 * * *"]
    assert nightly["work_pool_name"] == "prefpipe-cpu"
    assert nightly["entrypoint"] == "flows/pipeline.py:pipeline"
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["concurrency_options"]["collision_strategy"] == "ENQUEUE"

    gpu = find_deployment(prefect_server, "gpu")
    flow = httpx.get(f"{prefect_server}/flows/{gpu['flow_id']}").json()
    assert f"{flow['name']}/{gpu['name']}" == f"{FLOW}/gpu"  # the name dispatch runs
    assert gpu["work_pool_name"] == "gpu" and gpu["entrypoint"] == ENTRYPOINT
    assert gpu["job_variables"] == deployments()["gpu"]["work_pool"]["job_variables"]
    # $PREFPIPE_ROOT left for each worker to resolve: its own checkout
    assert gpu["pull_steps"] == nightly["pull_steps"] == PULL_STEPS
    assert set(gpu["parameter_openapi_schema"]["properties"]) == {"stage", "force", "run_id"}

    # the server holds job variables to the pool's template: a negative GPU count is refused
    refused = httpx.post(f"{prefect_server}/deployments/", json={
        "name": "bad-gpu", "flow_id": gpu["flow_id"], "work_pool_name": "gpu",
        "entrypoint": ENTRYPOINT, "job_variables": {"gpu_limit": -1}})
    assert refused.status_code == 422 and "gpu_limit" in refused.text
