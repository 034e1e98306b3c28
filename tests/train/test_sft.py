"""train_sft: the loss is the per-token mean of the response tokens, and runtime.length_groups only
changes how much padding is computed, not the step."""
from __future__ import annotations

import pytest
import torch

from prefpipe.config.schema import OptimParams
from prefpipe.models.formatting import collate, encode_prompt, encode_response
from prefpipe.train.loop import TrainContext
from prefpipe.train.sft import train_sft
from tests.train import tiny

STEPS = OptimParams(epochs=2.0, batch_size=6, lr=1e-2, warmup_steps=1, shuffle=False)


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.fixture(scope="module")
def examples():
    return [{"prompt": p["prompt"], "response": p["chosen"] + " " + p["rejected"] * (i % 3)}
            for i, p in enumerate(tiny.pairs(12))]


def _trained(tok, examples, groups: int):
    model = tiny.policy_lm(tok).double()
    history = train_sft(model, tok, examples, STEPS, 64, 0, TrainContext(length_groups=groups))
    return model, [row["loss"] for row in history]


def test_first_loss_is_the_mean_response_token_nll(tok, examples):
    model = tiny.policy_lm(tok).double()
    batch = collate(tok, [encode_prompt(tok, e["prompt"]) for e in examples[:6]],
                    [encode_response(tok, e["response"]) for e in examples[:6]], 64)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    nll, count = 0.0, 0
    for row in range(6):
        for t in range(1, batch.input_ids.shape[1]):
            if batch.response_mask[row, t]:
                nll -= torch.log_softmax(logits[row, t - 1], -1)[batch.input_ids[row, t]].item()
                count += 1
    _, losses = _trained(tok, examples, 1)
    assert losses[0] == pytest.approx(nll / count, rel=1e-12)


@pytest.mark.parametrize("groups", [2, 4, 6])
def test_length_groups_give_the_same_steps(tok, examples, groups):
    whole, whole_losses = _trained(tok, examples, 1)
    grouped, grouped_losses = _trained(tok, examples, groups)
    assert len(whole_losses) == 4
    assert grouped_losses == pytest.approx(whole_losses, rel=1e-10)
    for a, b in zip(whole.parameters(), grouped.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    untrained = tiny.policy_lm(tok).double()
    assert any(not torch.equal(a, b) for a, b in zip(whole.parameters(), untrained.parameters()))
