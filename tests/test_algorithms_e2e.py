"""End to end for the policy optimisers on tiny params, through real `dvc` and real stages:
PPO and GRPO selected with `dvc exp run -S`, a training stage run under `accelerate launch` with 2
processes, and a training stage killed with SIGKILL that resumes from its checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import env_for, make_repo

pytestmark = pytest.mark.slow
TINY_RL = {"ppo": {"iterations": 3, "rollout_prompts": 16, "minibatch_size": 8,
                   "sampling": {"max_new_tokens": 24}},
           "grpo": {"iterations": 3, "prompts_per_iteration": 4, "group_size": 4, "minibatch_size": 8,
                    "sampling": {"max_new_tokens": 24}}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("algorithms"), None, {"policy": TINY_RL})
    repo.dvc("repro")
    repo.run("git", "add", "-A")
    repo.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny run")
    return repo


def metrics(repo, name: str) -> dict:
    return json.loads((repo.path / "metrics" / f"{name}.json").read_text())


@pytest.mark.parametrize("algorithm", ["ppo", "grpo"])
def test_dvc_exp_run_selects_the_algorithm(repo, algorithm):
    result = repo.dvc("exp", "run", "-S", f"policy.algorithm={algorithm}")
    assert "Running stage 'train_policy'" in result.stdout
    assert "Running stage 'train_reward'" not in result.stdout
    policy = metrics(repo, "policy")
    assert policy["algorithm"] == algorithm and policy["steps"] == 3
    if algorithm == "ppo":
        for key in ("beta", "kl_nats", "score", "entropy", "clip_fraction", "approx_kl",
                    "value_explained_variance", "response_tokens"):
            assert key in policy, key
    else:
        assert 0.0 <= policy["reward"] <= 1.0 and "kl_k3_token" in policy
    evaluation = metrics(repo, "evaluate")
    assert "win_rate" in evaluation and "policy_accuracy_arithmetic" in evaluation
    shown = json.loads(repo.dvc("metrics", "show", "--json").stdout)
    assert any("policy.json" in key for workspace in shown.values()
               for key in workspace.get("data", {})), shown
    repo.run("git", "checkout", "params.yaml")


def test_a_training_stage_runs_under_accelerate_with_two_processes(repo, tmp_path):
    params = repo.params()
    params["runtime"]["processes"] = 2
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(params))
    env = {**env_for(repo.path), "PREFPIPE_PARAMS": str(path)}
    result = subprocess.run([sys.executable, "-m", "tasks.train_reward"], cwd=repo.path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "launching 2 processes" in result.stderr
    assert "stage train_reward done" in result.stderr
    assert result.stderr.count("stage train_reward starting") == 1  # only the main process logs
    assert metrics(repo, "reward")["val_pairs"] > 0


def test_a_killed_training_stage_resumes_from_its_checkpoint(repo, tmp_path):
    params = repo.params()
    params["policy"]["algorithm"] = "ppo"
    params["policy"]["ppo"]["iterations"] = 40
    params["runtime"]["checkpoint_every"] = 1
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(params))
    env = {**env_for(repo.path), "PREFPIPE_PARAMS": str(path)}
    command = [sys.executable, "-m", "tasks.train_policy"]
    process = subprocess.Popen(command, cwd=repo.path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = repo.path / "checkpoints" / "train_policy"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("*/state.pt")) and time.monotonic() < deadline:
        assert process.poll() is None, "the stage ended before writing a checkpoint"
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    [state] = list(checkpoints.glob("*/state.pt"))
    resumed = subprocess.run(command, cwd=repo.path, env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {state.relative_to(repo.path)}" in resumed.stderr
    assert not state.exists(), "a completed run removes its checkpoint"
    assert metrics(repo, "policy")["steps"] == 40
