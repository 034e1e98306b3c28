"""Direct preference optimisation (and its family) against reference log-probs computed once.

The reference model is only needed before training: its log-probs of every chosen and rejected
response are computed up front, so training holds the policy alone in memory.
"""
from __future__ import annotations

import torch

from prefpipe import losses
from prefpipe.models.logprobs import sequence_logprobs
from prefpipe.progress import Progress
from prefpipe.train.common import autocast, disable_dropout
from prefpipe.train.loop import TrainContext, supervised_loop
from prefpipe.train.reward import encode_pairs, pair_batch

LENGTH_NORMALISED = ("ipo", "simpo")


@torch.no_grad()
def reference_logprobs(model, tokenizer, pairs: list[dict], max_length: int, batch_size: int = 64,
                       average: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Response log-probs of chosen and rejected under the frozen reference -> (N,), (N,).

    Summed over response tokens, or averaged over them when `average` (IPO, SimPO)."""
    model.eval()
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    ref_chosen, ref_rejected = [], []
    with Progress(len(pairs), "reference log-probs", "pair") as progress:
        for start in range(0, len(pairs), batch_size):
            idx = list(range(start, min(start + batch_size, len(pairs))))
            logps = sequence_logprobs(model, pair_batch(tokenizer, prompts, chosen, rejected, idx,
                                                        max_length), average=average)
            ref_chosen.append(logps[: len(idx)])
            ref_rejected.append(logps[len(idx):])
            progress.update(len(idx))
    return torch.cat(ref_chosen), torch.cat(ref_rejected)


def pair_losses(dpo_params, pol_c, pol_r, ref_c, ref_r) -> torch.Tensor:
    """Per-pair loss of the configured member of the DPO family (policy.dpo.loss)."""
    beta, kind = dpo_params.beta, dpo_params.loss
    if kind == "sigmoid":
        return losses.dpo_loss(pol_c, pol_r, ref_c, ref_r, beta, dpo_params.label_smoothing)
    if kind == "robust":
        return losses.robust_dpo_loss(pol_c, pol_r, ref_c, ref_r, beta, dpo_params.label_smoothing)
    if kind == "ipo":
        return losses.ipo_loss(pol_c, pol_r, ref_c, ref_r, beta)
    if kind == "hinge":
        return losses.hinge_loss(pol_c, pol_r, ref_c, ref_r, beta)
    if kind == "simpo":
        return losses.simpo_loss(pol_c, pol_r, beta, dpo_params.simpo_gamma)
    raise ValueError(f"policy.dpo.loss: unknown loss '{kind}'")


def train_dpo(model, tokenizer, pairs: list[dict], ref_chosen: torch.Tensor,
              ref_rejected: torch.Tensor, dpo_params, max_length: int, seed: int,
              context: TrainContext | None = None) -> list[dict]:
    """Train the policy in place; logs chosen/rejected log-prob trends ('both fall' is visible)."""
    context = context or TrainContext()
    runtime = context.runtime
    prompts, chosen, rejected = encode_pairs(tokenizer, pairs)
    average = dpo_params.loss in LENGTH_NORMALISED
    disable_dropout(model)

    def loss_fn(model, idx, global_idx):
        batch = pair_batch(tokenizer, prompts, chosen, rejected, idx, max_length).to(runtime.device)
        with autocast(context.precision, runtime.device.type):
            logps = sequence_logprobs(model, batch, average=average)
        pol_c, pol_r = logps[: len(idx)], logps[len(idx):]
        ref_c, ref_r = ref_chosen[idx].to(logps), ref_rejected[idx].to(logps)
        per_pair = pair_losses(dpo_params, pol_c, pol_r, ref_c, ref_r)
        margin = dpo_params.beta * losses.preference_logits(pol_c, pol_r, ref_c, ref_r).detach()
        loss = per_pair.sum() * runtime.global_scale(len(global_idx))
        return loss, {
            "loss": loss.item(),
            "reward_accuracy": (margin > 0).float().mean().item(),
            "reward_margin": margin.mean().item(),
            "chosen_logp_shift": (pol_c - ref_c).mean().item(),
            "rejected_logp_shift": (pol_r - ref_r).mean().item()}

    return supervised_loop(f"train_policy (dpo, {dpo_params.loss})", model, dpo_params.optim,
                           len(pairs), seed, context, loss_fn, show=("loss", "reward_accuracy"))
