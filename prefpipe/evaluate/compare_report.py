"""What `prefpipe report` shows (issue 10): one run's headline and gate verdicts as text, and for
several runs the reward-vs-KL frontier page and table.

The frontier is the view of the DPO paper's Figure 2 (Rafailov et al. 2023): each run a point at
x = its KL from the reference (kl_nats, nats/sequence) and y = its win rate against the reference,
read from the main judge: gold `win_rate` when the runs have it, else the critic's
`judge_win_rate`, else the reward model's `rm_win_rate` (the proxy the policy was optimised
against, labelled so). The reference (SFT) itself sits at (0, 0.5): against itself it wins half.
Every function is pure over plain data: a run is {"metrics": evaluate.json's values,
"gates": gates.json's (or None when the gate stage did not run), "source": where it came from}.
The page follows html_report's rules (inline SVG, one <style>, no script, a CSP, every text
escaped) and reuses its style and cells."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from prefpipe.evaluate import svg_charts as charts
from prefpipe.evaluate.html_report import CSP, STYLE
from prefpipe.evaluate.report_figures import figure, fmt, interval, number

# The judges a frontier can read, in order of preference: (key in evaluate.json, axis label).
JUDGES = (("win_rate", "gold win rate vs reference"),
          ("judge_win_rate", "judge win rate vs reference"),
          ("rm_win_rate", "reward-model win rate vs reference (the proxy)"))
KL = "kl_nats"
REFERENCE = "reference (SFT)"
# (label, key, digits) of the table's columns; a column is shown when some run has its key.
COLUMNS = (("gold win rate [95% CI]", "win_rate", 3),
           ("length-controlled [95% CI]", "lc_win_rate", 3),
           ("judge win rate [95% CI]", "judge_win_rate", 3),
           ("RM win rate (proxy)", "rm_win_rate", 3),
           ("KL nats/seq [95% CI]", "kl_nats", 3),
           ("KL nats/token", "kl_nats_per_token", 4),
           ("length drift", "length_drift", 3),
           ("proxy divergence", "proxy_divergence", 3))
# `prefpipe report`'s lines: (label, key, digits, unit after the interval).
LINES = (("gold win rate vs SFT", "win_rate", 3, " (95% CI)"),
         ("length-controlled win rate", "lc_win_rate", 3, " (95% CI)"),
         ("judge win rate vs SFT", "judge_win_rate", 3, " (95% CI)"),
         ("reward-model win rate (proxy)", "rm_win_rate", 3, ""),
         ("KL from reference", "kl_nats", 3, " nats/sequence"),
         ("KL per token", "kl_nats_per_token", 4, " nats/token"))


def verdict_list(gates: Mapping | None) -> list[dict]:
    """gates.json's verdicts as a list, each with its name ([] when the gates did not run)."""
    return [{"name": name, **v} for name, v in ((gates or {}).get("verdicts") or {}).items()]


def failed_gates(gates: Mapping | None) -> list[dict]:
    """The failed verdicts. `dvc exp show` drops gates.json's lists (its `failed` names), so the
    verdicts' statuses decide; a bare `"passed": false` with no verdicts counts as one failure."""
    failed = [v for v in verdict_list(gates) if v.get("status") == "failed"]
    if not failed and gates and gates.get("passed") is False:
        names = gates.get("failed") or ["gates"]
        failed = [{"name": str(n), "status": "failed", "reason": f"{n} failed"} for n in names]
    return failed


def gate_status(gates: Mapping | None) -> str:
    """One phrase: "not run", "all N passed" (with "M skipped"), or "N of M failed: names"."""
    verdicts, failed = verdict_list(gates), failed_gates(gates)
    if gates is None or (not verdicts and not failed):
        return "not run"
    if failed:
        return (f"{len(failed)} of {max(len(verdicts), len(failed))} failed: "
                + ", ".join(str(v.get("name", "?")) for v in failed))
    skipped = sum(v.get("status") == "skipped" for v in verdicts)
    note = f" ({skipped} skipped)" if skipped else ""
    return f"all {len(verdicts) - skipped} passed{note}"


def headline_lines(metrics: Mapping, gates: Mapping | None) -> list[str]:
    """`prefpipe report`: every judge's win rate with its interval, KL, then the gates: each failed
    gate's reason, or "all N gates passed", or "gates not run yet"."""
    lines = [f"{label:30}: {fmt(metrics[key], d)}{interval(metrics, key, d)}{unit}"
             for label, key, d, unit in LINES if number(metrics.get(key)) is not None]
    failed, status = failed_gates(gates), gate_status(gates)
    if status == "not run":
        lines.append(f"{'gates':30}: gates not run yet")
    elif failed:
        lines.append(f"{'gates':30}: {status}")
        lines += [f"  failed: {v.get('reason') or v.get('name')}" for v in failed]
    else:
        lines.append(f"{'gates':30}: {status.replace('passed', 'gates passed', 1)}")
    return lines


def frontier_judge(runs: Mapping[str, Mapping]) -> tuple[str, str] | None:
    """The judge the frontier reads: the first of JUDGES that every run with a KL has, else the
    first that any of them has (runs without it are then left off); None when no run has one."""
    with_kl = [r["metrics"] for r in runs.values() if number(r["metrics"].get(KL)) is not None]
    for test in (all, any):
        for key, label in JUDGES:
            if with_kl and test(number(m.get(key)) is not None for m in with_kl):
                return key, label
    return None


def frontier_points(runs: Mapping[str, Mapping]) -> tuple[dict[str, tuple[float, float]],
                                                           tuple[str, str] | None, list[str]]:
    """({name: (kl_nats, win rate)}, the judge, notes on the runs left off and why)."""
    judge = frontier_judge(runs)
    points, notes = {}, []
    for name, run in runs.items():
        kl = number(run["metrics"].get(KL))
        y = number(run["metrics"].get(judge[0])) if judge else None
        if kl is None:
            notes.append(f"{name}: no {KL} in its metrics, left off the frontier")
        elif y is None:
            notes.append(f"{name}: no {judge[0] if judge else 'win rate'}, left off the frontier")
        else:
            points[name] = (kl, y)
    return points, judge, notes


def frontier_chart(runs: Mapping[str, Mapping]) -> tuple[str, list[str]]:
    """The reward-vs-KL scatter (one labelled point per run, the reference at (0, 0.5)) and its
    notes. svg_charts draws no error bars: the intervals are in the table."""
    points, judge, notes = frontier_points(runs)
    if not points:
        return charts.no_data("Reward vs KL frontier", 640, 360), notes
    series = {REFERENCE: [(0.0, 0.5)], **{name: [p] for name, p in points.items()}}
    legend = sum(24 + 6.5 * len(name) for name in series)  # svg_charts.legend's row, in pixels
    svg = charts.scatter(series, "Reward vs KL frontier", "KL from reference (nats/sequence)",
                         judge[1], width=max(640, int(legend) + 80), height=360)
    caption = (f"Each run at its held-out KL and {judge[1]}; the reference (SFT) wins half against "
               "itself at KL 0. Up and to the left is better. 95% intervals are in the table.")
    return figure(svg, caption), notes


def table_rows(runs: Mapping[str, Mapping]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the comparison: run, each column some run has (value [low, high]),
    gates."""
    columns = [c for c in COLUMNS if any(c[1] in r["metrics"] for r in runs.values())]
    header = ["run", *(label for label, _, _ in columns), "gates"]
    rows = [[name, *(fmt(r["metrics"][key], d) + interval(r["metrics"], key, d)
                     if key in r["metrics"] else "" for _, key, d in columns),
             gate_status(r.get("gates"))] for name, r in runs.items()]
    return header, rows


def compare_markdown(runs: Mapping[str, Mapping]) -> str:
    """The comparison table as markdown ("|" in names and cells escaped)."""
    header, rows = table_rows(runs)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)]) + "\n"


def _table_html(runs: Mapping[str, Mapping]) -> str:
    header, rows = table_rows(runs)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row, run in zip(rows, runs.values()):
        css = "failed" if failed_gates(run.get("gates")) else "passed" if run.get("gates") else ""
        cells = [f"<td>{escape(row[0])}</td>",
                 *(f"<td class='num'>{escape(c)}</td>" for c in row[1:-1]),
                 f"<td><span class='status {css}'>{escape(row[-1])}</span></td>"]
        body.append(f"<tr class='{css}'>{''.join(cells)}</tr>")
    return f"<table class='compare'><tr>{head}</tr>{''.join(body)}</table>"


def _failures_html(runs: Mapping[str, Mapping]) -> str:
    items = [f"<li>{escape(name)}: {escape(str(v.get('reason') or v.get('name')))}</li>"
             for name, run in runs.items() for v in failed_gates(run.get("gates"))]
    return f"<h2>Failed gates</h2><ul>{''.join(items)}</ul>" if items else ""


def compare_page(runs: Mapping[str, Mapping], title: str = "prefpipe: runs compared") -> str:
    """The whole page: the frontier, notes on runs left off it, the table, every failed gate's
    reason and where each run came from."""
    chart, notes = frontier_chart(runs)
    note_html = "".join(f"<p class='note'>{escape(n)}</p>" for n in notes)
    sources = "".join(f"<tr><td>{escape(name)}</td><td>{escape(str(r.get('source', '')))}</td></tr>"
                      for name, r in runs.items())
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>{len(runs)} runs.</p>"
            f"<h2>Reward vs KL</h2><div class='figures'>{chart}</div>{note_html}"
            f"<h2>Headline metrics and gates</h2>{_table_html(runs)}{_failures_html(runs)}"
            f"<h2>Sources</h2><table><tr><th>run</th><th>from</th></tr>{sources}</table>"
            "</body></html>\n")

