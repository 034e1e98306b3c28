"""The evaluation report as one self-contained HTML page (issue 10): a gate banner, the headline
table, every gate with its threshold and verdict, figures, and sample responses side by side.

Everything is inline: charts are SVG drawn by `svg_charts`, the style is one <style> block, there is
no script and nothing is fetched, and a Content-Security-Policy meta tag makes the browser refuse
anything else (the HTML of `dvc plots show` loads vega from a CDN and renders blank offline). Every
text that comes from data (prompts, responses, names, reasons) is escaped with `html.escape`, so a
response holding markup shows as its literal text."""
from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from prefpipe.evaluate import svg_charts as charts
from prefpipe.evaluate.report import prompts_line
from prefpipe.evaluate.report_figures import figure_sections, fmt, interval, number

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# (label, key, digits, baseline shown in the reference column); a row is drawn when key is present
HEADLINE = (("gold win rate vs reference", "win_rate", 3, "0.500"),
            ("length-controlled win rate", "lc_win_rate", 3, "0.500"),
            ("judge win rate", "judge_win_rate", 3, "0.500"),
            ("reward-model win rate (the proxy)", "rm_win_rate", 3, "0.500"),
            ("KL from reference (nats/sequence)", "kl_nats", 3, "0"),
            ("KL per token (nats)", "kl_nats_per_token", 4, "0"),
            ("length drift (policy / reference mean length - 1)", "length_drift", 3, "0"),
            ("proxy divergence (RM win rate - main judge's)", "proxy_divergence", 3, "0"))
# policy_X / reference_X pairs drawn first, in this order; any other pair follows, sorted
PAIRED = ("rm_score", "mean_tokens", "distinct_share", "well_formed", "correct", "flaws",
          "same_opener_share", "repeated_ngram_share", "filler_rate", "distinct_1", "distinct_2",
          "pairwise_overlap", "first_sentence_entropy", "prompt_independent_share")
LABELS = {"rm_score": "mean reward-model score", "mean_tokens": "mean length (tokens)",
          "distinct_share": "distinct responses"}
SAMPLE_TEXT = {"prompt_id", "category", "prompt", "policy_response", "reference_response",
               "policy_finished", "reference_finished", "policy_rm", "reference_rm", "log_ratio"}
OUTCOME_WORDS = {1.0: "policy", 0.0: "reference", 0.5: "tie"}  # a policy win counts 1, ties as half
STYLE = """body{font:14px/1.45 system-ui,sans-serif;color:#222;margin:24px auto;max-width:1200px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}th{background:#f5f5f5}td.num{text-align:right}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.banner{padding:12px 16px;border-radius:6px;font-weight:600;margin:12px 0;border:1px solid}
.banner.passed{background:#e6f4ea;color:#137333}.banner.failed{background:#fce8e6;color:#a50e0e}
.banner.none{background:#f1f3f4;color:#444}tr.failed td{background:#fdf0ef}
.status{font-weight:700;padding:1px 8px;border-radius:10px;color:#fff;background:#777}
.status.passed{background:#137333}.status.failed{background:#a50e0e}
.figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:4px}
figcaption{font-size:12px;color:#555;max-width:480px}.cut{color:#a50e0e;font-size:12px}
pre.response{white-space:pre-wrap;word-break:break-word;margin:0;font:13px/1.4 monospace;max-width:420px}
ul.verdicts{margin:0;padding-left:16px}"""


def short(value: object) -> str:
    """A number to four significant digits (integers whole), nothing for None, other values as text."""
    n = number(value)
    return "" if value is None else fmt(value) if n is None else charts.number(n)


def headline_table(metrics: Mapping) -> str:
    """metric | policy | reference rows for the keys present: single numbers with their 95% interval
    when `<key>_low`/`_high` exist, then every policy_X that has a reference_X."""
    rows = [(label, fmt(metrics[key], d) + interval(metrics, key, d), base)
            for label, key, d, base in HEADLINE if key in metrics]
    pairs = [k[len("policy_"):] for k in metrics
             if k.startswith("policy_") and f"reference_{k[len('policy_'):]}" in metrics]
    order = [k for k in PAIRED if k in pairs] + sorted(k for k in pairs if k not in PAIRED)
    for key in order:
        digits = 1 if key == "mean_tokens" else 3
        rows.append((LABELS.get(key, key.replace("_", " ")), fmt(metrics[f"policy_{key}"], digits),
                     fmt(metrics[f"reference_{key}"], digits)))
    body = "".join(f'<tr><td>{escape(label)}</td><td class="num">{escape(pol)}</td>'
                   f'<td class="num">{escape(ref)}</td></tr>' for label, pol, ref in rows)
    return ("<table class='headline'><tr><th>metric</th><th>policy</th><th>reference (SFT)</th></tr>"
            f"{body}</table>")


def gate_verdicts(gates: Mapping) -> list[dict]:
    """The verdict list from metrics/gates.json's {"passed": bool, "verdicts": {name: {...}}}."""
    return [{"name": name, **verdict} for name, verdict in (gates.get("verdicts") or {}).items()]


def banner(verdicts: Sequence[Mapping] | None) -> str:
    """One line on top: all gates passed, N of M failed (named), or gates not run."""
    if not verdicts:
        return "<div class='banner none'>Gates were not run: no verdicts to show.</div>"
    failed = [v for v in verdicts if v.get("status") == "failed"]
    skipped = sum(v.get("status") == "skipped" for v in verdicts)
    note = f" ({skipped} skipped)" if skipped else ""
    if failed:
        names = ", ".join(escape(str(v.get("name", "?"))) for v in failed)
        return (f"<div class='banner failed'>{len(failed)} of {len(verdicts)} gates failed{note}: "
                f"{names}</div>")
    return f"<div class='banner passed'>All {len(verdicts) - skipped} gates passed{note}.</div>"


def threshold(verdict: Mapping) -> str:
    """A gate's bound as text: its `bound`, else from gates.json's `min` / `max` (null = open)."""
    if verdict.get("bound") is not None:
        return str(verdict["bound"])
    sides = [f"{side} {short(verdict[side])}" for side in ("min", "max") if verdict.get(side) is not None]
    return ", ".join(sides)


def verdict_table(verdicts: Sequence[Mapping] | None) -> str:
    """gate | metric | value | threshold | verdict | reason, failed rows first and highlighted."""
    if not verdicts:
        return "<p>Gates were not run.</p>"
    head = ("<tr><th>gate</th><th>metric</th><th>value</th><th>threshold</th><th>verdict</th>"
            "<th>reason</th></tr>")
    rows = []
    for v in sorted(verdicts, key=lambda v: v.get("status") != "failed"):  # stable: failed first
        status = str(v.get("status", "skipped"))
        css = status if status in ("passed", "failed", "skipped") else "skipped"
        rows.append(f"<tr class='{css}'><td>{escape(str(v.get('name', '')))}</td>"
                    f"<td>{escape(str(v.get('metric', '')))}</td>"
                    f"<td class='num'>{escape(short(v.get('value')))}</td>"
                    f"<td>{escape(threshold(v))}</td>"
                    f"<td><span class='status {css}'>{escape(status)}</span></td>"
                    f"<td>{escape(str(v.get('reason') or ''))}</td></tr>")
    return f"<table class='verdicts'>{head}{''.join(rows)}</table>"


def sample_verdicts(row: Mapping) -> list[str]:
    """Every verdict a sample row carries: the reward model's (from the two scores, standing in for
    its rm_outcome), the log-ratio, and each other column; a judge's `<name>_outcome` (1 policy,
    0 reference, 0.5 tie) reads "<name>: policy"."""
    out, shown = [], set(SAMPLE_TEXT)
    pol, ref = number(row.get("policy_rm")), number(row.get("reference_rm"))
    if pol is not None and ref is not None:
        winner = "policy" if pol > ref else "reference" if pol < ref else "tie"
        out.append(f"reward model: {winner} ({fmt(pol)} vs {fmt(ref)})")
        shown.add("rm_outcome")
    if number(row.get("log_ratio")) is not None:
        out.append(f"log ratio policy/reference: {fmt(row['log_ratio'])}")
    for key, value in row.items():
        word = OUTCOME_WORDS.get(number(value)) if key.endswith("_outcome") else None
        if key not in shown:
            out.append(f"{key.removesuffix('_outcome')}: {word}" if word else
                       f"{key.replace('_', ' ')}: {fmt(value)}")
    return out


def samples_table(samples: Sequence[Mapping], limit: int) -> str:
    """# | category | prompt | reference | policy | verdicts for the first `limit` samples."""
    if not samples:
        return "<p>No samples.</p>"

    def response(row: Mapping, side: str) -> str:
        finished = row.get(f"{side}_finished", True) is not False
        cut = "" if finished else "<div class='cut'>(cut off at the token limit)</div>"
        return f"<pre class='response'>{escape(str(row.get(f'{side}_response', '')))}</pre>{cut}"

    rows = []
    for i, row in enumerate(samples[:limit]):
        verdicts = "".join(f"<li>{escape(v)}</li>" for v in sample_verdicts(row))
        rows.append(f"<tr><td class='num'>{i + 1}</td><td>{escape(str(row.get('category', '')))}</td>"
                    f"<td><pre class='response'>{escape(str(row.get('prompt', '')))}</pre></td>"
                    f"<td>{response(row, 'reference')}</td><td>{response(row, 'policy')}</td>"
                    f"<td><ul class='verdicts'>{verdicts}</ul></td></tr>")
    head = ("<tr><th>#</th><th>category</th><th>prompt</th><th>reference (SFT)</th><th>policy</th>"
            "<th>verdicts</th></tr>")
    return f"<table class='samples'>{head}{''.join(rows)}</table>"


def html_report(metrics: Mapping, verdicts: Sequence[Mapping] | None = None,
                family_rows: Sequence[Mapping] = (), samples: Sequence[Mapping] = (),
                lengths: Mapping[str, Sequence[float]] | None = None,
                curves: Mapping[str, Sequence[Mapping]] | None = None, *,
                title: str = "prefpipe evaluation", max_samples: int = 12) -> str:
    """The whole page: banner, headline, gates, figures, the first `max_samples` samples and every
    metric. Inputs are plain data (metrics/evaluate.json, gates.json's verdicts, eval_by_family.csv
    rows, eval_samples rows, token counts by side, training-curve rows by name); absent ones are
    skipped."""
    figures = "".join(f"<h2>{escape(name)}</h2><div class='figures'>{''.join(figs)}</div>"
                      for name, figs in figure_sections(metrics, lengths, family_rows, curves or {}))
    everything = "".join(f"<tr><td>{escape(str(k))}</td><td class='num'>"
                         f"{escape(short(v))}</td></tr>"
                         for k, v in sorted(metrics.items()))
    lead = f"<p>{escape(prompts_line(metrics))}</p>" if "prompts" in metrics else ""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1>{lead}{banner(verdicts)}"
            f"<h2>Headline</h2>{headline_table(metrics)}"
            f"<h2>Gates: each signal, its threshold and verdict</h2>{verdict_table(verdicts)}"
            f"{figures}<h2>Sample responses</h2>{samples_table(samples, max_samples)}"
            f"<h2>All metrics</h2><details><summary>{len(metrics)} values</summary>"
            f"<table>{everything}</table></details></body></html>\n")


def read_curves(paths: Iterable[Path]) -> dict[str, list[dict]]:
    """Training-curve rows by file stem from plot CSVs (plots/sft_loss.csv -> "sft_loss"), cells as
    floats where they parse; a missing file is left out, a header-only one gives no rows."""
    out = {}
    for path in map(Path, paths):
        if path.exists():
            with path.open(newline="") as f:
                out[path.stem] = [{k: number(v) if number(v) is not None else v for k, v in row.items()}
                                  for row in csv.DictReader(f)]
    return out


def write_html_report(path: Path, html: str) -> Path:
    """Write the page (UTF-8), creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
