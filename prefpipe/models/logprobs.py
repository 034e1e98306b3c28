"""Per-token and per-sequence log-probabilities of responses under a causal LM."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from prefpipe.models.formatting import TokenBatch


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(x_t | x_<t) for t >= 1. logits (B, T, V), ids (B, T) -> (B, T-1), in fp32 at least
    (bf16 logits are upcast, float64 ones kept)."""
    logprobs = F.log_softmax(logits[:, :-1].to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
    return logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(model, batch: TokenBatch, average: bool = False) -> torch.Tensor:
    """Sum (or with `average`, mean) of response-token log-probs per row, prompt and padding
    masked out. -> (B,)"""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    per_token = token_logprobs(logits, batch.input_ids)  # (B, T-1)
    mask = batch.response_mask[:, 1:].to(per_token.dtype)  # token t is scored where it's a response token
    total = (per_token * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total
