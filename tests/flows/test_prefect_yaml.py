"""infra/prefect.yaml deploys the flow with its cron schedule, one run at a time, to a real Prefect
server."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from tests.conftest import ROOT, make_repo


def test_the_deployment_runs_one_round_at_a_time():
    """Parsed by Prefect's own model, so a misspelt strategy fails here, not at `prefect deploy`."""
    (deployment,) = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())["deployments"]
    limit = ConcurrencyLimitConfig.model_validate(deployment["concurrency_limit"])
    assert (limit.limit, limit.collision_strategy) == (1, ConcurrencyLimitStrategy.ENQUEUE)


@pytest.mark.slow
def test_prefect_yaml_deploys_a_cron_scheduled_deployment(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "deploy", prefect_server)
    shutil.copytree(ROOT / "infra", repo.path / "infra")
    prefect = str(Path(sys.executable).parent / "prefect")
    repo.run(prefect, "work-pool", "create", "prefpipe-cpu", "--type", "process")
    repo.run("env", f"PREFPIPE_ROOT={repo.path}", prefect, "--no-prompt", "deploy",
             "--prefect-file", "infra/prefect.yaml", "--all")
    found = httpx.post(f"{prefect_server}/deployments/filter",
                       json={"deployments": {"name": {"any_": ["nightly"]}}}).json()
    assert len(found) == 1
    assert [s["schedule"]["cron"] for s in found[0]["schedules"]] == ["0 3 * * *"]
    assert found[0]["work_pool_name"] == "prefpipe-cpu"
    assert found[0]["entrypoint"] == "flows/pipeline.py:pipeline"
    assert found[0]["global_concurrency_limit"]["limit"] == 1
    assert found[0]["concurrency_options"]["collision_strategy"] == "ENQUEUE"
