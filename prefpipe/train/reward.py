"""Reward-model training with the Bradley-Terry loss on (chosen, rejected) pairs."""
from __future__ import annotations

import torch

from prefpipe.losses import bradley_terry_loss
from prefpipe.models.formatting import collate, encode_prompt, encode_response
from prefpipe.models.scoring import scalar_rewards
from prefpipe.train.common import autocast, set_dropout, take
from prefpipe.train.loop import TrainContext, supervised_loop


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


def train_reward_model(model, tokenizer, pairs: list[dict], reward_params, max_length: int, seed: int,
                       context: TrainContext | None = None) -> list[dict]:
    """Train in place with the Bradley-Terry loss; returns the per-step history.

    With reward.margin_scale m > 0 a pair of label confidence c asks for a reward gap of m·c; with
    reward.center_coef > 0 rewards are pulled toward zero; reward.dropout (not None) sets the
    model's dropout for training."""
    context = context or TrainContext()
    runtime = context.runtime
    set_dropout(model, reward_params.dropout)
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    margins = torch.tensor([reward_params.margin_scale * float(p.get("confidence", 1.0)) for p in pairs])

    def loss_fn(model, idx, global_idx):
        batch = pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length).to(runtime.device)
        with autocast(context.precision, runtime.device.type):
            rewards = scalar_rewards(model, batch).float()
        r_chosen, r_rejected = rewards[: len(idx)], rewards[len(idx):]
        losses = bradley_terry_loss(r_chosen, r_rejected, margins[idx].to(runtime.device),
                                    reward_params.center_coef)
        loss = losses.sum() * runtime.global_scale(len(global_idx))
        return loss, {"loss": loss.item(),
                      "accuracy": (r_chosen > r_rejected).float().mean().item(),
                      "margin": (r_chosen - r_rejected).mean().item()}

    return supervised_loop("train_reward", model, reward_params.optim, len(pairs), seed, context,
                           loss_fn, show=("loss", "accuracy"))
