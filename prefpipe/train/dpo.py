"""Direct preference optimisation (and its family) against reference log-probs computed once.

The reference model is only needed before training: its log-probs of every chosen and rejected
response are computed up front, so training holds the policy alone in memory. Which member of the
family trains, and what it needs (reference log-probs, length-averaged log-probs), is the variant
object's to say: `variant_for(params.policy.dpo)` (see `prefpipe.losses.dpo_variants`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from prefpipe.data.tokenised_pairs import TokenisedPairs, closing_built
from prefpipe.losses import DPOLoss, dpo_variant
from prefpipe.models.logprobs import sequence_logprobs
from prefpipe.progress import Progress
from prefpipe.train.common import autocast, rows_by_length, set_dropout
from prefpipe.train.loop import TrainContext, supervised_loop
from prefpipe.train.precision import attention_for
from prefpipe.train.reward import encode_pairs, pair_batch

if TYPE_CHECKING:
    from prefpipe.config.schema import DPOParams


@torch.no_grad()
def reference_logprobs(model, tokenizer, pairs: list[dict] | TokenisedPairs, max_length: int,
                       batch_size: int = 64, average: bool = False, precision: str = "fp32"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Response log-probs of chosen and rejected under the frozen reference -> (N,), (N,).

    Summed over response tokens, or averaged over them when `average` (IPO, SimPO). `precision` is
    the policy's (the training context's): under bf16 the reference runs under the same autocast,
    so a policy equal to its reference starts at a zero margin (loss log 2), not at the rounding
    gap between fp32 and bf16 log-probs."""
    model.eval()
    device = next(model.parameters()).device
    data = encode_pairs(tokenizer, pairs)
    ref_chosen, ref_rejected = [], []
    with (closing_built(data, pairs), attention_for(model, precision, device.type),
          Progress(len(pairs), "reference log-probs", "pair") as progress):
        for start in range(0, len(pairs), batch_size):
            idx = list(range(start, min(start + batch_size, len(pairs))))
            batch = pair_batch(tokenizer, data, idx, max_length)
            with autocast(precision, device.type):
                logps = sequence_logprobs(model, batch.to(device), average=average).float()
            ref_chosen.append(logps[: len(idx)].cpu())
            ref_rejected.append(logps[len(idx):].cpu())
            progress.update(len(idx))
    return torch.cat(ref_chosen), torch.cat(ref_rejected)


def reference_for(variant: DPOLoss, load_reference: Callable[[], torch.nn.Module], tokenizer,
                  pairs: list[dict] | TokenisedPairs, max_length: int, precision: str = "fp32"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference log-probs `variant` trains against -> (N,), (N,): zeros for a reference-free
    variant (no model is loaded), else `load_reference()`'s, read as the variant reads log-probs
    (summed, or averaged when length-normalised) at the policy's `precision`. The model is dropped
    before training starts."""
    if variant.reference_free:
        zeros = torch.zeros(len(pairs))
        return zeros, zeros
    return reference_logprobs(load_reference(), tokenizer, pairs, max_length,
                              average=variant.length_normalised, precision=precision)


def variant_for(dpo_params: DPOParams) -> DPOLoss:
    """The member of the DPO family `policy.dpo` configures (its `loss` and knobs)."""
    return dpo_variant(dpo_params.loss, dpo_params.beta, dpo_params.label_smoothing,
                       dpo_params.simpo_gamma)


def train_dpo(model, tokenizer, pairs: list[dict] | TokenisedPairs, ref_chosen: torch.Tensor,
              ref_rejected: torch.Tensor, dpo_params, max_length: int, seed: int,
              context: TrainContext | None = None) -> list[dict]:
    """Train the policy in place; logs chosen/rejected log-prob trends ('both fall' is visible)."""
    context = context or TrainContext()
    runtime = context.runtime
    data = encode_pairs(tokenizer, pairs)
    variant = variant_for(dpo_params)
    set_dropout(model, dpo_params.dropout)  # policy.dpo.dropout: 0.0 (off) by default

    def logprobs_of(model, batch):
        with autocast(context.precision, runtime.device.type):
            return sequence_logprobs(model, batch, average=variant.length_normalised)

    def loss_fn(model, idx, global_idx):
        prompts, chosen, rejected = data.ids(idx)  # one forward: chosen rows, then rejected rows
        logps = rows_by_length(lambda batch: logprobs_of(model, batch), tokenizer, prompts + prompts,
                               chosen + rejected, max_length, context.length_groups, runtime.device)
        pol_c, pol_r = logps[: len(idx)], logps[len(idx):]
        ref_c, ref_r = ref_chosen[idx].to(logps), ref_rejected[idx].to(logps)
        out = variant(pol_c, pol_r, ref_c, ref_r)  # per-pair losses, rewards and margins (B,)
        loss = out.losses.sum() * runtime.global_scale(len(global_idx))
        with torch.no_grad():  # tensors: read once the step is done, not mid-step (a device sync)
            return loss, {"loss": loss.detach(), "reward_accuracy": (out.margins > 0).float().mean(),
                          "reward_margin": out.margins.mean(),
                          "chosen_logp_shift": (pol_c - ref_c).mean(),
                          "rejected_logp_shift": (pol_r - ref_r).mean()}

    with closing_built(data, pairs):
        return supervised_loop(f"train_policy (dpo, {dpo_params.loss})", model, dpo_params.optim,
                               len(data), seed, context, loss_fn, show=("loss", "reward_accuracy"))
