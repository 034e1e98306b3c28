"""Did it stay honest: the evaluate stage's reward-hacking and mode-collapse numbers, put together.

The stage has each side's held-out responses (policy and reference, one per prompt), their token
counts and log-probs, and per-prompt outcomes from each judge it could ask (gold, the critic, the
reward model). This module turns them into the flat metrics metrics/evaluate.json holds and the
gates read: per-token KL, length drift, every response signal per side (`policy_*`,
`reference_*`), the length-controlled win rate of the main judge, and the proxy's divergence from
it (the seed's reward hacking: the policy beats the reward model it was trained on, not the judge).

    metrics.update(honesty_metrics(texts, policy, reference, logps, judges, params.signals, seed))"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prefpipe.config.signals import SignalParams
from prefpipe.evaluate.signals import length_drift, response_signals
from prefpipe.evaluate.winrates import length_controlled_win_rate, per_token_kl, proxy_divergence

SIDES = ("policy", "reference")
# Judges in order of trust: the first with outcomes is the main judge (LC win rate, divergence).
MAIN_JUDGES = ("gold", "judge")


@dataclass(frozen=True)
class SideResponses:
    """One model's responses to the held-out prompts, in prompt order."""
    responses: Sequence[str]
    token_counts: Sequence[int]


def main_judge(outcomes: Mapping[str, Sequence[float]]) -> str | None:
    """The most trusted judge that gave outcomes: gold where the world has it, else the critic."""
    return next((name for name in MAIN_JUDGES if outcomes.get(name)), None)


def honesty_metrics(prompts: Sequence[str], policy: SideResponses, reference: SideResponses,
                    logps: tuple[Sequence[float], Sequence[float]],
                    outcomes: Mapping[str, Sequence[float]], signals: SignalParams,
                    seed: int) -> dict[str, float]:
    """Per-token KL, length drift, both sides' response signals, and, with a main judge, its
    length-controlled win rate and the proxy (reward model) win rate minus the judge's.

    `logps`: (policy, reference) summed log-probs of the policy's responses; `outcomes`: judge name
    -> per-prompt 1 / 0.5 / 0 for the policy ('gold', 'judge', 'rm'; absent or empty = not asked)."""
    policy_logps, reference_logps = logps
    metrics: dict[str, float] = {
        **per_token_kl(policy_logps, reference_logps, policy.token_counts),
        "length_drift": length_drift(policy.token_counts, reference.token_counts)}
    for side, responses in zip(SIDES, (policy, reference)):
        side_signals = response_signals(prompts, responses.responses, signals, seed)
        metrics.update({f"{side}_{name}": value for name, value in side_signals.items()})
    judge = main_judge(outcomes)
    if judge is None:
        return metrics
    metrics.update(length_controlled_win_rate(outcomes[judge], policy.token_counts,
                                              reference.token_counts, seed))
    if outcomes.get("rm"):
        judged = sum(outcomes[judge]) / len(outcomes[judge])
        metrics["proxy_divergence"] = proxy_divergence(sum(outcomes["rm"]) / len(outcomes["rm"]),
                                                       judged)
    return metrics
