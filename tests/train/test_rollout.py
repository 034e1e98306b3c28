"""Rollout helpers and PPO reward shaping: running moments, explained variance, sampling schedules,
the log-probs the sampling pass records."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny  # noqa: E402

from prefpipe.config.schema import SamplingParams  # noqa: E402
from prefpipe.models.formatting import TokenBatch  # noqa: E402
from prefpipe.models.policy_value import PolicyWithValue  # noqa: E402
from prefpipe.train.ppo import shaped_rewards  # noqa: E402
from prefpipe.train.rollout import (  # noqa: E402
    Rollout,
    RunningMoments,
    aligned_logprobs,
    draw_prompts,
    explained_variance,
    forward_tokens,
    minibatches,
    sample_rollout,
    sub_batch,
)

F64 = torch.float64


def rollout_with_mask(mask_rows: list[list[int]]) -> Rollout:
    mask = torch.tensor(mask_rows, dtype=F64)
    b, width = mask.shape
    ids = torch.arange(b * (width + 1)).reshape(b, width + 1)
    response = torch.cat([torch.zeros(b, 1, dtype=torch.long), mask.long()], dim=1)
    batch = TokenBatch(ids, torch.ones_like(ids), response)
    return Rollout(batch, mask, torch.ones(b, dtype=torch.bool), list(range(b)), [[] for _ in range(b)])


# ---- RunningMoments -------------------------------------------------------------------------------

def test_running_moments_match_numpy_over_concatenated_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=n) for n in (1, 5, 17, 2, 64, 3)]
    batches.append(rng.normal(-50.0, 0.1, size=9))  # a shifted batch exercises the cross term
    moments = RunningMoments()
    for i, batch in enumerate(batches):
        moments.update(torch.tensor(batch, dtype=F64))
        seen = np.concatenate(batches[: i + 1])
        assert moments.count == seen.size
        assert moments.mean == pytest.approx(seen.mean(), rel=1e-12, abs=1e-12)
        if seen.size > 1:
            assert moments.std == pytest.approx(seen.std(ddof=0), rel=1e-10)


def test_running_moments_hand_values_and_defaults():
    moments = RunningMoments()
    assert (moments.count, moments.mean, moments.std) == (0, 0.0, 1.0)
    moments.update(torch.tensor([4.0], dtype=F64))
    assert moments.mean == 4.0 and moments.std == 1.0  # a single value: std falls back to 1
    moments.update(torch.tensor([0.0, 2.0], dtype=F64))
    # values 4, 0, 2: mean 2, population variance (4 + 4 + 0) / 3
    assert moments.mean == pytest.approx(2.0, abs=1e-15)
    assert moments.std == pytest.approx(math.sqrt(8 / 3), rel=1e-14)


def test_running_moments_accept_2d_batches():
    values = torch.tensor([[1.0, 2.0], [3.0, 10.0]], dtype=F64)
    moments = RunningMoments()
    moments.update(values)
    assert moments.count == 4
    assert moments.mean == pytest.approx(4.0)
    assert moments.std == pytest.approx(np.std([1.0, 2.0, 3.0, 10.0]), rel=1e-14)


def test_running_moments_state_dict_round_trip():
    rng = np.random.default_rng(1)
    a, b = RunningMoments(), RunningMoments()
    a.update(torch.tensor(rng.normal(size=11), dtype=F64))
    b.load_state_dict(a.state_dict())
    assert (b.count, b.mean, b.std) == (a.count, a.mean, a.std)
    more = torch.tensor(rng.normal(5.0, 1.0, size=7), dtype=F64)
    a.update(more)
    b.update(more)
    assert (b.count, b.mean, b.m2) == (a.count, a.mean, a.m2)
    assert b.count == 18


# ---- explained_variance ---------------------------------------------------------------------------

def test_explained_variance_hand_value():
    returns = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    values = torch.tensor([[1.0, 2.0, 3.0, 3.0]], dtype=F64)
    mask = torch.ones_like(returns)
    # Var(returns) = 1.25; residual (0, 0, 0, 1): mean 0.25, Var = (3·0.0625 + 0.5625) / 4 = 0.1875
    assert explained_variance(values, returns, mask) == pytest.approx(1 - 0.1875 / 1.25, abs=1e-12)


def test_explained_variance_ignores_masked_positions():
    returns = torch.tensor([[1.0, 2.0, 99.0], [3.0, 4.0, -7.0]], dtype=F64)
    values = torch.tensor([[1.0, 2.0, 0.0], [3.0, 3.0, 55.0]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]], dtype=F64)
    assert explained_variance(values, returns, mask) == pytest.approx(0.85, abs=1e-12)


def test_explained_variance_perfect_constant_and_anti_critics():
    returns = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.0, 1.5]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype=F64)
    assert explained_variance(returns.clone(), returns, mask) == pytest.approx(1.0, abs=1e-12)
    # a constant critic leaves the residual's variance equal to the returns' variance
    assert explained_variance(torch.full_like(returns, 7.0), returns, mask) == pytest.approx(0.0, abs=1e-12)
    # predicting the returns' mean is also a constant shift of the residual
    mean = (returns * mask).sum() / mask.sum()
    assert explained_variance(torch.full_like(returns, mean.item()), returns, mask) == pytest.approx(
        0.0, abs=1e-12)
    # values = -returns: residual 2·returns, variance 4x -> 1 - 4 = -3
    assert explained_variance(-returns, returns, mask) == pytest.approx(-3.0, abs=1e-12)


def test_explained_variance_of_constant_returns_is_nan():
    returns = torch.full((2, 3), 2.0, dtype=F64)
    assert math.isnan(explained_variance(torch.zeros_like(returns), returns, torch.ones_like(returns)))


# ---- Rollout.last_index and shaped_rewards --------------------------------------------------------

def test_last_index_with_different_response_spans():
    rollout = rollout_with_mask([
        [0, 0, 1, 1, 1, 0],  # response ends at 4, then padding
        [1, 1, 1, 1, 1, 1],  # response runs to the end
        [0, 0, 0, 0, 1, 0],  # a single response token
        [0, 1, 1, 0, 0, 0],
    ])
    assert rollout.last_index().tolist() == [4, 5, 4, 2]
    assert rollout.lengths.tolist() == [3.0, 6.0, 1.0, 2.0]


def test_shaped_rewards_hand_values():
    rollout = rollout_with_mask([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]])
    kl = torch.tensor([[9.0, 0.5, -0.2, 1.0, 9.0],
                       [0.3, 0.1, 9.0, 9.0, 9.0],
                       [9.0, 9.0, 9.0, 2.0, 0.0]], dtype=F64)
    scores = torch.tensor([1.5, -2.0, 0.25], dtype=F64)
    beta = 0.1
    expected = [[0.0, -0.05, 0.02, -0.1 + 1.5, 0.0],
                [-0.03, -0.01 - 2.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, -0.2, 0.0 + 0.25]]
    rewards = shaped_rewards(scores, kl, rollout, beta)
    np.testing.assert_allclose(rewards.numpy(), np.array(expected), rtol=0, atol=1e-12)
    # per row: score plus the β-weighted KL penalty over response tokens
    np.testing.assert_allclose(rewards.sum(-1).numpy(), [1.5 - 0.13, -2.0 - 0.04, 0.25 - 0.2], atol=1e-12)


def test_shaped_rewards_zero_beta_is_score_only_and_input_untouched():
    rollout = rollout_with_mask([[1, 1, 0], [0, 1, 1]])
    kl = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    kl_before = kl.clone()
    rewards = shaped_rewards(torch.tensor([3.0, -1.0], dtype=F64), kl, rollout, 0.0)
    assert rewards.tolist() == [[0.0, 3.0, 0.0], [0.0, 0.0, -1.0]]
    assert torch.equal(kl, kl_before)


# ---- draw_prompts, minibatches, sub_batch ---------------------------------------------------------

def test_draw_prompts_deterministic_in_range_and_varying():
    first = draw_prompts(50, 32, seed=3, iteration=0)
    assert first == draw_prompts(50, 32, seed=3, iteration=0)
    assert len(first) == 32 and all(0 <= i < 50 for i in first)
    per_iteration = [tuple(draw_prompts(50, 32, seed=3, iteration=it)) for it in range(10)]
    assert len(set(per_iteration)) == 10
    assert draw_prompts(50, 32, seed=4, iteration=0) != first
    assert draw_prompts(50, 0, seed=3, iteration=0) == []


def test_draw_prompts_does_not_depend_on_global_rng():
    import random
    random.seed(1)
    a = draw_prompts(100, 10, seed=0, iteration=5)
    random.seed(2)
    torch.manual_seed(2)
    assert draw_prompts(100, 10, seed=0, iteration=5) == a


@pytest.mark.parametrize(("n_rows", "size"), [(10, 3), (12, 4), (5, 8), (1, 1), (17, 17)])
def test_minibatches_partition_all_rows(n_rows, size):
    batches = minibatches(n_rows, size, seed=0, iteration=2, epoch=1)
    flat = [r for batch in batches for r in batch]
    assert sorted(flat) == list(range(n_rows))
    assert len(batches) == math.ceil(n_rows / size)
    assert all(len(b) == size for b in batches[:-1])
    assert 1 <= len(batches[-1]) <= size


def test_minibatches_deterministic_and_reshuffled():
    a = minibatches(40, 8, seed=1, iteration=3, epoch=0)
    assert a == minibatches(40, 8, seed=1, iteration=3, epoch=0)
    assert a != minibatches(40, 8, seed=1, iteration=3, epoch=1)
    assert a != minibatches(40, 8, seed=1, iteration=4, epoch=0)
    assert a != minibatches(40, 8, seed=2, iteration=3, epoch=0)
    assert [r for b in a for r in b] != list(range(40))  # actually shuffled


def test_sub_batch_selects_rows_in_given_order():
    ids = torch.arange(12).reshape(4, 3)
    batch = TokenBatch(ids, (ids % 2), (ids % 3 == 0).long())
    sub = sub_batch(batch, [2, 0])
    assert sub.input_ids.tolist() == [[6, 7, 8], [0, 1, 2]]
    assert sub.attention_mask.tolist() == [[0, 1, 0], [0, 1, 0]]
    assert sub.response_mask.tolist() == [[1, 0, 0], [1, 0, 0]]


# ---- the sampling pass's log-probs -----------------------------------------------------------------

def test_recorded_sampling_logprobs_equal_a_full_forward():
    """The log-probs the sampling pass records (KV cache, left padding, rows leaving as they end)
    are those of one forward over the collated rollout, to 1e-5 in fp32."""
    tok = tiny.tokenizer()
    lm = tiny.policy_lm(tok)
    eos = torch.tensor([tok.eos_token_id])
    lm.lm_head.register_forward_hook(  # rows end after a few tokens, at different steps
        lambda _module, _inputs, out: out.index_add(-1, eos, torch.full((*out.shape[:-1], 1), 2.0)))
    policy = PolicyWithValue(lm, with_value_head=False)
    prompts = [tok(p)["input_ids"] for p in tiny.prompts(5)]
    rollout = sample_rollout(policy.generator(), tok, prompts, 3, SamplingParams(max_new_tokens=16),
                             seed=4, max_length=64, device="cpu")
    assert rollout.finished.any() and not rollout.finished.all()
    assert len(set(rollout.lengths.tolist())) > 3
    with torch.no_grad():
        forward, _, _ = forward_tokens(policy, rollout.batch, "fp32")
    torch.testing.assert_close(rollout.sampled_logprobs, forward * rollout.mask, atol=1e-5, rtol=0)
    assert rollout.sampled_logprobs[rollout.mask == 0].eq(0).all()
    assert rollout.sampled_logprobs.requires_grad is False and not rollout.sampled_logprobs.is_inference()


def test_aligned_logprobs_follow_the_mask_and_keep_a_cut_response_s_first_tokens():
    drawn = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, 0.0], [-6.0, -7.0, -8.0]])
    mask = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 0, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)
    # row 1 drew 2 tokens; row 2 drew 3 but collate kept 2 (cut to fit)
    assert aligned_logprobs(drawn, mask).tolist() == [[0.0, -1.0, -2.0, -3.0, 0.0],
                                                      [0.0, 0.0, 0.0, -4.0, -5.0],
                                                      [-6.0, -7.0, 0.0, 0.0, 0.0]]
