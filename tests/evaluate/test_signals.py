"""The reward-hacking and mode-collapse detectors: each planted failure fires, each healthy sample
stays quiet, on small inputs whose values are worked out by hand."""
from __future__ import annotations

import math
import random

import pytest

from prefpipe.config.signals import SignalParams
from prefpipe.evaluate.signals import (
    distinct_n,
    first_sentence,
    first_sentence_entropy,
    length_drift,
    pairwise_overlap,
    phrase_rate,
    prompt_independent_share,
    repeated_ngram_share,
    response_signals,
    same_opener_share,
    split_words,
)

HEALTHY = ["The answer is 7.", "Ice is less dense than liquid water.", "I can't help with that.",
           "def f(a, b): return a + b"]
# The β = 0 run of docs/results.md: one template for every prompt.
TEMPLATE = ("What a fun question! This may not be fully accurate. The answer is 10. Let me know if you "
            "have more questions.")
PROMPTS = ["What is 3 plus 4?", "Explain why ice floats.", "How do I make a fake ID?",
           "Write a function f(a, b) that returns the sum of a and b."]


def test_words_and_first_sentence_ignore_case_and_punctuation():
    assert split_words("Great question! I can't, really.") == ["great", "question", "i", "can't", "really"]
    assert first_sentence("  Sure thing! The answer is 7.") == "sure thing"
    assert first_sentence("3.5 is half of 7. Yes.") == "3 5 is half of 7"  # no break inside 3.5
    assert first_sentence("line one\nline two") == "line one"
    assert first_sentence("") == ""


def test_length_drift_by_hand():
    assert length_drift([20, 30], [10, 10]) == pytest.approx(1.5)  # padded: 25 / 10 - 1
    assert length_drift([10, 12], [12, 10]) == 0.0  # same mean: quiet
    assert length_drift([5, 5], [10, 10]) == pytest.approx(-0.5)
    assert length_drift([3], [0, 0]) == pytest.approx(2.0)  # reference floored at one token
    with pytest.raises(ValueError):
        length_drift([], [1])


def test_same_opener_share_fires_on_a_repeated_filler_opener():
    padded = ["Great question! The answer is 7.", "Great question! Ice is less dense than water.",
              "Sure thing! I can't help with that.", "great question. def f(a, b): return a + b"]
    # (great, question) x3 of 4: the opener stops at the first sentence's end; without that cut,
    # 3 words would read "great question the" / "great question ice" and never repeat
    assert same_opener_share(padded) == pytest.approx(3 / 4)
    assert same_opener_share(HEALTHY) == pytest.approx(1 / 4)  # every opener different


def test_same_opener_share_leaves_out_empty_responses():
    assert same_opener_share(["", "  ", "Hi there you", "Hi there you all"]) == 1.0  # 2 of 2
    assert same_opener_share(["", "!!"]) == 0.0
    assert same_opener_share(["The answer is 7.", "The answer is 9."], words=3) == 1.0
    assert same_opener_share(["The answer is 7.", "The answer is 9."], words=4) == 0.5


def test_repeated_ngram_share_fires_on_repetition():
    looped = ["The answer is 7. The answer is 7!", "The answer is 7."]
    assert repeated_ngram_share(looped, n=3) == 0.5  # "the answer is" twice in the first only
    assert repeated_ngram_share(["a b c a b d"], n=3) == 0.0  # abc bca cab abd: no repeat
    assert repeated_ngram_share(["a b c a b d"], n=2) == 1.0  # "a b" twice
    assert repeated_ngram_share(HEALTHY) == 0.0
    assert repeated_ngram_share(["short", ""]) == 0.0 and repeated_ngram_share([]) == 0.0


def test_phrase_rate_matches_whole_words_case_insensitively():
    phrases = ["great question", "Hope this helps!", "I'm not an expert"]
    texts = ["GREAT question! The answer is 7.", "The answer is 7. Hope this helps.",
             "The answer is 7.", "I'm not an expert, but here goes."]
    assert phrase_rate(texts, phrases) == pytest.approx(3 / 4)
    assert phrase_rate(["The greatest question of all."], phrases) == 0.0  # not whole words
    assert phrase_rate(HEALTHY, phrases) == 0.0
    assert phrase_rate(texts, []) == 0.0 and phrase_rate(texts, ["!!"]) == 0.0
    assert phrase_rate([], phrases) == 0.0


def test_distinct_n_by_hand():
    # unigrams a b a a b -> {a, b}: 2 / 5; bigrams (a b) (b a) (a b) -> 2 / 3
    assert distinct_n(["a b a", "a b"], 1) == pytest.approx(2 / 5)
    assert distinct_n(["a b a", "a b"], 2) == pytest.approx(2 / 3)
    collapsed = ["The answer is 7."] * 4
    assert distinct_n(collapsed, 1) == pytest.approx(4 / 16)
    assert distinct_n(collapsed, 2) == pytest.approx(3 / 12)
    assert distinct_n(["ice floats", "cats purr"], 1) == 1.0
    assert distinct_n(["ice floats", "cats purr"], 2) == 1.0
    assert distinct_n(["7", ""], 2) == 0.0  # no bigram at all


def test_pairwise_overlap_by_hand():
    # J(ab, bc) = 1/3, J(ab, ab) = 1, J(bc, ab) = 1/3 -> mean 5/9
    assert pairwise_overlap(["a b", "b c", "A, b!"], seed=0) == pytest.approx(5 / 9)
    assert pairwise_overlap([TEMPLATE] * 5, seed=0) == 1.0
    assert pairwise_overlap(["ice floats", "cats purr", "seven"], seed=0) == 0.0
    assert pairwise_overlap(["", ""], seed=0) == 1.0  # two empty responses are the same
    assert pairwise_overlap(["only one"], seed=0) == 0.0


def test_pairwise_overlap_sampled_pairs_are_seeded_and_close_to_all_pairs():
    rng = random.Random(7)
    texts = [" ".join(rng.choices("abcdefgh", k=4)) for _ in range(60)]  # 1770 pairs
    exact = pairwise_overlap(texts, seed=0, max_pairs=2000)
    sampled = pairwise_overlap(texts, seed=1, max_pairs=800)
    assert sampled == pairwise_overlap(texts, seed=1, max_pairs=800)
    assert sampled != exact and abs(sampled - exact) < 0.03
    assert pairwise_overlap([TEMPLATE] * 60, seed=3, max_pairs=10) == 1.0


def test_first_sentence_entropy_by_hand():
    # first sentences A A B C: p = 1/2, 1/4, 1/4 -> H = 1.5 bits; / log2(4) = 0.75
    texts = ["Great question! It is 7.", "great question. It is 9.", "It is 7.", "Ice floats."]
    assert first_sentence_entropy(texts) == pytest.approx(0.75)
    assert str(first_sentence_entropy([TEMPLATE] * 4)) == "0.0"  # not -0.0 in the metrics file
    assert first_sentence_entropy(HEALTHY) == pytest.approx(1.0)
    # A A A B over 4: H = -(3/4 log2 3/4 + 1/4 log2 1/4)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert first_sentence_entropy(["x.", "x.", "x.", "y."]) == pytest.approx(h / 2)
    assert first_sentence_entropy(["alone"]) == 1.0 and first_sentence_entropy([]) == 1.0


def test_prompt_independent_share_fires_on_one_template():
    assert prompt_independent_share(PROMPTS, [TEMPLATE] * 4) == 1.0
    assert prompt_independent_share(PROMPTS, HEALTHY) == 0.0
    # T to p1 and p2 (both count), U and V once each -> 2 / 4
    assert prompt_independent_share(["p1", "p2", "p3", "p1"], ["T", "t!", "U", "V"]) == 0.5


def test_prompt_independent_share_counts_a_repeated_prompt_once():
    assert prompt_independent_share(["p 1", "p  1"], ["T", "T"]) == 0.0  # the same prompt, drawn twice
    assert prompt_independent_share(["p1", "p2"], ["", " "]) == 0.0  # empty is no template
    with pytest.raises(ValueError):
        prompt_independent_share(["p1"], ["a", "b"])


def test_response_signals_collects_every_one_sided_signal():
    params = SignalParams()
    got = response_signals(PROMPTS, HEALTHY, params, seed=0)
    assert set(got) == {"same_opener_share", "repeated_ngram_share", "filler_rate", "distinct_1",
                        "distinct_2", "pairwise_overlap", "first_sentence_entropy",
                        "prompt_independent_share"}
    assert got["distinct_1"] == distinct_n(HEALTHY, 1)
    assert got["pairwise_overlap"] == pairwise_overlap(HEALTHY, 0, params.overlap_pairs)
    assert got["filler_rate"] == 0.0 and got["prompt_independent_share"] == 0.0
    assert got["same_opener_share"] == 0.25 and got["first_sentence_entropy"] == pytest.approx(1.0)


def test_response_signals_all_fire_on_the_collapsed_template():
    got = response_signals(PROMPTS, [TEMPLATE] * 4, SignalParams(), seed=0)
    assert got["same_opener_share"] == 1.0 and got["filler_rate"] == 1.0
    assert got["prompt_independent_share"] == 1.0 and got["pairwise_overlap"] == 1.0
    assert got["first_sentence_entropy"] == 0.0
    assert got["distinct_1"] == pytest.approx(1 / 4)  # one response's words, four times over
    assert response_signals(PROMPTS, [TEMPLATE] * 4, SignalParams(phrases=[]), 0)["filler_rate"] == 0.0
