"""Statistics for evaluation: win rates with intervals, means with intervals."""
from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% interval (mean ± z·s/√n). -> (mean, low, high)"""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def win_rate(outcomes: Sequence[float]) -> dict[str, float]:
    """Win rate from per-prompt outcomes (1 win, 0.5 tie, 0 loss) with its 95% interval."""
    mean, low, high = mean_interval(outcomes)
    return {"win_rate": mean, "win_rate_low": low, "win_rate_high": high,
            "wins": float(sum(o == 1.0 for o in outcomes)),
            "ties": float(sum(o == 0.5 for o in outcomes)),
            "losses": float(sum(o == 0.0 for o in outcomes))}
