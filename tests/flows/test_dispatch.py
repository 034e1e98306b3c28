"""flows/dispatch.py without a worker: the Repro a worker's run sends back in its state's message, the
stage's line for each way a dispatched run can end, and `orchestration.work_pools` in params.yaml
(typed, and naming only stages of dvc.yaml). A worker running a stage: tests/test_work_pools_e2e.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.states import Cancelled, Completed, Crashed, Failed, Pending, Scheduled

from flows.dag import load_stages
from flows.dispatch import check_work_pools, decode, encode, outcome
from flows.dvc_state import Repro
from prefpipe.config import ParamsError, load_params
from prefpipe.errors import ConfigError
from tests.conftest import ROOT, make_repo

RAN = Repro("sft", 0, "ran", "", stop_message="", run_title="round 2")
FAILED = Repro("sft", 2, "failed", "sft failed: no prompts in data/prompts.parquet")


@pytest.mark.parametrize("result", [RAN, FAILED, Repro("gate", 0, "ran", "", "nothing new", "")])
def test_a_repro_survives_the_state_message(result):
    assert decode(encode(result)) == result


@pytest.mark.parametrize("message", [None, "", "Flow run crashed", "[1, 2]", '{"stage": "sft"}'])
def test_a_message_without_a_repro_decodes_to_none(message):
    assert decode(message) is None


def test_the_worker_runs_final_state_gives_the_stages_own_outcome():
    assert outcome("sft", "gpu", Completed(message=encode(RAN)), 60) == RAN
    assert outcome("sft", "gpu", Failed(message=encode(FAILED)), 60) == FAILED


def test_a_run_no_worker_took_fails_with_how_to_start_one():
    result = outcome("sft", "gpu", Scheduled(), 30)
    assert (result.exit_code, result.outcome) == (1, "failed")
    assert result.message == ("no worker took stage sft from work pool gpu in 30 s: start one with "
                              "`prefect worker start --pool gpu`")
    assert "did not start it in 30 s" in outcome("sft", "gpu", Pending(), 30).message


@pytest.mark.parametrize("state", [Crashed(message="the process exited with code -9"),
                                   Cancelled(message="cancelled by a user"),
                                   Failed(message="Flow run encountered an exception: ScriptError")])
def test_a_crashed_or_cancelled_run_fails_the_stage_with_its_state(state):
    result = outcome("sft", "gpu", state, 30)
    assert result.exit_code == 1 and result.outcome == "failed"
    assert result.message == f"sft on work pool gpu ended {state.name}: {state.message}"


def write_params(tmp_path: Path, orchestration: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(f"orchestration:\n{orchestration}")
    return path


def test_work_pools_map_stages_to_pools_and_default_to_none(tmp_path):
    params = load_params(write_params(tmp_path, "  work_pools: {train_policy: gpu, generate: gpu}\n"
                                                "  dispatch_timeout_s: 90\n"), check_paths=False)
    assert params.orchestration.work_pools == {"train_policy": "gpu", "generate": "gpu"}
    assert params.orchestration.dispatch_timeout_s == 90.0
    defaults = load_params(ROOT / "params.yaml", check_paths=False).orchestration
    assert defaults.work_pools == {} and defaults.dispatch_timeout_s > 0


@pytest.mark.parametrize("orchestration, key", [
    ("  work_pools: [gpu]\n", "'orchestration.work_pools' must be a mapping"),
    ("  work_pools: {sft: 3}\n", "'orchestration.work_pools.sft' must be a string"),
    ("  work_pools: {sft: ''}\n", "orchestration.work_pools.sft: name a work pool"),
    ("  dispatch_timeout_s: 0\n", "orchestration.dispatch_timeout_s must be > 0"),
])
def test_bad_work_pools_name_their_key(tmp_path, orchestration, key):
    with pytest.raises(ParamsError) as err:
        load_params(write_params(tmp_path, orchestration), check_paths=False)
    assert key in str(err.value)


def test_a_pool_for_an_unknown_stage_names_the_key_and_the_stages(tmp_path):
    params = load_params(write_params(tmp_path, "  work_pools: {sft: gpu, trian_policy: gpu}\n"),
                         check_paths=False)
    stages = load_stages(ROOT / "dvc.yaml")
    with pytest.raises(ConfigError) as err:
        check_work_pools(params.orchestration, stages, tmp_path / "params.yaml")
    assert "orchestration.work_pools.trian_policy: no such stage" in str(err.value)
    assert str([s.name for s in stages]) in str(err.value)
    fixed = load_params(write_params(tmp_path, "  work_pools: {sft: gpu, train_policy: gpu}\n"),
                        check_paths=False)
    check_work_pools(fixed.orchestration, stages, tmp_path / "params.yaml")  # raises nothing


def test_prefpipe_run_refuses_a_pool_for_an_unknown_stage_before_prefect(tmp_path):
    repo = make_repo(tmp_path / "unknown", None, {"orchestration": {"work_pools": {"nope": "gpu"}}})
    result = repo.prefpipe("run", "--stage", "prepare", check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "orchestration.work_pools.nope: no such stage; dvc.yaml has ['prepare', " in result.stderr
    assert not (repo.path / "dvc.lock").exists() and not (repo.path / ".prefect" / "prefect.db").exists()
