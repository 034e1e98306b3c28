"""The DPO family as objects chosen by config (`policy.dpo.loss`), each carrying its own properties.

A variant declares whether it is `reference_free` (needs no reference log-probs) and
`length_normalised` (reads response log-probs averaged over tokens instead of summed), and
`variant(policy_chosen, policy_rejected, ref_chosen, ref_rejected)` returns a `DPOOutput`:
per-pair losses, chosen and rejected rewards, and the reward margins, so no caller recomputes the
margin or asks which loss it holds. The loss arithmetic is the pure functions of
`prefpipe.losses.preference`, called unchanged (same tensor operations, same order).

Inputs are response log-probs of shape (B,) under the policy and the frozen reference (a
reference-free variant ignores the reference; pass zeros). A new variant: a `DPOVariant` name in
`prefpipe.vocab`, a class here, and its entry in `DPO_VARIANTS` (an import-time check keeps the two
in step)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch

from prefpipe.losses.preference import (
    dpo_loss,
    hinge_loss,
    ipo_loss,
    preference_logits,
    robust_dpo_loss,
    simpo_loss,
)
from prefpipe.vocab import DPOVariant


class DPOOutput(NamedTuple):
    """What a variant returns; all (B,). Rewards and margins are detached (metrics only).

    chosen_rewards = β·(log π(y_c) − log π_ref(y_c)), rejected_rewards likewise;
    margins = β·h with h from `preference_logits` (= chosen − rejected rewards up to rounding;
    computed as the metrics always were, so logged values are unchanged)."""
    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    margins: torch.Tensor


@dataclass(frozen=True)
class DPOLoss:
    """Base of the variants: β and the shared reward bookkeeping; subclasses give `pair_losses`."""
    beta: float

    name: ClassVar[DPOVariant]
    reference_free: ClassVar[bool] = False
    length_normalised: ClassVar[bool] = False

    @classmethod
    def from_knobs(cls, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> DPOLoss:
        """The variant from the `policy.dpo` knobs (each variant takes the ones it uses)."""
        return cls(beta)

    def pair_losses(self, policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                    ref_chosen: torch.Tensor, ref_rejected: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                 ref_chosen: torch.Tensor, ref_rejected: torch.Tensor) -> DPOOutput:
        losses = self.pair_losses(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
        with torch.no_grad():
            chosen = self.beta * (policy_chosen - ref_chosen)
            rejected = self.beta * (policy_rejected - ref_rejected)
            margins = self.beta * preference_logits(policy_chosen, policy_rejected, ref_chosen,
                                                    ref_rejected)
        return DPOOutput(losses, chosen, rejected, margins)


@dataclass(frozen=True)
class SigmoidDPO(DPOLoss):
    """DPO (Rafailov et al. 2023, eq. 7); label_smoothing ε > 0 gives cDPO. See `dpo_loss`."""
    label_smoothing: float = 0.0
    name: ClassVar[DPOVariant] = DPOVariant.SIGMOID

    @classmethod
    def from_knobs(cls, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> DPOLoss:
        return cls(beta, label_smoothing)

    def pair_losses(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta,
                        self.label_smoothing)


@dataclass(frozen=True)
class RobustDPO(DPOLoss):
    """Robust DPO (Chowdhury et al. 2024, eq. 8) under label-flip rate ε. See `robust_dpo_loss`."""
    label_smoothing: float = 0.0
    name: ClassVar[DPOVariant] = DPOVariant.ROBUST

    @classmethod
    def from_knobs(cls, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> DPOLoss:
        return cls(beta, label_smoothing)

    def pair_losses(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return robust_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta,
                               self.label_smoothing)


@dataclass(frozen=True)
class IPO(DPOLoss):
    """IPO (Azar et al. 2023, eq. 17) on length-averaged log-probs. See `ipo_loss`."""
    name: ClassVar[DPOVariant] = DPOVariant.IPO
    length_normalised: ClassVar[bool] = True

    def pair_losses(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return ipo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta)


@dataclass(frozen=True)
class HingeDPO(DPOLoss):
    """SLiC-HF hinge (Zhao et al. 2023, eq. 2 with the DPO reference). See `hinge_loss`."""
    name: ClassVar[DPOVariant] = DPOVariant.HINGE

    def pair_losses(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return hinge_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta)


@dataclass(frozen=True)
class SimPO(DPOLoss):
    """SimPO (Meng et al. 2024, eq. 6): reference-free, length-normalised, target margin γ.

    The reference arguments are ignored by the loss; with zeros there, rewards and margins are the
    policy's own β·mean log-probs (what SimPO calls the reward)."""
    simpo_gamma: float = 0.5
    name: ClassVar[DPOVariant] = DPOVariant.SIMPO
    reference_free: ClassVar[bool] = True
    length_normalised: ClassVar[bool] = True

    @classmethod
    def from_knobs(cls, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> DPOLoss:
        return cls(beta, simpo_gamma)

    def pair_losses(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return simpo_loss(policy_chosen, policy_rejected, self.beta, self.simpo_gamma)


DPO_VARIANTS: dict[DPOVariant, type[DPOLoss]] = {
    cls.name: cls for cls in (SigmoidDPO, RobustDPO, IPO, HingeDPO, SimPO)}
if set(DPO_VARIANTS) != set(DPOVariant):  # the config's names and the registry are one list
    raise ImportError(f"DPO_VARIANTS covers {sorted(DPO_VARIANTS)}, prefpipe.vocab.DPOVariant lists "
                      f"{sorted(DPOVariant)}: add the missing class or name")


def dpo_variant(name: str, beta: float, label_smoothing: float = 0.0,
                simpo_gamma: float = 0.5) -> DPOLoss:
    """The variant `name` (a `DPOVariant` value, as in `policy.dpo.loss`) with its knobs."""
    try:
        cls = DPO_VARIANTS[DPOVariant(name)]
    except ValueError:
        raise ValueError(f"policy.dpo.loss: unknown loss '{name}' "
                         f"(available: {', '.join(DPOVariant.values())})") from None
    return cls.from_knobs(beta, label_smoothing, simpo_gamma)
