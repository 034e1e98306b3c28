"""KL controllers: hand-computed single updates, clipping, closed-loop convergence, state round trip."""
from __future__ import annotations

import math

import pytest

from prefpipe.config.schema import KLControlParams
from prefpipe.train.kl_control import AdaptiveKLController, FixedKLController, kl_controller


def expected_beta(beta: float, kl: float, target: float, n: int, horizon: int) -> float:
    """The Ziegler et al. update, written out independently."""
    error = kl / target - 1.0
    if error > 0.2:
        error = 0.2
    if error < -0.2:
        error = -0.2
    return beta * (1.0 + error * n / horizon)


def test_fixed_controller_never_moves():
    ctl = FixedKLController(0.3)
    for kl in (0.0, 1.0, 100.0):
        ctl.update(kl, 64)
    assert ctl.beta == 0.3
    assert ctl.state_dict() == {"beta": 0.3}


@pytest.mark.parametrize(("kl", "beta_after"), [
    (2.2, 0.1 * (1 + 0.1 * 10 / 100)),  # error +0.1, inside the clip
    (1.8, 0.1 * (1 - 0.1 * 10 / 100)),  # error -0.1
    (2.0, 0.1),  # on target: no change
    (2.4, 0.1 * (1 + 0.2 * 10 / 100)),  # error exactly +0.2
    (10.0, 0.1 * 1.02),  # error +4 clipped to +0.2
    (0.0, 0.1 * 0.98),  # error -1 clipped to -0.2
    (1.0, 0.1 * 0.98),  # error -0.5 clipped to -0.2
])
def test_adaptive_single_update_by_hand(kl, beta_after):
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=100)
    ctl.update(kl, 10)
    assert ctl.beta == pytest.approx(beta_after, rel=1e-12)


def test_adaptive_update_scales_with_batch_size_over_horizon():
    for n in (1, 7, 64, 512):
        ctl = AdaptiveKLController(0.05, target=3.0, horizon=1024)
        ctl.update(3.3, n)  # error = 0.1
        assert ctl.beta == pytest.approx(0.05 * (1 + 0.1 * n / 1024), rel=1e-12)


def test_adaptive_sequence_matches_independent_recurrence():
    kls = [0.5, 1.9, 2.1, 7.0, 2.0, 1.5, 3.0, 0.0]
    ctl = AdaptiveKLController(0.2, target=2.0, horizon=50)
    beta = 0.2
    for kl in kls:
        ctl.update(kl, 8)
        beta = expected_beta(beta, kl, 2.0, 8, 50)
        assert ctl.beta == pytest.approx(beta, rel=1e-12)
    assert beta != pytest.approx(0.2)


@pytest.mark.parametrize("beta0", [0.005, 0.05, 2.0])
@pytest.mark.parametrize("plant", ["inverse", "inverse_sqrt"])
def test_closed_loop_converges_to_target(beta0, plant):
    """A toy plant where measured KL falls as β rises; the controller must steer KL to its target."""
    target, horizon, n = 2.0, 1024, 64

    def measured_kl(beta: float) -> float:
        return 0.2 / beta if plant == "inverse" else 2.0 * math.sqrt(0.1 / beta)

    ctl = AdaptiveKLController(beta0, target=target, horizon=horizon)
    first_kl = measured_kl(beta0)
    for _ in range(600):
        ctl.update(measured_kl(ctl.beta), n)
    final_kl = measured_kl(ctl.beta)
    assert abs(first_kl / target - 1) > 0.3  # it really started away from the target
    assert abs(final_kl / target - 1) < 0.05
    assert ctl.beta == pytest.approx(0.1, rel=0.05)  # both plants give KL = target at β = 0.1


def test_closed_loop_moves_at_most_the_clipped_rate():
    ctl = AdaptiveKLController(0.001, target=2.0, horizon=100)
    previous = ctl.beta
    for _ in range(20):
        ctl.update(0.2 / ctl.beta, 10)  # KL far above target: error clipped at +0.2
        assert ctl.beta == pytest.approx(previous * 1.02, rel=1e-12)
        previous = ctl.beta


def test_fixed_controller_does_not_close_the_loop():
    ctl = FixedKLController(0.05)
    for _ in range(100):
        ctl.update(0.2 / ctl.beta, 64)
    assert 0.2 / ctl.beta == pytest.approx(4.0)  # stays at twice the target


def test_factory_picks_controller_from_params():
    adaptive = kl_controller(KLControlParams(beta=0.07, adaptive=True, target=3.0, horizon=256))
    assert isinstance(adaptive, AdaptiveKLController)
    assert (adaptive.beta, adaptive.target, adaptive.horizon) == (0.07, 3.0, 256)
    fixed = kl_controller(KLControlParams(beta=0.02, adaptive=False))
    assert type(fixed) is FixedKLController
    assert fixed.beta == 0.02
    fixed.update(100.0, 1000)
    assert fixed.beta == 0.02


def test_state_dict_round_trip_continues_identically():
    params = KLControlParams(beta=0.1, adaptive=True, target=2.0, horizon=64)
    original = kl_controller(params)
    for kl in (5.0, 4.0, 3.0):
        original.update(kl, 16)
    saved = original.state_dict()
    assert saved == {"beta": pytest.approx(0.1 * 1.05 ** 3, rel=1e-12)}  # three clipped +0.2 steps
    restored = kl_controller(params)
    assert restored.beta == 0.1
    restored.load_state_dict(saved)
    assert restored.beta == original.beta
    for kl in (1.0, 2.5, 2.0):
        original.update(kl, 16)
        restored.update(kl, 16)
        assert restored.beta == original.beta
    assert restored.beta != 0.1


def test_state_dict_is_a_snapshot():
    ctl = AdaptiveKLController(0.1, target=2.0, horizon=10)
    saved = ctl.state_dict()
    ctl.update(10.0, 5)
    assert saved == {"beta": 0.1}
    ctl.load_state_dict(saved)
    assert ctl.beta == 0.1
