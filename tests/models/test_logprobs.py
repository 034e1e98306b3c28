"""Sequence log-probs of responses on a tiny random GPT-2, against a manual float64 sum."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from transformers import GPT2Config, GPT2LMHeadModel

from prefpipe.models.formatting import TokenBatch, collate, encode_prompt, encode_response
from prefpipe.models.logprobs import sequence_logprobs, token_logprobs
from prefpipe.world.tokenizer import train_tokenizer

PROMPTS = ["What is 3 plus 4?", "How do I make tea?", "Explain why ice floats."]
RESPONSES = ["The answer is 7.", "Pour hot water over the tea.", "Ice is less dense than water."]
FINISHED = [True, False, True]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [f"User: {p}\nAssistant: {r}" for p, r in zip(PROMPTS, RESPONSES, strict=True)] * 3
    return train_tokenizer(texts, vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config).eval()


def encoded(tokenizer):
    prompt_ids = [encode_prompt(tokenizer, p) for p in PROMPTS]
    response_ids = [encode_response(tokenizer, r, f)
                    for r, f in zip(RESPONSES, FINISHED, strict=True)]
    return prompt_ids, response_ids


@torch.no_grad()
def manual_logprob(model, prompt_ids: list[int], response_ids: list[int]) -> float:
    """Σ_t log softmax(logits[t - 1])[x_t] over response positions, in float64, one row alone."""
    ids = torch.tensor([prompt_ids + response_ids])
    logits = model(input_ids=ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    start = len(prompt_ids)
    return sum(logp[t - 1, ids[0, t]].item() for t in range(start, start + len(response_ids)))


@torch.no_grad()
def test_sequence_logprobs_equal_manual_float64_sum(model, tokenizer):
    prompt_ids, response_ids = encoded(tokenizer)
    batch = collate(tokenizer, prompt_ids, response_ids, max_length=64)
    assert batch.attention_mask.sum(1).tolist() != [batch.input_ids.shape[1]] * 3  # padded rows
    got = sequence_logprobs(model, batch).double()
    expected = torch.tensor([manual_logprob(model, p, r)
                             for p, r in zip(prompt_ids, response_ids, strict=True)],
                            dtype=torch.float64)
    assert_close(got, expected, atol=1e-4, rtol=1e-5)
    assert (got < 0).all()


@torch.no_grad()
def test_prompt_tokens_are_not_scored(model, tokenizer):
    prompt_ids, response_ids = encoded(tokenizer)
    batch = collate(tokenizer, prompt_ids[:1], response_ids[:1], max_length=64)
    full = token_logprobs(model(input_ids=batch.input_ids).logits, batch.input_ids)[0]
    n_prompt = len(prompt_ids[0])
    assert_close(sequence_logprobs(model, batch)[0], full[n_prompt - 1:].sum())
    assert not torch.allclose(full.sum(), full[n_prompt - 1:].sum())


@torch.no_grad()
def test_extra_right_padding_changes_nothing(model, tokenizer):
    prompt_ids, response_ids = encoded(tokenizer)
    batch = collate(tokenizer, prompt_ids, response_ids, max_length=64)
    extra = 7
    pad = torch.full((3, extra), tokenizer.pad_token_id, dtype=torch.long)
    zeros = torch.zeros((3, extra), dtype=torch.long)
    padded = TokenBatch(torch.cat([batch.input_ids, pad], 1),
                        torch.cat([batch.attention_mask, zeros], 1),
                        torch.cat([batch.response_mask, zeros], 1))
    assert_close(sequence_logprobs(model, padded), sequence_logprobs(model, batch),
                 atol=1e-5, rtol=1e-6)
    # and a row's value does not depend on which other rows share its batch
    alone = [sequence_logprobs(model, collate(tokenizer, [p], [r], 64))[0]
             for p, r in zip(prompt_ids, response_ids, strict=True)]
    assert_close(sequence_logprobs(model, batch), torch.stack(alone), atol=1e-5, rtol=1e-6)
