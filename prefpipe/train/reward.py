"""Reward-model training with the Bradley-Terry loss on (chosen, rejected) pairs."""
from __future__ import annotations

import torch

from prefpipe.losses import bradley_terry_loss
from prefpipe.models.formatting import collate, encode_prompt, encode_response, response_batches
from prefpipe.progress import Progress
from prefpipe.train.common import (
    autocast,
    epoch_batches,
    make_optimizer,
    optimizer_step,
    take,
    total_batches,
)


def encode_pairs(tokenizer, pairs: list[dict]) -> tuple[list, list, list]:
    """Token ids of prompt, chosen and rejected for [{'prompt', 'chosen', 'rejected', ...}]."""
    prompts = [encode_prompt(tokenizer, p["prompt"]) for p in pairs]
    chosen = [encode_response(tokenizer, p["chosen"], p.get("chosen_finished", True)) for p in pairs]
    rejected = [encode_response(tokenizer, p["rejected"], p.get("rejected_finished", True))
                for p in pairs]
    return prompts, chosen, rejected


def pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length):
    """One batch holding the chosen rows then the rejected rows (one forward pass for both)."""
    p = take(prompts, idx)
    return collate(tokenizer, p + p, take(chosen, idx) + take(rejected, idx), max_length)


def scalar_rewards(model, batch) -> torch.Tensor:
    """The reward head's score at each row's last real token. -> (B,)"""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.squeeze(-1)


def train_reward_model(model, tokenizer, pairs: list[dict], optim, max_length: int, seed: int,
                       precision: str = "fp32") -> list[dict]:
    """Train in place; returns the per-step history (loss, accuracy on the batch, margin)."""
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    steps = total_batches(len(pairs), optim.batch_size, optim.epochs)
    optimizer, scheduler = make_optimizer(model, optim, steps)
    history = []
    model.train()
    with Progress(steps, "train_reward", "step") as progress:
        for step, idx in enumerate(epoch_batches(len(pairs), optim.batch_size, optim.epochs, seed)):
            batch = pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length)
            with autocast(precision):
                rewards = scalar_rewards(model, batch).float()
            r_chosen, r_rejected = rewards[: len(idx)], rewards[len(idx):]
            loss = bradley_terry_loss(r_chosen, r_rejected).mean()
            optimizer_step(model, optimizer, scheduler, loss, optim.max_grad_norm)
            row = {"step": step, "loss": loss.item(),
                   "accuracy": (r_chosen > r_rejected).float().mean().item(),
                   "margin": (r_chosen - r_rejected).mean().item()}
            history.append(row)
            progress.update(1, loss=row["loss"], acc=row["accuracy"])
    return history


@torch.no_grad()
def score_responses(model, tokenizer, prompts: list[str], responses: list[str],
                    finished: list[bool], max_length: int, batch_size: int = 64) -> list[float]:
    """Reward-model scores of (prompt, response) rows."""
    model.eval()
    return [score for batch in response_batches(tokenizer, prompts, responses, finished, max_length,
                                                batch_size)
            for score in scalar_rewards(model, batch).float().tolist()]
