"""The round's summary in markdown (reports/round.md, a Prefect artifact of the run)."""
from __future__ import annotations

from collections.abc import Mapping

HEADLINE = (("win_rate", "gold win rate vs SFT", "{:.3f}"),
            ("win_rate_low", "its 95% lower bound", "{:.3f}"),
            ("judge_win_rate", "judge win rate vs SFT", "{:.3f}"),
            ("kl_nats", "KL from SFT (nats)", "{:.2f}"))
REWARD = (("val_gold_accuracy", "reward model gold accuracy", "{:.3f}"),
          ("val_label_accuracy", "reward model label accuracy", "{:.3f}"))


def round_markdown(summary: Mapping) -> str:
    """`summary`: round, generator_version, reason, labels (this round's preferences by source),
    preferences (all trained on), metrics (evaluate.json), reward_model (reward.json), gates
    (gates.json) and version (None when nothing was published)."""
    version = summary.get("version")
    verdict = (f"**published {version}**: the next round samples from it" if version else
               "**nothing published**: a gate failed; `current` stays where it was")
    lines = [f"# Round {summary['round']}", "", verdict, "",
             f"- why it ran: {summary['reason']}",
             f"- sampled from: {summary['generator_version']}",
             "- this round's preferences by labeler: " + (", ".join(
                 f"{source} {n}" for source, n in summary["labels"].items()) or "none"),
             f"- preferences trained on (all rounds): {summary['preferences']}", "",
             "| metric | value |", "|---|---|"]
    for table, rows in ((summary["metrics"], HEADLINE), (summary["reward_model"], REWARD)):
        for key, name, fmt in rows:
            if isinstance(table.get(key), (int, float)):
                lines.append(f"| {name} | {fmt.format(table[key])} |")
    gates = summary["gates"]
    failed = [str(name) for name in gates.get("failed") or ()]
    lines += ["", f"Gates: {'all passed' if gates.get('passed') else 'failed: ' + ', '.join(failed)}", ""]
    return "\n".join(lines)
