"""Turn prompts and responses into token ids, the same way for every stage."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefpipe.errors import ConfigError
from prefpipe.vocab import PromptFormat

if TYPE_CHECKING:  # torch is imported where tensors are made: the prepare stage formats without it
    import torch

PLAIN_TEMPLATE = "User: {prompt}\nAssistant:"
# A chat template that renders the user's message alone: `raw` prompts, nothing added.
RAW_CHAT_TEMPLATE = "{{ messages[0]['content'] }}"


def apply_prompt_format(tokenizer, prompt_format: str = PromptFormat.AUTO):
    """Make `tokenizer` render prompts as `prompt_format` (params model.prompt_format); returns it.

    The format rides on the tokenizer's chat template, so every stage and function that encodes
    prompts with this tokenizer (`prompt_text`, `encode_prompt`, generation, scoring) agrees:
    - auto: unchanged (the tokenizer's chat template if it has one, else PLAIN_TEMPLATE);
    - chat_template: unchanged, and the tokenizer must have a chat template;
    - plain: the chat template is dropped, so PLAIN_TEMPLATE is used;
    - raw: the prompt text as given (RAW_CHAT_TEMPLATE renders the message alone).
    Saving the tokenizer afterwards saves the chosen template with it."""
    if prompt_format not in PromptFormat.values():
        raise ConfigError(f"model.prompt_format must be one of {list(PromptFormat.values())}, "
                          f"got {prompt_format!r}")
    if prompt_format == PromptFormat.CHAT_TEMPLATE and not getattr(tokenizer, "chat_template", None):
        raise ConfigError("model.prompt_format is 'chat_template' but the tokenizer has no chat "
                          "template; use auto, plain or raw")
    if prompt_format == PromptFormat.PLAIN:
        tokenizer.chat_template = None
    elif prompt_format == PromptFormat.RAW:
        tokenizer.chat_template = RAW_CHAT_TEMPLATE
    return tokenizer


def prompt_text(tokenizer, prompt: str) -> str:
    """The model-facing prompt: the tokenizer's chat template if it has one, else a plain one
    (`apply_prompt_format` picks between them, or renders the prompt as given)."""
    if getattr(tokenizer, "chat_template", None) == RAW_CHAT_TEMPLATE:
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
    return PLAIN_TEMPLATE.format(prompt=prompt)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    return tokenizer(prompt_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]


def encode_prompt_within(tokenizer, prompt: str, max_tokens: int) -> tuple[list[int], bool]:
    """(`encode_prompt` in at most `max_tokens` ids, whether the prompt was cut to fit).

    A longer prompt loses tokens from its start (its end, where the question usually is, stays)
    and is rendered again, so a chat template keeps its opening and its generation cue. Only when
    the template alone is longer than `max_tokens` are the rendered ids cut from the left."""
    if max_tokens < 1:
        raise ValueError(f"no room for a prompt: max_tokens is {max_tokens}")
    ids = encode_prompt(tokenizer, prompt)
    if len(ids) <= max_tokens:
        return ids, False
    content = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    while content:  # re-encoding the cut text can shift a token or two: cut again until it fits
        content = content[len(ids) - max_tokens:]
        ids = encode_prompt(tokenizer, tokenizer.decode(content).lstrip())
        if len(ids) <= max_tokens:
            return ids, True
    return ids[-max_tokens:], True


def encode_response(tokenizer, response: str, finished: bool = True) -> list[int]:
    """Response ids with a leading space; a finished response ends in EOS."""
    ids = tokenizer(" " + response.strip(), add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if finished else ids


@dataclass
class TokenBatch:
    """Right-padded prompt+response ids; `response_mask` marks the tokens that are scored."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    response_mask: torch.Tensor  # (B, T) 1 on response tokens (the labels), 0 on prompt and pad

    def to(self, device) -> TokenBatch:
        return TokenBatch(self.input_ids.to(device), self.attention_mask.to(device),
                          self.response_mask.to(device))


def collate(tokenizer, prompt_ids: list[list[int]], response_ids: list[list[int]],
            max_length: int) -> TokenBatch:
    """Concatenate prompt and response per row, truncating the prompt's left side to fit."""
    import torch

    rows, masks = [], []
    for p_ids, r_ids in zip(prompt_ids, response_ids):
        r_ids = r_ids[: max_length - 1]
        p_ids = p_ids[-(max_length - len(r_ids)):]
        rows.append(p_ids + r_ids)
        masks.append([0] * len(p_ids) + [1] * len(r_ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, mask) in enumerate(zip(rows, masks)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        response[i, : len(row)] = torch.tensor(mask)
    return TokenBatch(input_ids, attention, response)


def response_batches(tokenizer, prompts: list[str], responses: list[str], finished: list[bool],
                     max_length: int, batch_size: int = 64) -> Iterator[TokenBatch]:
    """TokenBatches of (prompt, response) rows, in order, `batch_size` rows at a time."""
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        yield collate(tokenizer, [encode_prompt(tokenizer, p) for p in prompts[sl]],
                      [encode_response(tokenizer, r, f) for r, f in zip(responses[sl], finished[sl])],
                      max_length)
