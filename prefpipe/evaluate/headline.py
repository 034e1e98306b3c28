"""The headline metrics: the one list that `prefpipe run`'s summary, the run's Prefect summary
artifact and the experiment tables (prefpipe.evaluate.experiments) read.

Each metric lives in metrics/<file>.json under `key`; its `shape` says which keys come with it: a
"ci" metric has `KEY_low`/`KEY_high` (its 95% interval), a "vs_sft" metric `policy_X` has its SFT
twin `reference_X`. A view (a table, the summary) is a tuple of keys into HEADLINES."""
from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Shape = Literal["value", "ci", "vs_sft"]


@dataclass(frozen=True)
class Headline:
    file: str  # metrics/<file>.json
    key: str
    label: str  # its column header in the experiment tables
    fmt: str = ".3f"  # format of each number in a table cell
    shape: Shape = "value"
    # Its line in `prefpipe run`'s summary: str.format templates over the file's values; the line
    # is the parts whose fields are all there, shown when the first one is. () = not in the summary.
    summary: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The metric's key and the keys that come with it, in the summary artifact's order."""
        if self.shape == "ci":
            return (self.key, f"{self.key}_low", f"{self.key}_high")
        if self.shape == "vs_sft":
            return (self.key, "reference_" + self.key.removeprefix("policy_"))
        return (self.key,)

    def cell(self, values: Mapping[str, object]) -> str:
        """Its table cell ("" when the run has no value): `v`, `v [low, high]` or `policy / SFT`."""
        if values.get(self.key) is None:
            return ""
        numbers = [format(values[k], self.fmt) for k in self.keys]
        if self.shape == "ci":
            return f"{numbers[0]} [{numbers[1]}, {numbers[2]}]"
        return " / ".join(numbers)

    def summary_line(self, values: Mapping[str, object]) -> str | None:
        """Its line in the run summary, or None when the file lacks the metric."""
        parts = [p for p in self.summary if _fields(p) <= values.keys()]
        if not self.summary or not parts or parts[0] != self.summary[0]:
            return None
        return "".join(part.format(**values) for part in parts)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


HEADLINES: dict[str, Headline] = {h.key: h for h in (
    Headline("evaluate", "win_rate", "gold win rate vs SFT [95% CI]", shape="ci", summary=(
        "gold win rate vs SFT : {win_rate:.3f} [{win_rate_low:.3f}, {win_rate_high:.3f}] (95% CI)",)),
    Headline("evaluate", "kl_nats", "KL nats (held-out)", ".2f",
             summary=("KL from reference    : {kl_nats:.3f} nats/sequence",)),
    Headline("evaluate", "rm_win_rate", "reward-model win rate"),
    Headline("evaluate", "policy_rm_score", "RM score policy", ".2f"),
    Headline("evaluate", "reference_rm_score", "RM score SFT", ".2f"),
    Headline("evaluate", "policy_mean_tokens", "tokens policy / SFT", ".1f", "vs_sft"),
    Headline("evaluate", "policy_flaws", "flaws / response"),
    Headline("evaluate", "policy_distinct_share", "distinct share"),
    Headline("evaluate", "policy_well_formed", "well-formed policy / SFT", shape="vs_sft", summary=(
        "well-formed share    : policy {policy_well_formed:.3f}, SFT {reference_well_formed:.3f}",)),
    Headline("evaluate", "policy_accuracy_arithmetic", "arithmetic acc. policy / SFT", shape="vs_sft",
             summary=("arithmetic accuracy  : policy {policy_accuracy_arithmetic:.3f}, "
                      "SFT {reference_accuracy_arithmetic:.3f}",)),
    Headline("policy", "algorithm", "policy optimiser", "s", summary=(
        "policy optimiser     : {algorithm}", " (final beta {final_beta:.3g})")),
    Headline("reward", "val_gold_accuracy", "RM gold acc.", summary=(
        "reward model accuracy: {val_gold_accuracy:.3f} vs gold on held-out pairs",)),
    Headline("reward", "val_label_accuracy", "RM label acc."),
    Headline("reward", "reward_length_correlation", "RM-length corr.", ".2f"),
    Headline("label", "preferences", "preferences", "d"),
    Headline("label", "gold_agreement", "training labels vs gold"),
    Headline("label", "critic_gold_agreement", "critic vs gold"),
    Headline("label", "critic_prefers_longer", "critic prefers longer"),
    Headline("label", "critic_prefers_first", "critic prefers first shown"),
    Headline("label", "critic_order_agreement", "critic orders agree"),
    Headline("label", "escalated", "escalated", "d"),
)}

# The views: each a tuple of keys into HEADLINES, in the order shown.
RUN_SUMMARY = ("win_rate", "kl_nats", "policy_well_formed", "algorithm", "policy_accuracy_arithmetic",
               "val_gold_accuracy")
SUMMARY_ARTIFACT = ("win_rate", "kl_nats", "policy_well_formed", "policy_rm_score", "reference_rm_score",
                    "policy_mean_tokens", "val_gold_accuracy", "val_label_accuracy", "gold_agreement")
ALGORITHMS_TABLE = ("win_rate", "kl_nats", "rm_win_rate", "policy_rm_score", "policy_mean_tokens",
                    "policy_flaws", "policy_distinct_share", "policy_accuracy_arithmetic",
                    "val_gold_accuracy", "reward_length_correlation")
LABELING_TABLE = ("preferences", "gold_agreement", "critic_gold_agreement", "critic_prefers_longer",
                  "critic_prefers_first", "critic_order_agreement", "escalated", "val_gold_accuracy",
                  "reward_length_correlation", "win_rate", "kl_nats", "policy_mean_tokens", "policy_flaws")


def view(keys: tuple[str, ...]) -> tuple[Headline, ...]:
    return tuple(HEADLINES[key] for key in keys)


def summary_lines(metrics: Mapping[str, Mapping[str, object]]) -> list[str]:
    """`prefpipe run`'s summary of the metrics files (by stem) it finds."""
    lines = (h.summary_line(metrics.get(h.file, {})) for h in view(RUN_SUMMARY))
    return [line for line in lines if line is not None]


def artifact_keys() -> tuple[str, ...]:
    """The keys the Prefect summary artifact shows, from whichever metrics file holds them."""
    return tuple(k for h in view(SUMMARY_ARTIFACT) for k in h.keys)
