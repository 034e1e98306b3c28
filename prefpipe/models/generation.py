"""Batched sampling of responses with the KV cache, reporting whether each one ended."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from prefpipe.models.formatting import encode_prompt


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    sample_index: int
    response: str
    finished: bool  # emitted EOS before max_new_tokens
    num_tokens: int


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


def sample_responses(model, tokenizer, prompts: list[str], num_samples: int, sampling, seed: int,
                     progress=None) -> list[Sample]:
    """`num_samples` responses per prompt; each batch reseeds from `seed`, so output is stable."""
    special = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    samples: list[Sample] = []
    for start in range(0, len(prompts), sampling.batch_size):
        chunk = prompts[start: start + sampling.batch_size]
        encoded = [encode_prompt(tokenizer, p) for p in chunk]
        drawn = sample_token_ids(model, tokenizer, encoded, num_samples, sampling,
                                 seed * 1_000_003 + start)
        for row, sample in enumerate(drawn):
            tokens = [t for t in sample.response_ids if t not in special]
            samples.append(Sample(start + row // num_samples, row % num_samples,
                                  tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                                  sample.finished, len(tokens)))
        if progress is not None:
            progress(len(chunk))
    return samples
