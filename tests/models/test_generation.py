"""Sampling: prompts longer than the model's context keep their end instead of crashing generate;
the sampling loop (KV cache, rows ending at EOS, seeds, HF's warpers, length buckets)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
import tiny  # noqa: E402

from prefpipe.config.schema import SamplingParams  # noqa: E402
from prefpipe.errors import ConfigError  # noqa: E402
from prefpipe.models import generation  # noqa: E402
from prefpipe.models.generation import (  # noqa: E402
    draw_tokens,
    encode_prompts,
    left_padded,
    length_buckets,
    sample_batch,
    sample_responses,
    sample_token_ids,
    truncated_prompts,
    warn_truncated,
    warp_logits,
)

LONG = " ".join(tiny.WORDS[i % len(tiny.WORDS)] for i in range(199)) + " sum"  # 200 words


@pytest.fixture(scope="module")
def tok():
    tokenizer = tiny.tokenizer()
    tokenizer.padding_side = "left"
    return tokenizer


def test_a_prompt_longer_than_the_context_is_sampled_from_its_end(tok, caplog):
    model = tiny.policy_lm(tok)  # 64 positions; the long prompt alone is ~200 tokens
    sampling = SamplingParams(max_new_tokens=48, batch_size=4)
    samples = sample_responses(model, tok, [LONG, "yes no", LONG], 2, sampling, seed=0,
                               max_length=64)
    assert [(s.prompt_index, s.sample_index) for s in samples] == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [s.prompt_truncated for s in samples] == [True, True, False, False, True, True]
    assert all(s.num_tokens <= 48 for s in samples)
    count = truncated_prompts(samples)
    assert count == 2
    with caplog.at_level(logging.WARNING, logger="prefpipe"):
        warn_truncated(count, 3, 64, 48, "generate.sampling.max_new_tokens")
        warn_truncated(0, 3, 64, 48, "generate.sampling.max_new_tokens")  # none cut: silent
    assert len(caplog.records) == 1
    assert ("2 of 3 prompts are longer than the 16 tokens model.n_positions 64 leaves beside "
            "generate.sampling.max_new_tokens 48") in caplog.text
    assert "lower generate.sampling.max_new_tokens" in caplog.text


def test_the_model_positions_bound_the_prompt_when_no_max_length_is_given(tok):
    samples = sample_responses(tiny.policy_lm(tok), tok, [LONG], 1, SamplingParams(max_new_tokens=8),
                               seed=0)
    assert samples[0].prompt_truncated


def test_fitted_prompts_keep_their_end_and_the_answer_cue(tok):
    (long_ids, short_ids), cut = encode_prompts(tok, [LONG, "yes no"], 64, 24)
    assert cut == [True, False]
    assert 30 <= len(long_ids) <= 40  # 64 positions less 24 new tokens; a template re-encode may cost one
    text = tok.decode(long_ids)
    assert text.startswith("User: ") and text.endswith("\nAssistant:")
    kept = text.removeprefix("User: ").removesuffix("\nAssistant:")
    assert LONG.endswith(kept) and len(kept.split()) > 5  # the last words, whole
    assert tok.decode(short_ids) == "User: yes no\nAssistant:"


def test_no_room_for_a_prompt_names_the_knobs(tok):
    with pytest.raises(ConfigError, match="max_new_tokens 64 leaves no room for a prompt in 64"):
        encode_prompts(tok, ["yes"], 64, 64)


# ---- the sampling loop ------------------------------------------------------------------------------

def eos_leaning(tok, bias: float = 2.5):
    """A tiny GPT-2 whose EOS logit is raised by `bias` (a forward hook on its LM head), so that
    rows end after a few tokens, at different steps."""
    model = tiny.policy_lm(tok)
    eos = torch.tensor([tok.eos_token_id])
    model.lm_head.register_forward_hook(
        lambda _module, _inputs, out: out.index_add(-1, eos, torch.full((*out.shape[:-1], 1), bias)))
    return model


def prompt_ids(tok, n: int = 6) -> list[list[int]]:
    return [tok(p)["input_ids"] for p in tiny.prompts(n)]


@pytest.mark.parametrize(("sampling", "bias"), [
    (SamplingParams(max_new_tokens=20), 2.5),
    (SamplingParams(max_new_tokens=20, top_k=5, top_p=0.9, temperature=0.8), 0.5)])
def test_the_kv_cache_changes_no_token(tok, sampling, bias):
    """With and without the cache (every step reads the whole rows) a seed draws the same tokens,
    rows leaving the batch as they end included."""
    model, prompts = eos_leaning(tok, bias), prompt_ids(tok)
    cached = sample_batch(model, tok, prompts, 3, sampling, seed=7)
    uncached = sample_batch(model, tok, prompts, 3, sampling, seed=7, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
    assert torch.equal(cached.lengths, uncached.lengths)
    assert torch.equal(cached.finished, uncached.finished)
    assert cached.finished.sum() >= 4 and len(set(cached.lengths.tolist())) >= 4


def test_rows_leaving_the_batch_as_they_end_change_no_token(tok, monkeypatch):
    model, prompts, sampling = eos_leaning(tok), prompt_ids(tok), SamplingParams(max_new_tokens=20)
    dropping = sample_batch(model, tok, prompts, 3, sampling, seed=5, with_logprobs=True)
    monkeypatch.setattr(generation, "ENDED_SHARE_TO_DROP", 2.0)  # never: every row to the end
    keeping = sample_batch(model, tok, prompts, 3, sampling, seed=5, with_logprobs=True)
    assert torch.equal(dropping.tokens, keeping.tokens)
    torch.testing.assert_close(dropping.logprobs, keeping.logprobs, atol=1e-5, rtol=0)
    assert len(set(dropping.lengths.tolist())) >= 4


def test_a_seed_gives_the_same_tokens_and_leaves_the_global_rng_alone(tok):
    model, prompts, sampling = eos_leaning(tok), prompt_ids(tok), SamplingParams(max_new_tokens=12)
    torch.manual_seed(123)
    before = torch.rand(3)
    first = sample_batch(model, tok, prompts, 2, sampling, seed=1)
    torch.manual_seed(123)
    again = sample_batch(model, tok, prompts, 2, sampling, seed=1)
    assert torch.equal(torch.rand(3), before)  # the global RNG did not move
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.equal(first.tokens, sample_batch(model, tok, prompts, 2, sampling, seed=2).tokens)


def test_rows_end_with_eos_and_are_padded_after(tok):
    drawn = sample_batch(eos_leaning(tok), tok, prompt_ids(tok), 3, SamplingParams(max_new_tokens=10),
                         seed=3)
    eos, pad = tok.eos_token_id, tok.pad_token_id
    for row, length, finished in zip(drawn.tokens.tolist(), drawn.lengths.tolist(),
                                     drawn.finished.tolist()):
        assert (eos in row[:length]) == finished
        assert eos not in row[:length - 1]  # the first EOS ends the row
        assert row[length:] == [pad] * (len(row) - length)
        assert finished or length == 10
    assert drawn.tokens.shape[1] == max(drawn.lengths.tolist())
    samples = sample_token_ids(eos_leaning(tok), tok, prompt_ids(tok), 3,
                               SamplingParams(max_new_tokens=10), seed=3)
    assert [s.response_ids for s in samples] == [row[:k] for row, k in zip(
        drawn.tokens.tolist(), drawn.lengths.tolist())]


def test_top_k_one_is_hf_greedy_decoding_on_left_padded_prompts(tok):
    """Positions and padding as HF's `generate` gives them: top-k 1 is its greedy search."""
    model, prompts = tiny.policy_lm(tok, seed=5), prompt_ids(tok)
    drawn = sample_batch(model, tok, prompts, 1, SamplingParams(max_new_tokens=8, top_k=1), seed=0)
    ids, attention = left_padded(prompts, tok.pad_token_id)
    greedy = model.generate(input_ids=ids, attention_mask=attention, do_sample=False,
                            max_new_tokens=8, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id)[:, ids.shape[1]:]
    assert len({len(p) for p in prompts}) > 1  # padding is exercised
    assert torch.equal(drawn.tokens, greedy[:, :drawn.tokens.shape[1]])


def test_warping_matches_hf_warpers():
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    torch.manual_seed(0)
    logits = torch.randn(5, 40) * 3
    sampling = SamplingParams(temperature=0.7, top_k=12, top_p=0.8)
    expected = logits
    for warper in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(12), TopPLogitsWarper(0.8)):
        expected = warper(None, expected)
    assert torch.equal(warp_logits(logits, sampling), expected)
    assert torch.equal(warp_logits(logits, SamplingParams()), logits)


def test_draws_follow_the_probabilities_and_never_pick_a_filtered_token():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20_000, 1)
    draws = draw_tokens(probs, torch.rand((len(probs), 1), generator=torch.Generator().manual_seed(0)))
    counts = torch.bincount(draws, minlength=6) / len(draws)
    assert counts[[0, 2, 5]].sum() == 0
    torch.testing.assert_close(counts, probs[0], atol=0.015, rtol=0)


def test_prompts_are_batched_by_length_and_come_back_in_order(tok):
    """Each generation batch holds prompts of like length (here: equal, so no padding at all)."""
    short, long = "yes no", "yes no maybe two four sum is the answer"
    prompts = [long, short, long, short, short, long]
    model, widths = eos_leaning(tok), []

    def record_prefill(_module, args, kwargs):
        if kwargs["input_ids"].shape[1] > 1:
            widths.append(bool(kwargs["attention_mask"].all()))

    model.register_forward_pre_hook(record_prefill, with_kwargs=True)
    sampling, done = SamplingParams(max_new_tokens=6, batch_size=3), []
    samples = sample_responses(model, tok, prompts, 2, sampling, seed=0, progress=done.append)
    assert widths == [True, True] and done == [3, 3]
    assert [(s.prompt_index, s.sample_index) for s in samples] == [(i, j) for i in range(6)
                                                                   for j in range(2)]
    assert length_buckets([[1] * 5, [1], [1] * 3, [1]], 2) == [[1, 3], [2, 0]]
