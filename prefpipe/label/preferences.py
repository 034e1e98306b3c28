"""Turn labels into (chosen, rejected) preference rows, and measure labels against gold."""
from __future__ import annotations

from collections import Counter

from prefpipe.label.types import Label
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import WorldPrompt


def to_preferences(pairs: list[dict], labels: dict[str, Label]) -> list[dict]:
    """One row per pair whose label picks a side; ties and 'both bad' carry no preference."""
    preferences = []
    for pair in pairs:
        label = labels.get(pair["pair_id"])
        if label is None or label.choice not in ("a", "b"):
            continue
        win, lose = ("a", "b") if label.choice == "a" else ("b", "a")
        preferences.append({
            "pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"], "prompt": pair["prompt"],
            "category": pair["category"], "chosen": pair[f"response_{win}"],
            "chosen_finished": pair[f"finished_{win}"], "rejected": pair[f"response_{lose}"],
            "rejected_finished": pair[f"finished_{lose}"], "source": label.source,
            "confidence": label.confidence})
    return preferences


def label_report(pairs: list[dict], labels: dict[str, Label],
                 prompts: dict[str, WorldPrompt | None]) -> dict:
    """Counts per source and choice, and agreement with gold where the world knows it."""
    counts = Counter((label.source, label.choice) for label in labels.values())
    report: dict = {f"count_{source}_{choice}": n for (source, choice), n in sorted(counts.items())}
    agree: dict[str, list[bool]] = {}
    for pair in pairs:
        label, prompt = labels.get(pair["pair_id"]), prompts.get(pair["prompt_id"])
        if label is None or prompt is None or label.choice not in ("a", "b"):
            continue
        gold = prefer(prompt, (pair["response_a"], pair["finished_a"]),
                      (pair["response_b"], pair["finished_b"]))
        if gold != 0.5:
            agree.setdefault(label.source, []).append((gold == 1.0) == (label.choice == "a"))
    for source, hits in sorted(agree.items()):
        report[f"gold_agreement_{source}"] = sum(hits) / len(hits)
    all_hits = [h for hits in agree.values() for h in hits]
    if all_hits:
        report["gold_agreement"] = sum(all_hits) / len(all_hits)
    return report
