"""KL coefficient controllers for RL against a reward model (reward - β·KL)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefpipe.config.schema import KLControlParams


class FixedKLController:
    """β stays where it was set."""

    def __init__(self, beta: float):
        self.beta = beta

    def update(self, kl: float, n_samples: int) -> None:
        """Nothing to adapt."""

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = state["beta"]


class AdaptiveKLController(FixedKLController):
    """Ziegler et al. 2019 (§2.2), the proportional controller that holds KL near a target.

    e = clip(KL / target - 1, -0.2, 0.2);  β ← β·(1 + e·n / horizon)
    where KL is the batch's mean sequence KL in nats and n the rollouts in the batch.
    """

    def __init__(self, beta: float, target: float, horizon: int):
        super().__init__(beta)
        self.target, self.horizon = target, horizon

    def update(self, kl: float, n_samples: int) -> None:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.beta *= 1.0 + error * n_samples / self.horizon


def kl_controller(kl_params: KLControlParams) -> FixedKLController:
    """The controller policy.ppo.kl asks for: adaptive (Ziegler et al.) or fixed β."""
    if kl_params.adaptive:
        return AdaptiveKLController(kl_params.beta, kl_params.target, kl_params.horizon)
    return FixedKLController(kl_params.beta)
