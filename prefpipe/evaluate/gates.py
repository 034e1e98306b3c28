"""Gates: bounds on evaluation's metrics that a run must pass to ship its model (issue 10).

`check_gates` is pure: the metrics of metrics/evaluate.json and the params' gates in, one verdict
per gate out. A gate whose metric the run lacks (gold metrics on your own prompts, a signal not
computed) is skipped, never failed. The gates (prefpipe/config/evaluate.py):
- `evaluate.kl_budget`: kl_nats (held-out sequence KL from the reference, nats) <= budget;
- `evaluate.gates.<metric>: {min, max}`: min <= metrics[metric] <= max;
- `evaluate.gates.accuracy_drop: {max}`: for every family f with both keys,
  reference_accuracy_f - policy_accuracy_f <= max (one verdict per family)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from prefpipe.config.evaluate import ACCURACY_DROP, GateBound

Status = Literal["passed", "failed", "skipped"]
KL_GATE = "kl_budget"  # the verdict of evaluate.kl_budget
KL_METRIC = "kl_nats"
_POLICY_ACC, _REFERENCE_ACC = "policy_accuracy_", "reference_accuracy_"

# What a failed gate on a metric means, in the seed's words (the metric without policy_ / _low / _high).
KL_DRIFT, NO_BETTER = "KL drift", "no better than the reference"
COLLAPSE, HACKING, REGRESSED = "mode collapse", "reward hacking", "a family regressed"
MEANING = {
    "kl_nats": KL_DRIFT, "kl_nats_per_token": KL_DRIFT,
    "win_rate": NO_BETTER, "lc_win_rate": NO_BETTER, "judge_win_rate": NO_BETTER,
    "same_opener_share": COLLAPSE, "distinct_1": COLLAPSE, "distinct_2": COLLAPSE,
    "distinct_share": COLLAPSE, "pairwise_overlap": COLLAPSE, "first_sentence_entropy": COLLAPSE,
    "prompt_independent_share": COLLAPSE,
    "filler_rate": HACKING, "repeated_ngram_share": HACKING, "length_drift": HACKING,
    "proxy_judge_divergence": HACKING, "flaws": HACKING,
    ACCURACY_DROP: REGRESSED,
}


@dataclass(frozen=True)
class GateVerdict:
    name: str  # the gate: a key of evaluate.gates, accuracy_drop_<family> or kl_budget
    metric: str  # the metric it reads (a key of the metrics, or a derived accuracy_drop_<family>)
    value: float | None  # None when skipped
    bound: GateBound
    status: Status
    reason: str  # one line: what was compared, against which params key, and what it means

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "min": self.bound.min,
                "max": self.bound.max, "status": self.status, "reason": self.reason}


def meaning(metric: str) -> str | None:
    """The failure mode a gate on `metric` catches (None when the metric is not one we know)."""
    base = metric.removeprefix("policy_")
    for suffix in ("_low", "_high"):
        base = base.removesuffix(suffix)
    if base.startswith(ACCURACY_DROP):
        return REGRESSED
    return MEANING.get(base)


def _at(value: float, bound: float) -> bool:
    """On the bound up to float rounding: bounds are inclusive, and 0.8 - 0.7 (a drop of exactly 10
    points) is 0.10000000000000009 in float64."""
    return math.isclose(value, bound, rel_tol=1e-9, abs_tol=1e-12)


def check_bound(name: str, metric: str, value: object, bound: GateBound, key: str,
                detail: str = "") -> GateVerdict:
    """One gate: `value` of `metric` against `bound` (params key `key`). None: skipped; not a finite
    number: failed (a gate that cannot tell must not let the model through)."""
    if value is None:
        return GateVerdict(name, metric, None, bound, "skipped",
                           f"{metric}: not in the metrics, skipped ({key})")
    why = f": {meaning(metric)}" if meaning(metric) else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return GateVerdict(name, metric, None, bound, "failed",
                           f"{metric} is {value!r}, not a finite number ({key})")
    value = float(value)
    broken = None
    if bound.min is not None and value < bound.min and not _at(value, bound.min):
        broken = f"< min {bound.min:.4g}"
    elif bound.max is not None and value > bound.max and not _at(value, bound.max):
        broken = f"> max {bound.max:.4g}"
    if broken:
        return GateVerdict(name, metric, value, bound, "failed",
                           f"{metric} {value:.4g} {broken} ({key}){detail}{why}")
    shown = " ".join(p for p in (f">= {bound.min:.4g}" if bound.min is not None else "",
                                 f"<= {bound.max:.4g}" if bound.max is not None else "") if p)
    return GateVerdict(name, metric, value, bound, "passed", f"{metric} {value:.4g} {shown} ({key})")


def accuracy_drops(metrics: Mapping[str, object]) -> dict[str, tuple[float, float]]:
    """family -> (reference accuracy, policy accuracy), for every family with both keys."""
    return {key.removeprefix(_POLICY_ACC): (metrics[_REFERENCE_ACC + key.removeprefix(_POLICY_ACC)],
                                            metrics[key])
            for key in sorted(metrics)
            if key.startswith(_POLICY_ACC) and _REFERENCE_ACC + key.removeprefix(_POLICY_ACC) in metrics}


def _accuracy_verdicts(metrics: Mapping[str, object], bound: GateBound, key: str) -> list[GateVerdict]:
    drops = accuracy_drops(metrics)
    if not drops:
        return [check_bound(ACCURACY_DROP, ACCURACY_DROP, None, bound, key)]
    verdicts = []
    for family, (reference, policy) in drops.items():
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (reference, policy))
        drop = reference - policy if numbers else f"{reference!r} - {policy!r}"
        detail = f", {family} accuracy {reference:.3f} -> {policy:.3f}" if numbers else ""
        name = f"{ACCURACY_DROP}_{family}"
        verdicts.append(check_bound(name, name, drop, bound, key, detail))
    return verdicts


def check_gates(metrics: Mapping[str, object], gates: Mapping[str, GateBound],
                kl_budget: float) -> list[GateVerdict]:
    """Every gate's verdict on `metrics` (metrics/evaluate.json): the KL budget first, then
    `gates` in their order; accuracy_drop gives one verdict per family that has both accuracies."""
    verdicts = [check_bound(KL_GATE, KL_METRIC, metrics.get(KL_METRIC), GateBound(max=kl_budget),
                            "evaluate.kl_budget")]
    for name, bound in gates.items():
        key = f"evaluate.gates.{name}"
        if name == ACCURACY_DROP:
            verdicts += _accuracy_verdicts(metrics, bound, key)
        else:
            verdicts.append(check_bound(name, name, metrics.get(name), bound, key))
    return verdicts


def gates_report(verdicts: Sequence[GateVerdict]) -> dict:
    """metrics/gates.json: whether every gate passed, the failed ones by name, each verdict."""
    failed = [v.name for v in verdicts if v.status == "failed"]
    return {"passed": not failed, "failed": failed,
            "verdicts": {v.name: v.to_dict() for v in verdicts}}


def failure_message(verdicts: Sequence[GateVerdict]) -> str:
    """One line: the reason of every failed gate, joined by '; ' ('' when none failed)."""
    return "; ".join(v.reason for v in verdicts if v.status == "failed")


def verdicts_markdown(report: Mapping[str, object], title: str = "Gates") -> str:
    """A markdown table of a report's `verdicts` mapping (gates_report's shape), failed ones first."""
    verdicts = report.get("verdicts") or {}
    order = {"failed": 0, "passed": 1, "skipped": 2}
    rows = sorted(verdicts.items(), key=lambda item: order.get(str(item[1].get("status")), 3))
    passed = report.get("passed")
    lines = [f"## {title}: {'passed' if passed else 'FAILED' if passed is False else '?'}", "",
             "| gate | status | value | min | max | reason |", "|---|---|---|---|---|---|"]
    for name, v in rows:
        cells = [name, str(v.get("status", "")).upper() if v.get("status") == "failed" else
                 str(v.get("status", "")), _cell(v.get("value")), _cell(v.get("min")),
                 _cell(v.get("max")), str(v.get("reason", "")).replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
