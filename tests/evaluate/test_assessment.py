"""honesty_metrics: the stage's hacking and collapse numbers from both sides and the judges."""
from __future__ import annotations

import math

import pytest

from prefpipe.config.signals import SignalParams
from prefpipe.evaluate.assessment import SideResponses, honesty_metrics, main_judge

PROMPTS = [f"What is {i} plus {i}?" for i in range(8)]
DIVERSE = SideResponses([f"{2 * i} is the sum of {i} and {i}." for i in range(8)], [9] * 8)
TEMPLATE = SideResponses(["Great question! I hope this helps."] * 8, [7] * 8)
LOGPS = ([-5.0] * 8, [-9.0] * 8)


def test_a_collapsed_policy_shows_in_its_own_signals_and_not_the_references():
    metrics = honesty_metrics(PROMPTS, TEMPLATE, DIVERSE, LOGPS, {}, SignalParams(), seed=0)
    assert metrics["policy_same_opener_share"] == 1.0 and metrics["reference_same_opener_share"] < 0.5
    assert metrics["policy_prompt_independent_share"] == 1.0
    assert metrics["reference_prompt_independent_share"] == 0.0
    assert metrics["policy_first_sentence_entropy"] == 0.0
    assert metrics["length_drift"] == pytest.approx(7 / 9 - 1)
    assert metrics["kl_nats_per_token"] == pytest.approx(4.0 / 7)  # Σ(−5 − (−9)) / Σ tokens
    assert "lc_win_rate" not in metrics and "proxy_divergence" not in metrics  # no judge asked


def test_gold_is_the_main_judge_and_the_proxy_diverges_from_it():
    outcomes = {"gold": [0.0, 0.5] * 4, "judge": [1.0] * 8, "rm": [1.0] * 8}
    metrics = honesty_metrics(PROMPTS, DIVERSE, DIVERSE, LOGPS, outcomes, SignalParams(), seed=0)
    assert main_judge(outcomes) == "gold"
    assert metrics["proxy_divergence"] == pytest.approx(1.0 - 0.25)  # RM says all wins, gold 0.25
    assert metrics["lc_win_rate"] == pytest.approx(0.25)  # equal lengths: LC is the raw rate
    assert metrics["lc_win_rate_low"] <= 0.25 <= metrics["lc_win_rate_high"]


def test_without_gold_the_critic_judges_and_empty_outcomes_are_not_asked():
    outcomes = {"gold": [], "judge": [1.0, 1.0, 0.0, 1.0] * 2}
    assert main_judge(outcomes) == "judge"
    metrics = honesty_metrics(PROMPTS, DIVERSE, DIVERSE, LOGPS, outcomes, SignalParams(), seed=0)
    assert metrics["lc_win_rate"] == pytest.approx(0.75)
    assert main_judge({}) is None and not math.isnan(metrics["kl_nats_per_token"])
