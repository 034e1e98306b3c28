"""Pairwise preference losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Reward-model loss under the Bradley-Terry model (Ouyang et al. 2022, eq. 1).

    loss = -log σ(r(x, y_c) - r(x, y_r)). Inputs are scalar rewards, shape (B,); returns (B,).
    """
    return -F.logsigmoid(reward_chosen - reward_rejected)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7); label_smoothing ε > 0 gives conservative DPO (cDPO).

    h = (log π(y_c) - log π(y_r)) - (log π_ref(y_c) - log π_ref(y_r))
    loss = -(1 - ε) log σ(β h) - ε log σ(-β h)
    Inputs are summed response-token log-probs, shape (B,); returns per-pair losses (B,).
    """
    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    return (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing)
