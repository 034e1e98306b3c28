"""2 processes (DDP over gloo, launched by `accelerate launch`) give the same update as 1 process
with the same global batch: each process takes half of every global batch and the loss is scaled
so that DDP's gradient average equals the global-batch mean."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tasks._stage import free_port

WORKER = Path(__file__).with_name("worker.py")
TOKEN_WORKER = Path(__file__).with_name("token_mean_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_worker(kind: str, out: Path, processes: int) -> dict:
    if processes == 1:
        command = [sys.executable, str(WORKER), kind, str(out)]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                   "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
                   "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1", "--main_process_port",
                   str(free_port()), str(WORKER), kind, str(out)]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out)


@pytest.mark.parametrize("kind", ["sft", "reward", "dpo"])
def test_two_processes_match_one(kind, tmp_path):
    single = run_worker(kind, tmp_path / "one.pt", 1)
    double = run_worker(kind, tmp_path / "two.pt", 2)
    assert single["world_size"] == 1 and double["world_size"] == 2
    initial = run_worker_initial(kind)
    moved = max((single["state"][k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-4, "training did not change the weights: the comparison would be vacuous"
    for name, tensor in single["state"].items():
        torch.testing.assert_close(double["state"][name], tensor, rtol=0, atol=1e-5, msg=name)
    assert [round(r["loss"], 4) for r in double["history"]] == [round(r["loss"], 4)
                                                                for r in single["history"]]


def run_worker_initial(kind: str) -> dict:
    sys.path.insert(0, str(WORKER.parent))
    import tiny

    tok = tiny.tokenizer()
    model = tiny.reward_model(tok) if kind == "reward" else tiny.policy_lm(tok)
    return model.state_dict()


def test_token_mean_losses_follow_the_global_rule_under_ddp(tmp_path):
    """The RL losses are token means; `Runtime.global_mean` makes 2 processes holding 10 and 7
    tokens take the gradient of the mean over all 17 tokens (not the mean of the two means)."""
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"{processes}.pt"
        command = ([sys.executable, str(TOKEN_WORKER), str(out)] if processes == 1 else
                   [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                    "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    "--num_cpu_threads_per_process", "1", "--main_process_port", str(free_port()),
                    str(TOKEN_WORKER), str(out)])
        result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        results[processes] = torch.load(out)
    assert results[2]["world_size"] == 2
    for got in results.values():
        assert got["grad"] == pytest.approx(got["expected_grad"], rel=1e-6)
        assert got["loss"] == pytest.approx(got["expected_loss"], rel=1e-6)
