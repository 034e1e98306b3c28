"""train_reward_model: runtime.length_groups changes the padding computed, not the step."""
from __future__ import annotations

import pytest
import torch

from prefpipe.config.schema import OptimParams, RewardParams
from prefpipe.train.loop import TrainContext
from prefpipe.train.reward import train_reward_model
from tests.train import tiny


def test_length_groups_give_the_same_reward_model_steps():
    tok = tiny.tokenizer()
    params = RewardParams(optim=OptimParams(epochs=2.0, batch_size=6, lr=1e-2, warmup_steps=1),
                          margin_scale=0.5)
    trained = []
    for groups in (1, 4):
        model = tiny.reward_model(tok).double()
        history = train_reward_model(model, tok, tiny.pairs(12), params, 64, 0,
                                     TrainContext(length_groups=groups))
        trained.append((model, [float(row["loss"]) for row in history]))
    (whole, whole_losses), (grouped, grouped_losses) = trained
    assert len(whole_losses) == 4 and whole_losses[-1] < whole_losses[0]
    assert grouped_losses == pytest.approx(whole_losses, rel=1e-10)
    for a, b in zip(whole.parameters(), grouped.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
