"""Simulated annotators: gold seen through Bradley-Terry noise, lapses and an optional length bias."""
from __future__ import annotations

import math

import pytest

from prefpipe.label.simulated import simulated_label
from prefpipe.label.types import PairToLabel
from prefpipe.world.gold import prefer
from prefpipe.world.prompts import all_prompts

PROMPTS = {p.prompt: p for p in all_prompts(5)}
ADD = PROMPTS["What is 3 plus 4?"]
TEA = PROMPTS["How do I make tea?"]
TEA_ANSWER = "Pour hot water over the tea and let it steep for three minutes."


def pair(prompt, a, b, finished_a=True, finished_b=True, pair_id="pair") -> PairToLabel:
    return PairToLabel(pair_id, prompt.prompt_id, prompt.family, a, finished_a, b, finished_b)


def _gold_pairs(n: int):
    """Pairs with a clear gold winner, alternating sides."""
    good, bad = TEA_ANSWER, "Sure thing! I can't help with that. Hope this helps!"
    for i in range(n):
        yield pair(TEA, good, bad, pair_id=f"g{i}") if i % 2 else pair(TEA, bad, good,
                                                                       pair_id=f"g{i}")


def test_noise_free_annotator_with_big_gap_always_picks_gold_winner():
    for p in _gold_pairs(300):
        gold = prefer(TEA, (p.response_a, True), (p.response_b, True))
        label = simulated_label(p, TEA, "sim-1", noise=0.0, temperature=0.5, seed=0)
        # gap 5 / 0.5 = 10 -> P(gold side) = σ(10) > 0.9999; over 300 pairs a miss is < 2% likely,
        # and the seeded RNG makes this deterministic
        assert label.choice == ("a" if gold == 1.0 else "b"), p.pair_id
        assert label.confidence == pytest.approx(1 / (1 + math.exp(-10)))


def test_noise_free_annotator_beats_malformed_with_certainty():
    for i in range(200):
        p = pair(TEA, "garbage garbage", TEA_ANSWER, pair_id=f"m{i}")
        label = simulated_label(p, TEA, "sim-2", noise=0.0, temperature=1.0, seed=i)
        assert label.choice == "b" and label.confidence == 1.0


def test_equal_gold_gives_tie_or_both_bad():
    tie = simulated_label(pair(TEA, TEA_ANSWER, TEA_ANSWER + " "), TEA, "sim-1", 0.5, 0.5, 0)
    assert tie.choice == "tie" and tie.source == "simulated"
    same_flaws = simulated_label(pair(ADD, "Sure thing! 3 + 4 = 7.", "The answer is 7. Hope "
                                      "this helps!"), ADD, "sim-1", 0.5, 0.5, 0)
    assert same_flaws.choice == "tie"
    both_bad = simulated_label(pair(TEA, "zzz", TEA_ANSWER, finished_b=False), TEA, "sim-1",
                               0.5, 0.5, 0)
    assert both_bad.choice == "both_bad"


def test_full_noise_agrees_with_gold_about_half_the_time():
    pairs = list(_gold_pairs(2000))
    agree = 0
    for p in pairs:
        label = simulated_label(p, TEA, "sim-1", noise=1.0, temperature=0.5, seed=0)
        gold = prefer(TEA, (p.response_a, True), (p.response_b, True))
        agree += label.choice == ("a" if gold == 1.0 else "b")
    assert 0.45 < agree / len(pairs) < 0.55


def test_moderate_noise_agreement_matches_lapse_rate():
    # gap 5 / 0.5: right unless it lapses (p=0.4), and a lapse is right half the time -> 0.8
    pairs = list(_gold_pairs(2000))
    agree = 0
    for p in pairs:
        label = simulated_label(p, TEA, "sim-1", noise=0.4, temperature=0.5, seed=1)
        gold = prefer(TEA, (p.response_a, True), (p.response_b, True))
        agree += label.choice == ("a" if gold == 1.0 else "b")
    assert 0.75 < agree / len(pairs) < 0.85


def test_length_biased_annotators_prefer_the_padded_answer_gold_rejects():
    padded = "Great question! " + TEA_ANSWER  # one flaw: gold prefers the plain answer
    plain_pick = simulated_label(pair(TEA, padded, TEA_ANSWER), TEA, "sim-1", 0.0, 0.01, 0)
    biased_pick = simulated_label(pair(TEA, padded, TEA_ANSWER), TEA, "sim-1", 0.0, 0.01, 0,
                                  length_bias=1.0)  # +2 words outweigh the -1 flaw
    assert plain_pick.choice == "b" and biased_pick.choice == "a"
    weak_bias = simulated_label(pair(TEA, padded, TEA_ANSWER), TEA, "sim-1", 0.0, 0.01, 0,
                                length_bias=0.25)  # +0.5 does not
    assert weak_bias.choice == "b"
