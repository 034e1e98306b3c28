"""Shared training pieces: batching over (fractional) epochs and the LR schedule."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from prefpipe.config.schema import OptimParams
from prefpipe.train.common import epoch_batches, make_optimizer, take, total_batches


def test_every_index_once_per_epoch():
    batches = list(epoch_batches(10, 3, epochs=2.0, seed=0))
    assert len(batches) == 8 == total_batches(10, 3, 2.0)
    assert [len(b) for b in batches] == [3, 3, 3, 1] * 2
    for epoch in range(2):
        seen = [i for b in batches[epoch * 4:(epoch + 1) * 4] for i in b]
        assert sorted(seen) == list(range(10))
    # reshuffled between epochs
    assert batches[:4] != batches[4:]


def test_fractional_epochs():
    batches = list(epoch_batches(10, 3, epochs=1.5, seed=1))
    assert len(batches) == 6 == math.ceil(4 * 1.5)
    first_epoch = [i for b in batches[:4] for i in b]
    assert sorted(first_epoch) == list(range(10))
    second = [i for b in batches[4:] for i in b]
    assert len(second) == len(set(second)) == 6
    counts = Counter(i for b in batches for i in b)
    assert set(counts.values()) <= {1, 2} and sum(counts.values()) == 16


def test_small_fraction_still_gives_one_batch():
    batches = list(epoch_batches(100, 10, epochs=0.01, seed=0))
    assert len(batches) == 1 and len(batches[0]) == 10


def test_more_than_two_epochs_and_batch_larger_than_data():
    batches = list(epoch_batches(5, 8, epochs=3.0, seed=2))
    assert len(batches) == 3
    assert all(sorted(b) == list(range(5)) for b in batches)


def test_batches_are_deterministic_by_seed():
    a = list(epoch_batches(50, 7, 2.5, seed=11))
    assert a == list(epoch_batches(50, 7, 2.5, seed=11))
    assert a != list(epoch_batches(50, 7, 2.5, seed=12))


def test_take():
    assert take("abcdef", [4, 0, 2]) == ["e", "a", "c"]


def _lrs(total_steps: int, warmup_steps: int, lr: float = 1.0) -> list[float]:
    model = torch.nn.Linear(2, 1)
    optim = OptimParams(lr=lr, warmup_steps=warmup_steps)
    optimizer, scheduler = make_optimizer(model, optim, total_steps)
    lrs = []
    for _ in range(total_steps + 3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_schedule_warms_up_then_decays_to_ten_percent():
    lrs = _lrs(total_steps=20, warmup_steps=4, lr=2.0)
    assert lrs[:5] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0])  # linear warmup to the peak
    assert all(b <= a + 1e-12 for a, b in zip(lrs[4:-1], lrs[5:], strict=True))  # never rises
    # step 12: progress (12 - 4) / 16 = 0.5 -> 0.1 + 0.9 * 0.5 * (1 + cos(pi / 2)) = 0.55
    assert lrs[12] == pytest.approx(2.0 * 0.55)
    assert lrs[20] == pytest.approx(0.2)  # 10% of the peak at the end
    assert lrs[22] == pytest.approx(0.2)  # and it stays there


def test_warmup_is_capped_at_half_the_run():
    lrs = _lrs(total_steps=10, warmup_steps=100)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[10] == pytest.approx(0.1)


def test_optimizer_is_adamw_with_weight_decay():
    model = torch.nn.Linear(2, 1)
    optimizer, _ = make_optimizer(model, OptimParams(lr=0.5, weight_decay=0.01), 10)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    assert optimizer.defaults["lr"] == 0.5


def test_no_examples_is_an_error_not_an_endless_loop():
    with pytest.raises(ValueError, match="no training examples"):
        next(epoch_batches(0, 4, 1.0, seed=0))
