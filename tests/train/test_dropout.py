"""Dropout per trainer from config: sft.dropout, reward.dropout, policy.dpo.dropout."""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from prefpipe.config.schema import DPOParams, OptimParams, RewardParams
from prefpipe.train.dpo import reference_logprobs, train_dpo
from prefpipe.train.reward import train_reward_model
from prefpipe.train.sft import train_sft
from tests.train import tiny

ONE_STEP = OptimParams(epochs=1.0, batch_size=64, lr=1e-3, warmup_steps=1)


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def _config(tok, **extra) -> GPT2Config:  # GPT-2's own dropout: 0.1 everywhere
    return GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                      bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, **extra)


def _dropouts(model) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


@pytest.mark.parametrize("dropout, expected", [(None, {0.1}), (0.0, {0.0}), (0.3, {0.3})])
def test_reward_dropout_knob(tok, dropout, expected):
    model = GPT2ForSequenceClassification(_config(tok, num_labels=1))
    train_reward_model(model, tok, tiny.pairs(8), RewardParams(optim=ONE_STEP, dropout=dropout), 64, 0)
    assert _dropouts(model) == expected
    assert model.config.resid_pdrop == 0.1  # the saved config stays the model's own


@pytest.mark.parametrize("dropout, expected", [(None, {0.1}), (0.2, {0.2})])
def test_sft_dropout_knob(tok, dropout, expected):
    model = GPT2LMHeadModel(_config(tok))
    examples = [{"prompt": p["prompt"], "response": p["chosen"]} for p in tiny.pairs(8)]
    train_sft(model, tok, examples, ONE_STEP, 64, 0, dropout=dropout)
    assert _dropouts(model) == expected


@pytest.mark.parametrize("dropout, expected", [(0.0, {0.0}), (None, {0.1})])
def test_dpo_dropout_knob_defaults_to_off(tok, dropout, expected):
    assert DPOParams().dropout == 0.0  # today's behaviour: DPO trains without dropout
    model = GPT2LMHeadModel(_config(tok))
    pairs = tiny.pairs(8)
    ref_c, ref_r = reference_logprobs(model, tok, pairs, 64)
    train_dpo(model, tok, pairs, ref_c, ref_r, DPOParams(optim=ONE_STEP, dropout=dropout), 64, 0)
    assert _dropouts(model) == expected
