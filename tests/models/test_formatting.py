"""Prompt / response encoding and collation into scored token batches."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from prefpipe.models.formatting import (
    PLAIN_TEMPLATE,
    collate,
    encode_prompt,
    encode_response,
    prompt_text,
)
from prefpipe.world.tokenizer import EOS, PAD, train_tokenizer

PAD_ID = 0
FAKE = SimpleNamespace(pad_token_id=PAD_ID)


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["User: What is 3 plus 4?\nAssistant: The answer is 7.",
             "User: How do I make tea?\nAssistant: Pour hot water over the tea."] * 5
    return train_tokenizer(texts, vocab_size=300)


def test_collate_masks_exactly_the_response_tokens():
    batch = collate(FAKE, [[11, 12, 13], [21]], [[14, 15], [22, 23, 24, 25]], max_length=16)
    assert batch.input_ids.tolist() == [[11, 12, 13, 14, 15], [21, 22, 23, 24, 25]]
    assert batch.response_mask.tolist() == [[0, 0, 0, 1, 1], [0, 1, 1, 1, 1]]
    assert batch.attention_mask.tolist() == [[1] * 5, [1] * 5]


def test_collate_right_pads_with_pad_id():
    batch = collate(FAKE, [[11, 12], [21, 22, 23, 24]], [[13], [25, 26]], max_length=16)
    assert batch.input_ids.tolist() == [[11, 12, 13, PAD_ID, PAD_ID, PAD_ID],
                                        [21, 22, 23, 24, 25, 26]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert batch.response_mask.tolist() == [[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]]
    assert batch.input_ids.dtype == batch.response_mask.dtype == torch.long


def test_collate_truncates_the_prompt_from_the_left():
    prompt = list(range(100, 110))
    batch = collate(FAKE, [prompt], [[1, 2, 3]], max_length=8)
    assert batch.input_ids.tolist() == [[105, 106, 107, 108, 109, 1, 2, 3]]
    assert batch.response_mask.tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]


def test_collate_caps_long_responses_keeping_one_prompt_token():
    batch = collate(FAKE, [[100, 101, 102]], [list(range(1, 20))], max_length=6)
    assert batch.input_ids.tolist() == [[102, 1, 2, 3, 4, 5]]
    assert batch.response_mask.tolist() == [[0, 1, 1, 1, 1, 1]]


def test_collate_rows_never_exceed_max_length():
    batch = collate(FAKE, [list(range(50)), [1]], [list(range(60)), [2]], max_length=32)
    assert batch.input_ids.shape == (2, 32)
    assert batch.response_mask[0].sum() == 31 and batch.response_mask[1].sum() == 1


def test_plain_prompt_template_without_chat_template(tokenizer):
    assert prompt_text(tokenizer, "Hi?") == PLAIN_TEMPLATE.format(prompt="Hi?")
    assert prompt_text(None, "Hi?") == "User: Hi?\nAssistant:"
    assert tokenizer.decode(encode_prompt(tokenizer, "Hi?")) == "User: Hi?\nAssistant:"


def test_encode_response_adds_leading_space_and_eos_when_finished(tokenizer):
    finished = encode_response(tokenizer, "  The answer is 7.  ", finished=True)
    unfinished = encode_response(tokenizer, "The answer is 7.", finished=False)
    assert finished[-1] == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids(EOS)
    assert finished[:-1] == unfinished
    assert tokenizer.eos_token_id not in unfinished
    assert tokenizer.decode(unfinished) == " The answer is 7."


def test_trained_tokenizer_special_tokens(tokenizer):
    assert tokenizer.pad_token == PAD and tokenizer.eos_token == EOS
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    # byte-level: text never seen in training still round-trips
    assert tokenizer.decode(tokenizer("zebra ünïcode 42")["input_ids"]) == "zebra ünïcode 42"
