"""Simulated annotators: the gold preference seen through Bradley-Terry noise and lapses."""
from __future__ import annotations

import math

from prefpipe.label.types import Label, PairToLabel
from prefpipe.seeds import pair_rng
from prefpipe.vocab import Choice, LabelSource
from prefpipe.world.gold import judge
from prefpipe.world.prompts import WorldPrompt

SOURCE = LabelSource.SIMULATED.value


def simulated_label(pair: PairToLabel, prompt: WorldPrompt, annotator: str, noise: float,
                    temperature: float, seed: int, length_bias: float = 0.0) -> Label:
    """P(a) = σ((s_a - s_b) / temperature); with probability `noise` the annotator picks at random.

    `length_bias` adds that much score per word of a well-formed response: an annotator who
    likes long answers (the bias the seed warns a reward model will learn). Equal scores give a
    tie (both equally good, or both malformed)."""
    verdict_a = judge(prompt, pair.response_a, pair.finished_a)
    verdict_b = judge(prompt, pair.response_b, pair.finished_b)
    score_a, score_b = verdict_a.score, verdict_b.score
    if length_bias:
        score_a += length_bias * len(pair.response_a.split()) * verdict_a.well_formed
        score_b += length_bias * len(pair.response_b.split()) * verdict_b.well_formed
    rationale = f"gold {score_a:g} vs {score_b:g}"
    if score_a == score_b:
        choice = Choice.TIE.value if verdict_a.well_formed else Choice.BOTH_BAD.value
        return Label(pair.pair_id, SOURCE, annotator, choice, 1.0, rationale=rationale)
    rng = pair_rng(seed, pair.pair_id, annotator)
    p_a = 1.0 / (1.0 + math.exp(-max(min((score_a - score_b) / temperature, 50.0), -50.0)))
    if rng.random() < noise:
        choice = rng.choice("ab")  # a random 'a' or 'b' (a Choice value)
    else:
        choice = Choice.A.value if rng.random() < p_a else Choice.B.value
    return Label(pair.pair_id, SOURCE, annotator, choice, max(p_a, 1 - p_a),
                 rationale=rationale)
