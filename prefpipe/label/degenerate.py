"""Flag labelers whose output is degenerate: (nearly) all ties, always the response shown first, or
one principle for every pair. Such labels train nothing (ties) or teach an artefact (position,
one principle); the label stage warns and records the shares in metrics/label.json.

    metrics, warnings = degeneracy_report(routed.labels, routed.critic_judgments)"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from prefpipe.label.types import Label
from prefpipe.vocab import Choice, LabelSource

DEGENERATE_SHARE = 0.95  # a share above this is "nearly always"
MIN_COUNT = 20  # fewer labels (or judgments) than this say too little to warn on


def degeneracy_report(labels: Sequence[Label], critic_judgments: Sequence[dict]) -> tuple[dict, list[str]]:
    """(metrics, warnings). Metrics per labeler source: `tie_share_<source>` (labels picking no
    side: tie or both_bad), `first_shown_share_<source>` (decisive verdicts for the response shown
    first: the critic's single-order judgments, humans' labels with a shown order) and
    `top_principle_share_critic`; `degenerate_warnings` counts the warnings."""
    metrics: dict = {}
    warnings: list[str] = []

    def check(key: str, hits: int, n: int, message: str) -> None:
        """Record hits / n under `key`; warn (message.format(hits, n, share)) when nearly always."""
        if not n:
            return
        metrics[key] = hits / n
        if n >= MIN_COUNT and hits / n > DEGENERATE_SHARE:
            warnings.append(message.format(hits=hits, n=n, share=f"{hits / n:.0%}"))

    by_source: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_source[label.source].append(label)
    for source, own in sorted(by_source.items()):
        ties = sum(label.choice not in Choice.decisive() for label in own)
        check(f"tie_share_{source}", ties, len(own), f"{source}: {{hits}} of {{n}} labels ({{share}}) "
              "pick no side (tie or both_bad), so they give no preference to train on")
        shown = [label for label in own if label.shown_order and label.choice in Choice.decisive()]
        first = sum((label.choice == Choice.A) == (label.shown_order == "ab") for label in shown)
        check(f"first_shown_share_{source}", first, len(shown), f"{source}: {{hits}} of {{n}} "
              "decisive labels ({share}) choose the response shown first")
    raw = [p for j in critic_judgments for p in (j["p_first_ab"], j["p_first_ba"]) if p != 0.5]
    check("first_shown_share_critic", sum(p > 0.5 for p in raw), len(raw),
          "critic: the judge picked the response shown first in {hits} of {n} single-order judgments "
          "({share}); averaging both orders turns that position bias into ties")
    principles = Counter(label.principle for label in by_source.get(LabelSource.CRITIC.value, []))
    if principles:
        name, top = principles.most_common(1)[0]
        name = repr(name).replace("{", "{{").replace("}", "}}")  # the message is formatted once more
        check("top_principle_share_critic", top, sum(principles.values()),
              f"critic: {{hits}} of {{n}} labels ({{share}}) were judged under one principle, {name} "
              "(check label.critic.constitution)")
    metrics["degenerate_warnings"] = len(warnings)
    return metrics, warnings
