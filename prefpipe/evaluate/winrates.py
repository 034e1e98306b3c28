"""Win rates and KL that a length-hacking policy cannot inflate: the length-controlled win rate
(AlpacaEval 2.0), per-token KL, and the proxy-vs-judge divergence."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from prefpipe.evaluate.stats import Z95

LENGTH_L2 = 1e-2  # ridge on θ1 only: keeps the fit finite when length alone decides every prompt
BOOTSTRAP_RESAMPLES = 200


def length_features(policy_lengths: Sequence[float], reference_lengths: Sequence[float]) -> np.ndarray:
    """x_i = tanh((len_p - len_r) / σ_len), σ_len the (population) std of the differences; all 0
    when the differences do not vary (nothing to control for). Shape (n,), float64."""
    diff = np.asarray(policy_lengths, np.float64) - np.asarray(reference_lengths, np.float64)
    scale = diff.std()
    return np.tanh(diff / scale) if scale > 0 else np.zeros_like(diff)


def fit_length_glm(outcomes: np.ndarray, x: np.ndarray, l2: float = LENGTH_L2,
                   max_iter: int = 100, tol: float = 1e-12) -> tuple[float, float]:
    """(θ0, θ1) maximising Σ y·log p + (1-y)·log(1-p) - l2/2·θ1², p = σ(θ0 + θ1·x), by Newton (IRLS)
    in float64 with step halving. Targets y in [0, 1] (a tie is 0.5).

    When every outcome is a win (or every one a loss) θ0 has no finite optimum; θ0 is then ±inf,
    so σ(θ0) is exactly that shared outcome, and θ1 = 0."""
    mean = float(outcomes.mean())
    if mean in (0.0, 1.0):
        return (math.inf if mean == 1.0 else -math.inf), 0.0
    design = np.stack([np.ones_like(x), x], axis=1)  # (n, 2)
    ridge = np.diag([0.0, l2])
    theta = np.array([math.log(mean / (1 - mean)), 0.0])  # the no-length optimum

    def loss(t: np.ndarray) -> float:
        z = design @ t
        # -[y log σ(z) + (1-y) log σ(-z)] = y·softplus(-z) + (1-y)·softplus(z)
        return float(np.sum(outcomes * np.logaddexp(0, -z) + (1 - outcomes) * np.logaddexp(0, z))
                     + 0.5 * l2 * t[1] ** 2)

    current = loss(theta)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - outcomes) + ridge @ theta  # gradient of the loss
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian + 1e-12 * np.eye(2), grad)
        scale = 1.0
        while scale > 1e-10 and loss(theta - scale * step) > current:
            scale /= 2
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current <= tol * max(1.0, abs(previous)):
            break
    return float(theta[0]), float(theta[1])


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def length_controlled_win_rate(outcomes: Sequence[float], policy_lengths: Sequence[float],
                               reference_lengths: Sequence[float], seed: int,
                               resamples: int = BOOTSTRAP_RESAMPLES,
                               l2: float = LENGTH_L2) -> dict[str, float]:
    """Length-controlled win rate (Dubois et al. 2024, "Length-Controlled AlpacaEval").

    Fits P(policy preferred) = σ(θ0 + θ1·tanh((len_p - len_r) / σ_len)) to per-prompt outcomes (1
    win, 0.5 tie, 0 loss) and reports the win rate at equal length, σ(θ0): what the judge would say
    if neither side could win by being longer. θ1 (`length_coef`) > 0 means the judge rewards the
    longer answer. With no length variation it is the raw win rate. The 95% interval is a
    percentile bootstrap over prompts (`resamples` draws, numpy generator seeded by `seed`).
    -> {lc_win_rate, lc_win_rate_low, lc_win_rate_high, length_coef} (NaN when there are none)."""
    y = np.asarray(outcomes, np.float64)
    if not len(y) == len(policy_lengths) == len(reference_lengths):
        raise ValueError(f"{len(y)} outcomes but {len(policy_lengths)} policy and "
                         f"{len(reference_lengths)} reference lengths")
    if len(y) == 0:
        return {k: math.nan for k in ("lc_win_rate", "lc_win_rate_low", "lc_win_rate_high",
                                      "length_coef")}
    pol = np.asarray(policy_lengths, np.float64)
    ref = np.asarray(reference_lengths, np.float64)
    theta0, theta1 = fit_length_glm(y, length_features(pol, ref), l2)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))  # prompts drawn with replacement
        draws.append(_sigmoid(fit_length_glm(y[idx], length_features(pol[idx], ref[idx]), l2)[0]))
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (math.nan, math.nan)
    return {"lc_win_rate": _sigmoid(theta0), "lc_win_rate_low": float(low),
            "lc_win_rate_high": float(high), "length_coef": theta1}


def per_token_kl(policy_logps: Sequence[float], reference_logps: Sequence[float],
                 policy_token_counts: Sequence[float], z: float = Z95) -> dict[str, float]:
    """KL(π || π_ref) in nats per response token, on policy samples: R = Σ_i d_i / Σ_i t_i with d_i
    = log π(y_i) - log π_ref(y_i) and t_i the tokens of y_i (a ratio estimator, so a long response
    weighs more than a short one, as its tokens do).

    Its 95% interval is the delta method for a ratio of means (Cochran 1977, §6.4):
    Var(R) ≈ Σ (d_i - R·t_i)² / ((n - 1)·n·t̄²).
    -> {kl_nats_per_token, kl_nats_per_token_low, kl_nats_per_token_high} (NaN with no tokens)."""
    d = np.asarray(policy_logps, np.float64) - np.asarray(reference_logps, np.float64)
    t = np.asarray(policy_token_counts, np.float64)
    if d.shape != t.shape:
        raise ValueError(f"{len(d)} log-prob differences but {len(t)} token counts")
    if t.sum() <= 0:
        return {"kl_nats_per_token": math.nan, "kl_nats_per_token_low": math.nan,
                "kl_nats_per_token_high": math.nan}
    ratio = float(d.sum() / t.sum())
    n = len(d)
    half = 0.0
    if n > 1:
        var = float(np.sum((d - ratio * t) ** 2)) / ((n - 1) * n * t.mean() ** 2)
        half = z * math.sqrt(var)
    return {"kl_nats_per_token": ratio, "kl_nats_per_token_low": ratio - half,
            "kl_nats_per_token_high": ratio + half}


def proxy_divergence(proxy_win_rate: float, judge_win_rate: float) -> float:
    """Reward-hacking signal in [-1, 1]: the reward model's win rate minus an independent judge's
    (or gold's). The policy was optimised against the proxy, so a proxy that sees a win the judge
    does not (a large positive value) is the seed's "adversarially attacking the reward model"."""
    return proxy_win_rate - judge_win_rate
