"""Win rates and mean intervals against hand computations."""
from __future__ import annotations

import math

import pytest

from prefpipe.evaluate.stats import Z95, mean_interval, win_rate


def test_z95_is_the_normal_quantile():
    from statistics import NormalDist
    assert Z95 == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12)


def test_mean_interval_by_hand():
    # mean 2.5; sample variance ((1.5^2 + .5^2) * 2) / 3 = 5/3; half = z * sqrt(5/3 / 4)
    mean, low, high = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 1.959963984540054 * math.sqrt(5 / 12)
    assert mean == pytest.approx(2.5)
    assert low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)


def test_mean_interval_custom_z():
    mean, low, high = mean_interval([0.0, 2.0], z=1.0)
    # s = sqrt(2), half = sqrt(2) / sqrt(2) = 1
    assert (mean, low, high) == pytest.approx((1.0, 0.0, 2.0))


def test_mean_interval_degenerate_sizes():
    assert all(math.isnan(v) for v in mean_interval([]))
    assert mean_interval([3.0]) == (3.0, 3.0, 3.0)
    assert mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


def test_win_rate_counts_and_interval():
    outcomes = [1.0, 0.5, 0.0, 1.0]
    report = win_rate(outcomes)
    assert report["wins"] == 2.0 and report["ties"] == 1.0 and report["losses"] == 1.0
    assert report["win_rate"] == pytest.approx(0.625)
    # deviations .375 -.125 -.625 .375 -> squares sum .6875; var .6875 / 3; half = z*sqrt(var / 4)
    half = Z95 * math.sqrt(0.6875 / 3 / 4)
    assert report["win_rate_low"] == pytest.approx(0.625 - half)
    assert report["win_rate_high"] == pytest.approx(0.625 + half)


def test_win_rate_all_wins():
    report = win_rate([1.0] * 10)
    assert report["win_rate"] == report["win_rate_low"] == report["win_rate_high"] == 1.0
    assert (report["wins"], report["ties"], report["losses"]) == (10.0, 0.0, 0.0)
