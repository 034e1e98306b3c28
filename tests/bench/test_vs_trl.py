"""bench/vs_trl.py compares equal work: on the same model, pairs and batches, prefpipe's DPO and
reward-model losses are TRL's (to 1e-5) at the first step and, after one optimizer step with the
same learning rate, at the second. Skipped where TRL (the optional `bench` extra) is missing."""
from __future__ import annotations

import math

import pytest

from tests.conftest import load_bench_script

pytest.importorskip("trl", reason="TRL is in the optional `bench` extra: pip install -e '.[bench]'")


@pytest.fixture(scope="module")
def bench():
    """The bench module and a small world (16 pairs), with the Hugging Face libraries offline."""
    with pytest.MonkeyPatch.context() as patch:
        module = load_bench_script("vs_trl.py", "bench_vs_trl", patch)
        for name, value in module.OFFLINE.items():
            patch.setenv(name, value)
        yield module, module.make_world(2 * module.BATCH)


def assert_same_losses(ours: list[float], theirs: list[float], tolerance: float) -> None:
    assert len(ours) == len(theirs) == 2, (ours, theirs)
    assert ours[1] != ours[0], "the second step must follow a real update"
    for step, (a, b) in enumerate(zip(ours, theirs), start=1):
        assert abs(a - b) <= tolerance, f"step {step}: prefpipe {a:.7f}, TRL {b:.7f}"


def test_dpo_losses_agree_with_trl(bench):
    module, world = bench
    ours, theirs = module.step_losses("dpo", world, "fp32", "fp32-precompute")
    assert ours[0] == pytest.approx(math.log(2), abs=1e-6)  # the policy starts as its reference
    assert_same_losses(ours, theirs, module.TOLERANCE)


def test_reward_model_losses_agree_with_trl(bench):
    module, world = bench
    ours, theirs = module.step_losses("reward", world, "fp32", "fp32")
    assert_same_losses(ours, theirs, module.TOLERANCE)
