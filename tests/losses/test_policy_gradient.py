"""Policy-gradient losses and estimators against float64 values computed by hand with `math`."""
from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from prefpipe.losses import (
    KL_ESTIMATORS,
    clipped_value_loss,
    entropy_from_logits,
    gae,
    group_advantages,
    kl_k1,
    kl_k2,
    kl_k3,
    masked_mean,
    ppo_policy_loss,
    whiten,
)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# --- masked_mean ----------------------------------------------------------------------------------

VALS = [[1.0, 2.0, 3.0, 1e6], [4.0, 5.0, -1e6, -1e6]]
MASK = [[1, 1, 1, 0], [1, 1, 0, 0]]


def test_masked_mean_all_elements_ignores_masked_out():
    assert_close(masked_mean(t(VALS), t(MASK)), t((1 + 2 + 3 + 4 + 5) / 5))
    assert_close(masked_mean(t(VALS), torch.tensor(MASK, dtype=torch.bool)), t(3.0))


def test_masked_mean_along_dim():
    assert_close(masked_mean(t(VALS), t(MASK), dim=1), t([2.0, 4.5]))
    # column 3 has no masked-in entry: 0, not NaN
    assert_close(masked_mean(t(VALS), t(MASK), dim=0), t([2.5, 3.5, 3.0, 0.0]))


def test_masked_mean_all_zero_mask_gives_zero_not_nan():
    values = t([[1.0, 2.0], [3.0, 5.0]])
    mask = t([[0, 0], [1, 1]])
    out = masked_mean(values, mask, dim=1)
    assert not torch.isnan(out).any()
    assert_close(out, t([0.0, 4.0]))
    assert_close(masked_mean(values, torch.zeros(2, 2)), t(0.0))


# --- whiten ----------------------------------------------------------------------------------------

W_VALS = [[2.0, -1.0, 4.0, 99.0], [-123.0, 0.5, 3.0, 7.0]]
W_MASK = [[1, 1, 1, 0], [0, 1, 1, 1]]


def _masked_stats(vals, mask):
    xs = [v for row, mrow in zip(vals, mask, strict=True) for v, m in zip(row, mrow, strict=True) if m]
    mean = sum(xs) / len(xs)
    return mean, sum((x - mean) ** 2 for x in xs) / len(xs)


def test_whiten_matches_hand_values_and_normalises_masked_entries():
    mean, var = _masked_stats(W_VALS, W_MASK)
    out = whiten(t(W_VALS), t(W_MASK))
    expected = [[(v - mean) / math.sqrt(var + 1e-8) for v in row] for row in W_VALS]
    assert_close(out, t(expected))
    picked = out[t(W_MASK).bool()].tolist()
    m = sum(picked) / len(picked)
    assert abs(m) < 1e-12
    assert abs(sum((x - m) ** 2 for x in picked) / len(picked) - 1.0) < 1e-6


def test_whiten_ignores_masked_out_values():
    changed = [[2.0, -1.0, 4.0, -5e3], [8e3, 0.5, 3.0, 7.0]]
    keep = t(W_MASK).bool()
    assert_close(whiten(t(changed), t(W_MASK))[keep], whiten(t(W_VALS), t(W_MASK))[keep])


def test_whiten_without_shift_only_rescales():
    mean, var = _masked_stats(W_VALS, W_MASK)
    scale = 1 / math.sqrt(var + 1e-8)
    out = whiten(t(W_VALS), t(W_MASK), shift_mean=False)
    assert_close(out, t([[v * scale for v in row] for row in W_VALS]))
    assert (torch.sign(out) == torch.sign(t(W_VALS))).all()
    assert abs(mean * scale) > 0.1  # the mean is kept, so the masked-in mean is not 0
    assert_close(masked_mean(out, t(W_MASK)), t(mean * scale))


# --- KL estimators ---------------------------------------------------------------------------------

LP, REF = [-1.0, -2.0, -0.5, -3.0], [-1.5, -1.0, -0.5, -0.2]


def test_kl_estimators_hand_values():
    d = [a - b for a, b in zip(LP, REF, strict=True)]
    assert_close(kl_k1(t(LP), t(REF)), t(d))
    assert_close(kl_k2(t(LP), t(REF)), t([0.5 * x * x for x in d]))
    # r = π_ref/π = exp(-d);  k3 = r - 1 - log r
    assert_close(kl_k3(t(LP), t(REF)), t([math.exp(-x) - 1 + x for x in d]))
    assert_close(KL_ESTIMATORS["k3"](t(LP), t(REF)), t([math.exp(-x) - 1 + x for x in d]))
    assert_close(KL_ESTIMATORS["k2"](t(LP), t(REF)), t([0.5 * x * x for x in d]))
    assert_close(KL_ESTIMATORS["k1"](t(LP), t(REF)), t(d))


def test_k3_never_negative_and_k2_k3_zero_when_equal():
    grid = torch.linspace(-20.0, 5.0, 101, dtype=torch.float64)
    lp, ref = torch.meshgrid(grid, grid, indexing="ij")
    assert (kl_k3(lp, ref) >= 0).all()
    assert (kl_k2(lp, ref) >= 0).all()
    assert (kl_k1(lp, ref) < 0).any()  # k1 alone can go negative
    same = t([-0.1, -2.0, -7.5])
    assert_close(kl_k2(same, same.clone()), t([0.0] * 3))
    assert_close(kl_k3(same, same.clone()), t([0.0] * 3))


def test_k1_and_k3_monte_carlo_means_match_exact_kl():
    p, q = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    exact = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    half_sq = sum(pi * 0.5 * math.log(pi / qi) ** 2 for pi, qi in zip(p, q, strict=True))
    gen = torch.Generator().manual_seed(1234)
    idx = torch.multinomial(t(p), 200_000, replacement=True, generator=gen)
    lp, ref = torch.log(t(p))[idx], torch.log(t(q))[idx]
    assert abs(kl_k1(lp, ref).mean().item() - exact) < 0.02
    assert abs(kl_k3(lp, ref).mean().item() - exact) < 0.02
    assert abs(kl_k2(lp, ref).mean().item() - half_sq) < 0.02


# --- GAE -------------------------------------------------------------------------------------------

# row 0: prompt at 0-1, response 2-5, padding 6; row 1: prompt 0-2, response 3-4, padding 5-6.
# Masked-out rewards and values are junk that must not leak into the result.
G_MASK = [[0, 0, 1, 1, 1, 1, 0], [0, 0, 0, 1, 1, 0, 0]]
G_REW = [[9.0, -9.0, 0.1, -0.2, 0.0, 1.0, 5.0], [4.0, 4.0, 4.0, 0.0, 2.0, -6.0, 8.0]]
G_VAL = [[3.0, -3.0, 0.5, 0.4, 0.3, 0.6, 7.0], [1.0, 2.0, 3.0, -0.5, 0.9, 11.0, 13.0]]


def _gae_reference(gamma, lam):
    """A_t = Σ_l (γλ)^l δ_{t+l} over the response span, with V = 0 after its last token."""
    advantages = []
    for rew, val, mask in zip(G_REW, G_VAL, G_MASK, strict=True):
        span = [i for i, m in enumerate(mask) if m]
        deltas = []
        for k, i in enumerate(span):
            next_v = val[span[k + 1]] if k + 1 < len(span) else 0.0
            deltas.append(rew[i] + gamma * next_v - val[i])
        row = [0.0] * len(mask)
        for k, i in enumerate(span):
            row[i] = sum((gamma * lam) ** j * deltas[k + j] for j in range(len(span) - k))
        advantages.append(row)
    return advantages


def test_gae_matches_hand_reference():
    adv, ret = gae(t(G_REW), t(G_VAL), t(G_MASK), gamma=0.9, lam=0.8)
    expected = _gae_reference(0.9, 0.8)
    assert_close(adv, t(expected))
    # spot value: row 1 last token: δ = 2.0 + 0 - 0.9 = 1.1; first: δ = 0 + 0.9·0.9 + 0.5 = 1.31
    assert_close(adv[1, 4], t(1.1))
    assert_close(adv[1, 3], t(1.31 + 0.72 * 1.1))
    ret_expected = [[(a + v) * m for a, v, m in zip(ar, vr, mr, strict=True)]
                    for ar, vr, mr in zip(expected, G_VAL, G_MASK, strict=True)]
    assert_close(ret, t(ret_expected))


def test_gae_gamma_lambda_one_is_reward_to_go_minus_value():
    adv, ret = gae(t(G_REW), t(G_VAL), t(G_MASK), gamma=1.0, lam=1.0)
    expected = []
    for rew, val, mask in zip(G_REW, G_VAL, G_MASK, strict=True):
        span = [i for i, m in enumerate(mask) if m]
        row = [0.0] * len(mask)
        for i in span:
            row[i] = sum(rew[j] for j in span if j >= i) - val[i]
        expected.append(row)
    assert_close(adv, t(expected))
    mask = t(G_MASK)
    assert_close(ret, (adv + t(G_VAL)) * mask)
    assert (ret[mask == 0] == 0).all() and (adv[mask == 0] == 0).all()
    # returns on the response are the plain reward-to-go
    assert_close(ret[0, 2:6], t([0.9, 0.8, 1.0, 1.0]))


# --- PPO clipped surrogate -------------------------------------------------------------------------

# ratio, advantage: inside / clipped high (A>0) / below range (A>0) / inside (A<0) /
# clipped low (A<0) / above range (A<0) / masked-out junk
RATIOS = [1.1, 1.5, 0.5, 0.9, 0.5, 1.5, 5.0]
ADVS = [2.0, 1.0, 1.0, -1.0, -2.0, -1.0, 10.0]
P_MASK = [1, 1, 1, 1, 1, 1, 0]
CLIP = 0.2


def test_ppo_policy_loss_hand_values_and_stats():
    old = t([[-1.0, -2.0, -0.5, -3.0, -1.5, -0.7, -2.2]])
    logprobs = old + torch.log(t([RATIOS]))
    loss, stats = ppo_policy_loss(logprobs, old, t([ADVS]), t([P_MASK]), CLIP)
    terms, clipped, kls = [], 0, []
    for r, a, m in zip(RATIOS, ADVS, P_MASK, strict=True):
        if not m:
            continue
        unclipped_term, clipped_term = r * a, min(max(r, 1 - CLIP), 1 + CLIP) * a
        terms.append(min(unclipped_term, clipped_term))
        clipped += clipped_term < unclipped_term - 1e-12
        kls.append(0.5 * math.log(r) ** 2)
    assert_close(loss, t(-sum(terms) / len(terms)))
    assert_close(loss, t(-(2.2 + 1.2 + 0.5 - 0.9 - 1.6 - 1.5) / 6))
    assert clipped == 2
    assert stats["clip_fraction"] == pytest.approx(2 / 6, rel=1e-6)
    assert stats["approx_kl"] == pytest.approx(sum(kls) / len(kls), rel=1e-6)


def test_ppo_gradient_zero_where_clipped_in_advantage_direction():
    old = t([[-1.0, -2.0, -0.5, -3.0, -1.5, -0.7, -2.2]])
    logprobs = (old + torch.log(t([RATIOS]))).requires_grad_()
    loss, _ = ppo_policy_loss(logprobs, old, t([ADVS]), t([P_MASK]), CLIP)
    loss.backward()
    # d/d log π of -ρA/n is -ρA/n where the unclipped term is active, 0 where clipped or masked
    active = [True, False, True, True, False, True, False]
    expected = [-r * a / 6 if on else 0.0 for r, a, on in zip(RATIOS, ADVS, active, strict=True)]
    assert_close(logprobs.grad, t([expected]))
    assert logprobs.grad[0, 0] < 0 and logprobs.grad[0, 3] > 0  # raise A>0 tokens, lower A<0 ones


def test_ppo_on_policy_is_minus_mean_advantage():
    old = t([[-1.0, -0.3, -2.0], [-0.1, -4.0, -1.0]])
    adv, mask = t([[1.0, -2.0, 0.5], [3.0, 1.0, 100.0]]), t([[1, 1, 1], [1, 1, 0]])
    logprobs = old.clone().requires_grad_()
    loss, stats = ppo_policy_loss(logprobs, old, adv, mask, 0.1)
    assert_close(loss, t(-(1.0 - 2.0 + 0.5 + 3.0 + 1.0) / 5))
    assert stats["clip_fraction"] == 0.0 and stats["approx_kl"] == 0.0
    loss.backward()
    assert_close(logprobs.grad, -adv * mask / 5)


# --- clipped value loss ----------------------------------------------------------------------------

def test_clipped_value_loss_hand_values_and_clip_fraction():
    eps = 0.25
    # inside range / clipped but smaller error / clipped and larger error (x2) / masked junk
    v, v_old, ret = [0.5, 1.5, 1.5, -1.0, 100.0], [0.375, 1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 3.0, -2.0, 0.0]
    mask = [1, 1, 1, 1, 0]
    errors, larger = [], 0
    for vi, oi, ri, mi in zip(v, v_old, ret, mask, strict=True):
        if mi:
            vc = oi + min(max(vi - oi, -eps), eps)
            errors.append(max((vi - ri) ** 2, (vc - ri) ** 2))
            larger += (vc - ri) ** 2 > (vi - ri) ** 2
    loss, frac = clipped_value_loss(t([v]), t([v_old]), t([ret]), t([mask]), eps)
    assert_close(loss, t(0.5 * sum(errors) / len(errors)))
    assert_close(loss, t(0.5 * (2.25 + 2.25 + 3.0625 + 3.0625) / 4))
    assert larger == 2 and frac == pytest.approx(0.5)


def test_clipped_value_loss_gradient_stops_when_clipped_term_wins():
    values = t([[1.5, 1.5]]).requires_grad_()
    loss, _ = clipped_value_loss(values, t([[1.0, 1.0]]), t([[0.0, 3.0]]), t([[1, 1]]), 0.25)
    loss.backward()
    # token 0: unclipped error wins, d/dV ½·mean (V-R)² = (V-R)/2; token 1: clipped wins, no grad
    assert_close(values.grad, t([[0.75, 0.0]]))


# --- GRPO group advantages -------------------------------------------------------------------------

def test_group_advantages_hand_values():
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 0.0, 1.0, 0.0, 1.0]
    expected = []
    for g in range(3):
        grp = rewards[4 * g:4 * g + 4]
        mean = sum(grp) / 4
        std = math.sqrt(sum((r - mean) ** 2 for r in grp) / 4)
        expected += [(r - mean) / (std + 1e-4) for r in grp]
    out = group_advantages(t(rewards), 4)
    assert_close(out, t(expected))
    assert_close(out[:4], t([-1.5, -0.5, 0.5, 1.5]) / (math.sqrt(1.25) + 1e-4))
    assert_close(out[4:8], t([0.0] * 4))  # constant group: no signal
    assert_close(out.view(3, 4).mean(dim=1), t([0.0] * 3))


def test_group_advantages_rejects_ragged_groups():
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(t([1.0] * 10), 4)


# --- entropy ---------------------------------------------------------------------------------------

def test_entropy_uniform_one_hot_and_hand_value():
    vocab = 7
    uniform = torch.full((2, 3, vocab), 0.3, dtype=torch.float64)
    assert_close(entropy_from_logits(uniform).double(), t([[math.log(vocab)] * 3] * 2), rtol=1e-6, atol=1e-6)
    peaked = torch.zeros(1, 1, vocab, dtype=torch.float64)
    peaked[0, 0, 2] = 60.0
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)
    logits = [1.0, 2.0, 3.0, -1.0]
    z = sum(math.exp(x) for x in logits)
    hand = -sum(math.exp(x) / z * (x - math.log(z)) for x in logits)
    got = entropy_from_logits(t([[logits]])).double()
    assert_close(got, t([[hand]]), rtol=1e-6, atol=1e-6)
