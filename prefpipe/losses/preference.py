"""Pairwise preference losses: the reward model's Bradley-Terry loss and the DPO family.

Every function takes per-example tensors of shape (B,) and returns per-example losses (B,), so the
caller chooses the reduction. Policy inputs are response log-probs under the policy and the frozen
reference: summed over response tokens for DPO, cDPO, robust DPO and hinge; averaged over response
tokens (length-normalised) for IPO and SimPO.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor,
                       margin: torch.Tensor | float = 0.0, center_coef: float = 0.0) -> torch.Tensor:
    """Reward-model loss under the Bradley-Terry model (Ouyang et al. 2022, eq. 1).

    loss = -log σ(r_c - r_r - m) + c·(r_c + r_r)²
    The margin m (Touvron et al. 2023, Llama 2 §3.2.2) asks for a wider gap on clearer preferences;
    the centering term c (Eisenstein et al. 2023) keeps rewards near zero, which the loss alone
    leaves free (it only sees differences).
    """
    loss = -F.logsigmoid(reward_chosen - reward_rejected - margin)
    if center_coef:
        loss = loss + center_coef * (reward_chosen + reward_rejected) ** 2
    return loss


def preference_logits(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                      ref_chosen: torch.Tensor, ref_rejected: torch.Tensor) -> torch.Tensor:
    """h = (log π(y_c) - log π(y_r)) - (log π_ref(y_c) - log π_ref(y_r)), the implicit reward gap."""
    return (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7); label_smoothing ε > 0 gives conservative DPO (cDPO).

    loss = -(1 - ε) log σ(β h) - ε log σ(-β h), h from `preference_logits`.
    cDPO (Mitchell 2023) treats each label as flipped with probability ε.
    """
    logits = beta * preference_logits(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def robust_dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                    ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float,
                    label_smoothing: float) -> torch.Tensor:
    """Robust DPO (Chowdhury et al. 2024, eq. 8): an unbiased loss under label-flip rate ε < 0.5.

    loss = [(1 - ε)(-log σ(β h)) - ε(-log σ(-β h))] / (1 - 2ε)
    """
    logits = beta * preference_logits(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return ((1 - label_smoothing) * -F.logsigmoid(logits)
            - label_smoothing * -F.logsigmoid(-logits)) / (1 - 2 * label_smoothing)


def ipo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2023, eq. 17): regress the log-ratio gap onto 1/(2β) instead of pushing it up.

    loss = (h - 1/(2β))², with h from length-averaged log-probs (mean over response tokens), as TRL
    does; β plays the role of the paper's τ.
    """
    logits = preference_logits(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return (logits - 1 / (2 * beta)) ** 2


def hinge_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
               ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """SLiC-HF hinge (Zhao et al. 2023, eq. 2 with the DPO reference): loss = max(0, 1 - β h)."""
    return torch.relu(1 - beta * preference_logits(policy_chosen, policy_rejected, ref_chosen,
                                                   ref_rejected))


def simpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, beta: float,
               gamma: float) -> torch.Tensor:
    """SimPO (Meng et al. 2024, eq. 6): reference-free, length-normalised, with a target margin γ.

    loss = -log σ(β·(mean log π(y_c) - mean log π(y_r)) - γ); inputs are per-token mean log-probs.
    """
    return -F.logsigmoid(beta * (policy_chosen - policy_rejected) - gamma)
