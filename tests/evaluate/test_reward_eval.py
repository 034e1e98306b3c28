"""Reward-model evaluation: prompt-grouped splits, Pearson correlation and the ranking report."""
from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from prefpipe.evaluate.reward_eval import pearson, ranking_report, split_by_prompt
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
