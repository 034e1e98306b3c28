"""Simulated annotators: the gold preference seen through Bradley-Terry noise and lapses."""
from __future__ import annotations

import hashlib
import math
import random

from prefpipe.label.types import Label, PairToLabel
from prefpipe.world.gold import judge
from prefpipe.world.prompts import WorldPrompt


def pair_rng(seed: int, pair_id: str, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{salt}:{pair_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def simulated_label(pair: PairToLabel, prompt: WorldPrompt, annotator: str, noise: float,
                    temperature: float, seed: int) -> Label:
    """P(a) = σ((s_a - s_b) / temperature); with probability `noise` the annotator picks at random.

    Equal gold scores give a tie (both equally good, or both malformed)."""
    verdict_a = judge(prompt, pair.response_a, pair.finished_a)
    score_a, score_b = verdict_a.score, judge(prompt, pair.response_b, pair.finished_b).score
    rationale = f"gold {score_a:g} vs {score_b:g}"
    if score_a == score_b:
        choice = "tie" if verdict_a.well_formed else "both_bad"
        return Label(pair.pair_id, "simulated", annotator, choice, 1.0, rationale=rationale)
    rng = pair_rng(seed, pair.pair_id, annotator)
    p_a = 1.0 / (1.0 + math.exp(-max(min((score_a - score_b) / temperature, 50.0), -50.0)))
    if rng.random() < noise:
        choice = rng.choice("ab")
    else:
        choice = "a" if rng.random() < p_a else "b"
    return Label(pair.pair_id, "simulated", annotator, choice, max(p_a, 1 - p_a),
                 rationale=rationale)
