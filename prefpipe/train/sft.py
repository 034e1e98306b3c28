"""Supervised fine-tuning: next-token cross-entropy on response tokens only."""
from __future__ import annotations

import torch

from prefpipe.config.optim import OptimParams
from prefpipe.models.formatting import collate, encode_prompt, encode_response
from prefpipe.models.logprobs import token_logprobs
from prefpipe.train.common import autocast, length_groups, set_dropout, take
from prefpipe.train.loop import TrainContext, supervised_loop


def train_sft(model, tokenizer, examples: list[dict], optim: OptimParams, max_length: int, seed: int,
              context: TrainContext | None = None, dropout: float | None = None) -> list[dict]:
    """Train in place on [{'prompt', 'response'}]; returns the per-step history.

    The loss is the mean over every response token of the global batch: each process knows the
    global token count, so the mean does not depend on the number of processes. `dropout` (not
    None, params sft.dropout) sets the model's dropout for training. `context.length_groups` > 1
    runs each batch as that many length-sorted parts, each padded to its own longest row: the same
    examples and loss per step, less padding computed."""
    context = context or TrainContext()
    runtime = context.runtime
    set_dropout(model, dropout)
    prompts = [encode_prompt(tokenizer, e["prompt"]) for e in examples]
    responses = [encode_response(tokenizer, e["response"]) for e in examples]
    scored_tokens = [min(len(r), max_length - 1) for r in responses]
    row_lengths = [min(len(p) + len(r), max_length) for p, r in zip(prompts, responses)]

    def summed_nll(model, idx):
        batch = collate(tokenizer, take(prompts, idx), take(responses, idx), max_length)
        batch = batch.to(runtime.device)
        with autocast(context.precision, runtime.device.type):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        per_token = token_logprobs(logits, batch.input_ids)  # (B, T-1)
        return -(per_token * batch.response_mask[:, 1:].float()).sum()

    def loss_fn(model, idx, global_idx):
        nll = sum(summed_nll(model, part) for part in length_groups(idx, row_lengths,
                                                                      context.length_groups))
        loss = nll * runtime.global_scale(sum(scored_tokens[i] for i in global_idx))
        return loss, {"loss": loss.item()}  # averaged over processes: the global per-token mean

    return supervised_loop("sft", model, optim, len(examples), seed, context, loss_fn)


@torch.no_grad()
def response_nll(model, tokenizer, examples: list[dict], max_length: int, batch_size: int = 64) -> float:
    """Mean per-token negative log-likelihood of the responses (a held-out SFT metric)."""
    model.eval()
    total, count = 0.0, 0.0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start: start + batch_size]
        batch = collate(tokenizer, [encode_prompt(tokenizer, e["prompt"]) for e in chunk],
                        [encode_response(tokenizer, e["response"]) for e in chunk], max_length)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        mask = batch.response_mask[:, 1:].float()
        total += -(token_logprobs(logits, batch.input_ids) * mask).sum().item()
        count += mask.sum().item()
    return total / max(count, 1.0)
