"""Shared training pieces: batching over (fractional) epochs and the LR schedule."""
from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch

from prefpipe.config.schema import OptimParams, RLOptimParams
from prefpipe.errors import ConfigError
from prefpipe.train.common import (
    epoch_batches,
    length_groups,
    lr_factor,
    make_optimizer,
    set_dropout,
    take,
    total_batches,
)


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


def test_length_groups_sort_by_length_and_cut_evenly():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    assert length_groups([0, 1, 2, 3, 4, 5, 6], lengths, 3) == [[1, 6, 3], [4, 0, 5], [2]]
    assert length_groups([2, 4, 3], lengths, 1) == [[4, 3, 2]]  # ties keep the batch's order
    assert length_groups([2, 0], lengths, 8) == [[0], [2]]  # never an empty group


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


def test_sequential_order_visits_0_to_n_minus_1_every_epoch():
    batches = list(epoch_batches(10, 3, epochs=2.5, seed=5, shuffle=False))
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] * 2 + [[0, 1, 2], [3, 4, 5]]
    assert batches == list(epoch_batches(10, 3, epochs=2.5, seed=6, shuffle=False))  # seed unused


def test_shuffled_order_keeps_the_data_order_seed():
    # the order of every release so far: random.Random(seed * 7919 + epoch) per epoch
    batches = list(epoch_batches(10, 5, epochs=2.0, seed=3))
    for epoch in range(2):
        order = list(range(10))
        random.Random(3 * 7919 + epoch).shuffle(order)
        assert batches[2 * epoch] + batches[2 * epoch + 1] == order


def _factors(total_steps: int = 20, **knobs) -> list[float]:
    return [lr_factor(OptimParams(warmup_steps=4, **knobs), total_steps)(s) for s in range(total_steps + 2)]


def test_constant_schedule_stays_at_the_peak_after_warmup():
    assert _factors(schedule="constant") == pytest.approx([0.25, 0.5, 0.75] + [1.0] * 19)


def test_linear_schedule_decays_to_min_lr_ratio():
    factors = _factors(schedule="linear", min_lr_ratio=0.2)
    assert factors[4] == 1.0 and factors[12] == pytest.approx(0.6)  # halfway: 0.2 + 0.8 * 0.5
    assert factors[20] == factors[21] == pytest.approx(0.2)


def test_cosine_ends_at_min_lr_ratio():
    assert _factors(min_lr_ratio=0.0)[20] == pytest.approx(0.0, abs=1e-12)
    assert _factors(min_lr_ratio=0.5)[12] == pytest.approx(0.75)


def test_default_optimizer_is_todays_adamw_call():
    model = torch.nn.Linear(2, 1)
    optimizer, _ = make_optimizer(model, OptimParams(lr=0.5, weight_decay=0.01), 10)
    today = torch.optim.AdamW(model.parameters(), lr=0.5, weight_decay=0.01)
    assert optimizer.defaults == today.defaults
    assert optimizer.defaults["fused"] is None and optimizer.defaults["foreach"] is None


@pytest.mark.parametrize("fused", [True, False])
def test_fused_flag_reaches_adamw(fused):
    model = torch.nn.Linear(2, 1)
    optimizer, _ = make_optimizer(model, OptimParams(fused=fused), 10)
    assert optimizer.defaults["fused"] is fused
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()  # the fused kernel runs where torch has it (CPU since torch 2.4)


def test_fused_where_unavailable_is_a_config_error(monkeypatch):
    def unavailable(*args, **kwargs):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors")

    monkeypatch.setattr(torch.optim, "AdamW", unavailable)
    with pytest.raises(ConfigError, match="optim.fused"):
        make_optimizer(torch.nn.Linear(2, 1), OptimParams(fused=True), 10)


def test_sgd_with_momentum():
    model = torch.nn.Linear(2, 1)
    optimizer, _ = make_optimizer(model, OptimParams(optimizer="sgd", momentum=0.9, lr=0.1), 10)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["lr"] == 0.1


def test_rl_optim_params_build_the_same_optimizer():
    model = torch.nn.Linear(2, 1)
    optimizer, _ = make_optimizer(model, RLOptimParams(lr=0.2, fused=False), 10)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is False


def _dropout_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1), torch.nn.Dropout(0.3))


def test_set_dropout_sets_every_dropout_module():
    model = _dropout_model()
    set_dropout(model, 0.25)
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.25, 0.25]


def test_set_dropout_none_keeps_the_models_own():
    model = _dropout_model()
    set_dropout(model, None)
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == [0.1, 0.3]


def test_rows_by_length_returns_values_in_row_order_with_gradients():
    from prefpipe.train.common import rows_by_length
    from tests.train import tiny

    tok = tiny.tokenizer()
    prompts = [[5] * n for n in (1, 6, 2, 9, 3)]
    responses = [[7] * n for n in (4, 1, 8, 2, 5)]
    weight = torch.tensor(2.0, requires_grad=True)
    widths = []

    def per_row(batch):  # a row's value: weight x its real token count
        widths.append(batch.input_ids.shape[1])
        return weight * batch.attention_mask.sum(-1).double()

    grouped = rows_by_length(per_row, tok, prompts, responses, 64, 2, "cpu")
    assert grouped.tolist() == [2.0 * (len(p) + len(r)) for p, r in zip(prompts, responses)]
    assert sorted(widths) == [8, 11]  # lengths 5, 7, 8 in one part and 10, 11 in the other
    grouped.sum().backward()
    assert weight.grad.item() == sum(len(p) + len(r) for p, r in zip(prompts, responses))
    widths.clear()
    assert rows_by_length(per_row, tok, prompts, responses, 64, 1, "cpu").tolist() == grouped.tolist()
    assert widths == [11]
