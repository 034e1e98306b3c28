"""bench/floor_sft.py (the SFT side of bench/training_floor.py) measures equal work: on the same
weights and batch, every floor's first-step loss is prefpipe's train_sft loss (fp32, dropout off),
and its padding figures count what `collate` really builds."""
from __future__ import annotations

import pytest

from tests.conftest import load_bench_script


@pytest.fixture(scope="module")
def bench():
    """bench/floor_sft.py and a small default world (640 SFT examples: 9 batches of 64)."""
    with pytest.MonkeyPatch.context() as patch:
        module = load_bench_script("floor_sft.py", "floor_sft", patch)
        world = module.make_sft_world(sft_examples=640)
        world.dropout = 0.0  # equal losses need no dropout noise
        yield module, world


def test_floors_compute_prefpipe_sft_loss(bench):
    import copy

    module, world = bench
    _, ours = module.prefpipe_sft_run(world, copy.deepcopy(world.lm), "fp32", 1)
    assert len(ours) == 2
    for floor in ("plain", "head", "split2", "split4"):  # nodrop: equal work only without dropout
        batches = module.floor_sft_batches(world, floor, 1)
        assert len(batches) == 2 and len(batches[0]) == module.FLOORS[floor][0]
        times, theirs = module.floor_sft_run(world, copy.deepcopy(world.lm), batches, "fp32", floor)
        assert len(times) == 1 and all(t >= 0 for t in times[0])
        assert theirs[0] == pytest.approx(ours[0], abs=1e-5), floor
        assert theirs[1] < theirs[0], f"{floor}: the optimizer step must lower the loss"


def test_padding_report_counts_collated_positions(bench):
    module, world = bench
    report = module.padding_report(world)
    order = module.stage_order(world)
    assert len(order) == report["batches"] == 9
    assert sorted(i for idx in order for i in idx) == list(range(len(world.examples)))
    batches = [module.collated(world, idx) for idx in order]
    real = sum(int(b.attention_mask.sum()) for b in batches)
    positions = sum(b.input_ids.numel() for b in batches)
    assert (report["real_tokens"], report["positions"]) == (real, positions)
    assert report["pad_share"][1] == pytest.approx(1 - real / positions)
    split = [m for idx in order for m in module.micro_batches(world, idx, 4)]
    assert report["pad_share"][4] == pytest.approx(1 - real / sum(m.input_ids.numel() for m in split))
    assert report["pad_share"][4] < report["pad_share"][2] < report["pad_share"][1]
