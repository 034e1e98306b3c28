"""Which figures the evaluation report draws, from which data: reward vs KL, response lengths,
per-family bars and training curves, each an inline SVG from `svg_charts` in a <figure> (captions
escaped). Inputs are plain data; what is absent draws nothing, and cells read from CSV (text) are
parsed as numbers here."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from prefpipe.evaluate import svg_charts as charts


def number(value: object) -> float | None:
    """A finite float from a number or numeric text (CSV cells), else None."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and not isinstance(value, bool) else None


def fmt(value: object, digits: int = 3) -> str:
    """A value for a table cell: integers as integers, floats to `digits` decimals, text as itself."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def interval(metrics: Mapping, key: str, digits: int) -> str:
    """" [low, high]" of a metric's 95% interval (`<key>_low`, `<key>_high`), or "" without one."""
    low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
    return "" if low is None or high is None else f" [{fmt(low, digits)}, {fmt(high, digits)}]"


def figure(svg: str, caption: str = "") -> str:
    """A chart in a <figure>, with its caption escaped."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure class='figure'>{svg}{cap}</figure>"


def reward_kl_figures(metrics: Mapping, curves: Mapping[str, Sequence[Mapping]]) -> list[str]:
    """This run's point (KL, policy minus reference RM score) beside the SFT origin; and for a
    training curve with kl_nats and reward (GRPO) or score (PPO) columns, its trajectory."""
    out = []
    kl, gain = metrics.get("kl_nats"), None
    if "policy_rm_score" in metrics and "reference_rm_score" in metrics:
        gain = metrics["policy_rm_score"] - metrics["reference_rm_score"]
    if number(kl) is not None and number(gain) is not None:
        svg = charts.scatter({"reference (SFT)": [(0.0, 0.0)], "policy": [(kl, gain)]},
                             "Reward vs KL (this run)", "KL from reference (nats)", "RM score gain")
        out.append(figure(svg, f"KL {fmt(kl)}{interval(metrics, 'kl_nats', 3)} nats; mean RM score "
                               f"gain {fmt(gain)} over the reference."))
    for name, rows in curves.items():
        y_key = next((k for k in ("reward", "score") if rows and k in rows[0]), None)
        if rows and "kl_nats" in rows[0] and y_key:
            points = [(number(r.get("kl_nats")), number(r.get(y_key))) for r in rows]
            out.append(figure(charts.line_chart({name: points}, f"{name}: {y_key} vs KL over training",
                                                "KL (nats)", y_key, markers=True)))
    return out


def family_figures(family_rows: Sequence[Mapping]) -> list[str]:
    """The policy's gold win rate per family, then policy vs reference bars for every column pair."""
    if not family_rows:
        return []
    names = [str(r.get("family", i)) for i, r in enumerate(family_rows)]
    out = []
    if "win" in family_rows[0]:
        out.append(figure(charts.bar_chart({n: {"policy": number(r.get("win"))}
                                            for n, r in zip(names, family_rows)},
                                           "Gold win rate by family", "family", "win rate"),
                          "0.5 is a draw with the reference."))
    keys = [k[len("policy_"):] for k in family_rows[0] if k.startswith("policy_")
            and f"reference_{k[len('policy_'):]}" in family_rows[0]]
    for key in keys:
        groups = {n: {"policy": number(r.get(f"policy_{key}")),
                      "reference": number(r.get(f"reference_{key}"))} for n, r in zip(names, family_rows)}
        label = key.replace("_", " ")
        out.append(figure(charts.bar_chart(groups, f"{label.capitalize()} by family", "family", label)))
    return out


def length_figures(lengths: Mapping[str, Sequence[float]] | None, bins: int = 20) -> list[str]:
    """Response lengths of policy and reference on shared bins; integer lengths get one bin per
    value when the range is narrower than `bins`."""
    if not lengths:
        return []
    values = [v for vs in lengths.values() for v in vs if charts.finite(v)]
    if values and all(float(v).is_integer() for v in values):
        bins = max(1, min(bins, int(max(values) - min(values)) + 1))
    means = "; ".join(f"{escape(n)} mean {fmt(sum(vs) / len(vs), 1)}" for n, vs in lengths.items() if vs)
    return [figure(charts.histogram(lengths, bins, "Response length", "tokens"), means)]


def curve_figures(curves: Mapping[str, Sequence[Mapping]]) -> list[str]:
    """A small line chart per training-curve column (against `step`, else the row number)."""
    out = []
    for name, rows in curves.items():
        columns = [c for c in (rows[0] if rows else {}) if c not in ("step", "lr")]
        if not columns:
            out.append(figure(charts.no_data(name), "no rows"))
        for column in columns:
            points = [(number(r.get("step", i)), number(r.get(column))) for i, r in enumerate(rows)]
            out.append(figure(charts.line_chart({column: points}, f"{name}: {column}", "step", column)))
    return out


def figure_sections(metrics: Mapping, lengths: Mapping[str, Sequence[float]] | None,
                    family_rows: Sequence[Mapping],
                    curves: Mapping[str, Sequence[Mapping]]) -> list[tuple[str, list[str]]]:
    """(heading, figures) in the report's order; sections with no figure are left out."""
    sections = [("Reward vs KL", reward_kl_figures(metrics, curves)),
                ("Response lengths", length_figures(lengths)),
                ("Per family", family_figures(family_rows)),
                ("Training curves", curve_figures(curves))]
    return [(name, figs) for name, figs in sections if figs]
