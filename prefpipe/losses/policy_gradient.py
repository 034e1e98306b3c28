"""Losses and estimators for on-policy RL on language models: PPO, GRPO, KL, GAE.

Token-level tensors are (B, T) over the response positions, with `mask` 1 on response tokens and 0
on prompt and padding; every mean below is over masked-in tokens only.
"""
from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` where mask is 1 (over all elements, or along `dim`)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True,
           eps: float = 1e-8) -> torch.Tensor:
    """Advantage whitening: (x - mean) / std over masked-in elements (population std).

    shift_mean=False rescales only, keeping the sign of every value (used for rewards)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    scale = torch.rsqrt(var + eps)
    return (values - mean) * scale if shift_mean else values * scale


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 = log π(y) - log π_ref(y): unbiased for KL(π‖π_ref) on samples y ~ π, can be negative.

    The three estimators are from Schulman, "Approximating KL Divergence" (2020)."""
    return logprobs - ref_logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2 = ½ (log π(y) - log π_ref(y))²: biased, low variance, never negative."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 = (r - 1) - log r with r = π_ref(y)/π(y): unbiased and never negative (GRPO's KL term)."""
    log_ratio = ref_logprobs - logprobs
    return torch.expm1(log_ratio) - log_ratio


KL_ESTIMATORS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16) over response tokens.

    δ_t = r_t + γ V_{t+1} - V_t,  A_t = δ_t + γλ A_{t+1}, with V and A zero past the last response
    token. Returns (advantages, returns = A + V), zero where mask is 0.
    """
    mask = mask.to(values.dtype)
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * mask[:, t]
        # a masked-out position passes its successor's value and advantage through unchanged
        next_value = torch.where(mask[:, t] > 0, values[:, t], next_value)
        next_advantage = torch.where(mask[:, t] > 0, advantage, next_advantage)
    return advantages, (advantages + values) * mask


def ppo_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                    mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate (Schulman et al. 2017, eq. 7), as a loss to minimise.

    ρ_t = exp(log π(a_t) - log π_old(a_t));  loss = -E_t[min(ρ_t A_t, clip(ρ_t, 1-ε, 1+ε) A_t)].
    Also returns the clip fraction and the approximate KL(π_old‖π) = E[½ (log ρ)²].
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantages
    loss = masked_mean(-torch.min(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {"clip_fraction": masked_mean((clipped < unclipped).float(), mask).item(),
                 "approx_kl": masked_mean(0.5 * log_ratio ** 2, mask).item()}
    return loss, stats


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, float]:
    """Clipped value loss (PPO2 baselines; Ziegler et al. 2019's lm-human-preferences).

    V_clip = V_old + clip(V - V_old, -ε, ε);  loss = ½ E_t[max((V - R)², (V_clip - R)²)].
    Returns the loss and the share of tokens where the clipped term was the larger one.
    """
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error), mask)
    return loss, masked_mean((clipped_error > unclipped_error).float(), mask).item()


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO outcome advantages (Shao et al. 2024, DeepSeekMath §4.1.2): Â_i = (r_i - mean_g) / (std_g + ε).

    `rewards` is (N·G,) with each prompt's G samples contiguous; std is the population std of the
    group. A group whose rewards are all equal gets zero advantage (it carries no signal).
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True, unbiased=False)
    return ((groups - mean) / (std + eps)).view(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the softmax over the vocabulary, in nats. (B, T, V) -> (B, T)."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    # a -inf logit (masked token) has p = 0 and contributes 0, not 0·(-inf)
    return -torch.where(logprobs > -torch.inf, logprobs.exp() * logprobs, 0.0).sum(-1)
