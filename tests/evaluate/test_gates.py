"""Gates over evaluation's metrics: planted failures fire with their reasons, passing and missing
metrics stay quiet, and the committed runs of the default world pass or fail as documented."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prefpipe.config.evaluate import DEFAULT_GATES, EvaluateParams, GateBound
from prefpipe.evaluate.gates import (
    COLLAPSE,
    KL_DRIFT,
    NO_BETTER,
    REGRESSED,
    check_gates,
    failure_message,
    gates_report,
    meaning,
    verdicts_markdown,
)

REPO = Path(__file__).resolve().parents[2]
HEALTHY = {"kl_nats": 1.7, "win_rate_low": 0.69, "policy_accuracy_code": 0.83,
           "reference_accuracy_code": 0.83, "policy_accuracy_arithmetic": 0.20,
           "reference_accuracy_arithmetic": 0.21, "policy_same_opener_share": 0.2,
           "policy_distinct_2": 0.10, "policy_prompt_independent_share": 0.57,
           "proxy_divergence": 0.065, "length_drift": -0.32, "policy_repeated_ngram_share": 0.005}


def by_name(verdicts) -> dict:
    return {v.name: v for v in verdicts}


def test_a_healthy_run_passes_every_gate():
    verdicts = check_gates(HEALTHY, DEFAULT_GATES, kl_budget=5.0)
    assert {v.status for v in verdicts} == {"passed"}
    assert [v.name for v in verdicts] == ["kl_budget", "win_rate_low", "accuracy_drop_arithmetic",
                                          "accuracy_drop_code", "policy_same_opener_share",
                                          "policy_distinct_2", "policy_prompt_independent_share",
                                          "proxy_divergence", "length_drift",
                                          "policy_repeated_ngram_share"]
    report = gates_report(verdicts)
    assert report["passed"] is True and report["failed"] == []
    assert failure_message(verdicts) == ""


def test_a_kl_blow_up_fails_the_budget_with_its_reason():
    verdicts = by_name(check_gates({**HEALTHY, "kl_nats": 18.2}, DEFAULT_GATES, kl_budget=10.0))
    kl = verdicts["kl_budget"]
    assert (kl.status, kl.metric, kl.value, kl.bound) == ("failed", "kl_nats", 18.2, GateBound(max=10.0))
    assert kl.reason == "kl_nats 18.2 > max 10 (evaluate.kl_budget): KL drift"
    assert [v.name for v in verdicts.values() if v.status == "failed"] == ["kl_budget"]


def test_the_budget_is_inclusive():
    assert by_name(check_gates({"kl_nats": 5.0}, {}, 5.0))["kl_budget"].status == "passed"
    assert by_name(check_gates({"kl_nats": 5.000001}, {}, 5.0))["kl_budget"].status == "failed"


def test_a_win_rate_bound_under_half_fails():
    verdicts = by_name(check_gates({**HEALTHY, "win_rate_low": 0.432}, DEFAULT_GATES, 5.0))
    assert verdicts["win_rate_low"].status == "failed"
    assert verdicts["win_rate_low"].reason == ("win_rate_low 0.432 < min 0.5 (evaluate.gates.win_rate_low): "
                                               "no better than the reference")
    at_bound = by_name(check_gates({"win_rate_low": 0.5}, DEFAULT_GATES, 5.0))
    assert at_bound["win_rate_low"].status == "passed"


def test_an_accuracy_drop_fails_only_its_family():
    metrics = {**HEALTHY, "reference_accuracy_code": 0.826, "policy_accuracy_code": 0.388}
    verdicts = by_name(check_gates(metrics, {"accuracy_drop": GateBound(max=0.10)}, 5.0))
    code = verdicts["accuracy_drop_code"]
    assert code.status == "failed" and code.metric == "accuracy_drop_code"
    assert code.value == pytest.approx(0.438, abs=1e-12)  # 0.826 - 0.388 in float64
    assert code.reason == ("accuracy_drop_code 0.438 > max 0.1 (evaluate.gates.accuracy_drop), code "
                           "accuracy 0.826 -> 0.388: a family regressed")
    arithmetic = verdicts["accuracy_drop_arithmetic"]
    assert arithmetic.status == "passed" and arithmetic.value == pytest.approx(0.01, abs=1e-12)
    # a gain is a negative drop: it passes
    gained = by_name(check_gates({"policy_accuracy_code": 0.9, "reference_accuracy_code": 0.5},
                                 {"accuracy_drop": GateBound(max=0.0)}, 5.0))
    assert gained["accuracy_drop_code"].status == "passed"


def test_a_drop_of_exactly_the_bound_passes_despite_float_rounding():
    metrics = {"reference_accuracy_code": 96 / 120, "policy_accuracy_code": 84 / 120}
    assert 96 / 120 - 84 / 120 > 0.1  # 0.10000000000000009 in float64
    verdict = by_name(check_gates(metrics, {"accuracy_drop": GateBound(max=0.1)}, 5.0))["accuracy_drop_code"]
    assert verdict.status == "passed"
    metrics["policy_accuracy_code"] = 83 / 120  # one prompt more: fails
    verdict = by_name(check_gates(metrics, {"accuracy_drop": GateBound(max=0.1)}, 5.0))["accuracy_drop_code"]
    assert verdict.status == "failed"


def test_a_family_with_only_one_side_is_not_compared():
    verdicts = by_name(check_gates({"policy_accuracy_code": 0.0}, {"accuracy_drop": GateBound(max=0.1)}, 5.0))
    assert verdicts["accuracy_drop"].status == "skipped"  # one skipped verdict: nothing to compare
    assert "accuracy_drop_code" not in verdicts


def test_a_missing_metric_is_skipped_never_failed():
    """Your own prompts: KL, but no gold win rate or accuracies; signals not computed."""
    verdicts = check_gates({"kl_nats": 1.0}, DEFAULT_GATES, 5.0)
    statuses = {v.name: v.status for v in verdicts}
    assert statuses == {"kl_budget": "passed", "win_rate_low": "skipped", "accuracy_drop": "skipped",
                        "policy_same_opener_share": "skipped", "policy_distinct_2": "skipped",
                        "policy_prompt_independent_share": "skipped", "proxy_divergence": "skipped",
                        "length_drift": "skipped", "policy_repeated_ngram_share": "skipped"}
    report = gates_report(verdicts)
    assert report["passed"] is True
    assert report["verdicts"]["win_rate_low"] == {
        "metric": "win_rate_low", "value": None, "min": 0.5, "max": None, "status": "skipped",
        "reason": "win_rate_low: not in the metrics, skipped (evaluate.gates.win_rate_low)"}
    assert by_name(check_gates({}, {}, 5.0))["kl_budget"].status == "skipped"


@pytest.mark.parametrize("value", [math.nan, math.inf, "high", True])
def test_a_value_that_is_no_finite_number_fails(value):
    verdict = by_name(check_gates({"kl_nats": value}, {}, 5.0))["kl_budget"]
    assert verdict.status == "failed" and "not a finite number" in verdict.reason


def test_both_bounds_and_the_mode_collapse_signals():
    gates = {"policy_same_opener_share": GateBound(max=0.5), "policy_distinct_2": GateBound(min=0.03),
             "policy_pairwise_overlap": GateBound(min=0.0, max=0.6)}
    collapsed = {"policy_same_opener_share": 1.0, "policy_distinct_2": 0.002, "policy_pairwise_overlap": 1.0}
    failed = gates_report(check_gates(collapsed, gates, 5.0))
    assert failed["passed"] is False
    assert failed["failed"] == ["policy_same_opener_share", "policy_distinct_2", "policy_pairwise_overlap"]
    reasons = [v["reason"] for name, v in failed["verdicts"].items() if name != "kl_budget"]
    assert all(reason.endswith(": mode collapse") for reason in reasons), reasons
    quiet = {"policy_same_opener_share": 0.2, "policy_distinct_2": 0.1, "policy_pairwise_overlap": 0.1}
    assert gates_report(check_gates(quiet, gates, 5.0))["failed"] == []


def test_the_failure_message_names_every_failed_gate_in_one_line():
    metrics = {**HEALTHY, "kl_nats": 7.35, "win_rate_low": 0.222}
    message = failure_message(check_gates(metrics, DEFAULT_GATES, 5.0))
    assert message == ("kl_nats 7.35 > max 5 (evaluate.kl_budget): KL drift; win_rate_low 0.222 < min 0.5 "
                       "(evaluate.gates.win_rate_low): no better than the reference")
    assert "\n" not in message


@pytest.mark.parametrize(("metric", "expected"), [
    ("kl_nats", KL_DRIFT), ("kl_nats_high", KL_DRIFT), ("win_rate_low", NO_BETTER),
    ("lc_win_rate_low", NO_BETTER), ("policy_distinct_2", COLLAPSE), ("accuracy_drop_code", REGRESSED),
    ("policy_filler_rate", "reward hacking"), ("rm_win_rate", None), ("policy_mean_tokens", None)])
def test_meaning_of_a_metric(metric, expected):
    assert meaning(metric) == expected


def test_an_unknown_metric_gets_no_meaning_in_its_reason():
    gates = {"rm_win_rate": GateBound(min=0.99)}
    verdict = by_name(check_gates({"rm_win_rate": 0.4}, gates, 5.0))["rm_win_rate"]
    assert verdict.reason == "rm_win_rate 0.4 < min 0.99 (evaluate.gates.rm_win_rate)"


def test_verdicts_markdown_puts_failures_first():
    report = gates_report(check_gates({"kl_nats": 9.0, "win_rate_low": 0.7}, DEFAULT_GATES, 5.0))
    text = verdicts_markdown(report, "gates")
    lines = text.splitlines()
    assert lines[0] == "## gates: FAILED"
    assert lines[4].startswith("| kl_budget | FAILED | 9 |  | 5 | kl_nats 9 > max 5")
    assert lines[5].startswith("| win_rate_low | passed | 0.7 | 0.5 |")
    assert lines[-1].startswith("| ") and "skipped" in lines[-1]
    passing = verdicts_markdown(gates_report(check_gates({"kl_nats": 1.0}, {}, 5.0)))
    assert passing.splitlines()[0] == "## Gates: passed"
    piped = verdicts_markdown({"passed": False, "verdicts": {"x": {"status": "failed", "reason": "a|b"}}})
    assert "a\\|b" in piped  # a pipe in a reason does not break the table


def committed(path: str) -> dict:
    return json.loads((REPO / path).read_text())


def test_the_default_run_passes_every_default_gate():
    """The committed default run (metrics/evaluate.json): DPO on the default world."""
    defaults = EvaluateParams()
    report = gates_report(check_gates(committed("metrics/evaluate.json"), defaults.gates, defaults.kl_budget))
    assert report["failed"] == [], report


@pytest.mark.parametrize(("run", "expected"), [
    # the seed's failure modes, as docs/results.md measured them
    ("grpo-arithmetic", {"kl_budget", "win_rate_low", "accuracy_drop_code"}),  # KL drift, code regressed
    ("ppo-biased-rm-beta0", {"kl_budget", "win_rate_low", "accuracy_drop_arithmetic",
                             "accuracy_drop_code"}),
    ("ppo-biased-rm", {"win_rate_low"}),  # proxy up, gold down: KL stayed in its budget
])
def test_the_bad_runs_of_the_results_fail_their_gates(run, expected):
    defaults = EvaluateParams()
    metrics = committed(f"docs/results/{run}/evaluate.json")
    assert set(gates_report(check_gates(metrics, defaults.gates, defaults.kl_budget))["failed"]) == expected
