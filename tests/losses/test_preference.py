"""Pairwise preference losses against float64 values computed by hand with `math`."""
from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from prefpipe.losses import bradley_terry_loss, dpo_loss


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
