"""Params of the reward-hacking and mode-collapse detectors (`evaluate.signals`, issue #10).

The detectors themselves are prefpipe/evaluate/signals.py; these knobs say how they read text."""
from __future__ import annotations

from dataclasses import dataclass

from prefpipe.config.knobs import knob

# Filler and hedging phrases that a reward model can learn to like and a policy then learns to add
# (reward hacking). Matched case-insensitively on whole words, punctuation ignored. The list holds
# every flaw phrase of the embedded world (prefpipe/world/content.py: FILLER_OPENERS, CAVEATS,
# CLOSINGS, the RESTATE prefix; tests/config/test_signals.py keeps them in step) and the common
# ones of chat models, so one default serves the embedded world and your own data alike.
DEFAULT_PHRASES = [
    "Great question", "Sure thing", "What a fun question", "Happy to help", "You asked:",
    "I am not an expert", "I'm not an expert", "This may not be fully accurate",
    "Please double check", "Hope this helps", "Let me know if you have more questions",
    "As an AI", "Feel free to ask",
]


@dataclass(frozen=True)
class SignalParams:
    opener_words: int = knob(3, "same_opener_share: a response's opener is the first opener_words "
                                "words of its first sentence (so a two-word 'Great question!' is "
                                "an opener of its own)")
    ngram: int = knob(3, "repeated_ngram_share: a response repeats itself when a word n-gram of "
                         "this size occurs twice in it")
    overlap_pairs: int = knob(500, "pairwise_overlap: response pairs drawn (seeded) to average the "
                                   "word-set Jaccard over (all pairs when there are fewer)")
    phrases: list[str] = knob(DEFAULT_PHRASES, "filler_rate: share of responses holding any of "
                                               "these phrases (case-insensitive, whole words); the "
                                               "default covers the embedded world's flaws and "
                                               "common chat filler; [] = no phrase signal (0.0)")

    def validate(self) -> str | None:
        if self.opener_words < 1:
            return f"opener_words must be >= 1, got {self.opener_words}"
        if self.ngram < 2:
            return f"ngram must be >= 2 (every text repeats a single word), got {self.ngram}"
        if self.overlap_pairs < 1:
            return f"overlap_pairs must be >= 1, got {self.overlap_pairs}"
        for i, phrase in enumerate(self.phrases):
            if not any(ch.isalnum() for ch in phrase):
                return f"phrases[{i}] must hold at least one word, got {phrase!r}"
        return None
