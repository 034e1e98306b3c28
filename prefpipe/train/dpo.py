"""Direct Preference Optimisation against reference log-probs computed once, before training."""
from __future__ import annotations

import torch

from prefpipe.losses import dpo_loss
from prefpipe.models.logprobs import sequence_logprobs
from prefpipe.progress import Progress
from prefpipe.train.common import (
    autocast,
    disable_dropout,
    epoch_batches,
    make_optimizer,
    optimizer_step,
    total_batches,
)
from prefpipe.train.reward import encode_pairs, pair_batch


@torch.no_grad()
def reference_logprobs(model, tokenizer, pairs: list[dict], max_length: int,
                       batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs of chosen and rejected under the (frozen) reference. -> (N,), (N,)"""
    model.eval()
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    ref_chosen, ref_rejected = [], []
    with Progress(len(pairs), "reference log-probs", "pair") as progress:
        for start in range(0, len(pairs), batch_size):
            idx = list(range(start, min(start + batch_size, len(pairs))))
            logps = sequence_logprobs(model, pair_batch(tokenizer, prompts, chosen, rejected, idx,
                                                        max_length))
            ref_chosen.append(logps[: len(idx)])
            ref_rejected.append(logps[len(idx):])
            progress.update(len(idx))
    return torch.cat(ref_chosen), torch.cat(ref_rejected)


def train_dpo(model, tokenizer, pairs: list[dict], ref_chosen: torch.Tensor,
              ref_rejected: torch.Tensor, dpo_params, max_length: int, seed: int,
              precision: str = "fp32") -> list[dict]:
    """Train the policy in place; logs chosen/rejected log-prob trends ('both fall' is visible)."""
    optim = dpo_params.optim
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    steps = total_batches(len(pairs), optim.batch_size, optim.epochs)
    optimizer, scheduler = make_optimizer(model, optim, steps)
    history = []
    disable_dropout(model)
    model.train()
    with Progress(steps, "train_policy (dpo)", "step") as progress:
        for step, idx in enumerate(epoch_batches(len(pairs), optim.batch_size, optim.epochs, seed)):
            batch = pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length)
            with autocast(precision):
                logps = sequence_logprobs(model, batch)
            pol_c, pol_r = logps[: len(idx)], logps[len(idx):]
            ref_c, ref_r = ref_chosen[idx], ref_rejected[idx]
            loss = dpo_loss(pol_c, pol_r, ref_c, ref_r, dpo_params.beta,
                            dpo_params.label_smoothing).mean()
            optimizer_step(model, optimizer, scheduler, loss, optim.max_grad_norm)
            margin = dpo_params.beta * ((pol_c - ref_c) - (pol_r - ref_r))
            row = {"step": step, "loss": loss.item(),
                   "reward_accuracy": (margin > 0).float().mean().item(),
                   "reward_margin": margin.mean().item(),
                   "chosen_logp_shift": (pol_c - ref_c).mean().item(),
                   "rejected_logp_shift": (pol_r - ref_r).mean().item()}
            history.append(row)
            progress.update(1, loss=row["loss"], acc=row["reward_accuracy"])
    return history
