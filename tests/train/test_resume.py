"""A training run killed (SIGKILL) mid-way resumes from its last checkpoint and ends with the same
weights as an uninterrupted run: weights, optimizer, schedule, RNG, data position and the KL
controller all come back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start_worker(kind: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), kind, str(out), *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(worker: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    return subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr)


def run_worker(kind: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return finish(start_worker(kind, out, *extra))


# forward passes before the kill: past at least one checkpoint, before the end
KILL_AT = {"reward": 4, "sft": 4, "dpo": 4, "ppo": 18, "grpo": 8}


@pytest.mark.parametrize("kind", ["reward", "sft", "dpo", "ppo", "grpo"])
def test_killed_run_resumes_to_the_same_weights(kind, tmp_path):
    checkpoints = tmp_path / "ckpt"
    args = ("--checkpoint", str(checkpoints), "--every", "1")
    # the uninterrupted run and the one to kill side by side (one torch thread each): they share nothing
    plain_worker = start_worker(kind, tmp_path / "plain.pt")
    killed = run_worker(kind, tmp_path / "resumed.pt", *args, "--kill-after-forward", str(KILL_AT[kind]))
    plain = finish(plain_worker)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (checkpoints / "state.pt").exists(), "no checkpoint was written before the kill"
    assert not (tmp_path / "resumed.pt").exists()
    steps_saved = torch.load(checkpoints / "state.pt", weights_only=False)["step"]
    assert steps_saved >= 1
    resumed = run_worker(kind, tmp_path / "resumed.pt", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoints / 'state.pt'} at step {steps_saved}" in resumed.stderr
    assert not checkpoints.exists(), "a finished run removes its checkpoint"
    expected = torch.load(tmp_path / "plain.pt")
    actual = torch.load(tmp_path / "resumed.pt")
    for name, tensor in expected["state"].items():
        torch.testing.assert_close(actual["state"][name], tensor, rtol=0, atol=1e-6, msg=name)
    assert len(actual["history"]) == len(expected["history"])
    for key in ("beta", "kl_nats", "loss"):
        if key in expected["history"][-1]:
            assert actual["history"][-1][key] == pytest.approx(expected["history"][-1][key], abs=1e-6)
