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


@dataclass(frozen=True)
class Label:
    pair_id: str
    source: str  # simulated | verifier | human | critic
    annotator: str
    choice: str  # a | b | tie | both_bad
    confidence: float
    principle: str | None = None
    rationale: str | None = None
