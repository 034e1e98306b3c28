"""The self-contained HTML report: hostile text escaped and no script anywhere, a banner that
follows the gate verdicts, rows and figures only for what is present, every sample verdict shown."""
from __future__ import annotations

from html.parser import HTMLParser

from prefpipe.evaluate.html_report import (
    CSP,
    banner,
    gate_verdicts,
    headline_table,
    html_report,
    read_curves,
    sample_verdicts,
    write_html_report,
)

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
METRICS = {"prompts": 40, "win_rate": 0.72, "win_rate_low": 0.69, "win_rate_high": 0.75,
           "rm_win_rate": 0.785, "kl_nats": 1.7, "kl_nats_low": 1.5, "kl_nats_high": 1.9,
           "policy_rm_score": 2.5, "reference_rm_score": 1.0, "policy_mean_tokens": 12.53,
           "reference_mean_tokens": 18.4}
PASSED = {"name": "kl_budget", "metric": "kl_nats", "value": 1.7, "bound": "max 10.0",
          "status": "passed", "reason": ""}
FAILED = {"name": "win_floor", "metric": "win_rate_low", "value": 0.45, "bound": "min 0.5",
          "status": "failed", "reason": "win_rate_low 0.450 < 0.5"}
SKIPPED = {"name": "judge", "metric": "judge_win_rate", "value": None, "bound": "min 0.5",
           "status": "skipped", "reason": "no judge configured"}


def sample(i: int, **extra) -> dict:
    return {"prompt_id": f"p{i}", "category": "code", "prompt": f"prompt {i}",
            "policy_response": f"policy says {i}", "reference_response": f"reference says {i}",
            "policy_finished": True, "reference_finished": True, "policy_rm": 0.4,
            "reference_rm": 0.9, "log_ratio": 0.25, **extra}


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def test_hostile_text_everywhere_is_escaped_and_the_page_has_no_script():
    page = html_report({**METRICS, f"policy_{XSS}": 1.0, f"reference_{XSS}": 2.0},
                       [{**FAILED, "name": XSS, "reason": XSS, "bound": XSS}],
                       [{"family": XSS, "win": 0.5, "policy_correct": 0.5, "reference_correct": 0.4}],
                       [sample(0, category=XSS, prompt=XSS, policy_response=XSS, reference_response=XSS,
                               judge_outcome=XSS)],
                       {XSS: [1, 2, 3]}, {XSS: [{"step": 0, XSS: 1.0}, {"step": 1, XSS: 0.5}]}, title=XSS)
    tags = Tags(page)
    assert "<script" not in page.lower() and not tags.named("script")
    assert not tags.named("img")  # the onerror image is text, not an element
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 8  # prompt, both responses, verdicts, names, title...


def test_the_page_fetches_nothing_and_says_so_in_its_policy():
    page = html_report(METRICS, [PASSED], [], [sample(0)], {"policy": [1, 2]}, {})
    tags = Tags(page)
    (csp,) = [m for m in tags.named("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp["content"] == CSP == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert not [attrs for _, attrs in tags.tags if "src" in attrs or "href" in attrs]
    assert not tags.named("link") and not tags.named("iframe")


def test_the_banner_follows_the_verdicts():
    assert "banner failed'>1 of 3 gates failed (1 skipped): win_floor<" in banner([PASSED, FAILED, SKIPPED])
    assert "banner passed'>All 1 gates passed (1 skipped).<" in banner([PASSED, SKIPPED])
    assert "banner passed'>All 2 gates passed.<" in banner([PASSED, {**PASSED, "name": "other"}])
    assert "banner none'>Gates were not run" in banner(None) and "Gates were not run" in banner([])
    page = html_report(METRICS, [PASSED, FAILED])
    assert "banner failed" in page and "banner passed" not in page
    assert page.index("banner failed") < page.index("<h2>Headline")  # on top


def test_each_gate_shows_its_metric_value_threshold_and_verdict_failed_first():
    gates = {"passed": False, "failed": ["win_floor"], "verdicts": {  # gates.json's shape
        "kl_budget": {"metric": "kl_nats", "value": 1.7, "min": None, "max": 10.0, "status": "passed",
                      "reason": ""},
        "band": {"metric": "length_drift", "value": None, "min": -0.5, "max": 0.5, "status": "skipped",
                 "reason": "no length_drift"},
        "win_floor": {k: v for k, v in FAILED.items() if k not in ("name", "bound")} | {"min": 0.5}}}
    page = html_report(METRICS, gate_verdicts(gates))
    assert ("<tr class='failed'><td>win_floor</td><td>win_rate_low</td><td class='num'>0.45</td>"
            "<td>min 0.5</td><td><span class='status failed'>failed</span></td>"
            "<td>win_rate_low 0.450 &lt; 0.5</td></tr>") in page
    assert ("<tr class='passed'><td>kl_budget</td><td>kl_nats</td><td class='num'>1.7</td>"
            "<td>max 10</td>") in page
    assert "<td>band</td><td>length_drift</td><td class='num'></td><td>min -0.5, max 0.5</td>" in page
    assert page.index("<td>win_floor") < page.index("<td>kl_budget") < page.index("<td>band")
    assert "<td>max 10.0</td>" in html_report(METRICS, [PASSED])  # a given bound is shown as given
    assert "<p>Gates were not run.</p>" in html_report(METRICS)


def test_headline_rows_for_present_metrics_only():
    table = headline_table(METRICS)
    assert "gold win rate vs reference</td><td class=\"num\">0.720 [0.690, 0.750]</td>" in table
    assert "KL from reference (nats/sequence)</td><td class=\"num\">1.700 [1.500, 1.900]" in table
    assert "mean length (tokens)</td><td class=\"num\">12.5</td><td class=\"num\">18.4" in table
    for absent in ("length-controlled", "judge win rate", "KL per token", "flaws", "filler"):
        assert absent not in table
    no_gold = headline_table({k: v for k, v in METRICS.items() if not k.startswith("win_rate")})
    assert "gold win rate" not in no_gold and "reward-model win rate (the proxy)" in no_gold


def test_new_metrics_appear_when_present_and_unpaired_sides_are_left_out():
    table = headline_table({**METRICS, "lc_win_rate": 0.61, "lc_win_rate_low": 0.55,
                            "lc_win_rate_high": 0.67, "kl_nats_per_token": 0.1234,
                            "policy_filler_rate": 0.2, "reference_filler_rate": 0.05,
                            "policy_zzz_new": 1, "reference_zzz_new": 2, "policy_only_one": 0.9})
    assert "length-controlled win rate</td><td class=\"num\">0.610 [0.550, 0.670]" in table
    assert "KL per token (nats)</td><td class=\"num\">0.1234" in table
    assert "filler rate</td><td class=\"num\">0.200</td><td class=\"num\">0.050" in table
    assert "zzz new</td><td class=\"num\">1</td><td class=\"num\">2" in table
    assert "only one" not in table
    assert table.index("filler rate") < table.index("zzz new")  # known pairs first, others after


def figure_titles(page: str) -> list[str]:
    return [attrs["aria-label"] for attrs in Tags(page).named("svg")]


def test_the_figures_sit_between_the_gates_and_the_samples():
    page = html_report(METRICS, None, [], [sample(0)], {"policy": [3, 4]})
    assert figure_titles(page) == ["Reward vs KL (this run)", "Response length"]
    assert page.index("<h2>Gates") < page.index("<h2>Reward vs KL") < page.index("<h2>Response lengths") \
        < page.index("<h2>Sample responses")
    assert figure_titles(html_report({"prompts": 3})) == [] and "<figure" not in html_report({"prompts": 3})


def test_samples_side_by_side_with_every_verdict_and_the_limit():
    rows = [sample(i, gold_outcome=1.0, judge_outcome=0.5, rm_outcome=0.0, policy_finished=i != 1)
            for i in range(5)]
    page = html_report(METRICS, None, [], rows, max_samples=3)
    assert page.count("policy says") == 3 and "policy says 3" not in page
    assert page.index("reference says 0") < page.index("policy says 0")  # reference, then policy
    assert page.count("cut off at the token limit") == 1
    assert sample_verdicts(rows[0]) == ["reward model: reference (0.400 vs 0.900)",
                                        "log ratio policy/reference: 0.250",
                                        "gold: policy", "judge: tie"]  # rm_outcome: the scores say it
    assert sample_verdicts(sample(0, policy_rm=2.0, critic_outcome=0.0, judge_outcome="?", note="x"))[::2] \
        == ["reward model: policy (2.000 vs 0.900)", "critic: reference", "note: x"]
    assert sample_verdicts({"rm_outcome": 0.5}) == ["rm: tie"]  # without scores, the outcome itself
    assert "No samples." in html_report(METRICS)


def test_read_curves_and_write(tmp_path):
    (tmp_path / "sft_loss.csv").write_text("step,loss,lr\n0,6.9,0.0003\n1,6.8,nan\n")
    (tmp_path / "policy_train.csv").write_text("step,loss\n")  # header only: no rows
    curves = read_curves([tmp_path / "sft_loss.csv", tmp_path / "policy_train.csv", tmp_path / "gone.csv"])
    assert curves == {"sft_loss": [{"step": 0.0, "loss": 6.9, "lr": 0.0003},
                                   {"step": 1.0, "loss": 6.8, "lr": "nan"}], "policy_train": []}
    page = html_report(METRICS, curves=curves)
    assert "policy_train" in figure_titles(page)  # an empty curve draws "no data", not nothing
    path = write_html_report(tmp_path / "reports" / "evaluation.html", page)
    assert path.read_text(encoding="utf-8") == page
