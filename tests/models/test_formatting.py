"""Prompt / response encoding and collation into scored token batches."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from prefpipe.errors import ConfigError
from prefpipe.models.formatting import (
    PLAIN_TEMPLATE,
    apply_prompt_format,
    collate,
    encode_prompt,
    encode_prompt_within,
    encode_response,
    prompt_text,
)
from prefpipe.models.io import load_tokenizer
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


CHAT = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"


def _fresh(tokenizer, chat_template: str | None = None):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = chat_template
    return tok


@pytest.mark.parametrize("template", [None, CHAT])
def test_raw_format_adds_nothing(tokenizer, template):
    tok = apply_prompt_format(_fresh(tokenizer, template), "raw")
    prompt = "What is 3 plus 4?"
    assert prompt_text(tok, prompt) == prompt
    assert encode_prompt(tok, prompt) == tokenizer(prompt, add_special_tokens=False)["input_ids"]


def test_auto_format_is_todays_choice(tokenizer):
    assert prompt_text(apply_prompt_format(_fresh(tokenizer), "auto"), "Hi?") == "User: Hi?\nAssistant:"
    assert prompt_text(apply_prompt_format(_fresh(tokenizer, CHAT), "auto"), "Hi?") == \
        "<|user|>Hi?<|assistant|>"


def test_plain_format_ignores_a_chat_template(tokenizer):
    tok = apply_prompt_format(_fresh(tokenizer, CHAT), "plain")
    assert prompt_text(tok, "Hi?") == PLAIN_TEMPLATE.format(prompt="Hi?")


def test_chat_template_format_uses_the_template(tokenizer):
    tok = apply_prompt_format(_fresh(tokenizer, CHAT), "chat_template")
    assert prompt_text(tok, "Hi?") == "<|user|>Hi?<|assistant|>"


def test_chat_template_format_without_a_template_names_the_key(tokenizer):
    with pytest.raises(ConfigError, match="model.prompt_format"):
        apply_prompt_format(_fresh(tokenizer), "chat_template")


def test_unknown_format_names_the_key(tokenizer):
    with pytest.raises(ConfigError, match="model.prompt_format must be one of"):
        apply_prompt_format(_fresh(tokenizer), "markdown")


def test_load_tokenizer_applies_the_format_and_saving_keeps_it(tokenizer, tmp_path):
    _fresh(tokenizer, CHAT).save_pretrained(tmp_path / "model")
    assert prompt_text(load_tokenizer(tmp_path / "model"), "Hi?") == "<|user|>Hi?<|assistant|>"
    raw = load_tokenizer(tmp_path / "model", "raw")
    assert prompt_text(raw, "Hi?") == "Hi?"
    raw.save_pretrained(tmp_path / "raw")
    assert prompt_text(load_tokenizer(tmp_path / "raw"), "Hi?") == "Hi?"


def test_a_long_prompt_keeps_its_end_inside_the_chat_template(tokenizer):
    tok = _fresh(tokenizer, CHAT)
    question = " ".join(["Pour hot water over the tea."] * 20) + " What is 3 plus 4?"
    ids, cut = encode_prompt_within(tok, question, 24)
    text = tok.decode(ids)
    assert cut and len(ids) <= 24
    assert text.startswith("<|user|>") and text.endswith("What is 3 plus 4?<|assistant|>")
    assert encode_prompt_within(tok, "Hi?", 24) == (encode_prompt(tok, "Hi?"), False)


def test_a_template_longer_than_the_room_is_cut_from_the_left(tokenizer):
    tok = _fresh(tokenizer, CHAT)
    ids, cut = encode_prompt_within(tok, "What is 3 plus 4?", 3)
    assert cut and len(ids) == 3 and tok.decode(ids) == "tant|>"  # the end of the cue stays last
