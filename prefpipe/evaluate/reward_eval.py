"""How well a reward model ranks held-out pairs: against the labels and against gold."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from prefpipe.seeds import SplitPurpose, split_position
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import WorldPrompt


def split_by_prompt(preferences: list[dict], val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, val) with every pair of a prompt on the same side, so val prompts are unseen."""
    held_out = held_out_prompts((row["prompt_id"] for row in preferences), val_fraction, seed)
    train, val = [], []
    for row in preferences:
        (val if row["prompt_id"] in held_out else train).append(row)
    return train, val


def held_out_prompts(prompt_ids: Iterable[str], val_fraction: float, seed: int) -> set[str]:
    """Those of `prompt_ids` whose pairs `split_by_prompt` puts in validation: the split is row-wise
    given this set, so a stage can select either side a record batch at a time."""
    return {prompt_id for prompt_id in set(prompt_ids)
            if split_position(seed, SplitPurpose.REWARD_VALIDATION, prompt_id) < val_fraction}


def on_side(held_out: set[str], validation: bool) -> Callable[[list[dict]], list[dict]]:
    """The rows of a batch on one side of the split `held_out` (`held_out_prompts`) makes, in order."""
    return lambda rows: [row for row in rows if (row["prompt_id"] in held_out) == validation]


def ranking_report(val: list[dict], chosen_scores: list[float], rejected_scores: list[float],
                   prompts: dict[str, WorldPrompt | None]) -> dict:
    """Accuracy vs labels, vs gold (overall and per category), and reward-length correlation."""
    label_hits = [c > r for c, r in zip(chosen_scores, rejected_scores)]
    report = {"val_pairs": len(val), "val_label_accuracy": sum(label_hits) / max(len(val), 1)}
    gold_hits: dict[str, list[bool]] = {}
    for row, c, r in zip(val, chosen_scores, rejected_scores):
        prompt = prompts.get(row["prompt_id"])
        if prompt is None:
            continue
        gold = prefer(prompt, (row["chosen"], row["chosen_finished"]),
                      (row["rejected"], row["rejected_finished"]))
        if gold != 0.5:
            gold_hits.setdefault(row["category"], []).append((c > r) == (gold == 1.0))
    every = [h for hits in gold_hits.values() for h in hits]
    if every:
        report["val_gold_accuracy"] = sum(every) / len(every)
        for category, hits in sorted(gold_hits.items()):
            report[f"val_gold_accuracy_{category}"] = sum(hits) / len(hits)
    report["val_calibration_ece"], _ = calibration(
        [c - r for c, r in zip(chosen_scores, rejected_scores)])
    lengths = [len(row["chosen"]) for row in val] + [len(row["rejected"]) for row in val]
    report["reward_length_correlation"] = pearson(chosen_scores + rejected_scores, lengths)
    return report


def pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def calibration(reward_gaps: list[float], bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error of P(chosen ≻ rejected) = σ(r_c - r_r) against the labels.

    Each pair counts in both orders (p with outcome 1, 1 - p with outcome 0), so a model that
    always says 0.5 is perfectly calibrated and one that is overconfident is not. Returns the ECE
    and per-bin rows (mean predicted, observed frequency, count) for a reliability plot."""
    points = []
    for gap in reward_gaps:
        p = 1.0 / (1.0 + math.exp(-max(min(gap, 50.0), -50.0)))
        points += [(p, 1.0), (1.0 - p, 0.0)]
    rows, ece = [], 0.0
    for b in range(bins):
        inside = [(p, y) for p, y in points if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if not inside:
            continue
        predicted = sum(p for p, _ in inside) / len(inside)
        observed = sum(y for _, y in inside) / len(inside)
        ece += len(inside) / len(points) * abs(predicted - observed)
        rows.append({"bin": b, "predicted": predicted, "observed": observed, "pairs": len(inside)})
    return ece, rows
