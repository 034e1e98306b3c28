"""Batched sampling of responses with the KV cache, reporting whether each one ended."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from prefpipe.errors import ConfigError
from prefpipe.models.formatting import encode_prompt_within

log = logging.getLogger("prefpipe")


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    sample_index: int
    response: str
    finished: bool  # emitted EOS before max_new_tokens
    num_tokens: int
    prompt_truncated: bool = False  # the prompt lost its start to fit (see `encode_prompts`)


@dataclass(frozen=True)
class TokenSample:
    prompt_ids: list[int]
    response_ids: list[int]  # ends in EOS when finished
    finished: bool


@torch.no_grad()
def sample_token_ids(model, tokenizer, prompt_ids: list[list[int]], num_samples: int, sampling,
                     seed: int) -> list[TokenSample]:
    """`num_samples` sampled responses per prompt as token ids, one KV-cached batch, seeded by `seed`.

    Rows come prompt by prompt: the samples of prompt i are rows i*num_samples .. +num_samples-1."""
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for i, ids in enumerate(prompt_ids):  # left padding keeps every prompt's end aligned
        input_ids[i, width - len(ids):] = torch.tensor(ids)
        attention[i, width - len(ids):] = 1
    torch.manual_seed(seed)
    out = model.generate(
        input_ids=input_ids, attention_mask=attention, do_sample=True,
        temperature=sampling.temperature, top_k=sampling.top_k or None, top_p=sampling.top_p,
        max_new_tokens=sampling.max_new_tokens, num_return_sequences=num_samples,
        eos_token_id=eos, pad_token_id=pad, use_cache=True,
    )
    samples = []
    for row, tokens in enumerate(out[:, width:].tolist()):
        finished = eos in tokens
        if finished:  # generate pads rows that ended early; an unfinished row has no padding
            tokens = tokens[: tokens.index(eos) + 1]
        samples.append(TokenSample(prompt_ids[row // num_samples], tokens, finished))
    return samples


def model_positions(model) -> int | None:
    """The positions `model`'s config declares (GPT-2's n_positions answers to this name too)."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def encode_prompts(tokenizer, prompts: list[str], max_length: int, max_new_tokens: int
                   ) -> tuple[list[list[int]], list[bool]]:
    """(prompt ids, whether each was cut): each prompt fits in `max_length` positions beside
    `max_new_tokens` sampled ones, longer prompts keeping their end (`encode_prompt_within`)."""
    room = max_length - max_new_tokens
    if room < 1:
        raise ConfigError(f"sampling.max_new_tokens {max_new_tokens} leaves no room for a prompt in "
                          f"{max_length} positions (model.n_positions); set it below {max_length}")
    fitted = [encode_prompt_within(tokenizer, p, room) for p in prompts]
    return [ids for ids, _ in fitted], [cut for _, cut in fitted]


def warn_truncated(count: int, total: int, max_length: int, max_new_tokens: int, knob: str) -> None:
    """One warning for the `count` of `total` prompts that `encode_prompts` cut; `knob` is the
    dotted params key of the sampler's max_new_tokens. Nothing when none was cut."""
    if count:
        log.warning("%d of %d prompts are longer than the %d tokens model.n_positions %d leaves "
                    "beside %s %d: they keep their last %d tokens; raise model.n_positions (up to "
                    "the positions the model reads) or lower %s to keep more", count, total,
                    max_length - max_new_tokens, max_length, knob, max_new_tokens,
                    max_length - max_new_tokens, knob)


def truncated_prompts(samples: list[Sample]) -> int:
    """How many distinct prompts of `samples` were cut to fit."""
    return len({s.prompt_index for s in samples if s.prompt_truncated})


def sample_responses(model, tokenizer, prompts: list[str], num_samples: int, sampling, seed: int,
                     progress=None, max_length: int | None = None) -> list[Sample]:
    """`num_samples` responses per prompt; each batch reseeds from `seed`, so output is stable.

    A prompt longer than `max_length` (default: the model's positions) less max_new_tokens keeps
    its end and is marked `prompt_truncated`; callers log `warn_truncated` once."""
    limits = [n for n in (max_length, model_positions(model)) if n]  # none known: nothing is cut
    special = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    samples: list[Sample] = []
    for start in range(0, len(prompts), sampling.batch_size):
        chunk = prompts[start: start + sampling.batch_size]
        encoded, cut = encode_prompts(tokenizer, chunk, min(limits, default=1 << 30),
                                      sampling.max_new_tokens)
        drawn = sample_token_ids(model, tokenizer, encoded, num_samples, sampling,
                                 seed * 1_000_003 + start)
        for row, sample in enumerate(drawn):
            tokens = [t for t in sample.response_ids if t not in special]
            samples.append(Sample(start + row // num_samples, row % num_samples,
                                  tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                                  sample.finished, len(tokens), cut[row // num_samples]))
        if progress is not None:
            progress(len(chunk))
    return samples
