"""End to end: the DAG through a real Prefect server and real `dvc`, on tiny params.

Slow (a few minutes): each stage is a real subprocess started by DVC."""
from __future__ import annotations

import json

import duckdb
import httpx
import pytest

from tests.conftest import QUICK, flow_runs, make_repo, merge, task_runs

pytestmark = pytest.mark.slow
STAGES = ["prepare", "sft", "round", "generate", "label", "train_reward", "train_policy", "evaluate", "gate",
          "publish"]
LABELLED = STAGES[:5]  # prepare .. label: done before train_reward


@pytest.fixture(scope="module")
def ran_repo(tmp_path_factory, prefect_server):
    """One full run of `prefpipe run` against the Prefect server; shared by the tests below."""
    repo = make_repo(tmp_path_factory.mktemp("ran"), prefect_server)
    result = repo.prefpipe("run")
    repo.first_lock = repo.lock_hashes()
    repo.first_output = result.stdout + result.stderr
    return repo


def test_run_reports_a_summary_and_the_report(ran_repo):
    assert "gold win rate vs SFT" in ran_repo.first_output
    assert "reports/evaluation.md" in ran_repo.first_output
    report = (ran_repo.path / "reports" / "evaluation.md").read_text()
    assert "gold win rate vs reference" in report
    metrics = json.loads((ran_repo.path / "metrics" / "evaluate.json").read_text())
    assert 0.0 <= metrics["win_rate_low"] <= metrics["win_rate"] <= metrics["win_rate_high"] <= 1.0


def test_prefect_holds_one_completed_task_run_per_stage(ran_repo, prefect_server):
    runs = [r for r in flow_runs(prefect_server) if r["name"]]
    completed = [r for r in runs if r["state_type"] == "COMPLETED"]
    assert completed, runs
    tasks = task_runs(prefect_server, completed[-1]["id"])
    stage_runs = sorted(t["name"] for t in tasks)
    assert stage_runs == sorted(STAGES)
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    artifacts = httpx.post(f"{prefect_server}/artifacts/filter",
                           json={"artifacts": {"key": {"any_": ["prefpipe-summary"]}}}).json()
    mine = [a for a in artifacts if a["flow_run_id"] == completed[-1]["id"]]
    assert [a["type"] for a in mine] == ["table"]
    assert "win_rate" in json.dumps(mine[0]["data"])


def test_after_a_prefect_run_dvc_has_nothing_to_do(ran_repo):
    status = ran_repo.dvc("status")
    assert "up to date" in status.stdout, status.stdout
    repro = ran_repo.dvc("repro")
    assert "Running stage" not in repro.stdout, repro.stdout
    shown = ran_repo.dvc("metrics", "show").stdout
    assert "win_rate" in shown and "kl_nats" in shown and "val_gold_accuracy" in shown


def test_store_holds_the_runs_data(ran_repo):
    con = duckdb.connect(str(ran_repo.path / "store" / "prefpipe.duckdb"), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("prompts", "candidates", "pairs", "labels")}
        stages = {r[0] for r in con.execute("SELECT stage FROM runs WHERE status = 'completed'").fetchall()}
        versions = con.execute("SELECT count(DISTINCT model_version) FROM candidates").fetchone()[0]
        labelled = con.execute("SELECT count(DISTINCT pair_id) FROM labels").fetchone()[0]
    finally:
        con.close()
    assert all(n > 0 for n in counts.values()), counts
    assert labelled == counts["pairs"]  # every pair labelled; harmful pairs by 3 annotators each
    assert counts["labels"] > counts["pairs"]
    assert stages == set(STAGES)
    assert versions == 1


def test_changing_a_policy_param_reruns_only_policy_and_evaluate(ran_repo):
    ran_repo.set_params({"policy": {"dpo": {"beta": 0.2}}})
    repro = ran_repo.dvc("repro")
    ran = [s for s in STAGES if f"Running stage '{s}'" in repro.stdout]
    assert ran == ["train_policy", "evaluate", "gate", "publish"], repro.stdout
    assert "up to date" in ran_repo.dvc("status").stdout


def test_failed_stage_is_failed_in_prefect_and_next_run_resumes_there(tmp_path, prefect_server):
    repo = make_repo(tmp_path / "fail", prefect_server, merge(QUICK, {"reward": {"val_fraction": 0.999999}}))
    before = {r["id"] for r in flow_runs(prefect_server)}
    failed = repo.prefpipe("run", check=False)
    assert failed.returncode != 0
    runs = [r for r in flow_runs(prefect_server)  # not the runs a scheduled deployment adds
            if r["id"] not in before and r.get("deployment_id") is None]
    assert [r["state_type"] for r in runs] == ["FAILED"]
    tasks = {t["name"]: t for t in task_runs(prefect_server, runs[0]["id"])}
    assert tasks["train_reward"]["state_type"] == "FAILED"
    assert all(tasks[s]["state_type"] == "COMPLETED" for s in LABELLED)
    assert "train_policy" not in tasks and "evaluate" not in tasks
    assert "no training pairs" in failed.stdout + failed.stderr

    repo.set_params({"reward": {"val_fraction": 0.15}})
    resumed = repo.prefpipe("run")
    log = resumed.stdout + resumed.stderr
    for stage in LABELLED:
        if stage == "round":  # runs every time: the round left running resumes, outputs kept
            assert "round 1 was left unfinished: resuming it" in log
        else:
            assert f"Stage '{stage}' didn't change, skipping" in log, stage
    for stage in STAGES[5:]:
        assert f"Running stage '{stage}'" in log, stage


def test_bad_params_fail_before_any_stage(tmp_path):
    repo = make_repo(tmp_path / "badparams", None, {"sft": {"optim": {"lrr": 1.0}}})
    result = repo.prefpipe("run", check=False)
    assert result.returncode != 0
    assert "sft.optim.lrr" in result.stdout + result.stderr
    assert not (repo.path / "data" / "prompts.parquet").exists()
    assert not (repo.path / "dvc.lock").exists()


def test_bad_input_rows_are_named_and_the_store_keeps_its_data(ran_repo, tmp_path):
    repo = make_repo(tmp_path / "own", None)
    prompts = repo.path / "data" / "inputs" / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say hi number {i}.", "category": "chat"}) + "\n"
                               for i in range(10)))
    repo.set_params({"model": {"policy": str(ran_repo.path / "models" / "sft")},
                     "data": {"prompts": "data/inputs/prompts.jsonl"},
                     # your own prompts need a model judge (params fail early with the rule judge)
                     "label": {"critic": {"judge": "http", "http": {"model": "judge"}}}})
    repo.prefpipe("stage", "prepare")
    store = repo.path / "store" / "prefpipe.duckdb"

    def stored_prompts() -> int:
        con = duckdb.connect(str(store), read_only=True)
        try:
            return con.execute("SELECT count(*) FROM prompts").fetchone()[0]
        finally:
            con.close()

    assert stored_prompts() == 10
    prompts.write_text(prompts.read_text() + '{"prompt": "fine"}\n{"prompt": 3}\n')
    result = repo.prefpipe("stage", "prepare", check=False)
    assert result.returncode != 0
    assert "data/inputs/prompts.jsonl: line 12" in result.stdout + result.stderr
    assert stored_prompts() == 10


def test_an_external_model_drops_in_and_sft_is_skipped(ran_repo, tmp_path):
    external = ran_repo.path / "models" / "sft"  # any Hugging Face causal-LM folder
    repo = make_repo(tmp_path / "external", None, merge(QUICK, {"model": {"policy": str(external)}}))
    repo.dvc("repro")
    assert json.loads((repo.path / "metrics" / "sft.json").read_text()) == {"skipped": True}
    assert not (repo.path / "models" / "sft" / "model.safetensors").exists()
    metrics = json.loads((repo.path / "metrics" / "evaluate.json").read_text())
    assert metrics["prompts"] > 0 and "win_rate" in metrics
