"""The round's markdown summary (prefpipe/rounds/report.py)."""
from prefpipe.rounds.report import round_markdown

SUMMARY = {"round": 2, "generator_version": "r1-abcd1234", "reason": "round 2: 40 new prompts",
           "labels": {"critic": 30, "verifier": 12}, "preferences": 90,
           "metrics": {"win_rate": 0.8123, "win_rate_low": 0.78, "kl_nats": 1.5},
           "reward_model": {"val_gold_accuracy": 0.9}, "gates": {"passed": True, "failed": []}}


def test_a_published_round_names_its_version_inputs_and_headline_metrics():
    text = round_markdown({**SUMMARY, "version": "r2-ffff0000"})
    assert text.startswith("# Round 2")
    assert "**published r2-ffff0000**" in text and "sampled from: r1-abcd1234" in text
    assert "critic 30, verifier 12" in text
    assert "| gold win rate vs SFT | 0.812 |" in text and "| reward model gold accuracy | 0.900 |" in text
    assert "Gates: all passed" in text


def test_a_rejected_round_says_nothing_was_published_and_which_gates_failed():
    text = round_markdown({**SUMMARY, "version": None,
                           "gates": {"passed": False, "failed": ["kl_budget", "length_drift"]}})
    assert "**nothing published**" in text and "published r" not in text
    assert "Gates: failed: kl_budget, length_drift" in text
