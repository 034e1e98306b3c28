"""Reward-model scoring (prefpipe.models.scoring): shared by reward training, PPO and evaluation."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
import tiny  # noqa: E402

from prefpipe.models.formatting import response_batches  # noqa: E402
from prefpipe.models.scoring import scalar_rewards, score_responses  # noqa: E402

PROMPTS = ["yes or no", "the sum is", "two four", "answer is", "ok"]
RESPONSES = ["yes", "four", "maybe two", "fine thanks", "no no no"]
FINISHED = [True, False, True, True, False]


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def test_scalar_rewards_read_one_score_per_row(tok):
    model = tiny.reward_model(tok).eval()
    batch = next(response_batches(tok, PROMPTS, RESPONSES, FINISHED, 64))
    with torch.no_grad():
        scores = scalar_rewards(model, batch)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert scores.shape == (len(PROMPTS),)
    assert torch.equal(scores, logits[:, 0])


def test_score_responses_is_in_order_and_independent_of_batch_size(tok):
    model = tiny.reward_model(tok)
    whole = score_responses(model, tok, PROMPTS, RESPONSES, FINISHED, 64)
    assert not model.training
    assert len(whole) == len(PROMPTS) and all(isinstance(s, float) for s in whole)
    one_by_one = [score_responses(model, tok, [p], [r], [f], 64)[0]
                  for p, r, f in zip(PROMPTS, RESPONSES, FINISHED)]
    assert whole == pytest.approx(one_by_one, abs=1e-5)
    assert score_responses(model, tok, PROMPTS, RESPONSES, FINISHED, 64, batch_size=2) == \
        pytest.approx(whole, abs=1e-5)
