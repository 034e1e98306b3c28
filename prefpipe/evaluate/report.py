"""The human-readable evaluation report (Markdown)."""
from __future__ import annotations


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


def markdown_report(metrics: dict, family_rows: list[dict], examples: list[dict]) -> str:
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
    for key in ("well_formed", "correct", "flaws", "accuracy_arithmetic", "accuracy_code"):
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
    lines += ["", "## Examples", ""]
    for ex in examples:
        lines += [f"- **{ex['prompt']}**", f"  - policy: {ex['policy_response']}",
                  f"  - reference: {ex['reference_response']}"]
    return "\n".join(lines) + "\n"
