"""Supervised fine-tuning: next-token cross-entropy on response tokens only."""
from __future__ import annotations

import torch

from prefpipe.models.formatting import collate, encode_prompt, encode_response
from prefpipe.models.logprobs import token_logprobs
from prefpipe.progress import Progress
from prefpipe.train.common import (
    autocast,
    epoch_batches,
    make_optimizer,
    optimizer_step,
    take,
    total_batches,
)


def train_sft(model, tokenizer, examples: list[dict], optim, max_length: int, seed: int,
              precision: str = "fp32") -> list[dict]:
    """Train in place on [{'prompt', 'response'}]; returns the per-step history."""
    prompts = [encode_prompt(tokenizer, e["prompt"]) for e in examples]
    responses = [encode_response(tokenizer, e["response"]) for e in examples]
    steps = total_batches(len(examples), optim.batch_size, optim.epochs)
    optimizer, scheduler = make_optimizer(model, optim, steps)
    history = []
    model.train()
    with Progress(steps, "sft", "step") as progress:
        for step, idx in enumerate(epoch_batches(len(examples), optim.batch_size, optim.epochs, seed)):
            batch = collate(tokenizer, take(prompts, idx), take(responses, idx), max_length)
            with autocast(precision):
                logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            per_token = token_logprobs(logits, batch.input_ids)  # (B, T-1)
            mask = batch.response_mask[:, 1:].float()
            loss = -(per_token * mask).sum() / mask.sum()
            grad_norm = optimizer_step(model, optimizer, scheduler, loss, optim.max_grad_norm)
            row = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                   "grad_norm": grad_norm}
            history.append(row)
            progress.update(1, loss=row["loss"])
    return history


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
