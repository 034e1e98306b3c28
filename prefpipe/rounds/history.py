"""The preferences a round trains on: its own, and earlier rounds' pairs with their labels as the
store holds them now (a human label that arrived after its round overrides the machine's)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from prefpipe.vocab import Choice, LabelSource

PAIR_COLUMNS = ("round", "pair_id", "prompt_id", "prompt", "category", "response_a", "finished_a",
                "response_b", "finished_b", "choice", "source", "confidence")


def with_human_labels(pairs: Sequence[Mapping], human_choices: Mapping[str, Sequence[str]]) -> list[dict]:
    """Earlier rounds' pairs with their final labels, a pair's human labels taking over where their
    majority picks a side (confidence: that majority's share of the human labels)."""
    out = []
    for pair in pairs:
        row = {key: pair.get(key) for key in PAIR_COLUMNS}
        votes = Counter(human_choices.get(pair["pair_id"], ()))
        decisive = [(n, choice) for choice, n in votes.items() if choice in Choice.decisive()]
        if decisive:
            n, choice = max(decisive)
            if sum(m == n for m, _ in decisive) == 1:  # no tie between a and b
                row.update(choice=choice, source=LabelSource.HUMAN.value,
                           confidence=n / sum(votes.values()))
        out.append(row)
    return out


def preference_rows(pairs: Sequence[Mapping]) -> list[dict]:
    """Pair rows with a decisive final label -> preference rows (the label stage's columns)."""
    rows = []
    for pair in pairs:
        if pair.get("choice") not in Choice.decisive():
            continue
        win, lose = ("a", "b") if pair["choice"] == Choice.A else ("b", "a")
        rows.append({"pair_id": pair["pair_id"], "prompt_id": pair["prompt_id"], "prompt": pair["prompt"],
                     "category": pair["category"], "chosen": pair[f"response_{win}"],
                     "chosen_finished": pair[f"finished_{win}"], "rejected": pair[f"response_{lose}"],
                     "rejected_finished": pair[f"finished_{lose}"], "source": pair["source"],
                     "confidence": pair["confidence"], "round": pair["round"]})
    return rows


def select_rounds(preferences: Sequence[Mapping], data: str, window: int, current: int) -> list[dict]:
    """The preferences the policy trains on (`rounds.data`): all of them, this round's ('latest'),
    or the last `window` rounds'. Imported preferences (no round) are always kept."""
    first = {"all": 1, "latest": current, "window": current - window + 1}[str(data)]
    return [dict(p) for p in preferences if p.get("round") is None or p["round"] >= first]
