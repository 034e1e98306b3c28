"""Turn labels into (chosen, rejected) preference rows, and measure labels against gold."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from prefpipe.label.types import Label, PairToLabel
from prefpipe.vocab import Choice
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import WorldPrompt


def to_preferences(pairs: list[dict], labels: Mapping[str, Label]) -> list[dict]:
    """One row per pair whose label picks a side; ties and 'both bad' carry no preference."""
    preferences = []
    for pair in pairs:
        label = labels.get(pair["pair_id"])
        if label is None or label.choice not in Choice.decisive():
            continue
        win, lose = ("a", "b") if label.choice == Choice.A else ("b", "a")  # response_{a,b} columns
        preferences.append({
            "pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"], "prompt": pair["prompt"],
            "category": pair["category"], "chosen": pair[f"response_{win}"],
            "chosen_finished": pair[f"finished_{win}"], "rejected": pair[f"response_{lose}"],
            "rejected_finished": pair[f"finished_{lose}"], "source": label.source,
            "confidence": label.confidence})
    return preferences


def gold_choice(pair: PairToLabel, prompt: WorldPrompt | None) -> str | None:
    """'a' or 'b' where the embedded world's gold preference is decisive, else None."""
    if prompt is None:
        return None
    gold = prefer(prompt, (pair.response_a, pair.finished_a), (pair.response_b, pair.finished_b))
    return None if gold == 0.5 else Choice.A.value if gold == 1.0 else Choice.B.value


def label_report(pairs: Sequence[PairToLabel], routed, world: Mapping[str, WorldPrompt | None]) -> dict:
    """Counts of every individual label per source and choice; agreement with gold of the labels
    each pair trains on, per deciding source, where the world knows the gold preference."""
    counts = Counter((label.source, label.choice) for label in routed.labels)
    report: dict = {f"count_{source}_{choice}": n for (source, choice), n in sorted(counts.items())}
    for source in sorted({label.source for label in routed.labels}):
        report[f"count_{source}"] = sum(n for (s, _), n in counts.items() if s == source)
    agree: dict[str, list[bool]] = {}
    for pair in pairs:
        label = routed.final.get(pair.pair_id)
        gold = gold_choice(pair, world.get(pair.prompt_id))
        if label is None or gold is None or label.choice not in Choice.decisive():
            continue
        agree.setdefault(label.source, []).append(gold == label.choice)
    for source, hits in sorted(agree.items()):
        report[f"gold_agreement_{source}"] = sum(hits) / len(hits)
    all_hits = [h for hits in agree.values() for h in hits]
    if all_hits:
        report["gold_agreement"] = sum(all_hits) / len(all_hits)
    return report
