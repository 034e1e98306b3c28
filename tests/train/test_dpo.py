"""prefpipe.train.dpo's glue: the config picks the variant, and the variant decides what reference
log-probs training needs (no model is loaded for a reference-free one)."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from prefpipe.config.schema import DPOParams, OptimParams
from prefpipe.train import dpo
from prefpipe.train.loop import TrainContext
from prefpipe.vocab import DPOVariant
from tests.train import tiny


@pytest.mark.parametrize("loss", DPOVariant.values())
def test_variant_for_reads_the_config(loss):
    params = DPOParams(loss=loss, beta=0.25, label_smoothing=0.1, simpo_gamma=0.7)
    variant = dpo.variant_for(params)
    assert variant.name == loss and variant.beta == 0.25


def test_reference_free_variant_loads_no_reference():
    def never():
        raise AssertionError("a reference-free variant must not load the reference model")

    simpo = dpo.variant_for(DPOParams(loss="simpo"))
    ref_c, ref_r = dpo.reference_for(simpo, never, None, [{}, {}, {}], 16)
    assert torch.equal(ref_c, torch.zeros(3)) and torch.equal(ref_r, torch.zeros(3))


@pytest.mark.parametrize(("loss", "average"), [("sigmoid", False), ("robust", False), ("hinge", False),
                                               ("ipo", True)])
def test_reference_log_probs_are_read_as_the_variant_reads_them(monkeypatch, loss, average):
    calls = []

    def fake_reference_logprobs(model, tokenizer, pairs, max_length, average=False, precision="fp32"):
        calls.append((model, max_length, average, precision))
        return torch.ones(len(pairs)), -torch.ones(len(pairs))

    monkeypatch.setattr(dpo, "reference_logprobs", fake_reference_logprobs)
    ref_c, ref_r = dpo.reference_for(dpo.variant_for(DPOParams(loss=loss)), lambda: "the model", None,
                                     [{}, {}], 16, precision="bf16")
    assert calls == [("the model", 16, average, "bf16")]
    assert torch.equal(ref_c, torch.ones(2)) and torch.equal(ref_r, -torch.ones(2))


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("pairs", [8, 20])
def test_a_policy_equal_to_its_reference_starts_at_log_2(tok, precision, pairs):
    """The reference log-probs are computed at the policy's precision: under bf16 autocast too, a
    policy equal to its reference has a zero margin on its first step (loss log 2; a reference computed
    in fp32 gave log 2 - 5e-6 here, and 0.692975 in issue 14's measurement)."""
    policy, data = tiny.policy_lm(tok), tiny.pairs(pairs)
    params = DPOParams(optim=OptimParams(epochs=1.0, batch_size=8, lr=1e-3, warmup_steps=1))
    ref_c, ref_r = dpo.reference_for(dpo.variant_for(params), lambda: copy.deepcopy(policy), tok, data,
                                     64, precision=precision)
    history = dpo.train_dpo(policy, tok, data, ref_c, ref_r, params, 64, 0,
                            TrainContext(precision=precision))
    assert abs(history[0]["loss"] - math.log(2)) < 1e-6
    assert history[0]["reward_margin"] == 0.0


@pytest.mark.parametrize("loss", [DPOVariant.SIGMOID, DPOVariant.IPO])
def test_length_groups_give_the_same_dpo_steps(tok, loss):
    pairs = tiny.pairs(12)
    params = DPOParams(loss=loss, optim=OptimParams(epochs=2.0, batch_size=6, lr=1e-2, warmup_steps=1))
    trained = []
    for groups in (1, 3):
        model = tiny.policy_lm(tok).double()
        variant = dpo.variant_for(params)
        ref_c, ref_r = dpo.reference_logprobs(model, tok, pairs, 64, average=variant.length_normalised)
        history = dpo.train_dpo(model, tok, pairs, ref_c.double(), ref_r.double(), params, 64, 0,
                                TrainContext(length_groups=groups))
        trained.append((model, [row["loss"].item() if torch.is_tensor(row["loss"]) else row["loss"]
                                for row in history]))
    (whole, whole_losses), (grouped, grouped_losses) = trained
    assert grouped_losses == pytest.approx(whole_losses, rel=1e-10)
    assert whole_losses[-1] < whole_losses[0]
    for a, b in zip(whole.parameters(), grouped.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
