"""`prefpipe report`'s text and the runs-compared page: hand values in, the frontier's points at
their hand-computed pixels, the judge chosen by the documented order, runs without KL left off with
a note, gate verdicts read even as `dvc exp show` trims them, hostile names escaped."""
from __future__ import annotations

import re

from prefpipe.evaluate import svg_charts as charts
from prefpipe.evaluate.compare_report import (
    compare_markdown,
    compare_page,
    failed_gates,
    frontier_judge,
    frontier_points,
    gate_status,
    headline_lines,
)
from tests.evaluate.test_html_report import XSS, Tags

PASS = {"metric": "kl_nats", "value": 1.0, "min": None, "max": 5.0, "status": "passed",
        "reason": "kl_nats 1 <= 5 (evaluate.kl_budget)"}
FAIL = {"metric": "kl_nats", "value": 10.0, "min": None, "max": 5.0, "status": "failed",
        "reason": "kl_nats 10 > 5 (evaluate.kl_budget)"}
SKIP = {"metric": "judge_win_rate", "value": None, "status": "skipped", "reason": "no judge"}


def run(kl=None, gates=None, **metrics) -> dict:
    values = dict(metrics, **({} if kl is None else {"kl_nats": kl}))
    return {"metrics": values, "gates": gates, "source": "test"}


def points_in(page: str) -> list[tuple[float, float, str]]:
    """(cx, cy, tooltip) of every frontier marker."""
    return [(float(x), float(y), tip) for x, y, tip in re.findall(
        r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"[^>]*><title>([^<]*)</title>', page)]


def test_frontier_points_sit_at_hand_computed_pixels():
    runs = {"beta-0.2": run(1.0, win_rate=0.7), "beta-0.02": run(10.0, win_rate=0.52)}
    page = compare_page(runs)
    # x axis over [0, 10] (ticks of 2), y over [0.5, 0.7] (ticks of 0.05): the reference (0, 0.5)
    # is in the data. Plot box 640x360, margins left 60, right 16, top 46, bottom 44:
    # x(1) = 60 + 1/10 * 564 = 116.4; y(0.7) = 316 - 1 * 270 = 46.0; x(10) = 624; y(0.52) = 289.0
    assert points_in(page) == [(60.0, 316.0, "reference (SFT): (0, 0.5)"),
                               (116.4, 46.0, "beta-0.2: (1, 0.7)"),
                               (624.0, 289.0, "beta-0.02: (10, 0.52)")]
    assert "KL from reference (nats/sequence)" in page and "gold win rate vs reference" in page
    assert charts.axis_range([0.0, 1.0, 10.0])[2] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_one_point_per_run_and_a_run_without_kl_is_left_off_with_a_note():
    runs = {"a": run(1.0, win_rate=0.6), "b": run(2.0, win_rate=0.65), "no-kl": run(win_rate=0.9)}
    points, judge, notes = frontier_points(runs)
    assert points == {"a": (1.0, 0.6), "b": (2.0, 0.65)} and judge[0] == "win_rate"
    assert notes == ["no-kl: no kl_nats in its metrics, left off the frontier"]
    page = compare_page(runs)
    assert len(points_in(page)) == 3  # a, b and the reference
    assert "no-kl: no kl_nats in its metrics, left off the frontier" in page
    assert "no-kl" in page.split("Headline metrics")[1]  # still a row of the table
    quiet = frontier_points({"a": run(1.0, win_rate=0.6)})
    assert quiet[2] == []


def test_the_judge_is_gold_then_critic_then_the_proxy_and_shared_by_the_runs():
    gold = {"a": run(1.0, win_rate=0.6, judge_win_rate=0.7), "b": run(2.0, win_rate=0.5, judge_win_rate=0.6)}
    assert frontier_judge(gold) == ("win_rate", "gold win rate vs reference")
    assert frontier_judge({"a": gold["a"], "b": run(2.0, win_rate=0.5)})[0] == "win_rate"
    critic = {"a": run(1.0, win_rate=0.6, judge_win_rate=0.7), "b": run(2.0, judge_win_rate=0.55)}
    assert frontier_judge(critic)[0] == "judge_win_rate"  # the one both have
    proxy = {"a": run(1.0, rm_win_rate=0.8)}
    assert frontier_judge(proxy) == ("rm_win_rate", "reward-model win rate vs reference (the proxy)")
    assert "(the proxy)" in compare_page(proxy)
    apart = {"a": run(1.0, win_rate=0.6), "b": run(2.0, rm_win_rate=0.8)}
    points, judge, notes = frontier_points(apart)
    assert judge[0] == "win_rate" and points == {"a": (1.0, 0.6)}
    assert notes == ["b: no win_rate, left off the frontier"]
    assert frontier_judge({"a": run(win_rate=0.6)}) is None
    assert "no data" in compare_page({"a": run(win_rate=0.6)})


def test_hostile_names_and_reasons_are_escaped_and_the_page_has_no_script():
    evil = {"metric": "m", "status": "failed", "reason": XSS}
    page = compare_page({XSS: run(1.0, {"verdicts": {XSS: evil}}, win_rate=0.6)}, title=XSS)
    tags = Tags(page)
    assert not tags.named("script") and not tags.named("img")
    assert "<script>window" not in page and "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page
    assert len(points_in(page)) == 2


def test_gate_status_reads_verdicts_even_as_dvc_trims_them():
    assert gate_status(None) == "not run"
    assert gate_status({"passed": True, "failed": [], "verdicts": {}}) == "not run"
    assert gate_status({"passed": True, "verdicts": {"kl": PASS, "j": SKIP}}) == "all 1 passed (1 skipped)"
    # `dvc exp show` drops nulls and lists: no "failed" names, no "min": the statuses decide
    trimmed = {"passed": False, "verdicts": {"kl": {k: v for k, v in FAIL.items() if v is not None},
                                             "other": PASS}}
    assert gate_status(trimmed) == "1 of 2 failed: kl"
    assert [v["name"] for v in failed_gates(trimmed)] == ["kl"]
    assert failed_gates({"passed": False, "failed": ["kl_budget"]})[0]["name"] == "kl_budget"
    assert failed_gates({"passed": True, "verdicts": {"kl": PASS}}) == []


def test_headline_lines_from_hand_values():
    metrics = {"win_rate": 0.72, "win_rate_low": 0.69, "win_rate_high": 0.75, "kl_nats": 1.7,
               "kl_nats_low": 1.5, "kl_nats_high": 1.9, "kl_nats_per_token": 0.13557,
               "rm_win_rate": 0.785}
    lines = headline_lines(metrics, {"passed": True, "verdicts": {"kl": PASS, "w": PASS}})
    assert lines == [f"{'gold win rate vs SFT':30}: 0.720 [0.690, 0.750] (95% CI)",
                     f"{'reward-model win rate (proxy)':30}: 0.785",
                     f"{'KL from reference':30}: 1.700 [1.500, 1.900] nats/sequence",
                     f"{'KL per token':30}: 0.1356 nats/token",
                     f"{'gates':30}: all 2 gates passed"]
    failed = headline_lines(metrics, {"passed": False, "verdicts": {"kl": FAIL, "w": PASS}})
    assert failed[-2:] == [f"{'gates':30}: 1 of 2 failed: kl",
                           "  failed: kl_nats 10 > 5 (evaluate.kl_budget)"]
    assert headline_lines({}, None) == [f"{'gates':30}: gates not run yet"]


def test_markdown_table_has_present_columns_intervals_and_escaped_pipes():
    runs = {"a|b": run(1.0, {"verdicts": {"kl": FAIL}}, win_rate=0.6, win_rate_low=0.55,
                       win_rate_high=0.65),
            "c": run(2.0, None, win_rate=0.7)}
    table = compare_markdown(runs).splitlines()
    assert table[0] == "| run | gold win rate [95% CI] | KL nats/seq [95% CI] | gates |"
    assert table[2] == "| a\\|b | 0.600 [0.550, 0.650] | 1.000 | 1 of 1 failed: kl |"
    assert table[3] == "| c | 0.700 | 2.000 | not run |"
    assert len(table) == 4
