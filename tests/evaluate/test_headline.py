"""The one list of headline metrics, as the run summary, the summary artifact and the experiment
tables show it."""
from __future__ import annotations

from prefpipe.evaluate.experiments import COLUMN_SETS, METRIC_FILES, markdown_table
from prefpipe.evaluate.headline import HEADLINES, artifact_keys, summary_lines

METRICS = {
    "evaluate": {"win_rate": 0.61234, "win_rate_low": 0.5, "win_rate_high": 0.7, "kl_nats": 1.23456,
                 "policy_well_formed": 0.9, "reference_well_formed": 0.8, "rm_win_rate": 0.55,
                 "policy_rm_score": 1.5, "reference_rm_score": 0.25, "policy_mean_tokens": 20.25,
                 "reference_mean_tokens": 18.0, "policy_flaws": 0.1, "policy_distinct_share": 0.95,
                 "policy_accuracy_arithmetic": 0.4, "reference_accuracy_arithmetic": 0.3},
    "policy": {"algorithm": "dpo", "final_beta": 0.1},
    "reward": {"val_gold_accuracy": 0.75, "val_label_accuracy": 0.8, "reward_length_correlation": 0.123},
    "label": {"preferences": 240, "gold_agreement": 0.85},
}


def test_run_summary_lines_keep_their_look():
    assert summary_lines(METRICS) == [
        "gold win rate vs SFT : 0.612 [0.500, 0.700] (95% CI)",
        "KL from reference    : 1.235 nats/sequence",
        "well-formed share    : policy 0.900, SFT 0.800",
        "policy optimiser     : dpo (final beta 0.1)",
        "arithmetic accuracy  : policy 0.400, SFT 0.300",
        "reward model accuracy: 0.750 vs gold on held-out pairs",
    ]


def test_summary_skips_what_a_run_lacks():
    metrics = {"evaluate": {"kl_nats": 2.0}, "policy": {"algorithm": "ppo"}}
    assert summary_lines(metrics) == ["KL from reference    : 2.000 nats/sequence",
                                      "policy optimiser     : ppo"]


def test_artifact_keys_are_the_summary_keys_in_order():
    assert artifact_keys() == (
        "win_rate", "win_rate_low", "win_rate_high", "kl_nats", "policy_well_formed",
        "reference_well_formed", "policy_rm_score", "reference_rm_score", "policy_mean_tokens",
        "reference_mean_tokens", "val_gold_accuracy", "val_label_accuracy", "gold_agreement")


def test_algorithms_table_cells():
    table = markdown_table({"run-a": {"metrics": METRICS}, "empty": {"metrics": {}}})
    header, rule, row, empty = table.splitlines()
    assert header.startswith("| run | gold win rate vs SFT [95% CI] | KL nats (held-out) |")
    assert rule == "|---|" + "---|" * len(COLUMN_SETS["algorithms"])
    assert row == ("| run-a | 0.612 [0.500, 0.700] | 1.23 | 0.550 | 1.50 | 20.2 / 18.0 | 0.100 | 0.950 "
                   "| 0.400 / 0.300 | 0.750 | 0.12 |")
    assert empty == "| empty | " + " | ".join([""] * len(COLUMN_SETS["algorithms"])) + " |"


def test_labeling_table_starts_with_the_label_metrics():
    table = markdown_table({"r": {"metrics": METRICS}}, COLUMN_SETS["labeling"])
    assert table.splitlines()[2].startswith("| r | 240 | 0.850 | ")


def test_keys_are_unique_and_files_are_the_collected_ones():
    assert all(key == h.key for key, h in HEADLINES.items())
    assert METRIC_FILES == ("evaluate", "policy", "reward", "label")
