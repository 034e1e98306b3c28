"""prefpipe.train.dpo's glue: the config picks the variant, and the variant decides what reference
log-probs training needs (no model is loaded for a reference-free one)."""
from __future__ import annotations

import pytest
import torch

from prefpipe.config.schema import DPOParams
from prefpipe.train import dpo
from prefpipe.vocab import DPOVariant


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

    def fake_reference_logprobs(model, tokenizer, pairs, max_length, average=False):
        calls.append((model, max_length, average))
        return torch.ones(len(pairs)), -torch.ones(len(pairs))

    monkeypatch.setattr(dpo, "reference_logprobs", fake_reference_logprobs)
    ref_c, ref_r = dpo.reference_for(dpo.variant_for(DPOParams(loss=loss)), lambda: "the model", None,
                                     [{}, {}], 16)
    assert calls == [("the model", 16, average)]
    assert torch.equal(ref_c, torch.ones(2)) and torch.equal(ref_r, -torch.ones(2))
