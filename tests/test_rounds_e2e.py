"""End to end: rounds run by a served Prefect deployment (a worker of its own, started here) against
the real Prefect server, on tiny params. Round 1 samples from SFT and publishes; round 2 samples
from round 1's version; round 3's gate is forced to fail, so it publishes nothing and `current`
stays; round 4 samples from round 2's version; a fifth run finds nothing new and ends in seconds.

Slow (several minutes): every stage is a real subprocess started by DVC."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from prefpipe.store import Store
from tests.conftest import env_for, make_repo, task_runs

pytestmark = pytest.mark.slow
DEPLOYMENT = "rounds-e2e"
LAX_GATES = {"enforce_gates": True, "kl_budget": 1000.0, "gates": {
    "win_rate_low": {"min": 0.0}, "accuracy_drop": {"max": 1.0}, "policy_same_opener_share": {"max": 1.0},
    "policy_distinct_2": {"min": 0.0}, "policy_prompt_independent_share": {"max": 1.0},
    "proxy_divergence": {"max": 1.0}, "length_drift": {"max": 100.0},
    "policy_repeated_ngram_share": {"max": 1.0}}}
SMALL = {"generate": {"prompts": 60}, "evaluate": {"prompts": 24, **LAX_GATES},
         "rounds": {"iterations": 4}}
TRAINING = {"generate", "label", "train_reward", "train_policy", "evaluate", "gate", "publish"}


def serve(repo, api_url: str) -> subprocess.Popen:
    """`prefpipe serve` of the copy: its deployment runs each flow run as a subprocess."""
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--cron", "0 0 1 1 *", "--name",
                             DEPLOYMENT], cwd=repo.path, env=env_for(repo.path, api_url),
                            stdout=open(repo.path / "serve.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def deployment_id(api_url: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{api_url}/deployments/name/prefpipe/{DEPLOYMENT}")
        if response.status_code == 200:
            return response.json()["id"]
        time.sleep(1)
    raise AssertionError("prefpipe serve registered no deployment")


def run_round(api_url: str, deployment: str, timeout_s: float = 900) -> dict:
    """Start a flow run of the deployment (as the schedule would) and wait for its end."""
    created = httpx.post(f"{api_url}/deployments/{deployment}/create_flow_run", json={})
    created.raise_for_status()
    run_id = created.json()["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{api_url}/flow_runs/{run_id}").json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout_s}s")


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, prefect_server):
    repo = make_repo(tmp_path_factory.mktemp("rounds"), prefect_server, SMALL)
    server = serve(repo, prefect_server)
    try:
        deployment = deployment_id(prefect_server)
        runs = [run_round(prefect_server, deployment), run_round(prefect_server, deployment)]
        repo.set_params({"evaluate": {"gates": {"win_rate_low": {"min": 0.999}}}})  # round 3 must fail
        runs.append(run_round(prefect_server, deployment))
        repo.set_params({"evaluate": {"gates": {"win_rate_low": {"min": 0.0}}}})
        runs += [run_round(prefect_server, deployment), run_round(prefect_server, deployment)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    repo.runs = runs
    repo.store = Store(repo.path / "store" / "prefpipe.duckdb")
    return repo


def test_each_round_samples_from_the_last_published_version(rounds):
    states = [run["state_type"] for run in rounds.runs]
    assert states == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED", "COMPLETED"], \
        (rounds.path / "serve.log").read_text()[-3000:]
    by_round = {r["round"]: r for r in rounds.store.registry.rounds()}
    assert [by_round[n]["status"] for n in (1, 2, 3, 4)] == ["published", "published", "rejected",
                                                             "published"]
    assert set(by_round) == {1, 2, 3, 4}  # the fifth run started no round
    versions = {v["round"]: v for v in rounds.store.registry.versions()}
    assert set(versions) == {1, 2, 4}
    assert versions[1]["parent_version"] == "sft" and by_round[1]["generator_version"] == "sft"
    assert versions[2]["parent_version"] == versions[1]["version"] == by_round[2]["generator_version"]
    # round 3 failed its gate: round 4 samples from round 2's version, not round 3's policy
    assert by_round[3]["generator_version"] == versions[2]["version"]
    assert by_round[4]["generator_version"] == versions[2]["version"]
    assert versions[4]["parent_version"] == versions[2]["version"]
    assert rounds.store.registry.current()["version"] == versions[4]["version"]
    # the generator's weights are the parent's: candidates carry its model hash
    assert by_round[2]["generator_hash"] == versions[1]["model_hash"]
    assert by_round[4]["generator_hash"] == versions[2]["model_hash"]


def test_a_published_version_records_its_lineage_and_artifacts(rounds):
    version = rounds.store.registry.versions()[-1]
    assert version["label_counts"] and sum(version["label_counts"].values()) > 0
    assert "win_rate" in version["metrics"] and version["gates"]["passed"] is True
    assert "stages:" in version["dvc_lock"] and "rounds:" in version["params_yaml"]
    assert (rounds.path / version["artifact_uri"] / "policy" / "config.json").exists()


def test_a_run_with_nothing_new_completes_in_seconds_without_training(rounds, prefect_server):
    idle = rounds.runs[-1]
    took = (datetime.fromisoformat(idle["end_time"]) - datetime.fromisoformat(idle["start_time"]))
    assert took.total_seconds() <= 30, took
    ran = {t["name"] for t in task_runs(prefect_server, idle["id"])}
    assert not ran & TRAINING, ran
    assert "nothing new since round 4" in (idle["state"]["message"] or "") + str(
        httpx.post(f"{prefect_server}/artifacts/filter", json={"artifacts": {"flow_run_id": {
            "any_": [idle["id"]]}}}).json())


def test_round_runs_are_named_by_round(rounds):
    names = [run["name"] for run in rounds.runs[:4]]
    assert [name.split(" · ")[0] for name in names] == ["round 1", "round 2", "round 3", "round 4"], names
