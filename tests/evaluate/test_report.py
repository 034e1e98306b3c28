"""The evaluation report's header says how many distinct held-out prompts its numbers rest on."""
from __future__ import annotations

from prefpipe.evaluate.report import markdown_report, prompts_line


def test_repeated_draws_name_the_distinct_prompts():
    metrics = {"prompts_requested": 600, "prompts": 600, "distinct_prompts": 160}
    assert prompts_line(metrics) == "Held-out prompts: 600 samples of 160 distinct held-out prompts"


def test_a_capped_count_says_so_and_names_the_knob():
    line = prompts_line({"prompts_requested": 600, "prompts": 28, "distinct_prompts": 28})
    assert line.startswith("Held-out prompts: 28, each once (evaluate.prompts 600 capped at the 28")
    assert "data.heldout_fraction" in line and "600 samples" not in line


def test_distinct_prompts_or_older_metrics_give_the_plain_count():
    assert prompts_line({"prompts_requested": 40, "prompts": 40, "distinct_prompts": 40}) == \
        "Held-out prompts: 40"
    assert prompts_line({"prompts": 600}) == "Held-out prompts: 600"


def test_the_report_carries_the_line():
    metrics = {"prompts_requested": 600, "prompts": 28, "distinct_prompts": 28, "rm_win_rate": 0.5}
    report = markdown_report(metrics, [], [])
    assert report.splitlines()[2] == prompts_line(metrics)
    assert "Held-out prompts: 600" not in report
