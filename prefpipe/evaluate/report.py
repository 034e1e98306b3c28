"""The human-readable evaluation report (Markdown)."""
from __future__ import annotations

# Reward-hacking and mode-collapse signals shown side by side (prefpipe/evaluate/signals.py).
SIGNALS = ("same_opener_share", "repeated_ngram_share", "filler_rate", "distinct_2",
           "pairwise_overlap", "first_sentence_entropy", "prompt_independent_share")


def prompts_line(metrics: dict) -> str:
    """How many held-out prompts the numbers rest on: the distinct ones, not only the draws."""
    used = metrics["prompts"]
    requested = metrics.get("prompts_requested", used)
    distinct = metrics.get("distinct_prompts", used)
    if used < requested:
        return (f"Held-out prompts: {used}, each once (evaluate.prompts {requested} capped at the "
                f"{used} there are; raise data.heldout_fraction for more)")
    if distinct < used:
        return f"Held-out prompts: {used} samples of {distinct} distinct held-out prompts"
    return f"Held-out prompts: {used}"


def markdown_report(metrics: dict, family_rows: list[dict], examples: list[dict],
                    verdicts: list[dict] | None = None) -> str:
    """The headline table, the gates' verdicts, per-family rows and a few examples; the figures
    and every signal are in the HTML report beside it."""
    def fmt(key: str, digits: int = 3) -> str:
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = ["# prefpipe evaluation", "",
             prompts_line(metrics), "",
             "| metric | policy | reference (SFT) |", "|---|---|---|"]
    if "win_rate" in metrics:
        lines.append(f"| gold win rate vs reference | {fmt('win_rate')} "
                     f"[{fmt('win_rate_low')}, {fmt('win_rate_high')}] | 0.500 |")
    lines += [
        f"| reward-model win rate | {fmt('rm_win_rate')} | 0.500 |",
        f"| mean reward-model score | {fmt('policy_rm_score')} | {fmt('reference_rm_score')} |",
        f"| KL from reference (nats/seq) | {fmt('kl_nats')} [{fmt('kl_nats_low')}, "
        f"{fmt('kl_nats_high')}] | 0 |",
        f"| mean length (tokens) | {fmt('policy_mean_tokens', 1)} | {fmt('reference_mean_tokens', 1)} |",
        f"| distinct responses | {fmt('policy_distinct_share')} | {fmt('reference_distinct_share')} |",
    ]
    for key, label in (("judge_win_rate", "critic-judged win rate"),
                       ("lc_win_rate", "length-controlled win rate (main judge)")):
        if key in metrics:
            lines.append(f"| {label} | {fmt(key)} [{fmt(key + '_low')}, {fmt(key + '_high')}] "
                         "| 0.500 |")
    if "kl_nats_per_token" in metrics:
        lines.append(f"| KL per token (nats) | {fmt('kl_nats_per_token')} | 0 |")
    for key in ("well_formed", "correct", "flaws", "accuracy_arithmetic", "accuracy_code",
                *SIGNALS, "pass@1", "pass@4"):
        if f"policy_{key}" in metrics:
            lines.append(f"| {key.replace('_', ' ')} | {fmt('policy_' + key)} | "
                         f"{fmt('reference_' + key)} |")
    if family_rows:
        columns = list(family_rows[0])
        lines += ["", "## Per family", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        for row in family_rows:
            lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                           for v in row.values()) + " |")
    lines += gate_lines(verdicts)
    lines += ["", "## Examples", ""]
    for ex in examples:
        lines += [f"- **{ex['prompt']}**", f"  - policy: {ex['policy_response']}",
                  f"  - reference: {ex['reference_response']}"]
    return "\n".join(lines) + "\n"


def gate_lines(verdicts: list[dict] | None) -> list[str]:
    """## Gates: one line per gate with its verdict (failed first), or a note that none ran."""
    if verdicts is None:
        return []
    failed = [v for v in verdicts if v["status"] == "failed"]
    head = (f"**{len(failed)} gate(s) failed**: the `gate` stage stops this run" if failed
            else "Every gate passed")
    order = sorted(verdicts, key=lambda v: {"failed": 0, "passed": 1}.get(v["status"], 2))
    return ["", "## Gates", "", head, "", *[f"- {v['status']}: {v['reason']}" for v in order]]
