"""Reward-model training with the Bradley-Terry loss on (chosen, rejected) pairs."""
from __future__ import annotations

import torch

from prefpipe.data.tokenised_pairs import TokenisedPairs, closing_built, tokenise_pairs
from prefpipe.losses import bradley_terry_loss
from prefpipe.models.formatting import TokenBatch
from prefpipe.models.scoring import scalar_rewards
from prefpipe.train.common import autocast, rows_by_length, set_dropout
from prefpipe.train.loop import TrainContext, supervised_loop


def encode_pairs(tokenizer, pairs: list[dict] | TokenisedPairs) -> TokenisedPairs:
    """Token ids of prompt, chosen and rejected of [{'prompt', 'chosen', 'rejected', ...}], in an
    Arrow file on disk (`prefpipe.data.tokenised_pairs`); pairs already tokenised are returned as
    they are, so a caller can tokenise once for several passes (reference log-probs, then DPO)."""
    return pairs if isinstance(pairs, TokenisedPairs) else tokenise_pairs(tokenizer, pairs)


def pair_batch(tokenizer, data: TokenisedPairs, idx: list[int], max_length: int) -> TokenBatch:
    """One batch holding the chosen rows then the rejected rows (one forward pass for both)."""
    return data.batch(tokenizer, idx, max_length)


def train_reward_model(model, tokenizer, pairs: list[dict] | TokenisedPairs, reward_params,
                       max_length: int, seed: int, context: TrainContext | None = None) -> list[dict]:
    """Train in place with the Bradley-Terry loss; returns the per-step history.

    With reward.margin_scale m > 0 a pair of label confidence c asks for a reward gap of m·c; with
    reward.center_coef > 0 rewards are pulled toward zero; reward.dropout (not None) sets the
    model's dropout for training."""
    context = context or TrainContext()
    runtime = context.runtime
    set_dropout(model, reward_params.dropout)
    data = encode_pairs(tokenizer, pairs)
    margins = torch.tensor((reward_params.margin_scale * data.confidences()).tolist())

    def rewards_of(model, batch):
        with autocast(context.precision, runtime.device.type):
            return scalar_rewards(model, batch).float()

    def loss_fn(model, idx, global_idx):
        prompts, chosen, rejected = data.ids(idx)  # one forward: chosen rows, then rejected rows
        rewards = rows_by_length(lambda batch: rewards_of(model, batch), tokenizer, prompts + prompts,
                                 chosen + rejected, max_length, context.length_groups, runtime.device)
        r_chosen, r_rejected = rewards[: len(idx)], rewards[len(idx):]
        losses = bradley_terry_loss(r_chosen, r_rejected, margins[idx].to(runtime.device),
                                    reward_params.center_coef)
        loss = losses.sum() * runtime.global_scale(len(global_idx))
        with torch.no_grad():  # tensors: read once the step is done, not mid-step (a device sync)
            return loss, {"loss": loss.detach(), "accuracy": (r_chosen > r_rejected).float().mean(),
                          "margin": (r_chosen - r_rejected).mean()}

    with closing_built(data, pairs):
        return supervised_loop("train_reward", model, reward_params.optim, len(data), seed, context,
                               loss_fn, show=("loss", "accuracy"))
