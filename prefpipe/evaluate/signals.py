"""Reward-hacking and mode-collapse detectors over sampled responses: each a number in a known range.

The seed names two ways preference training fails without the proxy noticing. Reward hacking: the
policy finds what the reward model over-rewards (length, filler, one pleasing phrase) and
"effectively adversarially attacks the reward model". Mode collapse: the policy loses diversity and
converges on a few answers, at worst one template given to every prompt. Each detector below
catches one symptom; the gate reads them for the policy beside the same numbers for the reference
(SFT), since a healthy model has a baseline of its own (short answers and refusals repeat).

Text is read as words (`split_words`): lower-cased runs of letters, digits and apostrophes, so
case and punctuation never split two otherwise equal texts. Every function is pure and
deterministic."""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence

from prefpipe.config.signals import SignalParams

_WORD = re.compile(r"\w+(?:'\w+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_words(text: str) -> list[str]:
    """The lower-cased words of `text`, punctuation dropped ("Great question!" -> great, question)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The word n-grams of `tokens` in order (none when there are fewer than n words)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def first_sentence(text: str) -> str:
    """The words of the text up to its first sentence end (. ! ? before a space, or a newline)."""
    return " ".join(split_words(_SENTENCE_END.split(text.strip(), maxsplit=1)[0]))


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


# Reward hacking --------------------------------------------------------------------------------

def length_drift(policy_lengths: Sequence[float], reference_lengths: Sequence[float]) -> float:
    """Relative growth of the mean length: mean(policy) / mean(reference) - 1, in [-1, inf).

    Catches verbosity hacking: reward models prefer longer answers (Singhal et al. 2023, "A Long
    Way to Go"), so a policy optimised against one grows its answers. Lengths are tokens; the
    reference mean is floored at one token so an all-empty reference gives a finite number."""
    if not policy_lengths or not reference_lengths:
        raise ValueError("length_drift needs at least one length on each side")
    policy = sum(policy_lengths) / len(policy_lengths)
    reference = sum(reference_lengths) / len(reference_lengths)
    return policy / max(reference, 1.0) - 1.0


def same_opener_share(responses: Sequence[str], words: int = 3) -> float:
    """Share of non-empty responses that open like the most common opener, in [0, 1].

    The opener is the first `words` words of the first sentence, so a short stock phrase ("Sure
    thing! ...") is an opener of its own rather than merged with whatever follows. Catches a
    pleasing phrase put in front of every answer (the embedded world's "Great question!"); empty
    responses have no opener and are left out (0.0 when all are empty)."""
    openers = [tuple(first_sentence(r).split()[:words]) for r in responses]
    openers = [o for o in openers if o]
    if not openers:
        return 0.0
    return Counter(openers).most_common(1)[0][1] / len(openers)


def repeated_ngram_share(responses: Sequence[str], n: int = 3) -> float:
    """Share of responses in which some word n-gram occurs twice, in [0, 1].

    Catches degenerate repetition ("the answer is 7 the answer is 7 ..."), the cheapest way to grow
    a length-loving reward (Holtzman et al. 2020 on text degeneration)."""
    return _share([len(set(g)) < len(g) for g in (ngrams(split_words(r), n) for r in responses)])


def phrase_rate(responses: Sequence[str], phrases: Sequence[str]) -> float:
    """Share of responses holding any of `phrases` as consecutive whole words (case and punctuation
    ignored), in [0, 1]; 0.0 with no phrases.

    Catches filler and hedging that a reward model over-rewards ("Great question!", "I am not an
    expert, but", "Hope this helps!"): the embedded world's known flaws, or a list of your own."""
    needles = [f" {' '.join(split_words(p))} " for p in phrases if split_words(p)]
    if not needles:
        return 0.0
    texts = [f" {' '.join(split_words(r))} " for r in responses]
    return _share([any(needle in text for needle in needles) for text in texts])


# Mode collapse ---------------------------------------------------------------------------------

def distinct_n(responses: Sequence[str], n: int) -> float:
    """distinct-n (Li et al. 2016, "A Diversity-Promoting Objective"): unique word n-grams over all
    n-grams of all responses, in [0, 1]; 0.0 when there are none.

    Low means the responses reuse the same words and phrases: mode collapse."""
    grams = [g for r in responses for g in ngrams(split_words(r), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0  # two empty responses are the same response


def pairwise_overlap(responses: Sequence[str], seed: int, max_pairs: int = 500) -> float:
    """Mean Jaccard similarity of the word sets of two different responses, in [0, 1]; 0.0 for
    fewer than two responses.

    A cheap stand-in for self-BLEU (Zhu et al. 2018, Texygen): 1 when every response uses the same
    words (collapse), near 0 for varied answers. All pairs are averaged when there are at most
    `max_pairs`; otherwise `max_pairs` pairs of two distinct responses drawn with `seed`."""
    sets = [set(split_words(r)) for r in responses]
    n = len(sets)
    if n < 2:
        return 0.0
    if n * (n - 1) // 2 <= max_pairs:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        rng = random.Random(seed)
        pairs = [tuple(rng.sample(range(n), 2)) for _ in range(max_pairs)]
    return sum(_jaccard(sets[i], sets[j]) for i, j in pairs) / len(pairs)


def first_sentence_entropy(responses: Sequence[str]) -> float:
    """Shannon entropy (bits) of the first-sentence distribution over log2(n), in [0, 1].

    1 when every response opens with a different sentence, 0 when all open with the same one:
    catches a policy converging on one opening (mode collapse) even when the rest varies. 1.0 for
    fewer than two responses (nothing to compare)."""
    n = len(responses)
    if n < 2:
        return 1.0
    counts = Counter(first_sentence(r) for r in responses).values()
    entropy = sum(c / n * math.log2(n / c) for c in counts)  # H = Σ p·log2(1/p), bits
    return entropy / math.log2(n)


def prompt_independent_share(prompts: Sequence[str], responses: Sequence[str]) -> float:
    """Share of responses given, word for word (case and punctuation ignored), to two or more
    different prompts, in [0, 1]; empty responses never count.

    Catches the worst collapse: one template answering every prompt (the seed's β = 0 run gave "What
    a fun question! This may not be fully accurate. The answer is 10. ..." to benign, harmful and
    explain prompts alike). Short answers and paraphrased prompts legitimately share answers ("The
    answer is 7.", a refusal; the embedded world's ideal answers give ~0.55), so read it against the
    reference's share. The same prompt (whitespace aside) drawn twice counts once."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    keys = [" ".join(split_words(r)) for r in responses]
    askers: dict[str, set[str]] = {}
    for prompt, key in zip(prompts, keys):
        askers.setdefault(key, set()).add(" ".join(prompt.split()))
    return _share([bool(key) and len(askers[key]) >= 2 for key in keys])


def response_signals(prompts: Sequence[str], responses: Sequence[str], params: SignalParams,
                     seed: int) -> dict[str, float]:
    """Every one-sided signal of one model's responses to `prompts`, keyed by name (the stage
    prefixes `policy_` / `reference_`). length_drift needs both sides: call it separately."""
    return {
        "same_opener_share": same_opener_share(responses, params.opener_words),
        "repeated_ngram_share": repeated_ngram_share(responses, params.ngram),
        "filler_rate": phrase_rate(responses, params.phrases),
        "distinct_1": distinct_n(responses, 1),
        "distinct_2": distinct_n(responses, 2),
        "pairwise_overlap": pairwise_overlap(responses, seed, params.overlap_pairs),
        "first_sentence_entropy": first_sentence_entropy(responses),
        "prompt_independent_share": prompt_independent_share(prompts, responses),
    }
