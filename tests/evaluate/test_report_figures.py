"""Which figures the report draws from which data: one per thing given, none for what is absent,
numbers worked out by hand (the RM score gain, integer length bins), CSV text parsed as numbers."""
from __future__ import annotations

import math
import re

from prefpipe.evaluate.report_figures import (
    family_figures,
    figure_sections,
    fmt,
    interval,
    length_figures,
    number,
    reward_kl_figures,
)

METRICS = {"kl_nats": 1.7, "kl_nats_low": 1.5, "kl_nats_high": 1.9, "policy_rm_score": 2.5,
           "reference_rm_score": 1.0}


def titles(figures: list[str]) -> list[str]:
    return [t for f in figures for t in re.findall(r'aria-label="([^"]*)"', f)]


def test_numbers_from_cells_and_their_text():
    assert [number(v) for v in (1, "0.25", " 3 ", "nan", "inf", "x", None, True)] == \
        [1.0, 0.25, 3.0, None, None, None, None, None]
    assert (fmt(0.72), fmt(12.53, 1), fmt(40), fmt(None), fmt("text")) == \
        ("0.720", "12.5", "40", "n/a", "text")
    assert interval(METRICS, "kl_nats", 2) == " [1.50, 1.90]" and interval(METRICS, "win_rate", 2) == ""


def test_reward_vs_kl_places_this_run_against_the_origin():
    (point,) = reward_kl_figures(METRICS, {})
    # RM gain 2.5 - 1.0 = 1.5 at KL 1.7; axes 0..2 (step 2/5 -> 0.5) both ways
    assert "policy: (1.7, 1.5)" in point and "reference (SFT): (0, 0)" in point
    assert "KL 1.700 [1.500, 1.900] nats; mean RM score gain 1.500 over the reference." in point
    assert reward_kl_figures({"kl_nats": 1.7}, {}) == []  # no RM scores: no point
    assert reward_kl_figures({**METRICS, "kl_nats": math.nan}, {}) == []


def test_a_training_curve_with_kl_and_reward_or_score_draws_its_trajectory():
    rows = [{"step": s, "score": s / 4, "kl_nats": s / 2} for s in range(4)]
    figures = reward_kl_figures({}, {"ppo": rows, "sft_loss": [{"step": 0, "loss": 1.0}], "empty": []})
    assert titles(figures) == ["ppo: score vs KL over training"]
    assert figures[0].count('class="point"') == 4  # markers on every step


def test_family_bars_win_then_each_policy_reference_pair():
    rows = [{"family": "arithmetic", "prompts": "12", "win": "0.6", "policy_correct": "0.5",
             "reference_correct": "0.4", "policy_flaws": "0.1", "reference_flaws": "nan",
             "policy_only": "1"},
            {"family": "code", "prompts": "9", "win": "0.7", "policy_correct": "0.8",
             "reference_correct": "0.9", "policy_flaws": "0.0", "reference_flaws": "0.2"}]
    figures = family_figures(rows)
    assert titles(figures) == ["Gold win rate by family", "Correct by family", "Flaws by family"]
    assert [f.count('class="bar"') for f in figures] == [2, 4, 3]  # the NaN bar is skipped
    assert family_figures([]) == []


def test_integer_lengths_get_one_bin_per_value_when_narrow():
    (narrow,) = length_figures({"policy": [3, 4, 4, 7], "reference": [5]})
    assert narrow.count('class="bar"') == 2 * 5  # 3..7: five bins, two sides
    assert "policy mean 4.5; reference mean 5.0" in narrow
    (wide,) = length_figures({"policy": list(range(100))})
    assert wide.count('class="bar"') == 20
    (fractional,) = length_figures({"policy": [0.5, 1.0]}, bins=4)
    assert fractional.count('class="bar"') == 4
    assert length_figures(None) == [] and length_figures({}) == []


def test_sections_in_order_and_only_with_figures():
    curves = {"sft_loss": [{"step": 0, "loss": 2.0, "lr": 1e-3}, {"step": 1, "loss": 1.0, "lr": 1e-3}],
              "policy_train": [{"step": 0, "reward": 0.1, "kl_nats": 0.0},
                               {"step": 1, "reward": 0.3, "kl_nats": 0.5}]}
    sections = figure_sections(METRICS, {"policy": [3, 4]}, [], curves)
    assert [(name, titles(figs)) for name, figs in sections] == [
        ("Reward vs KL", ["Reward vs KL (this run)", "policy_train: reward vs KL over training"]),
        ("Response lengths", ["Response length"]),
        ("Training curves", ["sft_loss: loss", "policy_train: reward", "policy_train: kl_nats"])]
    assert figure_sections({}, None, [], {}) == []
    (empty,) = figure_sections({}, None, [], {"policy_train": []})
    assert titles(empty[1]) == ["policy_train"] and "no data" in empty[1][0]
