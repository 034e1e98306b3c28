"""The DPO-variant registry: one object per `policy.dpo.loss` name, its declared properties, and
outputs bit-identical to the pure loss functions (checked there against hand-computed values)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from prefpipe.losses import (
    DPO_VARIANTS,
    DPOOutput,
    dpo_loss,
    dpo_variant,
    hinge_loss,
    ipo_loss,
    robust_dpo_loss,
    simpo_loss,
)
from prefpipe.vocab import DPOVariant


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


POL_C, POL_R = t([-1.0, -4.0, -2.5, 0.5]), t([-2.0, -1.0, -2.5, -3.0])
REF_C, REF_R = t([-1.5, -3.0, -2.0, -1.0]), t([-1.5, -2.0, -3.0, -2.0])
BETA, EPS, GAMMA = 0.3, 0.1, 0.4

# name -> (reference_free, length_normalised, the pure function's per-pair losses)
EXPECTED = {
    "sigmoid": (False, False, lambda: dpo_loss(POL_C, POL_R, REF_C, REF_R, BETA, EPS)),
    "robust": (False, False, lambda: robust_dpo_loss(POL_C, POL_R, REF_C, REF_R, BETA, EPS)),
    "ipo": (False, True, lambda: ipo_loss(POL_C, POL_R, REF_C, REF_R, BETA)),
    "hinge": (False, False, lambda: hinge_loss(POL_C, POL_R, REF_C, REF_R, BETA)),
    "simpo": (True, True, lambda: simpo_loss(POL_C, POL_R, BETA, GAMMA)),
}


def test_registry_covers_every_configurable_name():
    assert set(DPO_VARIANTS) == set(DPOVariant) == set(EXPECTED)
    assert all(cls.name == name for name, cls in DPO_VARIANTS.items())


@pytest.mark.parametrize("name", DPOVariant.values())
def test_each_variant_declares_its_properties(name):
    reference_free, length_normalised, _ = EXPECTED[name]
    variant = dpo_variant(name, BETA, EPS, GAMMA)
    assert (variant.reference_free, variant.length_normalised) == (reference_free, length_normalised)
    assert variant.name == name


@pytest.mark.parametrize("name", DPOVariant.values())
def test_losses_are_bit_identical_to_the_pure_function(name):
    out = dpo_variant(name, BETA, EPS, GAMMA)(POL_C, POL_R, REF_C, REF_R)
    assert isinstance(out, DPOOutput)
    assert torch.equal(out.losses, EXPECTED[name][2]())  # same tensor operations, same order


@pytest.mark.parametrize("name", DPOVariant.values())
def test_rewards_and_margins_match_hand_values(name):
    out = dpo_variant(name, BETA, EPS, GAMMA)(POL_C, POL_R, REF_C, REF_R)
    chosen = [BETA * (p - r) for p, r in zip(POL_C.tolist(), REF_C.tolist(), strict=True)]
    rejected = [BETA * (p - r) for p, r in zip(POL_R.tolist(), REF_R.tolist(), strict=True)]
    assert_close(out.chosen_rewards, t(chosen))
    assert_close(out.rejected_rewards, t(rejected))
    assert_close(out.margins, t([c - r for c, r in zip(chosen, rejected, strict=True)]))


def test_rewards_and_margins_carry_no_gradient_but_losses_do():
    pol_c, pol_r = POL_C.clone().requires_grad_(), POL_R.clone().requires_grad_()
    out = dpo_variant("sigmoid", BETA)(pol_c, pol_r, REF_C, REF_R)
    assert out.losses.requires_grad
    assert not (out.chosen_rewards.requires_grad or out.rejected_rewards.requires_grad
                or out.margins.requires_grad)
    out.losses.sum().backward()
    # d/dπ_c of -log σ(β h) = -β σ(-β h)
    h = [(c - r) - (rc - rr) for c, r, rc, rr in zip(POL_C.tolist(), POL_R.tolist(), REF_C.tolist(),
                                                      REF_R.tolist(), strict=True)]
    assert_close(pol_c.grad, t([-BETA / (1 + math.exp(BETA * x)) for x in h]))


def test_simpo_ignores_the_reference():
    simpo = dpo_variant("simpo", BETA, simpo_gamma=GAMMA)
    with_ref = simpo(POL_C, POL_R, REF_C, REF_R).losses
    without = simpo(POL_C, POL_R, torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    assert torch.equal(with_ref, without.losses)
    assert_close(without.margins, BETA * (POL_C - POL_R))  # SimPO's reward is β·mean log π


def test_knobs_reach_the_variant_that_reads_them():
    assert dpo_variant("sigmoid", 0.2, label_smoothing=0.1).label_smoothing == 0.1
    assert dpo_variant("robust", 0.2, label_smoothing=0.2).label_smoothing == 0.2
    assert dpo_variant("simpo", 0.2, simpo_gamma=1.5).simpo_gamma == 1.5
    assert dpo_variant("ipo", 0.2, label_smoothing=0.3).beta == 0.2


def test_unknown_name_lists_the_variants():
    with pytest.raises(ValueError, match="policy.dpo.loss: unknown loss 'orpo'.*sigmoid, robust"):
        dpo_variant("orpo", 0.1)
