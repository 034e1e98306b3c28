"""Pairwise preference losses against float64 values computed by hand with `math`."""
from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from prefpipe.losses import (
    bradley_terry_loss,
    dpo_loss,
    hinge_loss,
    ipo_loss,
    preference_logits,
    robust_dpo_loss,
    simpo_loss,
)


def softplus(x: float) -> float:
    """log(1 + exp(x)), stable for large |x|."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


CHOSEN = [1.0, 0.0, -2.0, 3.5, 40.0, -40.0]
REJECTED = [0.0, 0.0, 1.0, 3.0, 0.0, 0.0]


def test_bradley_terry_matches_hand_values():
    # -log σ(x) = log(1 + e^-x)
    expected = [softplus(-(c - r)) for c, r in zip(CHOSEN, REJECTED, strict=True)]
    assert_close(bradley_terry_loss(t(CHOSEN), t(REJECTED)), t(expected))


def test_bradley_terry_spot_values():
    assert_close(bradley_terry_loss(t([1.0]), t([0.0])), t([math.log(1 + math.exp(-1))]))
    assert_close(bradley_terry_loss(t([0.0]), t([2.0])), t([math.log(1 + math.exp(2))]))


def test_bradley_terry_equal_rewards_is_log2():
    rewards = t([-3.0, 0.0, 0.25, 7.0])
    assert_close(bradley_terry_loss(rewards, rewards.clone()), t([math.log(2)] * 4))


def test_bradley_terry_swap_identity():
    chosen, rejected = t(CHOSEN[:4]), t(REJECTED[:4])
    x = chosen - rejected
    # loss(x) - loss(-x) = softplus(-x) - softplus(x) = -x
    assert_close(bradley_terry_loss(chosen, rejected) - bradley_terry_loss(rejected, chosen), -x)


def test_bradley_terry_gradient_sign_and_value():
    chosen = t([0.5, -1.0]).requires_grad_()
    rejected = t([0.0, 2.0]).requires_grad_()
    bradley_terry_loss(chosen, rejected).sum().backward()
    x = [0.5, -3.0]
    sigma_neg = [1 / (1 + math.exp(v)) for v in x]  # σ(-x)
    assert_close(chosen.grad, t([-s for s in sigma_neg]))
    assert_close(rejected.grad, t(sigma_neg))
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()


def test_bradley_terry_keeps_batch_shape():
    assert bradley_terry_loss(torch.zeros(5), torch.ones(5)).shape == (5,)


def _dpo_reference(pc, pr, rc, rr, beta, eps):
    h = (pc - pr) - (rc - rr)
    return (1 - eps) * softplus(-beta * h) + eps * softplus(beta * h)


LOGPS = dict(pc=[-5.0, -12.0, -3.0, -30.0], pr=[-7.0, -10.0, -3.0, -2.0],
             rc=[-6.0, -11.0, -4.0, -25.0], rr=[-6.5, -11.0, -4.0, -1.0])


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_dpo_matches_hand_values(beta, eps):
    rows = list(zip(*LOGPS.values(), strict=True))
    expected = [_dpo_reference(*row, beta, eps) for row in rows]
    got = dpo_loss(t(LOGPS["pc"]), t(LOGPS["pr"]), t(LOGPS["rc"]), t(LOGPS["rr"]), beta,
                   label_smoothing=eps)
    assert_close(got, t(expected))


def test_dpo_spot_value():
    # h = (-1 - -3) - (-2 - -2) = 2; beta 0.5 -> loss = log(1 + e^-1)
    got = dpo_loss(t([-1.0]), t([-3.0]), t([-2.0]), t([-2.0]), beta=0.5)
    assert_close(got, t([math.log(1 + math.exp(-1.0))]))


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_dpo_zero_logit_is_log2(eps):
    # the policy moved both responses as much as the reference did: h = 0
    got = dpo_loss(t([-4.0, -1.0]), t([-6.0, -9.0]), t([-3.0, -2.0]), t([-5.0, -10.0]), beta=0.3,
                   label_smoothing=eps)
    assert_close(got, t([math.log(2)] * 2))


def test_dpo_equals_bradley_terry_on_scaled_log_ratios():
    beta = 0.25
    pc, pr, rc, rr = (t(LOGPS[k]) for k in ("pc", "pr", "rc", "rr"))
    assert_close(dpo_loss(pc, pr, rc, rr, beta),
                 bradley_terry_loss(beta * (pc - rc), beta * (pr - rr)))


def test_cdpo_is_a_mixture_of_both_directions():
    beta, eps = 0.4, 0.15
    pc, pr, rc, rr = (t(LOGPS[k]) for k in ("pc", "pr", "rc", "rr"))
    forward = dpo_loss(pc, pr, rc, rr, beta)
    backward = dpo_loss(pr, pc, rr, rc, beta)  # chosen and rejected swapped
    assert_close(dpo_loss(pc, pr, rc, rr, beta, label_smoothing=eps),
                 (1 - eps) * forward + eps * backward)


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    pc, pr = t([-5.0, -2.0]).requires_grad_(), t([-4.0, -8.0]).requires_grad_()
    dpo_loss(pc, pr, t([-5.0, -3.0]), t([-5.0, -3.0]), beta=0.1).sum().backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()
    # d/d pc = -beta σ(-beta h), h = [-1, 6]
    expected = [-0.1 / (1 + math.exp(0.1 * h)) for h in (-1.0, 6.0)]
    assert_close(pc.grad, t(expected))
    assert_close(pr.grad, -t(expected))


def test_dpo_stable_for_large_logits():
    got = dpo_loss(t([0.0]), t([-1e4]), t([0.0]), t([0.0]), beta=1.0)
    assert torch.isfinite(got).all()
    assert_close(got, t([0.0]))
    got = dpo_loss(t([-1e4]), t([0.0]), t([0.0]), t([0.0]), beta=1.0)
    assert_close(got, t([1e4]))


def sigmoid(x: float) -> float:
    return math.exp(-softplus(-x))


def _tensors():
    return tuple(t(LOGPS[k]) for k in ("pc", "pr", "rc", "rr"))


def _hand_h():
    return [(pc - pr) - (rc - rr) for pc, pr, rc, rr in zip(*LOGPS.values(), strict=True)]


# --- Bradley-Terry margin and centering --------------------------------------------------------

@pytest.mark.parametrize("margin", [0.5, -1.0, 3.0])
def test_bradley_terry_scalar_margin_matches_hand_values(margin):
    expected = [softplus(-(c - r - margin)) for c, r in zip(CHOSEN, REJECTED, strict=True)]
    assert_close(bradley_terry_loss(t(CHOSEN), t(REJECTED), margin=margin), t(expected))


def test_bradley_terry_per_pair_margin_tensor():
    margins = [0.0, 1.0, 2.0, 0.5, 10.0, 0.25]
    expected = [softplus(-(c - r - m)) for c, r, m in zip(CHOSEN, REJECTED, margins, strict=True)]
    assert_close(bradley_terry_loss(t(CHOSEN), t(REJECTED), margin=t(margins)), t(expected))
    # a positive margin makes every pair's loss strictly larger
    assert (bradley_terry_loss(t(CHOSEN), t(REJECTED), margin=1.0)
            > bradley_terry_loss(t(CHOSEN), t(REJECTED))).all()


@pytest.mark.parametrize("coef", [0.01, 0.5])
def test_bradley_terry_center_coef_matches_hand_values(coef):
    expected = [softplus(-(c - r)) + coef * (c + r) ** 2 for c, r in zip(CHOSEN, REJECTED, strict=True)]
    assert_close(bradley_terry_loss(t(CHOSEN), t(REJECTED), center_coef=coef), t(expected))
    m = 0.7
    expected = [softplus(-(c - r - m)) + coef * (c + r) ** 2 for c, r in zip(CHOSEN, REJECTED, strict=True)]
    assert_close(bradley_terry_loss(t(CHOSEN), t(REJECTED), margin=m, center_coef=coef), t(expected))


def test_bradley_terry_shift_invariance_broken_only_by_centering():
    chosen, rejected = t(CHOSEN[:4]), t(REJECTED[:4])
    assert_close(bradley_terry_loss(chosen + 5.0, rejected + 5.0), bradley_terry_loss(chosen, rejected))
    shifted = bradley_terry_loss(chosen + 5.0, rejected + 5.0, center_coef=0.1)
    expected = [softplus(-(c - r)) + 0.1 * (c + r + 10.0) ** 2
                for c, r in zip(CHOSEN[:4], REJECTED[:4], strict=True)]
    assert_close(shifted, t(expected))


def test_bradley_terry_center_gradient_pulls_rewards_to_zero():
    coef, m = 0.25, 0.5
    chosen, rejected = t([3.0, -1.0]).requires_grad_(), t([2.0, -4.0]).requires_grad_()
    bradley_terry_loss(chosen, rejected, margin=m, center_coef=coef).sum().backward()
    pairs = [(3.0, 2.0), (-1.0, -4.0)]
    # d/dr_c = -σ(-(x - m)) + 2c(r_c + r_r);  d/dr_r = σ(-(x - m)) + 2c(r_c + r_r)
    assert_close(chosen.grad, t([-sigmoid(-(c - r - m)) + 2 * coef * (c + r) for c, r in pairs]))
    assert_close(rejected.grad, t([sigmoid(-(c - r - m)) + 2 * coef * (c + r) for c, r in pairs]))


# --- preference logits ---------------------------------------------------------------------------

def test_preference_logits_hand_values_and_antisymmetry():
    pc, pr, rc, rr = _tensors()
    assert_close(preference_logits(pc, pr, rc, rr), t(_hand_h()))
    assert_close(preference_logits(pr, pc, rr, rc), -t(_hand_h()))
    assert_close(preference_logits(t([-1.0]), t([-3.0]), t([-2.5]), t([-2.0])), t([2.5]))


# --- robust DPO ----------------------------------------------------------------------------------

def _robust_reference(h, beta, eps):
    return ((1 - eps) * softplus(-beta * h) - eps * softplus(beta * h)) / (1 - 2 * eps)


@pytest.mark.parametrize("beta", [0.1, 1.0])
@pytest.mark.parametrize("eps", [0.1, 0.3, 0.45])
def test_robust_dpo_matches_hand_values(beta, eps):
    expected = [_robust_reference(h, beta, eps) for h in _hand_h()]
    assert_close(robust_dpo_loss(*_tensors(), beta, eps), t(expected))


def test_robust_dpo_equals_dpo_at_zero_noise_and_differs_from_cdpo():
    assert_close(robust_dpo_loss(*_tensors(), 0.3, 0.0), dpo_loss(*_tensors(), 0.3))
    robust, cdpo = robust_dpo_loss(*_tensors(), 0.3, 0.2), dpo_loss(*_tensors(), 0.3, label_smoothing=0.2)
    assert (robust - cdpo).abs().max() > 1e-3


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.4])
def test_robust_dpo_is_unbiased_under_label_flips(eps):
    # With flip rate ε the observed pair is (c, r) w.p. 1-ε and (r, c) w.p. ε, so
    # E[L_rob] = (1-ε) L_rob(h) + ε L_rob(-h)
    #          = [((1-ε)² - ε²) ℓ(h) + (-(1-ε)ε + ε(1-ε)) ℓ(-h)] / (1-2ε) = ℓ(h),  ℓ(h) = -log σ(βh).
    beta = 0.5
    pc, pr, rc, rr = _tensors()
    noisy = (1 - eps) * robust_dpo_loss(pc, pr, rc, rr, beta, eps) + eps * robust_dpo_loss(pr, pc, rr, rc,
                                                                                           beta, eps)
    assert_close(noisy, t([softplus(-beta * h) for h in _hand_h()]))
    assert_close(noisy, dpo_loss(pc, pr, rc, rr, beta))


# --- IPO ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_ipo_matches_hand_values(beta):
    expected = [(h - 1 / (2 * beta)) ** 2 for h in _hand_h()]
    assert_close(ipo_loss(*_tensors(), beta), t(expected))


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_ipo_minimum_at_half_inverse_beta(beta):
    target = 1 / (2 * beta)
    # h = (pc - pr) - (rc - rr) = target with rc = rr
    hs = [target - 1.0, target - 0.1, target, target + 0.1, target + 1.0]
    pc = t([-2.0 + h for h in hs]).requires_grad_()
    pr, ref = t([-2.0] * 5), t([-3.0] * 5)
    loss = ipo_loss(pc, pr, ref, ref, beta)
    assert_close(loss[2], t(0.0))
    assert (loss[[0, 1, 3, 4]] > 0).all()
    loss.sum().backward()
    assert_close(pc.grad, t([2 * (h - target) for h in hs]))
    assert pc.grad[0] < 0 and pc.grad[1] < 0 and pc.grad[3] > 0 and pc.grad[4] > 0


# --- hinge ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_hinge_matches_hand_values(beta):
    expected = [max(0.0, 1 - beta * h) for h in _hand_h()]
    assert_close(hinge_loss(*_tensors(), beta), t(expected))


def test_hinge_zero_and_flat_once_margin_reached():
    beta = 0.5
    hs = [2.0, 3.0, 10.0, 1.0, -4.0]  # beta*h = 1, 1.5, 5 (zero loss), 0.5, -2 (positive)
    pc = t([-1.0 + h for h in hs]).requires_grad_()
    pr = t([-1.0] * 5).requires_grad_()
    ref = t([-7.0] * 5)
    loss = hinge_loss(pc, pr, ref, ref, beta)
    assert_close(loss, t([0.0, 0.0, 0.0, 0.5, 3.0]))
    loss[1:].sum().backward()  # skip pair 0, which sits on the kink β·h = 1
    assert_close(pc.grad, t([0.0, 0.0, 0.0, -beta, -beta]))
    assert_close(pr.grad, t([0.0, 0.0, 0.0, beta, beta]))


# --- SimPO ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("beta", "gamma"), [(2.0, 0.0), (2.0, 1.0), (10.0, 3.0)])
def test_simpo_matches_hand_values(beta, gamma):
    pc, pr = [-0.5, -1.2, -2.0, -0.1], [-0.7, -1.0, -2.0, -3.0]
    expected = [softplus(-(beta * (c - r) - gamma)) for c, r in zip(pc, pr, strict=True)]
    assert_close(simpo_loss(t(pc), t(pr), beta, gamma), t(expected))


def test_simpo_limits_and_margin():
    beta, gamma = 2.0, 1.0
    # a large gap -> 0; a large negative gap -> linear in it; β·gap = γ -> log 2
    assert_close(simpo_loss(t([0.0]), t([-500.0]), beta, gamma), t([0.0]))
    assert_close(simpo_loss(t([-500.0]), t([0.0]), beta, gamma), t([beta * 500.0 + gamma]))
    assert_close(simpo_loss(t([-1.0]), t([-1.5]), beta, gamma), t([math.log(2)]))
    assert (simpo_loss(t([-1.0]), t([-1.5]), beta, 2.0) > simpo_loss(t([-1.0]), t([-1.5]), beta, 0.5)).all()
    # without a reference, swapping only flips the sign of the gap (γ = 0)
    a, b = t([-1.0, -0.2]), t([-0.4, -2.0])
    assert_close(simpo_loss(a, b, beta, 0.0) - simpo_loss(b, a, beta, 0.0), -beta * (a - b))


def test_simpo_gradient_raises_chosen_and_lowers_rejected():
    beta, gamma = 2.5, 0.5
    pc, pr = t([-1.0, -0.3]).requires_grad_(), t([-1.2, -2.0]).requires_grad_()
    simpo_loss(pc, pr, beta, gamma).sum().backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()
    expected = [-beta * sigmoid(-(beta * d - gamma)) for d in (0.2, 1.7)]
    assert_close(pc.grad, t(expected))
    assert_close(pr.grad, -t(expected))
