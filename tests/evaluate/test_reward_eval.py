"""Reward-model evaluation: prompt-grouped splits, Pearson correlation and the ranking report."""
from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from prefpipe.evaluate.reward_eval import calibration, pearson, ranking_report, split_by_prompt
from prefpipe.world.prompts import all_prompts


def _preferences(n_prompts: int = 200, per_prompt: int = 3) -> list[dict]:
    return [{"prompt_id": f"p{i}", "pair": j} for i in range(n_prompts) for j in range(per_prompt)]


def test_split_keeps_all_pairs_of_a_prompt_together():
    rows = _preferences()
    train, val = split_by_prompt(rows, 0.3, seed=0)
    assert len(train) + len(val) == len(rows)
    train_ids = {r["prompt_id"] for r in train}
    val_ids = {r["prompt_id"] for r in val}
    assert not train_ids & val_ids
    for side in (train, val):
        counts = {}
        for r in side:
            counts[r["prompt_id"]] = counts.get(r["prompt_id"], 0) + 1
        assert set(counts.values()) == {3}
    assert 0.2 < len(val_ids) / 200 < 0.4


def test_split_is_deterministic_and_seeded():
    rows = _preferences()
    assert split_by_prompt(rows, 0.3, 1) == split_by_prompt(rows, 0.3, 1)
    assert split_by_prompt(rows, 0.3, 1) != split_by_prompt(rows, 0.3, 2)


def test_split_extremes():
    rows = _preferences(50, 2)
    assert split_by_prompt(rows, 0.0, 0) == (rows, [])
    train, val = split_by_prompt(rows, 1.0, 0)
    assert train == [] and val == rows


def test_pearson_matches_numpy_and_statistics():
    rng = random.Random(0)
    xs = [rng.gauss(0, 1) for _ in range(50)]
    ys = [0.5 * x + rng.gauss(0, 1) for x in xs]
    expected = statistics.correlation(xs, ys)
    assert pearson(xs, ys) == pytest.approx(expected, abs=1e-12)
    assert pearson(xs, ys) == pytest.approx(np.corrcoef(xs, ys)[0, 1], abs=1e-12)


def test_pearson_exact_and_degenerate():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1.0], [2.0]))
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_ranking_report_hand_example():
    prompts = {p.prompt: p for p in all_prompts(5)}
    add = prompts["What is 3 plus 4?"]
    tea = prompts["How do I make tea?"]
    tea_answer = "Pour hot water over the tea and let it steep for three minutes."
    val = [
        # gold prefers chosen; the RM agrees
        {"prompt_id": add.prompt_id, "category": "arithmetic", "chosen": "The answer is 7.",
         "chosen_finished": True, "rejected": "The answer is 8.", "rejected_finished": True},
        # gold prefers the *rejected* side (label noise); the RM agrees with the label -> gold miss
        {"prompt_id": add.prompt_id, "category": "arithmetic", "chosen": "3 + 4 = 9.",
         "chosen_finished": True, "rejected": "3 + 4 = 7.", "rejected_finished": True},
        # gold prefers chosen; the RM prefers rejected -> label miss and gold miss
        {"prompt_id": tea.prompt_id, "category": "benign", "chosen": tea_answer,
         "chosen_finished": True, "rejected": "I can't help with that.", "rejected_finished": True},
        # gold tie: counted for label accuracy only
        {"prompt_id": tea.prompt_id, "category": "benign", "chosen": tea_answer,
         "chosen_finished": True, "rejected": tea_answer + " ", "rejected_finished": True},
        # a user's prompt without gold: label accuracy only
        {"prompt_id": "user-1", "category": "default", "chosen": "yes", "chosen_finished": True,
         "rejected": "no thanks", "rejected_finished": True},
    ]
    chosen = [2.0, 1.0, -1.0, 0.5, 0.3]
    rejected = [1.0, 0.0, 0.0, 0.5, 0.1]
    lookup = {add.prompt_id: add, tea.prompt_id: tea, "user-1": None}
    report = ranking_report(val, chosen, rejected, lookup)
    assert report["val_pairs"] == 5
    assert report["val_label_accuracy"] == pytest.approx(3 / 5)  # rows 0, 1, 4 (tie 0.5 misses)
    assert report["val_gold_accuracy"] == pytest.approx(1 / 3)  # rows 0 hit, 1 miss, 2 miss
    assert report["val_gold_accuracy_arithmetic"] == pytest.approx(1 / 2)
    assert report["val_gold_accuracy_benign"] == pytest.approx(0.0)
    assert "val_gold_accuracy_default" not in report
    lengths = [len(r["chosen"]) for r in val] + [len(r["rejected"]) for r in val]
    assert report["reward_length_correlation"] == pytest.approx(
        statistics.correlation(chosen + rejected, lengths))


def test_ranking_report_without_gold_has_no_gold_keys():
    val = [{"prompt_id": "u", "category": "c", "chosen": "aa", "chosen_finished": True,
            "rejected": "b", "rejected_finished": True}]
    report = ranking_report(val, [1.0], [0.0], {"u": None})
    assert report["val_label_accuracy"] == 1.0
    assert not any(k.startswith("val_gold") for k in report)


def test_calibration_of_zero_gaps_is_perfect():
    ece, rows = calibration([0.0] * 7)
    assert ece == 0.0
    assert rows == [{"bin": 5, "predicted": 0.5, "observed": 0.5, "pairs": 14}]


def test_calibration_hand_example():
    # p = σ(gap): 0.75, 0.75, 0.25, 0.85. Each pair also counts reversed (1 - p, outcome 0), so
    # bin 7 holds 0.75 (y=1), 0.75 (y=1), 0.75 (y=0); bin 2 its mirror; bin 8 holds 0.85 (y=1),
    # bin 1 holds 0.15 (y=0). ECE = 2·(3/8)·|0.75 - 2/3| + 2·(1/8)·0.15 = 1/16 + 0.0375 = 0.1
    gaps = [math.log(3), math.log(3), -math.log(3), math.log(0.85 / 0.15)]
    ece, rows = calibration(gaps)
    assert ece == pytest.approx(0.1, abs=1e-12)
    assert [r["bin"] for r in rows] == [1, 2, 7, 8]
    assert [r["pairs"] for r in rows] == [1, 3, 3, 1]
    assert [r["predicted"] for r in rows] == pytest.approx([0.15, 0.25, 0.75, 0.85], abs=1e-12)
    assert [r["observed"] for r in rows] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0], abs=1e-12)


def test_calibration_single_confident_pair_and_bin_count():
    ece, rows = calibration([math.log(3)])  # p = 0.75 vs outcome 1, 0.25 vs outcome 0
    assert ece == pytest.approx(0.25, abs=1e-12)
    ece5, rows5 = calibration([math.log(3)], bins=5)  # bins of width 0.2: 0.25 -> 1, 0.75 -> 3
    assert ece5 == pytest.approx(0.25, abs=1e-12)
    assert [r["bin"] for r in rows5] == [1, 3]


def test_calibration_extreme_gaps_land_in_end_bins():
    ece, rows = calibration([1000.0, 60.0])  # both confidently right: σ(±50) is 1 or ~2e-22
    assert [(r["bin"], r["pairs"]) for r in rows] == [(0, 2), (9, 2)]  # p = 1.0 goes in the last bin
    assert ece == pytest.approx(0.0, abs=1e-12)
    # one confidently right, one confidently wrong: each end bin predicts ~1 (or ~0) but sees 1/2
    ece, rows = calibration([1000.0, -1000.0])
    assert [(r["bin"], r["pairs"]) for r in rows] == [(0, 2), (9, 2)]
    assert [r["observed"] for r in rows] == [0.5, 0.5]
    assert ece == pytest.approx(0.5, abs=1e-12)


def test_calibration_pair_counts_sum_to_twice_the_pairs():
    rng = random.Random(3)
    gaps = [rng.gauss(0.0, 3.0) for _ in range(101)]
    ece, rows = calibration(gaps)
    assert sum(r["pairs"] for r in rows) == 2 * len(gaps)
    assert 0.0 <= ece <= 1.0
    # overconfident: larger gaps for the same labels are worse calibrated
    assert calibration([3 * g for g in gaps])[0] > ece


def test_calibration_matches_a_numpy_binning():
    rng = random.Random(4)
    gaps = [rng.uniform(-4, 4) for _ in range(60)]
    p = 1 / (1 + np.exp(-np.array(gaps)))
    probs = np.concatenate([p, 1 - p])
    outcomes = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    which = np.minimum((probs * 10).astype(int), 9)
    expected = sum(abs(probs[which == b].mean() - outcomes[which == b].mean()) * (which == b).sum()
                   for b in range(10) if (which == b).any()) / probs.size
    assert calibration(gaps)[0] == pytest.approx(expected, abs=1e-12)
