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


@torch.no_grad()
def sample_responses(model, tokenizer, prompts: list[str], num_samples: int, sampling, seed: int,
                     progress=None) -> list[Sample]:
    """`num_samples` responses per prompt; each batch reseeds from `seed`, so output is stable."""
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    samples: list[Sample] = []
    for start in range(0, len(prompts), sampling.batch_size):
        chunk = prompts[start: start + sampling.batch_size]
        encoded = [encode_prompt(tokenizer, p) for p in chunk]
        width = max(len(e) for e in encoded)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, ids in enumerate(encoded):  # left padding keeps every prompt's end aligned
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            attention[i, width - len(ids):] = 1
        torch.manual_seed(seed * 1_000_003 + start)
        out = model.generate(
            input_ids=input_ids, attention_mask=attention, do_sample=True,
            temperature=sampling.temperature, top_k=sampling.top_k or None, top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens, num_return_sequences=num_samples,
            eos_token_id=eos, pad_token_id=pad, use_cache=True,
        )
        generated = out[:, width:]  # (len(chunk) * num_samples, <= max_new_tokens)
        for row, tokens in enumerate(generated.tolist()):
            finished = eos in tokens
            if finished:
                tokens = tokens[: tokens.index(eos)]
            tokens = [t for t in tokens if t != pad]
            samples.append(Sample(start + row // num_samples, row % num_samples,
                                  tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                                  finished, len(tokens)))
        if progress is not None:
            progress(len(chunk))
    return samples
