"""Sharded data parallel: 2 processes launched by `accelerate launch --config_file` with the shipped
FSDP2 and DeepSpeed ZeRO-3 configs train SFT, the reward model and DPO to the same weights as 1
process with the same global batches, while each process holds half of every model; saved as the
stages save them, they reload as the 1-process models. PPO under FSDP stops at once with a
ConfigError.

The configs run from a temporary copy whose only change is `mixed_precision: "no"` (they ship
bf16 for GPUs; the comparison with an fp32 run needs fp32). No `--cpu` flag: with it `accelerate
launch` starts one plain process whatever the config says; without a GPU each process runs on
the CPU over gloo (`prefpipe.train.distributed.make_accelerator`).

Tolerance: atol 1e-5 on every weight, rtol 0 (as the DDP test). The runs differ only in float32
reduction order (each process sums its half of the batch, the halves are then summed across
processes; the gradient norm is reduced likewise), about 1e-7 relative per step. Over 6 Adam steps
(lr 1e-3) the largest difference measured was 2.2e-6, on the attention's key bias, whose true
gradient is zero (softmax ignores a shift shared by all keys), so its Adam steps are normalized
float noise; every other weight was within 1.2e-6.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tasks._stage import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fsdp_worker.py")
KINDS = "sft,reward,dpo"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(process: subprocess.Popen, log: Path, out: Path) -> dict:
    try:
        returncode = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert returncode == 0, log.read_text()[-4000:]
    return torch.load(out)


def cpu_copy(config: str, tmp: Path) -> Path:
    """The shipped config with mixed_precision "no", and nothing else changed."""
    shipped = yaml.safe_load((ROOT / "infra" / "accelerate" / config).read_text())
    assert shipped["mixed_precision"] == "bf16"
    copy = tmp / config
    copy.write_text(yaml.safe_dump({**shipped, "mixed_precision": "no"}))
    return copy


def launch(config: Path, out: Path) -> subprocess.Popen:
    return start([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                  "--num_processes", "2", "--num_cpu_threads_per_process", "1",
                  "--main_process_port", str(free_port()), str(WORKER), KINDS, str(out)],
                 out.with_suffix(".log"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The 1-process run, started at once so that it overlaps the first 2-process launch."""
    out = tmp_path_factory.mktemp("one") / "one.pt"
    process = start([sys.executable, str(WORKER), KINDS, str(out)], out.with_suffix(".log"))
    result = {}

    def get() -> dict:
        if not result:
            result.update(finish(process, out.with_suffix(".log"), out))
        return result

    yield get
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def initial_states() -> dict[str, dict[str, torch.Tensor]]:
    """Each kind's weights before training (the worker's seeds)."""
    sys.path.insert(0, str(WORKER.parent))
    import tiny

    tok = tiny.tokenizer()
    policy = tiny.policy_lm(tok).state_dict()
    return {"sft": policy, "dpo": policy, "reward": tiny.reward_model(tok).state_dict()}


def assert_same_training(single: dict, double: dict, distributed_type: str) -> None:
    assert single["world_size"] == 1 and double["world_size"] == 2
    assert double["distributed_type"] == f"DistributedType.{distributed_type}"
    for kind, initial in initial_states().items():
        one, two = single["kinds"][kind], double["kinds"][kind]
        assert one["held_share"] == 1.0
        assert two["held_share"] == pytest.approx(0.5, abs=0.01), "each process holds half the model"
        moved = max((one["state"][k] - initial[k]).abs().max().item() for k in initial)
        assert moved > 1e-4, f"{kind}: training did not change the weights: the comparison would be vacuous"
        assert one["state"].keys() == two["state"].keys()
        for name, tensor in one["state"].items():
            torch.testing.assert_close(two["state"][name], tensor, rtol=0, atol=1e-5, msg=f"{kind} {name}")
        assert [round(r["loss"], 4) for r in two["history"]] == [round(r["loss"], 4) for r in one["history"]]
        assert_same_save(kind, one, two)


def assert_same_save(kind: str, one: dict, two: dict) -> None:
    """A stage's save (`save_model` of the gathered state dict) writes the same files from 2
    processes as from 1, which reload as the trained weights; with 1 process the bytes of a save
    without a state dict (the stages' files before sharding support)."""
    assert one["saved"]["plain_bytes"], f"{kind}: a state dict changed the saved bytes"
    assert two["saved"]["files"] == one["saved"]["files"]
    assert two["saved"]["tensors"] == one["saved"]["tensors"], "a tied weight was written twice"
    reloaded = one["saved"]["state_dict"]
    assert reloaded.keys() == one["state"].keys()
    for name, tensor in reloaded.items():
        assert torch.equal(tensor, one["state"][name]), f"{kind} {name}: 1 process saved other weights"
        torch.testing.assert_close(two["saved"]["state_dict"][name], tensor, rtol=0, atol=1e-5,
                                   msg=f"{kind} {name} saved")


def test_fsdp2_on_two_processes_matches_one(one_process, tmp_path):
    out = tmp_path / "fsdp.pt"
    double = finish(launch(cpu_copy("fsdp.yaml", tmp_path), out), out.with_suffix(".log"), out)
    assert_same_training(one_process(), double, "FSDP")
    assert "PPO/GRPO under FSDP are not supported yet" in double["ppo_refusal"]


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                    reason="deepspeed is not installed (`make setup` installs requirements.lock's)")
def test_deepspeed_zero3_on_two_processes_matches_one(one_process, tmp_path):
    out = tmp_path / "zero3.pt"
    double = finish(launch(cpu_copy("deepspeed_zero3.yaml", tmp_path), out), out.with_suffix(".log"), out)
    assert_same_training(one_process(), double, "DEEPSPEED")
