"""Sampling: prompts longer than the model's context keep their end instead of crashing generate."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
import tiny  # noqa: E402

from prefpipe.config.schema import SamplingParams  # noqa: E402
from prefpipe.errors import ConfigError  # noqa: E402
from prefpipe.models.generation import (  # noqa: E402
    encode_prompts,
    sample_responses,
    truncated_prompts,
    warn_truncated,
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
