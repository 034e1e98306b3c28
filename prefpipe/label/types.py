"""The records labelers read and write."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PairToLabel:
    pair_id: str
    prompt_id: str
    category: str
    response_a: str
    finished_a: bool
    response_b: str
    finished_b: bool
    prompt: str = ""


@dataclass(frozen=True)
class Label:
    pair_id: str
    source: str  # a prefpipe.vocab.LabelSource
    annotator: str
    choice: str  # a prefpipe.vocab.Choice, always relative to the pair's a/b (not the order shown)
    confidence: float
    principle: str | None = None
    rationale: str | None = None
    shown_order: str | None = None  # 'ab' | 'ba': which response was shown first (humans)


@dataclass(frozen=True)
class Principle:
    """One constitution principle: a name and the question the critic is asked."""
    name: str
    question: str


@dataclass(frozen=True)
class Comparison:
    """What a judge sees: a prompt, two responses in the order shown, and one principle.

    `world` carries the embedded world's hidden facts (a WorldPrompt) for the rule judge only;
    model judges never read it."""
    prompt: str
    first: str
    second: str
    principle: Principle
    first_finished: bool = True
    second_finished: bool = True
    world: object | None = None


@dataclass(frozen=True)
class Judgment:
    """A judge's verdict on one Comparison: P(first is better) in [0, 1] and why."""
    p_first: float
    rationale: str
